{%- set latest = 'packet_received_at desc, packet_id desc, line_number desc' -%}
{%- set earliest = 'packet_received_at, packet_id, line_number' -%}

with

contact_rows as (
    select * from {{ ref('int_contact_rows_cleaned') }}
),

-- A contact from a single row (most contacts of a big first packet) needs no merging: only
-- contacts with several rows go through the aggregation. Materialized: both branches read it.
counted_rows as materialized (
    select
        *,
        count(*) over (partition by contact_id, client_id) as source_row_count
    from contact_rows
),

-- the single row's values, as the aggregation below would pick them
single_row_contacts as (
    select
        contact_id,
        client_id,
        external_id,
        first_name,
        last_name,
        email,
        case when email is not null then is_email_valid end as is_email_valid,
        case when phone_raw is not null then phone_e164 end as phone_e164,
        case when phone_raw is not null then is_phone_valid end as is_phone_valid,
        postal_code,
        time_zone,
        packet_id as first_packet_id,
        line_number as first_line_number,
        packet_id as last_packet_id,
        line_number as last_line_number,
        source_row_count,
        packet_received_at as created_at,
        packet_received_at as updated_at
    from counted_rows
    where source_row_count = 1
),

-- For each field the latest row that has a value wins, so an empty cell in a newer packet
-- never erases what an older packet said. Email and phone come with their validity flag from
-- the same row, and a valid value beats a newer invalid one.
merged_contacts as (
    select
        contact_id,
        client_id,
        {{ first_value_by('external_id', latest) }} as external_id,
        {{ first_value_by('first_name', latest) }} as first_name,
        {{ first_value_by('last_name', latest) }} as last_name,
        {{ first_value_by('email', 'is_email_valid desc, ' ~ latest) }} as email,
        {{ first_value_by('is_email_valid', 'is_email_valid desc, ' ~ latest, 'email is not null') }} as is_email_valid,
        {{ first_value_by('phone_e164', 'is_phone_valid desc, ' ~ latest, 'phone_raw is not null') }} as phone_e164,
        {{ first_value_by('is_phone_valid', 'is_phone_valid desc, ' ~ latest, 'phone_raw is not null') }}
            as is_phone_valid,
        {{ first_value_by('postal_code', latest) }} as postal_code,
        {{ first_value_by('time_zone', latest) }} as time_zone,
        {{ first_value_by('packet_id', earliest) }} as first_packet_id,
        {{ first_value_by('line_number', earliest) }} as first_line_number,
        {{ first_value_by('packet_id', latest) }} as last_packet_id,
        {{ first_value_by('line_number', latest) }} as last_line_number,
        count(*) as source_row_count,
        min(packet_received_at) as created_at,
        max(packet_received_at) as updated_at
    from counted_rows
    where source_row_count > 1
    group by contact_id, client_id
),

deduplicated as (
    select * from single_row_contacts
    union all
    select * from merged_contacts
),

final as (
    select
        contact_id,
        client_id,
        external_id,
        first_name,
        last_name,
        email,
        coalesce(is_email_valid, false) as is_email_valid,
        phone_e164,
        coalesce(is_phone_valid, false) as is_phone_valid,
        postal_code,
        time_zone,
        first_packet_id,
        first_line_number,
        last_packet_id,
        last_line_number,
        source_row_count,
        created_at,
        updated_at
    from deduplicated
)

select * from final
