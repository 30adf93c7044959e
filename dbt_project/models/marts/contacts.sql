with

contacts as (
    select * from {{ ref('int_contacts_deduplicated') }}
),

final as (
    select
        contact_id,
        client_id,
        external_id,
        first_name,
        last_name,
        email,
        is_email_valid,
        phone_e164,
        is_phone_valid,
        postal_code,
        time_zone,
        first_packet_id,
        first_line_number,
        last_packet_id,
        last_line_number,
        source_row_count,
        created_at,
        updated_at
    from contacts
)

select * from final
