{#- What this pass decided for every enrollment it walked: one row per step passed (a message
    planned or left out, a path taken, a wait, an exit, the end), the last one per enrollment
    flagged is_final with the enrollment's new status. A message the daily limit carried over
    stops its enrollment there ('carried_over', due again the next local day). The send run
    applies these rows to herald_ops.enrollments and herald_ops.enrollment_events. -#}

with

walk as (
    select * from {{ ref('int_journey__walk') }}
),

planned_messages as (
    select enrollment_id, step, message_key, status, reason from {{ ref('message_plan') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

-- a message step the walk reached but the plan has no row for was carried over (or comes after
-- one that was); the first such step is where the enrollment waits
carried as (
    select walk.enrollment_id, min(walk.hop) as carried_hop
    from walk
    where walk.outcome = 'message'
        and not exists (
            select 1 from planned_messages
            where planned_messages.enrollment_id = walk.enrollment_id and planned_messages.step = walk.step
        )
    group by walk.enrollment_id
),

kept as (
    select
        walk.*,
        carried.carried_hop,
        max(walk.hop) over (partition by walk.enrollment_id) as last_hop
    from walk
    left join carried on walk.enrollment_id = carried.enrollment_id
    where carried.carried_hop is null or walk.hop <= carried.carried_hop
),

final as (
    select
        kept.enrollment_id,
        kept.client_id,
        kept.campaign,
        kept.contact_id,
        kept.occurrence,
        kept.entered_at,
        kept.enrollment_rule,
        kept.config_version,
        kept.is_new,
        kept.hop,
        kept.step,
        kept.kind,
        case when kept.hop = kept.carried_hop then 'carried_over' else kept.outcome end as outcome,
        case when kept.hop = kept.carried_hop then null else kept.path end as path,  -- noqa: RF04
        case
            when kept.hop = kept.carried_hop then 'over the daily limit: carried over to the next day'
            when kept.outcome = 'message' and planned_messages.status = 'excluded' then planned_messages.reason
            else kept.reason
        end as reason,
        planned_messages.message_key,
        planned_messages.status as message_status,
        kept.arrived_at,
        kept.next_step,
        kept.next_arrived_at,
        case
            -- the next local midnight after the clock, in the client's time zone
            when kept.hop = kept.carried_hop
                then
                {{ herald.local_to_utc(
                    "cast(cast(" ~ herald.utc_to_local('kept.as_of', 'clients.time_zone') ~ " as date) as timestamp)"
                    ~ " + interval '1 day'",
                    'clients.time_zone'
                ) }}
            else kept.next_at
        end as next_at,
        kept.hop = coalesce(kept.carried_hop, kept.last_hop) as is_final,
        case
            when kept.hop <> coalesce(kept.carried_hop, kept.last_hop) then null
            when kept.hop = kept.carried_hop then 'waiting'
            when kept.outcome in ('completed', 'exited') then kept.outcome
            when kept.outcome = 'waiting' and kept.kind in ('wait', 'wait_for') then 'waiting'
            else 'active'
        end as status,
        kept.as_of
    from kept
    inner join clients on kept.client_id = clients.client_id
    left join planned_messages
        on kept.enrollment_id = planned_messages.enrollment_id
        and kept.step = planned_messages.step
        and kept.outcome = 'message'
)

select * from final
