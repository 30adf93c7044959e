{#- One row per appointment. Every packet row with an appointment time (or a client appointment
    id) is an appointment: the client's appointment_id keys it when the load map maps one,
    otherwise the contact and the time do. Later rows of the same appointment update it: a new
    time reschedules it, an appointment_status such as 'cancelled' cancels it. -#}
{%- set appointment_fields = [
    'appointment_at', 'appointment_id', 'appointment_type', 'provider_name', 'location_name',
    'appointment_status',
] -%}
{%- set field_list = "'" ~ appointment_fields | join("', '") ~ "'" -%}
{%- set recency = 'packet_received_at desc, packet_id desc, line_number desc' -%}

with

attribute_values as (
    select * from {{ ref('int_attribute_values_typed') }}
),

contact_sources as (
    select * from {{ ref('contact_sources') }}
),

appointment_values as (
    select
        packet_id,
        line_number,
        client_id,
        packet_received_at,
        attribute_name,
        timestamp_value,
        nullif(trim(coalesce(string_value, raw_value)), '') as text_value
    from attribute_values
    where attribute_name in ({{ field_list }})
),

-- one row per packet row that carries any appointment field
packet_rows as (
    select
        packet_id,
        line_number,
        client_id,
        packet_received_at,
        max(case when attribute_name = 'appointment_at' then timestamp_value end) as appointment_at,
        {%- for name in appointment_fields[1:] %}
        max(case when attribute_name = '{{ name }}' then text_value end) as {{ name }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from appointment_values
    group by packet_id, line_number, client_id, packet_received_at
),

keyed_rows as (
    select
        packet_rows.*,
        contact_sources.contact_id,
        {{ surrogate_key([
            'packet_rows.client_id',
            "case when packet_rows.appointment_id is not null then 'id' else 'contact_time' end",
            'coalesce(packet_rows.appointment_id, contact_sources.contact_id)',
            'case when packet_rows.appointment_id is null then packet_rows.appointment_at end',
        ]) }} as appointment_key
    from packet_rows
    inner join contact_sources
        on packet_rows.packet_id = contact_sources.packet_id
        and packet_rows.line_number = contact_sources.line_number
    where packet_rows.appointment_at is not null
        or packet_rows.appointment_id is not null
),

appointments as (
    select
        appointment_key,
        client_id,
        {{ first_value_by('contact_id', recency) }} as contact_id,
        max(appointment_id) as appointment_id,
        {{ first_value_by('appointment_at', recency) }} as appointment_at,
        {{ first_value_by('appointment_at', 'packet_received_at asc, packet_id asc, line_number asc') }}
            as first_appointment_at,
        {%- for name in ['appointment_type', 'provider_name', 'location_name', 'appointment_status'] %}
        {{ first_value_by(name, recency) }} as {{ name }},
        {%- endfor %}
        {{ first_value_by('packet_id', 'packet_received_at asc, packet_id asc, line_number asc', 'true') }}
            as first_seen_packet_id,
        min(packet_received_at) as first_seen_at,
        max(packet_received_at) as last_seen_at,
        count(*) as packet_row_count
    from keyed_rows
    group by appointment_key, client_id
),

final as (
    select
        appointment_key,
        client_id,
        contact_id,
        appointment_id,
        appointment_at,
        appointment_type,
        provider_name,
        location_name,
        case
            when lower(appointment_status) like 'cancel%' then 'cancelled'
            when appointment_at <> first_appointment_at then 'rescheduled'
            else 'scheduled'
        end as status,
        appointment_status as source_status,
        case when appointment_at <> first_appointment_at then first_appointment_at end as original_appointment_at,
        first_seen_packet_id,
        first_seen_at,
        last_seen_at,
        packet_row_count
    from appointments
    where appointment_at is not null
)

select * from final
