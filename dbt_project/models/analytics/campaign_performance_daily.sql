with

message_plan as (
    select * from {{ ref('message_plan') }}
),

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

inbound_messages as (
    select * from {{ source('herald_raw', 'inbound_messages') }}
),

-- a reply is credited to the latest message the client sent to that address from the number
-- (or address) the reply was sent to, within the 7 days before it (last touch), so one reply
-- never counts for two messages
reply_touches as (
    select
        outbox.message_key,
        row_number() over (
            partition by inbound_messages.inbound_id
            order by outbox.sent_at desc, outbox.message_key desc
        ) as touch_rank
    from inbound_messages
    inner join outbox
        on inbound_messages.channel = outbox.channel
        and inbound_messages.from_address = outbox.to_address
        and inbound_messages.to_address = outbox.sender
        and inbound_messages.received_at >= outbox.sent_at
        and inbound_messages.received_at < outbox.sent_at + interval '7 days'
),

replied_messages as (
    select distinct message_key
    from reply_touches
    where touch_rank = 1
),

-- an excluded plan row has no variant, no send_after, and no channel when the contact had no
-- address: 'none' keeps it in the grain (a null would fail the key test), and it counts on the
-- day it was scheduled for
planned_messages as (
    select
        client_id,
        campaign,
        step,
        coalesce(variant, 'none') as variant,
        coalesce(channel, 'none') as channel,
        coalesce(send_after, scheduled_at, planned_at) as send_after,
        'plan' as row_source,
        status,
        coalesce(is_deferred, false) as is_deferred,
        cast(null as bigint) as sms_segments,
        false as is_delivered,
        false as is_replied,
        false as is_opened,
        false as is_clicked
    from message_plan
),

outbox_messages as (
    select
        outbox.client_id,
        outbox.campaign,
        outbox.step,
        outbox.variant,
        outbox.channel,
        outbox.send_after,
        'outbox' as row_source,
        outbox.status,
        false as is_deferred,
        outbox.sms_segments,
        (outbox.delivered_at is not null or outbox.provider_status in ('delivered', 'read')) as is_delivered,
        replied_messages.message_key is not null as is_replied,
        -- the first open / click (Resend webhooks, Herald's tracked links) stamps the outbox
        -- message, so each counts once per message: the messages of marts.engagement_events
        outbox.opened_at is not null as is_opened,
        outbox.clicked_at is not null as is_clicked
    from outbox
    left join replied_messages
        on outbox.message_key = replied_messages.message_key
),

all_messages as (
    select * from planned_messages
    union all
    select * from outbox_messages
),

-- the day is the client's local date of send_after; a client missing from clients counts in UTC
localized as (
    select
        all_messages.*,
        cast(
            {{ herald.utc_to_local('all_messages.send_after', "coalesce(clients.time_zone, 'UTC')") }} as date
        ) as send_date
    from all_messages
    left join clients
        on all_messages.client_id = clients.client_id
),

daily as (
    select
        client_id,
        campaign,
        step,
        variant,
        channel,
        send_date,
        count(*) filter (where row_source = 'plan' and status = 'planned') as planned,
        count(*) filter (where row_source = 'plan' and status = 'excluded') as excluded,
        count(*) filter (where row_source = 'plan' and status = 'planned' and is_deferred) as deferred,
        count(*) filter (where row_source = 'outbox') as enqueued,
        count(*) filter (where row_source = 'outbox' and status = 'held') as held,
        count(*) filter (where row_source = 'outbox' and status = 'sent') as sent,
        count(*) filter (where row_source = 'outbox' and status = 'failed') as failed,
        count(*) filter (where row_source = 'outbox' and status = 'suppressed') as suppressed,
        count(*) filter (where row_source = 'outbox' and status = 'cancelled') as cancelled,
        count(*) filter (where row_source = 'outbox' and is_delivered) as delivered,
        count(*) filter (where row_source = 'outbox' and is_replied) as replied,
        count(*) filter (where row_source = 'outbox' and is_opened) as opened,
        count(*) filter (where row_source = 'outbox' and is_clicked) as clicked,
        -- DuckDB sums bigints into a hugeint, PostgreSQL into numeric: back to bigint
        cast(
            coalesce(sum(sms_segments) filter (where row_source = 'outbox' and status = 'sent' and channel = 'sms'), 0)
            as bigint
        ) as sms_segments_sent
    from localized
    group by client_id, campaign, step, variant, channel, send_date
),

final as (
    select
        *,
        cast(sent as float8) / nullif(sent + failed, 0) as delivery_rate,
        -- per delivered message; where no delivery receipt came back (sandbox, receipts off),
        -- per sent message
        case
            when delivered > 0 then cast(replied as float8) / delivered
            else cast(replied as float8) / nullif(sent, 0)
        end as response_rate,
        case
            when delivered > 0 then cast(clicked as float8) / delivered
            else cast(clicked as float8) / nullif(sent, 0)
        end as click_rate
    from daily
)

select * from final
