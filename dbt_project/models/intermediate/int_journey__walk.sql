{#- The journey walk: every enrollment that is still going (from herald_ops.enrollments) and
    every new one (at its first step) walked forward through its campaign's steps as far as the
    clock allows, one row per step it passes in this pass (a hop):

    - message: planned now for when it is due (its delay after the contact reached the step, or
      its offset from a contact date); the contact moves on at that time;
    - wait: moves on when the wait is over, else stops, waiting until then;
    - wait_for: takes `yes` at the first matching event since the contact reached the step,
      `no` exactly at the timeout, else stops, waiting until the timeout;
    - branch: takes the first path whose test holds (a condition compiled by Herald, segment
      membership, or the contact's share of a random split);
    - exit: ends the enrollment with its reason; past the last step it is completed.

    A step the contact reaches after the clock (a wait_for after a message not sent yet) stops
    the walk until then.

    An enrollment walks the version of its campaign it entered with (config_version): the
    config load keeps an older version's steps and branches while enrollments of it are still
    going. One whose version has no steps any more (entered before Herald kept versions) walks
    the campaign's current version. An enrollment whose campaign exit criteria hold (a reply, an opt-out, a
    confirmation, the goal stage, leaving the audience, a date passing) exits before walking.
    The walk is unrolled to a fixed depth: a journey has at most 15 steps and no cycles.

    A per_appointment enrollment is for one appointment (its occurrence names it): its steps'
    appointment_at offsets are that appointment's time, a confirmation counts only when it
    matched that appointment, and it exits when the appointment is cancelled or moved to another
    time (the new time enrolls anew) or once the appointment has begun. -#}

{#- sqlfluff renders two hops (lint_journey_hops in .sqlfluff); dbt all sixteen -#}
{{ config(pre_hook="{{ herald.jit_off() }}") }}
-- noqa: disable=RF03,ST02,LT02
{%- set max_hops = (lint_journey_hops | int) if lint_journey_hops is defined else 16 -%}
{%- set conditions = [] -%}
{%- if execute is sameas true -%}
    {%- set found = run_query(
        "select client_id, campaign, config_version, step, position, condition_sql from "
        ~ source('herald_ops', 'campaign_branches') ~ " where test = 'if' order by 1, 2, 3, 4, 5"
    ) -%}
    {%- set conditions = found.rows -%}
{%- endif %}

with

clock as (
    select as_of from {{ ref('int_journey__clock') }}
),

campaigns as (
    select * from {{ source('herald_ops', 'campaigns') }}
),

steps as (
    select * from {{ source('herald_ops', 'campaign_steps') }}
),

branches as (
    select * from {{ source('herald_ops', 'campaign_branches') }}
),

-- the versions of each campaign whose steps are loaded
versions as (
    select distinct client_id, campaign, config_version from steps
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

members as (
    select * from {{ source('segments', 'segment_members') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

events as (
    select * from {{ ref('int_journey__contact_events') }}
),

ledger as (
    select * from {{ source('journey_feedback', 'enrollments') }}
    where status in ('active', 'waiting')
),

-- an enrollment with a message the outbox has not sent yet (its time has not come, its send
-- window is shut, or the outbox has not run since): a wait or a wait_for after a message counts
-- from when the message went out, so the enrollment stays where it is until then, and a message
-- sent late is not followed at once by the next (a reminder and its follow-up seconds apart)
unsent as (
    select client_id, campaign, contact_id, occurrence, max(send_after) as unsent_until
    from {{ source('journey_feedback', 'outbox') }}
    where status in ('queued', 'held', 'sending')
    group by client_id, campaign, contact_id, occurrence
),

new_enrollments as (
    select * from {{ ref('int_journey__new_enrollments') }}
    where enrollment_reason is null
),

appointments as (
    select
        appointment_key,
        appointment_at,
        status,
        {{ herald.appointment_occurrence('appointment_key', 'appointment_at') }} as appointment_occurrence
    from {{ ref('appointments') }}
),

-- each contact's date and time attributes, as the timestamps a step can be anchored to
anchors as (
    select
        contact_id,
        attribute_name,
        coalesce(timestamp_value, cast(date_value as timestamp)) as anchor_value
    from {{ ref('contact_attributes') }}
    where attribute_type in ('timestamp', 'date')
),

-- where each enrollment starts this pass: a new one at its first step when it entered; one
-- still going at its step, from when it reached it (a message carried over by the daily limit
-- is not due before next_at)
enrollment_starts as (
    select
        enrollment_id, client_id, campaign, contact_id, occurrence, entered_at, enrollment_rule, config_version,
        true as is_new,
        first_step as step,
        entered_at as arrived_at,
        cast(null as timestamp) as not_before,
        false as held_for_message
    from new_enrollments
    union all
    select
        ledger.enrollment_id, ledger.client_id, ledger.campaign, ledger.contact_id, ledger.occurrence,
        ledger.entered_at, ledger.enrollment_rule, ledger.config_version,
        false as is_new,
        ledger.step,
        -- held by a message not sent yet: reached when it is due (it goes out now or later, in its
        -- send window), or, when it is overdue, just after this pass (the run sends it after planning)
        case
            when unsent.contact_id is null or ledger.step_entered_at > clock.as_of then ledger.step_entered_at
            when unsent.unsent_until >= clock.as_of then unsent.unsent_until
            else clock.as_of + interval '1 second'
        end as arrived_at,
        case when ledger.wait_reason like 'over the daily limit%' then ledger.next_at end as not_before,
        coalesce(
            unsent.contact_id is not null and ledger.step_entered_at <= clock.as_of
            and unsent.unsent_until <> clock.as_of,
            false
        ) as held_for_message
    from ledger
    cross join clock
    left join unsent
        on ledger.client_id = unsent.client_id
        and ledger.campaign = unsent.campaign
        and ledger.contact_id = unsent.contact_id
        and ledger.occurrence = unsent.occurrence
),

-- a per_appointment enrollment's appointment: its time while it is still the one enrolled for;
-- the version of the campaign whose steps it walks (its own while loaded, else the current one)
starts as (
    select
        enrollment_starts.*,
        coalesce(versions.config_version, campaigns.config_version) as graph_version,
        appointments.appointment_key,
        enrolled_for.appointment_at,
        case
            when appointments.status = 'cancelled' then 'appointment cancelled'
            when appointments.appointment_occurrence <> enrollment_starts.occurrence then 'appointment rescheduled'
        end as appointment_exit,
        coalesce(appointments.appointment_at <= clock.as_of, false) as appointment_passed
    from enrollment_starts
    cross join clock
    left join versions
        on enrollment_starts.client_id = versions.client_id
        and enrollment_starts.campaign = versions.campaign
        and enrollment_starts.config_version = versions.config_version
    left join campaigns
        on enrollment_starts.client_id = campaigns.client_id
        and enrollment_starts.campaign = campaigns.campaign
    left join appointments
        on enrollment_starts.enrollment_rule = 'per_appointment'
        and {{ herald.appointment_key_of('enrollment_starts.occurrence') }} = appointments.appointment_key
    left join appointments as enrolled_for
        on enrollment_starts.enrollment_rule = 'per_appointment'
        and enrollment_starts.occurrence = enrolled_for.appointment_occurrence
),

-- the campaign's exit criteria, checked before walking (the first that holds is the reason: the
-- specific ones — an opt-out, a confirmation, the goal — before any reply, so a C exits 'confirmed').
-- For a per_appointment enrollment only what happened before the appointment counts, and an
-- answer before it wins over its passing: a patient who confirmed exits 'confirmed' even when the
-- first pass after the reply comes after the appointment
exits as (
    select
        starts.enrollment_id,
        case
            when starts.appointment_exit is not null then starts.appointment_exit
            when campaigns.exit_on_opt_out and exists (
                    select 1 from events
                    where events.contact_id = starts.contact_id and events.event_name = 'opted_out'
                        -- an opt-out of everything, or of this campaign's kind of message
                        and events.detail in ('all', campaigns.message_type)
                        and events.occurred_at >= starts.entered_at and events.occurred_at <= clock.as_of
                        and (starts.appointment_at is null or events.occurred_at < starts.appointment_at)
                ) then 'opted out'
            when campaigns.exit_on_confirm and exists (
                    select 1 from events
                    where events.contact_id = starts.contact_id and events.event_name = 'confirmed'
                        and (starts.appointment_key is null or events.detail = starts.appointment_key)
                        and events.occurred_at >= starts.entered_at and events.occurred_at <= clock.as_of
                        and (starts.appointment_at is null or events.occurred_at < starts.appointment_at)
                ) then 'confirmed'
            when campaigns.exit_goal_stage is not null and exists (
                    select 1 from events
                    where events.contact_id = starts.contact_id and events.event_name = 'funnel_stage'
                        and lower(events.detail) = lower(campaigns.exit_goal_stage)
                        and events.occurred_at >= starts.entered_at and events.occurred_at <= clock.as_of
                        and (starts.appointment_at is null or events.occurred_at < starts.appointment_at)
                ) then 'goal reached'
            when campaigns.exit_on_reply and exists (
                    select 1 from events
                    where events.contact_id = starts.contact_id and events.event_name = 'replied'
                        and events.occurred_at >= starts.entered_at and events.occurred_at <= clock.as_of
                        and (starts.appointment_at is null or events.occurred_at < starts.appointment_at)
                ) then 'replied'
            when starts.appointment_passed then 'appointment passed'
            when campaigns.exit_on_leave and not exists (
                    select 1 from members
                    where members.client_id = starts.client_id and members.segment_name = campaigns.audience
                        and members.contact_id = starts.contact_id
                ) then 'left the audience'
            when campaigns.exit_date_field is not null and exists (
                    select 1 from anchors
                    where anchors.contact_id = starts.contact_id and anchors.attribute_name = campaigns.exit_date_field
                        and anchors.anchor_value < clock.as_of
                ) then campaigns.exit_date_field || ' passed'
        end as exit_reason
    from starts
    cross join clock
    inner join campaigns
        on starts.client_id = campaigns.client_id
        and starts.campaign = campaigns.campaign
    where not starts.is_new
),

-- the path each enrollment takes at each branch step of its campaign (the first that holds)
branch_tests as (
    select
        starts.enrollment_id,
        branches.step,
        branches.position,
        branches.path,
        branches.goto_step,
        case branches.test
            when 'else' then true
            when 'segment'
                then exists (
                        select 1 from members
                        where members.client_id = starts.client_id and members.segment_name = branches.segment_name
                            and members.contact_id = starts.contact_id
                    )
            when 'weight'
                then
                    {{ herald.hash_bucket("starts.enrollment_id || '|' || branches.step", 10000) }}
                    >= branches.bucket_from
                    and {{ herald.hash_bucket("starts.enrollment_id || '|' || branches.step", 10000) }}
                    < branches.bucket_to
            when 'if' then
                {%- if conditions %}
                case
                    {%- for c in conditions %}
                    when branches.client_id = '{{ c[0] }}' and branches.campaign = '{{ c[1] }}'
                        and branches.config_version = '{{ c[2] }}'
                        and branches.step = '{{ c[3] }}' and branches.position = {{ c[4] }}
                        then {{ c[5] }}
                    {%- endfor %}
                    else false
                end
                {%- else %}
                false
                {%- endif %}
            else false
        end as holds
    from starts
    inner join branches
        on starts.client_id = branches.client_id
        and starts.campaign = branches.campaign
        and starts.graph_version = branches.config_version
    inner join contacts as branch_contact
        on starts.contact_id = branch_contact.contact_id
),

branch_choices as (
    select enrollment_id, step, path, goto_step
    from (
        select
            *,
            row_number() over (partition by enrollment_id, step order by position) as choice
        from branch_tests
        where holds
    ) as ranked
    where choice = 1
),

hop_0 as (
    select
        starts.*,
        exits.exit_reason as criteria_exit,
        0 as hop
    from starts
    left join exits on starts.enrollment_id = exits.enrollment_id
),
{%- for i in range(max_hops) %}

-- hop {{ i }}: what happens at the step each enrollment is at; a date a step is anchored to is
-- the enrollment's own appointment (per_appointment), else the contact's field
{%- set anchor = "(case when hop_" ~ i ~ ".appointment_key is not null and steps.anchor_field = 'appointment_at'"
    ~ " then hop_" ~ i ~ ".appointment_at else anchors.anchor_value end)" %}
situated_{{ i }} as (
    select
        hop_{{ i }}.*,
        clock.as_of,
        steps.step as configured_step,
        coalesce(steps.kind, 'message') as kind,
        steps.next_step,
        steps.anchor_field,
        steps.anchor_minutes,
        {{ anchor }} as anchor_value,
        steps.wait_minutes,
        steps.wait_until_minute,
        steps.wait_until_weekday,
        steps.event,
        steps.event_detail,
        steps.timeout_minutes,
        steps.yes_step,
        steps.no_step,
        steps.exit_reason,
        branch_choices.path as branch_path,
        branch_choices.goto_step as branch_goto,
        coalesce(contacts.time_zone, clients.time_zone) as time_zone,
        hop_{{ i }}.arrived_at + steps.timeout_minutes * interval '1 minute' as timeout_at,
        case
            when steps.anchor_field is null then hop_{{ i }}.arrived_at + steps.anchor_minutes * interval '1 minute'
            when {{ anchor }} + steps.anchor_minutes * interval '1 minute' < hop_{{ i }}.arrived_at
                then hop_{{ i }}.arrived_at
            else {{ anchor }} + steps.anchor_minutes * interval '1 minute'
        end as anchored_at
    from hop_{{ i }}
    cross join clock
    inner join clients on hop_{{ i }}.client_id = clients.client_id
    left join contacts on hop_{{ i }}.contact_id = contacts.contact_id
    left join steps
        on hop_{{ i }}.client_id = steps.client_id
        and hop_{{ i }}.campaign = steps.campaign
        and hop_{{ i }}.graph_version = steps.config_version
        and hop_{{ i }}.step = steps.step
    left join anchors
        on hop_{{ i }}.contact_id = anchors.contact_id
        and steps.anchor_field = anchors.attribute_name
    left join branch_choices
        on hop_{{ i }}.enrollment_id = branch_choices.enrollment_id
        and hop_{{ i }}.step = branch_choices.step
),

timed_{{ i }} as (
    select
        situated_{{ i }}.*,
        -- a message's time (never before a carried-over message's next day), a wait's end
        case
            when kind = 'message'
                then
                    case
                        when not_before is not null and not_before > anchored_at then not_before
                        else anchored_at
                    end
            when kind = 'wait' and wait_minutes is not null then arrived_at + wait_minutes * interval '1 minute'
            when kind = 'wait' and wait_until_minute is not null
                then
                {{ herald.local_to_utc(
                    "cast(cast(" ~ herald.utc_to_local('arrived_at', 'time_zone') ~ " as date) as timestamp)"
                    ~ " + wait_until_minute * interval '1 minute'"
                    ~ " + (case"
                    ~ " when wait_until_weekday is null then"
                    ~ " (case when cast(cast(" ~ herald.utc_to_local('arrived_at', 'time_zone') ~ " as date) as timestamp)"
                    ~ " + wait_until_minute * interval '1 minute' > " ~ herald.utc_to_local('arrived_at', 'time_zone')
                    ~ " then 0 else 1 end)"
                    ~ " when mod(wait_until_weekday - "
                    ~ herald.iso_day_of_week("cast(" ~ herald.utc_to_local('arrived_at', 'time_zone') ~ " as date)")
                    ~ " + 7, 7) = 0 and cast(cast(" ~ herald.utc_to_local('arrived_at', 'time_zone') ~ " as date) as timestamp)"
                    ~ " + wait_until_minute * interval '1 minute' <= " ~ herald.utc_to_local('arrived_at', 'time_zone')
                    ~ " then 7"
                    ~ " else mod(wait_until_weekday - "
                    ~ herald.iso_day_of_week("cast(" ~ herald.utc_to_local('arrived_at', 'time_zone') ~ " as date)")
                    ~ " + 7, 7) end) * interval '1 day'",
                    'time_zone'
                ) }}
            when kind = 'wait' then
                coalesce(anchored_at, arrived_at)
        end as due_at,
        (
            select min(events.occurred_at) from events
            where situated_{{ i }}.kind = 'wait_for'
                and events.contact_id = situated_{{ i }}.contact_id
                and events.event_name = situated_{{ i }}.event
                and (
                    situated_{{ i }}.event <> 'confirmed' or situated_{{ i }}.appointment_key is null
                    or events.detail = situated_{{ i }}.appointment_key
                )
                and (
                    situated_{{ i }}.event_detail is null
                    or lower(events.detail) = lower(situated_{{ i }}.event_detail)
                )
                and events.occurred_at >= situated_{{ i }}.arrived_at
                and events.occurred_at <= situated_{{ i }}.as_of
                and events.occurred_at <= situated_{{ i }}.timeout_at
        ) as event_at
    from situated_{{ i }}
),

decided_{{ i }} as (
    select
        enrollment_id, client_id, campaign, contact_id, occurrence, entered_at, enrollment_rule, config_version,
        graph_version, appointment_key, appointment_at,
        is_new, hop, step, held_for_message,
        case when step is null then 'end' else kind end as kind,
        arrived_at,
        anchor_field,
        anchor_value,
        due_at,
        as_of,
        case
            when criteria_exit is not null then 'exited'
            when step is null then case when arrived_at <= as_of then 'completed' else 'waiting' end
            when configured_step is null then 'exited'
            when kind = 'message' then 'message'
            when arrived_at > as_of then 'waiting'
            when kind = 'wait' then case when due_at <= as_of then 'moved' else 'waiting' end
            when kind = 'wait_for'
                then
                    case when event_at is not null or timeout_at <= as_of then 'moved' else 'waiting' end
            when kind = 'branch' then 'moved'
            when kind = 'exit' then 'exited'
        end as outcome,
        case
            when criteria_exit is not null or step is null or configured_step is null then null
            when kind = 'wait_for' and event_at is not null then 'yes'
            when kind = 'wait_for' and timeout_at <= as_of then 'no'
            when kind = 'branch' then coalesce(branch_path, 'no path holds')
            when kind in ('message', 'wait') then 'next'
        end as path,  -- noqa: RF04
        case
            when criteria_exit is not null then criteria_exit
            when held_for_message and arrived_at > as_of and (step is null or kind <> 'message')
                then 'waiting for its last message to go out'
            when step is null and arrived_at > as_of then 'until its last message is due'
            when step is null then 'journey complete'
            when configured_step is null then 'its step ' || step || ' is no longer in the campaign'
            when kind = 'exit' and arrived_at <= as_of then exit_reason
            when arrived_at > as_of and kind <> 'message' then 'not reached yet (the step before is due later)'
            when kind = 'wait' and due_at > as_of then 'waiting until the wait is over'
            when kind = 'wait_for' and event_at is null and timeout_at > as_of
                then 'waiting for ' || event || coalesce(' ' || event_detail, '') || ' until the timeout'
            when kind = 'wait_for' and event_at is not null then event || coalesce(' ' || event_detail, '')
            when kind = 'wait_for' then 'no ' || event || coalesce(' ' || event_detail, '') || ' before the timeout'
        end as reason,
        case
            when kind = 'message' then next_step
            when kind = 'wait' then next_step
            when kind = 'wait_for' and event_at is not null then yes_step
            when kind = 'wait_for' then no_step
            when kind = 'branch' then branch_goto
        end as next_step,
        case
            when kind = 'message' then case when due_at > arrived_at then due_at else arrived_at end
            when kind = 'wait' then due_at
            when kind = 'wait_for' and event_at is not null then event_at
            when kind = 'wait_for' then timeout_at
            when kind = 'branch' then arrived_at
        end as next_arrived_at,
        -- when a stopped enrollment is due again
        case
            when step is null then arrived_at
            when arrived_at > as_of then arrived_at
            when kind = 'wait' then due_at
            when kind = 'wait_for' then timeout_at
        end as next_at
    from timed_{{ i }}
),

hop_{{ i + 1 }} as (
    select
        enrollment_id, client_id, campaign, contact_id, occurrence, entered_at, enrollment_rule, config_version,
        graph_version, appointment_key, appointment_at,
        is_new,
        next_step as step,
        next_arrived_at as arrived_at,
        cast(null as timestamp) as not_before,
        false as held_for_message,
        cast(null as varchar) as criteria_exit,
        hop + 1 as hop
    from decided_{{ i }}
    where outcome in ('message', 'moved')
),
{%- endfor %}

final as (
    {%- for i in range(max_hops) %}
    select * from decided_{{ i }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from final
