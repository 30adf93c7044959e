with

packet_rows as (
    select * from {{ source('herald_raw', 'packet_rows') }}
),

packets as (
    select * from {{ source('herald_ops', 'packets') }}
),

load_maps as (
    select * from {{ source('herald_ops', 'load_maps') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

landed_packets as (
    select
        packet_id,
        received_at as packet_received_at
    from packets
    where status = 'landed'
),

final as (
    select
        packet_rows.packet_id,
        packet_rows.client_id,
        packet_rows.packet_type,
        packet_rows.line_number,
        load_maps.entity,
        coalesce(load_maps.keep_unmapped, false) as keep_unmapped,
        landed_packets.packet_received_at,
        clients.time_zone as client_time_zone,
        clients.default_region as client_default_region,
        packet_rows.row_data
    from packet_rows
    inner join landed_packets
        on packet_rows.packet_id = landed_packets.packet_id
    left join load_maps
        on packet_rows.client_id = load_maps.client_id
        and packet_rows.packet_type = load_maps.packet_type
    left join clients
        on packet_rows.client_id = clients.client_id
)

select * from final
