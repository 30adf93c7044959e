{#- The journey funnel: per client, campaign and step, how many enrollments reached the step,
    got its message, wait there now, moved on (and by which path: yes, no, a branch's path),
    were carried over by the daily limit, and exited there (and why); the row with step '(end)'
    counts the enrollments that completed. `converted` counts the enrollments that reached the
    step and then converted: they exited on the campaign's goal ('goal reached', a funnel stage)
    or on a confirmation ('confirmed'). From the step-by-step trail
    (herald_ops.enrollment_events) and the ledger. Per A/B variant: analytics.journey_variants. -#}

with

trail as (
    select * from {{ source('journey_feedback', 'enrollment_events') }}
),

enrollments as (
    select * from {{ ref('enrollments') }}
),

per_step as (
    select
        client_id,
        campaign,
        coalesce(step, '(end)') as step,
        count(distinct enrollment_id) as reached,
        count(distinct case when event = 'message' then enrollment_id end) as messaged,
        count(distinct case when event = 'path' then enrollment_id end) as moved_on,
        count(distinct case when event = 'path' and path = 'yes' then enrollment_id end) as took_yes,
        count(distinct case when event = 'path' and path = 'no' then enrollment_id end) as took_no,
        count(distinct case when event = 'carried_over' then enrollment_id end) as carried_over,
        count(distinct case when event = 'exited' then enrollment_id end) as exited,
        count(distinct case when event = 'completed' then enrollment_id end) as completed
    from trail
    where event <> 'enrolled'
    group by client_id, campaign, coalesce(step, '(end)')
),

paths as (
    select
        client_id,
        campaign,
        step,
        path,
        count(distinct enrollment_id) as enrollments
    from trail
    where event = 'path' and path is not null
    group by client_id, campaign, step, path
),

path_lists as (
    select
        client_id,
        campaign,
        step,
        string_agg(path || ' ' || cast(enrollments as varchar), ', ' order by path) as paths_taken
    from paths
    group by client_id, campaign, step
),

exit_reasons as (
    select
        client_id,
        campaign,
        coalesce(step, '(end)') as step,
        reason,
        count(distinct enrollment_id) as enrollments
    from trail
    where event = 'exited'
    group by client_id, campaign, coalesce(step, '(end)'), reason
),

exit_lists as (
    select
        client_id,
        campaign,
        step,
        string_agg(coalesce(reason, 'no reason') || ' ' || cast(enrollments as varchar), ', ' order by reason)
            as exit_reasons
    from exit_reasons
    group by client_id, campaign, step
),

conversions as (
    select
        trail.client_id,
        trail.campaign,
        coalesce(trail.step, '(end)') as step,
        count(distinct trail.enrollment_id) as converted
    from trail
    inner join enrollments
        on trail.enrollment_id = enrollments.enrollment_id
    where trail.event <> 'enrolled'
        and enrollments.exit_reason in ('goal reached', 'confirmed')
    group by trail.client_id, trail.campaign, coalesce(trail.step, '(end)')
),

waiting_now as (
    select
        client_id,
        campaign,
        coalesce(step, '(end)') as step,
        count(*) as waiting_now
    from enrollments
    where status in ('active', 'waiting')
    group by client_id, campaign, coalesce(step, '(end)')
),

final as (
    select
        per_step.client_id,
        per_step.campaign,
        per_step.step,
        per_step.reached,
        per_step.messaged,
        coalesce(waiting_now.waiting_now, 0) as waiting_now,
        per_step.moved_on,
        per_step.took_yes,
        per_step.took_no,
        path_lists.paths_taken,
        per_step.carried_over,
        per_step.exited,
        exit_lists.exit_reasons,
        per_step.completed,
        coalesce(conversions.converted, 0) as converted
    from per_step
    left join waiting_now
        on per_step.client_id = waiting_now.client_id
        and per_step.campaign = waiting_now.campaign
        and per_step.step = waiting_now.step
    left join path_lists
        on per_step.client_id = path_lists.client_id
        and per_step.campaign = path_lists.campaign
        and per_step.step = path_lists.step
    left join exit_lists
        on per_step.client_id = exit_lists.client_id
        and per_step.campaign = exit_lists.campaign
        and per_step.step = exit_lists.step
    left join conversions
        on per_step.client_id = conversions.client_id
        and per_step.campaign = conversions.campaign
        and per_step.step = conversions.step
)

select * from final
