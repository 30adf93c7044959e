with

packet_rows as (
    select * from {{ ref('stg_packets__rows') }}
),

load_map_columns as (
    select * from {{ source('herald_ops', 'load_map_columns') }}
),

canonical_fields as (
    select * from {{ source('herald_ops', 'canonical_fields') }}
),

entries as (
    {{ json_object_entries('packet_rows', 'row_data', [
        'packet_id', 'client_id', 'packet_type', 'entity', 'keep_unmapped', 'line_number',
        'packet_received_at', 'client_time_zone', 'client_default_region',
    ]) }}
),

cells as (
    select
        packet_id,
        client_id,
        packet_type,
        entity,
        keep_unmapped,
        line_number,
        packet_received_at,
        client_time_zone,
        client_default_region,
        column_name as source_column,
        nullif({{ trim_whitespace('column_value') }}, '') as raw_value
    from entries
),

mapped as (
    select
        cells.*,
        coalesce(load_map_columns.target_kind, 'unmapped') as target_kind,
        coalesce(load_map_columns.target_name, {{ slugify('cells.source_column') }}) as target_name,
        coalesce(load_map_columns.data_type, 'string') as data_type,
        load_map_columns.array_separator,
        load_map_columns.position as column_position,
        -- where the value goes: a canonical field goes where the field is stored; a
        -- client-defined attribute, or an unmapped column of a keep_unmapped map, becomes a
        -- contact attribute; anything else is dropped (null).
        case
            when load_map_columns.target_kind = 'field' then canonical_fields.stored_in
            when load_map_columns.target_kind = 'attribute' then 'attribute'
            when load_map_columns.target_kind is null and cells.keep_unmapped then 'attribute'
        end as destination
    from cells
    left join load_map_columns
        on cells.client_id = load_map_columns.client_id
        and cells.packet_type = load_map_columns.packet_type
        and cells.source_column = load_map_columns.source_column
    left join canonical_fields
        on load_map_columns.target_kind = 'field'
        and load_map_columns.target_name = canonical_fields.field_name
),

final as (
    select
        packet_id,
        client_id,
        packet_type,
        entity,
        line_number,
        packet_received_at,
        client_time_zone,
        client_default_region,
        source_column,
        raw_value,
        target_kind,
        target_name,
        data_type,
        array_separator,
        column_position,
        destination
    from mapped
)

select * from final
