{#- Helpers of the per-appointment journeys (enrollment: per_appointment). -#}

{#- The occurrence an appointment enrolls under: 'appointment:<appointment_key>@<UTC time>'.
    The time is part of it, so a rescheduled appointment (same key, a new time) enrolls again
    and its old enrollment can see it was moved. Python spells it the same way
    (herald.appointments.occurrences.appointment_occurrence); the key is 32 hex characters, so
    it is always substr(occurrence, 13, 32). -#}
{% macro appointment_occurrence(key_expr, at_expr) -%}
    ('appointment:' || {{ key_expr }} || '@' || {{ herald.utc_timestamp_text(at_expr) }})
{%- endmacro %}

{% macro appointment_key_of(occurrence_expr) -%}
    substr({{ occurrence_expr }}, 13, 32)
{%- endmacro %}


{#- A naive UTC timestamp as 'YYYY-MM-DD HH:MM:SS', the same text on both engines. -#}
{% macro utc_timestamp_text(expr) -%}
    {{ return(adapter.dispatch('utc_timestamp_text', 'herald')(expr)) }}
{%- endmacro %}

{% macro default__utc_timestamp_text(expr) -%}
    to_char({{ expr }}, 'YYYY-MM-DD HH24:MI:SS')
{%- endmacro %}

{% macro duckdb__utc_timestamp_text(expr) -%}
    strftime({{ expr }}, '%Y-%m-%d %H:%M:%S')
{%- endmacro %}


{#- Which appointment each answer (C / R) is for: one row per answer that matched one, with
    its appointment_key — the contact's next appointment when the answer came, known by then,
    not yet begun and not already cancelled. marts.appointment_confirmations and the journeys'
    `confirmed` events (int_journey__contact_events) both match with this, so a confirmation
    exits only the reminder journey of the appointment it confirmed. -#}
{% macro appointment_answer_matches(responses, appointments) -%}
    select inbound_id, appointment_key
    from (
        select
            {{ responses }}.inbound_id,
            {{ appointments }}.appointment_key,
            row_number() over (
                partition by {{ responses }}.inbound_id
                order by {{ appointments }}.appointment_at, {{ appointments }}.appointment_key
            ) as upcoming_rank
        from {{ responses }}
        inner join {{ appointments }}
            on {{ responses }}.client_id = {{ appointments }}.client_id
            and {{ responses }}.contact_id = {{ appointments }}.contact_id
            and {{ responses }}.received_at <= {{ appointments }}.appointment_at
            and {{ responses }}.received_at >= {{ appointments }}.first_seen_at
            and not (
                {{ appointments }}.status = 'cancelled'
                and {{ responses }}.received_at >= {{ appointments }}.last_seen_at
            )
    ) as ranked
    where upcoming_rank = 1
{%- endmacro %}
