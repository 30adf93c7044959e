{#- Compliance activity per client, local day, metric and detail, in a long format an analyst
    can pivot or chart by metric: opt-outs by how they were recognized, opt-ins, HELP requests,
    deferrals into the send window, compliance exclusions by reason, PHI holds and the messages
    opt-outs cancelled. Days are the client's local dates (herald_ops.clients.time_zone). -#}

with

inbound_processing as (
    select * from {{ source('herald_ops', 'inbound_processing') }}
),

message_plan as (
    select * from {{ ref('message_plan') }}
),

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

-- a reply to a number no client sends from has no client: it cannot be counted for one
replies as (
    select * from inbound_processing
    where client_id is not null
),

-- an opt-out counts once, when it suppressed the address (a repeat is 'already_suppressed');
-- a probable opt-out counts when the client's policy suppressed it
opt_outs as (
    select
        client_id,
        processed_at as occurred_at,
        'opt_outs' as metric,
        coalesce(keyword_class, 'unknown') as detail,
        1 as quantity
    from replies
    where kind in ('opt_out', 'probable_opt_out') and action = 'suppressed'
),

-- queued and held messages an opt-out cancelled, on the day of the opt-out
cancelled_by_opt_outs as (
    select
        client_id,
        processed_at as occurred_at,
        'messages_cancelled_by_opt_out' as metric,
        'all' as detail,
        messages_cancelled as quantity
    from replies
    where kind in ('opt_out', 'probable_opt_out') and messages_cancelled > 0
),

opt_ins as (
    select client_id, processed_at as occurred_at, 'opt_ins' as metric, 'all' as detail, 1 as quantity
    from replies
    where kind = 'opt_in'
),

help_requests as (
    select client_id, processed_at as occurred_at, 'help_requests' as metric, 'all' as detail, 1 as quantity
    from replies
    where kind = 'help'
),

-- a planned message pushed past its scheduled time into the send window, on the day it was due
deferrals as (
    select client_id, scheduled_at as occurred_at, 'deferrals' as metric, 'send window' as detail, 1 as quantity
    from message_plan
    where status = 'planned' and is_deferred
),

-- plan rows left out for a compliance reason, on the day they were due
exclusions as (
    select client_id, scheduled_at as occurred_at, 'exclusions' as metric, reason as detail, 1 as quantity
    from message_plan
    where status = 'excluded'
        and (reason like 'suppressed%' or reason like 'frequency cap%' or reason like 'no consent%')
),

-- messages the PHI guard held before send, on the day they were enqueued
phi_holds as (
    select client_id, enqueued_at as occurred_at, 'phi_holds' as metric, 'PHI guard' as detail, 1 as quantity
    from outbox
    where status = 'held' and status_reason like 'PHI guard:%'
),

activity as (
    select * from opt_outs
    union all
    select * from cancelled_by_opt_outs
    union all
    select * from opt_ins
    union all
    select * from help_requests
    union all
    select * from deferrals
    union all
    select * from exclusions
    union all
    select * from phi_holds
),

-- a client missing from clients counts in UTC
localized as (
    select
        activity.*,
        cast(
            {{ herald.utc_to_local('activity.occurred_at', "coalesce(clients.time_zone, 'UTC')") }} as date
        ) as activity_date
    from activity
    left join clients
        on activity.client_id = clients.client_id
),

final as (
    select
        client_id,
        activity_date,
        metric,
        detail,
        -- DuckDB sums into a hugeint, PostgreSQL into numeric: back to bigint
        cast(sum(quantity) as bigint) as count
    from localized
    group by client_id, activity_date, metric, detail
)

select * from final
