{#- One row per thing that happened to a client's contact that a client can subscribe to by
    outbound webhook (herald/webhooks): messages sent, delivered, failed and clicked, inbound replies,
    opt-outs, conversions, and journey enrollments and exits. Ids only, never an address.
    event_id is an md5 of the event type and the id of the row it comes from, so a rebuild gives
    every event the same id (the webhook-id a receiver dedupes by).
    herald_ops.enrollment_events is read by name: the journey engine writes it, and it is not a
    declared dbt source. -#}
with

messages as (
    select * from {{ ref('messages') }}
),

deliveries as (
    select * from {{ ref('deliveries') }}
),

conversation_messages as (
    select * from {{ ref('conversation_messages') }}
),

suppressions as (
    select * from {{ ref('suppressions') }}
),

conversions as (
    select * from {{ ref('conversions') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

engagement_events as (
    select * from {{ ref('engagement_events') }}
),

enrollment_events as (
    select * from herald_ops.enrollment_events
),

sent as (
    select
        cast('sent' as varchar) as event_type,
        message_key as source_id,
        client_id,
        sent_at as occurred_at,
        contact_id,
        campaign,
        step,
        message_key,
        channel,
        cast(null as varchar) as detail
    from messages
    where sent_at is not null
),

delivered as (
    select
        cast('delivered' as varchar) as event_type,
        message_key as source_id,
        client_id,
        delivered_at as occurred_at,
        contact_id,
        campaign,
        step,
        message_key,
        channel,
        cast(null as varchar) as detail
    from deliveries
    where delivered_at is not null
),

-- the provider's word (failed, undelivered, bounced), never its error text, which may quote an address
failed as (
    select
        cast('failed' as varchar) as event_type,
        message_key as source_id,
        client_id,
        coalesce(failed_at, bounced_at) as occurred_at,
        contact_id,
        campaign,
        step,
        message_key,
        channel,
        final_status as detail
    from deliveries
    where failed_at is not null or bounced_at is not null
),

-- what Herald did with the reply (opt_out, help, ...), never its text
replied as (
    select
        cast('replied' as varchar) as event_type,
        conversation_message_id as source_id,
        client_id,
        occurred_at,
        contact_id,
        cast(null as varchar) as campaign,
        cast(null as varchar) as step,
        cast(null as varchar) as message_key,
        channel,
        inbound_action as detail
    from conversation_messages
    where direction = 'inbound'
),

-- a recipient's own opt-out or complaint to one client (not bounces, blocks or global ones)
opted_out as (
    select
        cast('opted_out' as varchar) as event_type,
        suppression_key as source_id,
        client_id,
        created_at as occurred_at,
        contact_id,
        cast(null as varchar) as campaign,
        cast(null as varchar) as step,
        cast(null as varchar) as message_key,
        nullif(channel, '*') as channel,
        reason as detail
    from suppressions
    where reason in ('opt_out', 'complaint') and client_id <> '*'
),

converted as (
    select
        cast('converted' as varchar) as event_type,
        conversion_id as source_id,
        client_id,
        occurred_at,
        contact_id,
        cast(null as varchar) as campaign,
        cast(null as varchar) as step,
        cast(null as varchar) as message_key,
        cast(null as varchar) as channel,
        kind as detail
    from conversions
),

-- the link without its query string (which may carry whatever the template put there)
clicked as (
    select
        cast('clicked' as varchar) as event_type,
        event_id as source_id,
        client_id,
        occurred_at,
        contact_id,
        campaign,
        step,
        message_key,
        channel,
        split_part(url, '?', 1) as detail
    from engagement_events
    where event = 'clicked'
),

journey as (
    select
        event as event_type,
        event_id as source_id,
        client_id,
        occurred_at,
        contact_id,
        campaign,
        step,
        message_key,
        cast(null as varchar) as channel,
        reason as detail
    from enrollment_events
    where event in ('enrolled', 'exited')
),

unioned as (
    select * from sent
    union all
    select * from delivered
    union all
    select * from failed
    union all
    select * from clicked
    union all
    select * from replied
    union all
    select * from opted_out
    union all
    select * from converted
    union all
    select * from journey
),

final as (
    select
        {{ herald.surrogate_key(['unioned.event_type', 'unioned.source_id']) }} as event_id,
        unioned.client_id,
        unioned.event_type,
        unioned.occurred_at,
        unioned.contact_id,
        contacts.external_id,
        unioned.campaign,
        unioned.step,
        unioned.message_key,
        unioned.channel,
        unioned.detail
    from unioned
    left join contacts
        on unioned.contact_id = contacts.contact_id
    where unioned.occurred_at is not null
)

select * from final
