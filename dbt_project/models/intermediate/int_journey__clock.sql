{#- The moment this pass plans at: the latest send run's as_of (herald_ops.plan_runs), or now
    when no run has recorded one. Every journey decision of a pass uses this one clock.
    The pass records its row with its occurrences: built after them, never with the last pass's. -#}
-- depends_on: {{ source('herald_ops', 'campaign_occurrences') }}

with

plan_runs as (
    select * from {{ source('journey_feedback', 'plan_runs') }}
),

latest as (
    select as_of
    from plan_runs
    order by started_at desc, run_id desc
    limit 1
),

final as (
    select coalesce((select latest.as_of from latest), {{ herald.utc_now() }}) as as_of
)

select * from final
