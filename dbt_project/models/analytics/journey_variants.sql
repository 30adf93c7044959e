{#- A journey's A/B test read the way a marketer reads it: per client, campaign, message step and
    variant, the enrollments that got that variant, their messages sent, delivered and clicked,
    and what became of the enrollments since (still going, completed, exited, converted). A
    message's variant is the outbox's; the trail links an enrollment to it by message key. -#}

with

trail as (
    select * from {{ source('journey_feedback', 'enrollment_events') }}
),

outbox as (
    select * from {{ source('journey_feedback', 'outbox') }}
),

enrollments as (
    select * from {{ ref('enrollments') }}
),

-- each enrollment's message at each step, with its variant and what the provider said
messaged as (
    select distinct
        trail.client_id,
        trail.campaign,
        trail.step,
        trail.enrollment_id,
        outbox.variant,
        outbox.status,
        outbox.delivered_at,
        outbox.clicked_at
    from trail
    inner join outbox
        on trail.message_key = outbox.message_key
    where trail.event = 'message'
),

final as (
    select
        messaged.client_id,
        messaged.campaign,
        messaged.step,
        messaged.variant,
        count(distinct messaged.enrollment_id) as enrollments,
        count(distinct case when messaged.status = 'sent' then messaged.enrollment_id end) as sent,
        count(distinct case when messaged.delivered_at is not null then messaged.enrollment_id end) as delivered,
        count(distinct case when messaged.clicked_at is not null then messaged.enrollment_id end) as clicked,
        count(distinct case when enrollments.status in ('active', 'waiting') then messaged.enrollment_id end)
            as going,
        count(distinct case when enrollments.status = 'completed' then messaged.enrollment_id end) as completed,
        count(distinct case when enrollments.status = 'exited' then messaged.enrollment_id end) as exited,
        count(
            distinct case when enrollments.exit_reason in ('goal reached', 'confirmed') then messaged.enrollment_id end
        ) as converted
    from messaged
    inner join enrollments
        on messaged.enrollment_id = enrollments.enrollment_id
    group by messaged.client_id, messaged.campaign, messaged.step, messaged.variant
)

select * from final
