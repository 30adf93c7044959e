with

packet_rows as (
    select * from {{ ref('stg_packets__rows') }}
),

cells as (
    select * from {{ ref('stg_packets__cells') }}
),

funnel_packet_rows as (
    select * from packet_rows
    where entity = 'funnel_events'
),

funnel_cells as (
    select * from cells
    where entity = 'funnel_events'
        and destination in ('contact', 'funnel_event')
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
    from funnel_cells
),

fields as (
    select
        packet_id,
        line_number,
        max(case when target_name = 'external_id' then raw_value end) as external_id,
        max(case when target_name = 'email' then raw_value end) as email,
        max(case when target_name = 'phone' then raw_value end) as phone,
        max(case when target_name = 'funnel_type' then raw_value end) as funnel_type,
        max(case when target_name = 'from_stage' then raw_value end) as from_stage,
        max(case when target_name = 'to_stage' then raw_value end) as to_stage,
        max(case when target_name = 'occurred_at' then raw_value end) as occurred_at
    from first_cell_per_field
    where cell_rank = 1
    group by packet_id, line_number
),

final as (
    select
        funnel_packet_rows.packet_id,
        funnel_packet_rows.client_id,
        funnel_packet_rows.packet_type,
        funnel_packet_rows.line_number,
        funnel_packet_rows.packet_received_at,
        funnel_packet_rows.client_default_region,
        funnel_packet_rows.client_time_zone,
        fields.external_id,
        fields.email,
        fields.phone,
        fields.funnel_type,
        fields.from_stage,
        fields.to_stage,
        fields.occurred_at
    from funnel_packet_rows
    left join fields
        on funnel_packet_rows.packet_id = fields.packet_id
        and funnel_packet_rows.line_number = fields.line_number
)

select * from final
