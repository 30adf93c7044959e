with

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

delivery_attempts as (
    select * from {{ source('herald_ops', 'delivery_attempts') }}
),

-- a reconciliation row records the outcome of an attempt already made, under its number, so
-- attempts are counted by distinct attempt_number
attempt_summaries as (
    select
        message_key,
        count(distinct attempt_number) as attempt_count,
        count(*) filter (where outcome = 'transient_error') as transient_error_count,
        min(started_at) as first_attempt_at,
        max(started_at) as last_attempt_at
    from delivery_attempts
    group by message_key
),

-- E.164 country codes are 1 digit (+1, +7), 2 digits (the ITU list below) or 3 digits
phone_country_codes as (
    select
        *,
        case
            when channel <> 'sms' then null
            when {{ herald.regexp_like('to_address', '^[+][17]') }} then 1
            when {{ herald.regexp_like('to_address', '^[+](20|27|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])') }} then 2
            else 3
        end as country_code_length
    from outbox
),

-- analysts never see a raw address: a phone keeps + country code and its last 2 digits, an
-- email its first character and domain; anything else is masked whole
masked as (
    select
        *,
        case
            when channel = 'sms' and to_address like '+%'
                then substr(to_address, 1, 1 + country_code_length)
                    || repeat('*', greatest(length(to_address) - 3 - country_code_length, 0))
                    || right(to_address, 2)
            when channel = 'email' and to_address like '_%@_%'
                then substr(to_address, 1, 1) || '***@' || split_part(to_address, '@', 2)
            else '***'
        end as to_address_masked
    from phone_country_codes
),

final as (
    select
        masked.message_key,
        masked.client_id,
        masked.campaign,
        masked.step,
        masked.variant,
        masked.occurrence,
        masked.contact_id,
        masked.message_type,
        masked.category,
        masked.channel,
        masked.to_address_masked,
        masked.status,
        case
            when masked.status in ('failed', 'held', 'suppressed') then masked.status_reason
        end as failure_reason,
        masked.sms_segments,
        masked.provider,
        masked.provider_message_id,
        masked.enqueued_at,
        masked.send_after,
        attempt_summaries.first_attempt_at,
        attempt_summaries.last_attempt_at,
        masked.sent_at,
        coalesce(attempt_summaries.attempt_count, 0) as attempt_count,
        coalesce(attempt_summaries.transient_error_count, 0) as transient_error_count
    from masked
    left join attempt_summaries
        on masked.message_key = attempt_summaries.message_key
)

select * from final
