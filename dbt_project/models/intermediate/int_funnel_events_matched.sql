{%- set latest = 'packet_received_at desc, packet_id desc, line_number desc' -%}

with

funnel_event_rows as (
    select * from {{ ref('stg_packets__funnel_event_rows') }}
),

phone_numbers as (
    select * from {{ ref('stg_packets__phone_numbers') }}
),

-- not materialized: read three times below; filtered scans of the table are cheaper than
-- the copy both engines would otherwise make of a CTE read more than once
contact_rows as not materialized (
    select * from {{ ref('int_contact_rows_cleaned') }}
),

cleaned as (
    select
        funnel_event_rows.packet_id,
        funnel_event_rows.client_id,
        funnel_event_rows.packet_type,
        funnel_event_rows.line_number,
        funnel_event_rows.packet_received_at,
        funnel_event_rows.client_time_zone,
        funnel_event_rows.external_id,
        {{ normalize_email('funnel_event_rows.email') }} as email,
        {{ is_valid_email(normalize_email('funnel_event_rows.email')) }} as is_email_valid,
        phone_numbers.phone_e164,
        coalesce(phone_numbers.is_phone_valid, false) as is_phone_valid,
        -- 'Service Delivery', 'service_delivery' → 'service-delivery'
        {{ regexp_replace_all('lower(funnel_event_rows.funnel_type)', '[[:space:]_]+', '-') }} as funnel_type,
        {{ collapse_whitespace('funnel_event_rows.from_stage') }} as from_stage,
        {{ collapse_whitespace('funnel_event_rows.to_stage') }} as to_stage,
        funnel_event_rows.occurred_at as occurred_at_raw
    from funnel_event_rows
    left join phone_numbers
        on funnel_event_rows.phone = phone_numbers.raw_phone
        and funnel_event_rows.client_default_region = phone_numbers.default_region
),

-- materialized: each parsing step below reads the match groups many times, and PostgreSQL
-- would otherwise inline the CTE and re-run the regular expressions for every reference
matched_datetimes as materialized (
    select
        *,
        {{ datetime_matches('occurred_at_raw') }}
    from cleaned
),

split_datetimes as (
    select
        *,
        {{ datetime_parts() }}
    from matched_datetimes
),

parsed as (
    select
        *,
        -- files hold local times in the client's time zone; Herald stores naive UTC
        {{ local_to_utc(local_datetime_from_parts(), 'client_time_zone') }} as occurred_at
    from split_datetimes
),

-- who the packet row says the event is about, in the order the row is matched to contacts
identified as (
    select
        *,
        case
            when external_id is not null then 'external_id:' || external_id
            when is_phone_valid and phone_e164 is not null then 'phone:' || phone_e164
            when is_email_valid then 'email:' || email
        end as person_identity
    from parsed
),

-- the contact of the latest contact row carrying each external id, valid phone and valid email
-- that some funnel row names (only those: contact rows far outnumber funnel rows)
contacts_by_external_id as (
    select
        client_id,
        external_id,
        {{ first_value_by('contact_id', latest) }} as contact_id
    from contact_rows
    where external_id is not null
        and exists (
            select 1 from identified
            where identified.client_id = contact_rows.client_id
                and identified.external_id = contact_rows.external_id
        )
    group by client_id, external_id
),

contacts_by_phone as (
    select
        client_id,
        phone_e164,
        {{ first_value_by('contact_id', latest) }} as contact_id
    from contact_rows
    where is_phone_valid
        and phone_e164 is not null
        and exists (
            select 1 from identified
            where identified.client_id = contact_rows.client_id
                and identified.phone_e164 = contact_rows.phone_e164
        )
    group by client_id, phone_e164
),

contacts_by_email as (
    select
        client_id,
        email,
        {{ first_value_by('contact_id', latest) }} as contact_id
    from contact_rows
    where is_email_valid
        and exists (
            select 1 from identified
            where identified.client_id = contact_rows.client_id
                and identified.email = contact_rows.email
        )
    group by client_id, email
),

matched as (
    select
        identified.*,
        coalesce(
            contacts_by_external_id.contact_id,
            contacts_by_phone.contact_id,
            contacts_by_email.contact_id
        ) as contact_id,
        case
            when contacts_by_external_id.contact_id is not null then 'external_id'
            when contacts_by_phone.contact_id is not null then 'phone'
            when contacts_by_email.contact_id is not null then 'email'
        end as matched_by
    from identified
    left join contacts_by_external_id
        on identified.client_id = contacts_by_external_id.client_id
        and identified.external_id = contacts_by_external_id.external_id
    left join contacts_by_phone
        on identified.client_id = contacts_by_phone.client_id
        and identified.is_phone_valid
        and identified.phone_e164 = contacts_by_phone.phone_e164
    left join contacts_by_email
        on identified.client_id = contacts_by_email.client_id
        and identified.is_email_valid
        and identified.email = contacts_by_email.email
),

checked as (
    select
        *,
        case
            when funnel_type is null or funnel_type not in ('sales', 'service-delivery')
                then 'funnel_type must be sales or service-delivery'
            when to_stage is null then 'to_stage is missing'
            when occurred_at is null then 'occurred_at is missing or not a date and time'
            when person_identity is null then 'no external_id, valid phone or valid email'
        end as rejected_reason
    from matched
),

final as (
    select
        packet_id,
        client_id,
        packet_type,
        line_number,
        packet_received_at,
        case
            when rejected_reason is null then {{ surrogate_key([
                'client_id', 'person_identity', 'funnel_type', 'from_stage', 'to_stage', 'occurred_at'
            ]) }}
        end as event_id,
        contact_id,
        matched_by,
        funnel_type,
        from_stage,
        to_stage,
        occurred_at,
        occurred_at_raw,
        rejected_reason
    from checked
)

select * from final
