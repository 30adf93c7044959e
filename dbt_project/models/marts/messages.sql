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

-- analysts never see a raw address (macros/engine/masking.sql: + country code and the last
-- two digits of a phone, first character and domain of an email)
masked as (
    select
        *,
        {{ herald.mask_address('to_address', 'channel') }} as to_address_masked
    from outbox
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
