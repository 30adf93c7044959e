{#- The current consent of every client, channel, address and scope: the latest consent event
    wins (opt_in / confirm → granted, opt_out / revoke → revoked). `since` is when the current
    state began: a confirmation after an opt-in does not restart it. A grant whose `expires_at`
    has passed (the client's consent.expires_after) is `expired`; an address with a double
    opt-in from the hosted form still waiting for its confirmation, and no event of its own for
    that scope, is `pending` (herald_ops.consent_requests). Every source lands in the events: the
    form's confirmation, SMS keywords, web unsubscribes, provider reports, the ingest API and
    packet columns (`source`, with the `evidence`). -#}
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

events_final as (
    select
        {{ herald.surrogate_key(['latest.client_id', 'latest.channel', 'latest.address', 'latest.scope']) }}
            as consent_key,
        latest.client_id,
        coalesce(latest.contact_id, current_runs.contact_id) as contact_id,
        latest.channel,
        latest.address,
        latest.scope,
        case
            when latest.consent_state = 'granted' and latest.expires_at <= {{ herald.utc_now() }} then 'expired'
            else latest.consent_state
        end as status,
        coalesce(
            latest.consent_state = 'granted'
            and (latest.expires_at is null or latest.expires_at > {{ herald.utc_now() }}),
            false
        ) as is_granted,
        case when latest.consent_state = 'granted' then current_runs.consent_level end as consent_level,
        latest.kind as last_event_kind,
        latest.source,
        latest.evidence,
        current_runs.since,
        latest.occurred_at as last_event_at,
        latest.event_id as last_event_id,
        event_counts.event_count,
        case when latest.consent_state = 'granted' then latest.expires_at end as expires_at,
        latest.wording_sha256
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
),

-- double opt-ins waiting for their confirmation: one row per topic with no event of its own
consent_requests as (
    select * from {{ source('herald_ops', 'consent_requests') }}
    where status = 'pending'
),

-- a request's topics are a comma-separated list: its nth topic for n = 1..20
topic_numbers as (
    select generate_series as topic_number from generate_series(1, 20)
),

request_topics as (
    select
        requests.*,
        split_part(requests.topics, ',', cast(topic_numbers.topic_number as integer)) as scope
    from consent_requests as requests
    cross join topic_numbers
),

pending_topics as (
    select
        request_topics.*,
        row_number() over (
            partition by request_topics.client_id, request_topics.channel, request_topics.address, request_topics.scope
            order by request_topics.requested_at desc, request_topics.request_id desc
        ) as recency
    from request_topics
    where request_topics.scope <> ''
),

pending as (
    select
        {{ herald.surrogate_key(['pending_topics.client_id', 'pending_topics.channel',
                                 'pending_topics.address', 'pending_topics.scope']) }} as consent_key,
        pending_topics.client_id,
        cast(null as varchar) as contact_id,
        pending_topics.channel,
        pending_topics.address,
        pending_topics.scope,
        'pending' as status,
        false as is_granted,
        cast(null as varchar) as consent_level,
        cast(null as varchar) as last_event_kind,
        'web_form' as source,  -- noqa: RF04
        'double opt-in requested (form ' || coalesce(pending_topics.page_url, '?') || ', IP '
        || coalesce(pending_topics.ip, '?') || '), waiting for the confirmation' as evidence,
        pending_topics.requested_at as since,
        pending_topics.requested_at as last_event_at,
        'request:' || pending_topics.request_id as last_event_id,
        cast(0 as bigint) as event_count,
        cast(null as timestamp) as expires_at,
        pending_topics.wording_sha256
    from pending_topics
    where
        pending_topics.recency = 1
        and not exists (
            select 1 from events_final
            where
                events_final.client_id = pending_topics.client_id
                and events_final.channel = pending_topics.channel
                and events_final.address = pending_topics.address
                and events_final.scope = pending_topics.scope
        )
),

final as (
    select * from events_final
    union all
    select * from pending
)

select * from final
