{%- set event_fields = ['external_id', 'email', 'phone', 'funnel_type', 'from_stage', 'to_stage', 'occurred_at'] -%}

with

cells as (
    select * from {{ ref('stg_packets__cells') }}
),

funnel_cells as (
    select * from cells
    where entity = 'funnel_events'
),

-- One pass over the cells: every landed row has one per column of its file, so a row whose
-- mapped columns are all empty still comes out, with null fields. When several columns map
-- to one field, the first non-empty one in load-map order wins.
final as (
    select
        packet_id,
        client_id,
        packet_type,
        line_number,
        packet_received_at,
        client_default_region,
        client_time_zone,
        {%- for field in event_fields %}
        {{ first_value_by(
            'raw_value',
            'column_position, source_column',
            "destination in ('contact', 'funnel_event') and target_name = '" ~ field ~ "' and raw_value is not null"
        ) }} as {{ field }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from funnel_cells
    group by packet_id, client_id, packet_type, line_number, packet_received_at, client_default_region, client_time_zone
)

select * from final
