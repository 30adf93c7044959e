{#- Who the campaign occurrences not planned yet would enroll, and whether they do: the
    audience segment's members, narrowed by the trigger (the packet's contacts, the contacts
    who entered the segment or reached the funnel stage), then the campaign's enrollment rule —
    `once` (never again), `once_per` (not within the cooldown of their last entry) or
    `every_occurrence`. enrollment_reason is null for a contact who enters, else why not.
    A `per_appointment` campaign enrolls each of the contact's upcoming appointments
    (marts.appointments, not cancelled, after the pass's clock) once: its occurrence is the
    appointment's ('appointment:<key>@<time>', so a rescheduled appointment enrolls again), and a
    contact with none is listed with the reason. -#}

with

occurrences as (
    select * from {{ source('herald_ops', 'campaign_occurrences') }}
    where planned_at is null
),

campaigns as (
    select * from {{ source('herald_ops', 'campaigns') }}
),

members as (
    select * from {{ source('segments', 'segment_members') }}
),

ledger as (
    select * from {{ source('journey_feedback', 'enrollments') }}
),

audience as (
    select
        occurrences.client_id,
        occurrences.campaign,
        occurrences.occurrence,
        occurrences.fired_at,
        members.contact_id,
        coalesce(campaigns.enrollment_rule, 'every_occurrence') as enrollment_rule,
        campaigns.enrollment_cooldown_minutes,
        coalesce(campaigns.config_version, '') as config_version,
        coalesce(
            campaigns.first_step,
            (
                select min(steps.step) from {{ source('herald_ops', 'campaign_steps') }} as steps
                where steps.client_id = campaigns.client_id and steps.campaign = campaigns.campaign
                    and steps.config_version = coalesce(campaigns.config_version, '') and steps.position = 1
            )
        ) as first_step
    from occurrences
    inner join campaigns
        on occurrences.client_id = campaigns.client_id
        and occurrences.campaign = campaigns.campaign
    inner join members
        on occurrences.client_id = members.client_id
        and campaigns.audience = members.segment_name
    where
        occurrences.trigger_type in ('schedule', 'manual')
        or (
            occurrences.trigger_type = 'packet_arrival'
            and exists (
                select 1 from {{ ref('contact_sources') }} as sources
                where sources.contact_id = members.contact_id
                    and sources.packet_id = occurrences.packet_id
            )
        )
        or (
            occurrences.trigger_type = 'segment_entry'
            and exists (
                select 1 from {{ source('herald_ops', 'segment_membership_events') }} as entries
                where entries.client_id = members.client_id
                    and entries.segment_name = members.segment_name
                    and entries.contact_id = members.contact_id
                    and entries.event = 'entered'
                    and entries.occurred_at <= occurrences.fired_at
                    and (occurrences.events_since is null or entries.occurred_at > occurrences.events_since)
            )
        )
        or (
            occurrences.trigger_type = 'funnel_event'
            and exists (
                select 1 from {{ ref('funnel_events') }} as events
                where events.contact_id = members.contact_id
                    and events.to_stage = campaigns.trigger_to_stage
                    and (campaigns.trigger_funnel_type is null or events.funnel_type = campaigns.trigger_funnel_type)
                    and events.loaded_at <= occurrences.fired_at
                    and (occurrences.events_since is null or events.loaded_at > occurrences.events_since)
            )
        )
),

clock as (
    select as_of from {{ ref('int_journey__clock') }}
),

-- per_appointment: each appointment of the contact still ahead at the pass's clock, cancelled
-- ones included (listed with the reason, never enrolled)
appointments as (
    select
        appointments.*,
        {{ herald.appointment_occurrence('appointments.appointment_key', 'appointments.appointment_at') }}
            as appointment_occurrence
    from {{ ref('appointments') }} as appointments
    cross join clock
    where appointments.appointment_at > clock.as_of
),

per_appointment as (
    select
        audience.client_id,
        audience.campaign,
        coalesce(appointments.appointment_occurrence, audience.occurrence) as occurrence,
        audience.fired_at,
        audience.contact_id,
        audience.enrollment_rule,
        audience.enrollment_cooldown_minutes,
        audience.config_version,
        audience.first_step,
        case
            when appointments.appointment_key is null then 'no upcoming appointment'
            when appointments.status = 'cancelled' then 'appointment cancelled'
        end as appointment_reason
    from audience
    left join appointments
        on audience.client_id = appointments.client_id
        and audience.contact_id = appointments.contact_id
    where audience.enrollment_rule = 'per_appointment'
),

enrollable as (
    select *, cast(null as varchar) as appointment_reason
    from audience
    where enrollment_rule <> 'per_appointment'
    union all
    select * from per_appointment
),

keyed as (
    select
        *,
        {{ herald.surrogate_key(['client_id', 'campaign', 'contact_id', 'occurrence']) }} as enrollment_id
    from enrollable
),

candidates as (
    select
        *,
        row_number() over (
            partition by client_id, campaign, contact_id
            order by fired_at, occurrence
        ) as nth_in_pass,
        -- one appointment reached by two firings of one pass is enrolled once
        row_number() over (partition by enrollment_id order by fired_at) as nth_of_enrollment
    from keyed
),

judged as (
    select
        candidates.*,
        exists(
            select 1 from ledger
            where ledger.enrollment_id = candidates.enrollment_id
        ) as is_recorded,
        (
            select max(ledger.entered_at) from ledger
            where ledger.client_id = candidates.client_id
                and ledger.campaign = candidates.campaign
                and ledger.contact_id = candidates.contact_id
        ) as last_entered_at
    from candidates
),

final as (
    select
        enrollment_id,
        client_id,
        campaign,
        contact_id,
        occurrence,
        fired_at as entered_at,
        enrollment_rule,
        config_version,
        first_step,
        case
            when is_recorded then 'already recorded'
            when appointment_reason is not null then appointment_reason
            when enrollment_rule in ('every_occurrence', 'per_appointment') then null
            when enrollment_rule = 'once' and (last_entered_at is not null or nth_in_pass > 1)
                then 'already enrolled (enrollment: once)'
            when
                enrollment_rule = 'once_per'
                and (
                    nth_in_pass > 1
                    or last_entered_at > fired_at - enrollment_cooldown_minutes * interval '1 minute'
                )
                then 'enrolled within the last '
                    || cast(enrollment_cooldown_minutes as varchar)
                    || ' minutes (once_per)'
        end as enrollment_reason
    from judged
    where nth_of_enrollment = 1
)

select * from final
