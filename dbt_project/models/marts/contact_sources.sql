with

contact_rows as (
    select * from {{ ref('int_contact_rows_cleaned') }}
),

final as (
    select
        packet_id,
        line_number,
        contact_id,
        client_id,
        packet_type,
        identity_kind,
        packet_received_at
    from contact_rows
)

select * from final
