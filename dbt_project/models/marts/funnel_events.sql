{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns'
    )
}}

with

funnel_events as (
    select * from {{ ref('int_funnel_events_matched') }}
),

accepted_events as (
    select * from funnel_events
    where rejected_reason is null
),

-- the same event sent twice (in one packet or in several) is kept once, from its first row
first_sightings as (
    select
        *,
        row_number() over (
            partition by event_id
            order by packet_received_at, packet_id, line_number
        ) as sighting_rank
    from accepted_events
),

-- events are immutable: a run only appends events the table does not hold yet
new_events as (
    select * from first_sightings
    where
        sighting_rank = 1{% if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as loaded_events
            where loaded_events.event_id = first_sightings.event_id
        ){% endif %}
),

final as (
    select
        event_id,
        client_id,
        contact_id,
        matched_by,
        funnel_type,
        from_stage,
        to_stage,
        occurred_at,
        packet_id,
        line_number,
        {{ utc_now() }} as loaded_at
    from new_events
)

select * from final
