-- built after marts.deliveries, so after the provider events it reflects were applied
-- depends_on: {{ ref('deliveries') }}

with

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

-- every message that did not (or will not) reach its recipient, for support to
-- follow up. The provider's report wins over the outbox status: a message sent but then
-- bounced is missed because it bounced.
missed as (
    select
        *,
        case
            when provider_status in ('failed', 'undelivered', 'bounced', 'complained') then provider_status
            when status in ('failed', 'suppressed', 'held', 'cancelled') then status
        end as missed_status
    from outbox
),

final as (
    select
        missed.message_key,
        missed.client_id,
        missed.contact_id,
        contacts.first_name,
        contacts.last_name,
        missed.campaign,
        missed.step,
        missed.channel,
        {{ herald.mask_address('missed.to_address', 'missed.channel') }} as to_address_masked,
        missed.missed_status,
        case
            when missed.missed_status = 'complained' then coalesce(missed.delivery_error, 'marked as spam')
            when missed.missed_status in ('failed', 'undelivered', 'bounced')
                then coalesce(missed.delivery_error, missed.status_reason, missed.missed_status)
            else coalesce(missed.status_reason, missed.missed_status)
        end as reason,
        case
            when missed.missed_status = 'bounced' then coalesce(missed.bounced_at, missed.provider_status_at)
            when missed.missed_status = 'complained' then coalesce(missed.complained_at, missed.provider_status_at)
            when missed.missed_status in ('failed', 'undelivered') and missed.provider_status is not null
                then missed.provider_status_at
            else missed.updated_at
        end as missed_at
    from missed
    left join contacts
        on missed.client_id = contacts.client_id
        and missed.contact_id = contacts.contact_id
    where missed.missed_status is not null
)

select * from final
