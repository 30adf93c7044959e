with

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

provider_event_processing as (
    select * from {{ source('herald_ops', 'provider_event_processing') }}
),

-- reading the processing table also orders this model after the provider events are applied
last_events as (
    select
        message_key,
        max(processed_at) as last_provider_event_at
    from provider_event_processing
    where message_key is not null
    group by message_key
),

-- a message reached a provider when the provider accepted it (it has the provider's id) or
-- refused it (status failed after an attempt); queued, held, suppressed and cancelled ones never did
reached_provider as (
    select
        outbox.*,
        last_events.last_provider_event_at
    from outbox
    left join last_events
        on outbox.message_key = last_events.message_key
    where outbox.provider_message_id is not null
        or outbox.status = 'failed'
),

final as (
    select
        message_key,
        client_id,
        campaign,
        step,
        variant,
        contact_id,
        channel,
        {{ herald.mask_address('to_address', 'channel') }} as to_address_masked,
        provider,
        provider_message_id,
        -- what the provider last reported (statuses only move forward), else the outbox's word
        coalesce(provider_status, status) as final_status,
        sent_at,
        delivered_at,
        case
            when provider_status in ('failed', 'undelivered') then provider_status_at
            when provider_status is null and status = 'failed' then updated_at
        end as failed_at,
        bounced_at,
        complained_at,
        opened_at,
        clicked_at,
        coalesce(delivery_error, case when status = 'failed' then status_reason end) as delivery_error,
        last_provider_event_at
    from reached_provider
)

select * from final
