{#- The current consent of every client, channel, address and scope: the latest consent event
    wins (opt_in / confirm → granted, opt_out / revoke → revoked). `since` is when the current
    state began: a confirmation after an opt-in does not restart it. -#}
{%- set newest_first = 'runs.occurred_at desc, runs.recorded_at desc, runs.event_id desc' %}

with

consent_events as (
    select * from {{ source('herald_ops', 'consent_events') }}
),

classified as (
    select
        *,
        case when kind in ('opt_in', 'confirm') then 'granted' else 'revoked' end as consent_state
    from consent_events
),

-- one history per client, channel, address and scope, in the order events happened (ties:
-- recorded later, then event_id — the same order the retention purge keeps the latest by)
ordered as (
    select
        *,
        row_number() over (
            partition by client_id, channel, address, scope
            order by occurred_at desc, recorded_at desc, event_id desc
        ) as recency,
        case
            when
                consent_state = lag(consent_state) over (
                    partition by client_id, channel, address, scope
                    order by occurred_at, recorded_at, event_id
                )
                then 0
            else 1
        end as starts_run
    from classified
),

-- a run is a stretch of events in the same state; the latest event's run is the current state
runs as (
    select
        *,
        sum(starts_run) over (
            partition by client_id, channel, address, scope
            order by occurred_at, recorded_at, event_id
            rows between unbounded preceding and current row
        ) as run_number
    from ordered
),

latest as (
    select * from runs
    where recency = 1
),

current_runs as (
    select
        runs.client_id,
        runs.channel,
        runs.address,
        runs.scope,
        min(runs.occurred_at) as since,
        {{ herald.first_value_by('runs.consent_level', newest_first) }} as consent_level,
        {{ herald.first_value_by('runs.contact_id', newest_first) }} as contact_id
    from runs
    inner join latest
        on runs.client_id = latest.client_id
        and runs.channel = latest.channel
        and runs.address = latest.address
        and runs.scope = latest.scope
        and runs.run_number = latest.run_number
    group by runs.client_id, runs.channel, runs.address, runs.scope
),

event_counts as (
    select client_id, channel, address, scope, count(*) as event_count
    from consent_events
    group by client_id, channel, address, scope
),

final as (
    select
        {{ herald.surrogate_key(['latest.client_id', 'latest.channel', 'latest.address', 'latest.scope']) }}
            as consent_key,
        latest.client_id,
        coalesce(latest.contact_id, current_runs.contact_id) as contact_id,
        latest.channel,
        latest.address,
        latest.scope,
        latest.consent_state as status,
        latest.consent_state = 'granted' as is_granted,
        case when latest.consent_state = 'granted' then current_runs.consent_level end as consent_level,
        latest.kind as last_event_kind,
        latest.source,
        latest.evidence,
        current_runs.since,
        latest.occurred_at as last_event_at,
        latest.event_id as last_event_id,
        event_counts.event_count
    from latest
    inner join current_runs
        on latest.client_id = current_runs.client_id
        and latest.channel = current_runs.channel
        and latest.address = current_runs.address
        and latest.scope = current_runs.scope
    inner join event_counts
        on latest.client_id = event_counts.client_id
        and latest.channel = event_counts.channel
        and latest.address = event_counts.address
        and latest.scope = event_counts.scope
)

select * from final
