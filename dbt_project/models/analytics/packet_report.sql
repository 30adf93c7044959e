with

packets as (
    select * from {{ source('herald_ops', 'packets') }}
),

packet_events as (
    select * from {{ source('herald_ops', 'packet_events') }}
),

contact_sources as (
    select * from {{ ref('contact_sources') }}
),

contact_counts as (
    select
        packet_id,
        count(*) as contact_rows,
        count(distinct contact_id) as contacts
    from contact_sources
    group by packet_id
),

-- a step may be recorded more than once (a re-run transform): its time is the sum, its start
-- the first
steps as (
    select
        packet_id,
        step,
        min(occurred_at) as step_started_at,
        sum(coalesce(duration_ms, 0)) as duration_ms
    from packet_events
    group by packet_id, step
),

packet_durations as (
    select
        packet_id,
        sum(duration_ms) as packet_duration_ms
    from steps
    group by packet_id
),

-- every packet keeps a row, even one with no step recorded
final as (
    select
        packets.packet_id,
        packets.client_id,
        packets.packet_type,
        packets.file_name,
        packets.status as packet_status,
        packets.received_at,
        packets.rows_in_file,
        packets.rows_landed,
        packets.rows_rejected,
        coalesce(contact_counts.contact_rows, 0) as contact_rows,
        coalesce(contact_counts.contacts, 0) as contacts,
        coalesce(steps.step, 'none recorded') as step,
        row_number() over (
            partition by packets.packet_id
            order by steps.step_started_at, steps.step
        ) as step_number,
        steps.step_started_at,
        coalesce(steps.duration_ms, 0) as step_duration_ms,
        coalesce(packet_durations.packet_duration_ms, 0) as packet_duration_ms
    from packets
    left join steps
        on packets.packet_id = steps.packet_id
    left join packet_durations
        on packets.packet_id = packet_durations.packet_id
    left join contact_counts
        on packets.packet_id = contact_counts.packet_id
)

select * from final
