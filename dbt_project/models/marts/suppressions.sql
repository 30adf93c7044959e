{#- The current suppressions, for support: who must not be messaged, by whom, why and since
    when, with the address masked and the contact's name when the suppression names a contact. -#}
{#- E.164 country codes of two digits (one-digit: +1, +7; the rest have three) -#}
{%- set two_digit_country_codes = '^[+](20|27|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])' -%}

with

suppressions as (
    select * from {{ source('herald_ops', 'suppressions') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

-- E.164 country codes are 1 digit (+1, +7), 2 digits (the ITU list below) or 3 digits; the
-- same rule as marts.messages, so one address masks the same way in both marts
phone_country_codes as (
    select
        *,
        case
            when address not like '+%' then null
            when {{ herald.regexp_like('address', '^[+][17]') }} then 1
            when {{ herald.regexp_like('address', two_digit_country_codes) }} then 2
            else 3
        end as country_code_length
    from suppressions
),

-- the address's shape decides its mask, not the channel: a '*' (every channel) suppression
-- holds a phone or an email
masked as (
    select
        *,
        case
            when address like '+%'
                then substr(address, 1, 1 + country_code_length)
                    || repeat('*', greatest(length(address) - 3 - country_code_length, 0))
                    || right(address, 2)
            when address like '_%@_%'
                then substr(address, 1, 1) || '***@' || split_part(address, '@', 2)
            else '***'
        end as address_masked
    from phone_country_codes
),

final as (
    select
        {{ herald.surrogate_key(
            ['masked.client_id', 'masked.channel', 'masked.address', 'masked.scope', 'masked.reason']
        ) }} as suppression_key,
        masked.client_id,
        masked.client_id = '*' as is_all_clients,
        masked.channel,
        masked.address_masked,
        masked.scope,
        masked.reason,
        masked.source,
        masked.note,
        masked.contact_id,
        nullif(trim(coalesce(contacts.first_name, '') || ' ' || coalesce(contacts.last_name, '')), '') as contact_name,
        masked.created_at
    from masked
    left join contacts
        on masked.contact_id = contacts.contact_id
)

select * from final
