with

cells as (
    select * from {{ ref('stg_packets__cells') }}
),

attribute_cells as (
    select * from cells
    where entity = 'contacts'
        and destination = 'attribute'
),

-- one value per row and attribute: a value beats an empty cell, then a mapped canonical field
-- beats a client attribute, which beats an unmapped column with the same slug
ranked as (
    select
        *,
        row_number() over (
            partition by packet_id, line_number, target_name
            order by
                case when raw_value is null then 1 else 0 end,
                case target_kind when 'field' then 0 when 'attribute' then 1 else 2 end,
                column_position,
                source_column
        ) as value_rank
    from attribute_cells
),

final as (
    select
        packet_id,
        client_id,
        packet_type,
        line_number,
        packet_received_at,
        client_time_zone,
        target_name as attribute_name,
        data_type as attribute_type,
        array_separator,
        target_kind,
        source_column,
        raw_value
    from ranked
    where value_rank = 1
)

select * from final
