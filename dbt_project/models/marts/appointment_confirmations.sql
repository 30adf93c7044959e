{#- One row per appointment (marts.appointments) with its confirmation state, plus one row per
    client and contact whose answers matched no known appointment. An answer (C confirms, R asks
    to reschedule) applies to the contact's next upcoming appointment when it was received.
    `confirmations_as_of` (a naive UTC 'YYYY-MM-DD HH:MM:SS', default now) is the clock. -#}
{%- set as_of = var('confirmations_as_of', none) -%}
{%- set follow_up_default = var('confirmations_follow_up_after_minutes', 1440) -%}
{%- set high_risk_default = var('confirmations_high_risk_before_minutes', 1440) -%}
{%- set now = "cast('" ~ as_of ~ "' as timestamp)" if as_of else utc_now() -%}

with

appointments as (
    select * from {{ ref('appointments') }}
),

appointment_responses as (
    select * from {{ source('herald_ops', 'appointment_responses') }}
),

confirmation_settings as (
    select * from {{ source('herald_ops', 'confirmation_settings') }}
),

-- the appointment each answer is for: the contact's next one when it came (the same match the
-- journeys' `confirmed` events use)
answer_matches as (
    {{ herald.appointment_answer_matches('appointment_responses', 'appointments') }}
),

matched_responses as (
    select
        appointment_responses.*,
        answer_matches.appointment_key
    from appointment_responses
    left join answer_matches
        on appointment_responses.inbound_id = answer_matches.inbound_id
),

-- the latest answer per appointment, and per contact among the answers that matched none
ranked_responses as (
    select
        *,
        row_number() over (
            partition by client_id, contact_id, appointment_key
            order by received_at desc, inbound_id desc
        ) as recency,
        count(*) over (partition by client_id, contact_id, appointment_key) as response_count
    from matched_responses
),

latest_responses as (
    select * from ranked_responses
    where recency = 1
),

appointment_rows as (
    select
        appointments.appointment_key,
        appointments.client_id,
        appointments.contact_id,
        appointments.appointment_id,
        appointments.appointment_at,
        appointments.status as appointment_status,
        appointments.first_seen_at,
        latest_responses.response,
        latest_responses.received_at as responded_at,
        latest_responses.inbound_id,
        coalesce(latest_responses.response_count, 0) as response_count,
        appointments.first_seen_at
        + coalesce(confirmation_settings.follow_up_after_minutes, {{ follow_up_default }})
        * interval '1 minute' as follow_up_due_at,
        appointments.appointment_at
        - coalesce(confirmation_settings.high_risk_before_minutes, {{ high_risk_default }})
        * interval '1 minute' as high_risk_from
    from appointments
    left join latest_responses
        on appointments.appointment_key = latest_responses.appointment_key
    left join confirmation_settings
        on appointments.client_id = confirmation_settings.client_id
),

stated as (
    select
        appointment_key,
        client_id,
        contact_id,
        appointment_id,
        appointment_at,
        appointment_status,
        case
            when appointment_status = 'cancelled' then 'cancelled'
            when appointment_at < {{ now }} then 'past'
            when response = 'confirmed' then 'confirmed'
            when response = 'reschedule_requested' then 'reschedule_requested'
            when {{ now }} >= high_risk_from then 'high_risk'
            when {{ now }} >= follow_up_due_at then 'unconfirmed'
            else 'pending'
        end as confirmation_state,
        response,
        responded_at,
        inbound_id,
        response_count,
        follow_up_due_at,
        high_risk_from
    from appointment_rows
),

unmatched_rows as (
    select
        cast(null as varchar) as appointment_key,
        client_id,
        contact_id,
        cast(null as varchar) as appointment_id,
        cast(null as timestamp) as appointment_at,
        cast(null as varchar) as appointment_status,
        response as confirmation_state,
        response,
        received_at as responded_at,
        inbound_id,
        response_count,
        cast(null as timestamp) as follow_up_due_at,
        cast(null as timestamp) as high_risk_from
    from latest_responses
    where appointment_key is null
),

unioned as (
    select * from stated
    union all
    select * from unmatched_rows
),

final as (
    select
        {{ surrogate_key(['client_id', 'contact_id', 'appointment_key']) }} as confirmation_key,
        appointment_key,
        client_id,
        contact_id,
        appointment_id,
        appointment_at,
        appointment_status,
        confirmation_state,
        response,
        coalesce(response = 'confirmed', false) as is_confirmed,
        responded_at,
        inbound_id,
        response_count,
        follow_up_due_at,
        high_risk_from,
        {{ now }} as evaluated_at
    from unioned
)

select * from final
