{%- set contact_fields = ['external_id', 'first_name', 'last_name', 'email', 'phone', 'postal_code', 'time_zone'] -%}

with

cells as (
    select * from {{ ref('stg_packets__cells') }}
),

contact_cells as (
    select * from cells
    where entity = 'contacts'
),

-- One pass over the cells: every landed row has one per column of its file, so a row whose
-- contact columns are all empty still comes out, with null fields. When several columns map
-- to one field, the first non-empty one in load-map order wins.
final as (
    select
        packet_id,
        client_id,
        packet_type,
        line_number,
        packet_received_at,
        client_default_region,
        {%- for field in contact_fields %}
        {{ first_value_by(
            'raw_value',
            'column_position, source_column',
            "destination = 'contact' and target_name = '" ~ field ~ "' and raw_value is not null"
        ) }} as {{ field }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from contact_cells
    group by packet_id, client_id, packet_type, line_number, packet_received_at, client_default_region
)

select * from final
