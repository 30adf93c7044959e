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
        cast(null as bigint) as sms_segments
    from message_plan
),

outbox_messages as (
    select
        client_id,
        campaign,
        step,
        variant,
        channel,
        send_after,
        'outbox' as row_source,
        status,
        false as is_deferred,
        sms_segments
    from outbox
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
        cast(sent as float8) / nullif(sent + failed, 0) as delivery_rate
    from daily
)

select * from final
