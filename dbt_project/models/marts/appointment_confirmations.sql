{#- Each contact's latest answer to an appointment reminder (C confirms, R asks to
    reschedule), per client. -#}

with

appointment_responses as (
    select * from {{ source('herald_ops', 'appointment_responses') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by client_id, contact_id
            order by received_at desc, inbound_id desc
        ) as recency,
        count(*) over (partition by client_id, contact_id) as response_count
    from appointment_responses
),

final as (
    select
        client_id,
        contact_id,
        response,
        response = 'confirmed' as is_confirmed,
        received_at as responded_at,
        inbound_id,
        response_count
    from ranked
    where recency = 1
)

select * from final
