{%- set final_columns = [
    'packet_id', 'client_id', 'packet_type', 'line_number', 'packet_received_at', 'client_time_zone',
    'target_name as attribute_name', 'data_type as attribute_type', 'array_separator', 'target_kind',
    'source_column', 'raw_value',
] -%}

with

-- not materialized (here and below): the cells are read three times, and a filtered scan of
-- the table is cheaper than the copy both engines would otherwise make of a CTE read more
-- than once
cells as not materialized (
    select * from {{ ref('stg_packets__cells') }}
),

attribute_cells as not materialized (
    select * from cells
    where entity = 'contacts'
        and destination = 'attribute'
),

-- Cells of one row compete for an attribute only when the packet has several columns that
-- map (or slug) to its name. That is known per packet, so only those cells are ranked below;
-- the others are already one per row and attribute (a row has one cell per column).
packet_columns as (
    select distinct
        packet_id,
        target_name,
        source_column
    from attribute_cells
),

contested_attributes as (
    select
        packet_id,
        target_name
    from packet_columns
    group by packet_id, target_name
    having count(*) > 1
),

uncontested_cells as (
    select * from attribute_cells
    where
        not exists (
            select 1 from contested_attributes
            where contested_attributes.packet_id = attribute_cells.packet_id
                and contested_attributes.target_name = attribute_cells.target_name
        )
),

-- materialized: the (few) contested cells are picked out before the window sorts them; a
-- planner could otherwise sort every attribute cell first
contested_cells as materialized (
    select * from attribute_cells
    where
        exists (
            select 1 from contested_attributes
            where contested_attributes.packet_id = attribute_cells.packet_id
                and contested_attributes.target_name = attribute_cells.target_name
        )
),

-- one value per row and attribute: a value beats an empty cell, then a mapped canonical field
-- beats a client attribute, which beats an unmapped column with the same slug
ranked_cells as (
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
    from contested_cells
),

final as (
    select
        {{ final_columns | join(',\n        ') }}
    from uncontested_cells
    union all
    select
        {{ final_columns | join(',\n        ') }}
    from ranked_cells
    where value_rank = 1
)

select * from final
