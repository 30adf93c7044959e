with

contact_rows as (
    select * from {{ ref('stg_packets__contact_rows') }}
),

phone_numbers as (
    select * from {{ ref('stg_packets__phone_numbers') }}
),

cleaned as (
    select
        contact_rows.packet_id,
        contact_rows.client_id,
        contact_rows.packet_type,
        contact_rows.line_number,
        contact_rows.packet_received_at,
        contact_rows.external_id,
        {{ collapse_whitespace('contact_rows.first_name') }} as first_name,
        {{ collapse_whitespace('contact_rows.last_name') }} as last_name,
        {{ normalize_email('contact_rows.email') }} as email,
        contact_rows.phone as phone_raw,
        phone_numbers.phone_e164,
        coalesce(phone_numbers.is_phone_valid, false) as is_phone_valid,
        case
            -- spreadsheets drop the leading zero of New England ZIPs (02134 → 2134)
            when contact_rows.client_default_region = 'US'
                and {{ regexp_like('contact_rows.postal_code', '^[0-9]{4}(-[0-9]{4})?$') }}
                then '0' || contact_rows.postal_code
            else contact_rows.postal_code
        end as postal_code,
        contact_rows.time_zone
    from contact_rows
    left join phone_numbers
        on contact_rows.phone = phone_numbers.raw_phone
        and contact_rows.client_default_region = phone_numbers.default_region
),

validated as (
    select
        *,
        {{ is_valid_email('email') }} as is_email_valid
    from cleaned
),

-- A row's identity depends on the row alone (valid phone, else valid email, else the client's
-- external id, else the row itself), so the contact a row belongs to never changes when
-- other rows arrive and contact ids stay stable across runs.
identified as (
    select
        *,
        case
            when is_phone_valid and phone_e164 is not null then 'phone'
            when is_email_valid then 'email'
            when external_id is not null then 'external_id'
            else 'row'
        end as identity_kind
    from validated
),

keyed as (
    select
        *,
        identity_kind || ':' || case identity_kind
            when 'phone' then phone_e164
            when 'email' then email
            when 'external_id' then external_id
            else packet_id || ':' || cast(line_number as varchar)
        end as contact_identity
    from identified
),

final as (
    select
        packet_id,
        client_id,
        packet_type,
        line_number,
        packet_received_at,
        {{ surrogate_key(['client_id', 'contact_identity']) }} as contact_id,
        identity_kind,
        contact_identity,
        external_id,
        first_name,
        last_name,
        email,
        is_email_valid,
        phone_raw,
        phone_e164,
        is_phone_valid,
        postal_code,
        time_zone
    from keyed
)

select * from final
