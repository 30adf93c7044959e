with

packet_rows as (
    select * from {{ ref('stg_packets__rows') }}
),

cells as (
    select * from {{ ref('stg_packets__cells') }}
),

contact_packet_rows as (
    select * from packet_rows
    where entity = 'contacts'
),

contact_cells as (
    select * from cells
    where entity = 'contacts'
        and destination = 'contact'
        and raw_value is not null
),

-- several columns may map to one field; the first non-empty one in load-map order wins
first_cell_per_field as (
    select
        *,
        row_number() over (
            partition by packet_id, line_number, target_name
            order by column_position, source_column
        ) as cell_rank
    from contact_cells
),

fields as (
    select
        packet_id,
        line_number,
        max(case when target_name = 'external_id' then raw_value end) as external_id,
        max(case when target_name = 'first_name' then raw_value end) as first_name,
        max(case when target_name = 'last_name' then raw_value end) as last_name,
        max(case when target_name = 'email' then raw_value end) as email,
        max(case when target_name = 'phone' then raw_value end) as phone,
        max(case when target_name = 'postal_code' then raw_value end) as postal_code,
        max(case when target_name = 'time_zone' then raw_value end) as time_zone
    from first_cell_per_field
    where cell_rank = 1
    group by packet_id, line_number
),

final as (
    select
        contact_packet_rows.packet_id,
        contact_packet_rows.client_id,
        contact_packet_rows.packet_type,
        contact_packet_rows.line_number,
        contact_packet_rows.packet_received_at,
        contact_packet_rows.client_default_region,
        fields.external_id,
        fields.first_name,
        fields.last_name,
        fields.email,
        fields.phone,
        fields.postal_code,
        fields.time_zone
    from contact_packet_rows
    left join fields
        on contact_packet_rows.packet_id = fields.packet_id
        and contact_packet_rows.line_number = fields.line_number
)

select * from final
