with

-- not materialized (here and below): the values are read twice, and re-reading the view is
-- cheaper than the copy both engines would otherwise make of a CTE read more than once
attribute_values as not materialized (
    select * from {{ ref('stg_packets__attribute_values') }}
),

-- Parsing runs once per distinct text, not once per cell: a packet repeats the same dates,
-- amounts and flags on many rows. A text is keyed with what changes its parse: the separator
-- for arrays, the client's time zone for timestamps ('' where it does not matter, so the keys
-- join with a plain `=`).
keyed_values as not materialized (
    select
        *,
        case
            when attribute_type = 'array' then coalesce(nullif(array_separator, ''), ',')
            else ''
        end as parse_separator,
        case
            when attribute_type = 'timestamp' then coalesce(client_time_zone, '')
            else ''
        end as parse_time_zone
    from attribute_values
),

distinct_texts as (
    select distinct
        attribute_type,
        raw_value,
        parse_separator,
        parse_time_zone
    from keyed_values
    where raw_value is not null
        and attribute_type in ('numeric', 'boolean', 'date', 'timestamp', 'array')
),

prepared as (
    select
        *,
        -- a numeric value: drop currency symbols, thousands separators and spaces; (12.50) is negative
        case
            when attribute_type = 'numeric' then
                {{ regexp_replace_all(
                    regexp_replace_all('raw_value', '^[(](.*)[)]$', '-\\1'),
                    '[$€£¥,[:space:]]', ''
                ) }}
        end as numeric_text,
        case when attribute_type in ('date', 'timestamp') then raw_value end as datetime_text
    from distinct_texts
),

-- materialized: each parsing step below reads the match groups many times, and PostgreSQL
-- would otherwise inline the CTE and re-run the regular expressions for every reference
matched_datetimes as materialized (
    select
        *,
        {{ datetime_matches('datetime_text') }}
    from prepared
),

split_datetimes as (
    select
        *,
        {{ datetime_parts() }}
    from matched_datetimes
),

local_datetimes as (
    select
        *,
        {{ local_datetime_from_parts() }} as local_datetime
    from split_datetimes
),

parsed_texts as (
    select
        attribute_type,
        raw_value,
        parse_separator,
        parse_time_zone,
        case when attribute_type = 'numeric' then {{ try_cast_numeric('numeric_text') }} end as numeric_value,
        case
            when attribute_type = 'boolean' and lower(raw_value) in ('true', 'yes', 'y', '1') then true
            when attribute_type = 'boolean' and lower(raw_value) in ('false', 'no', 'n', '0') then false
        end as boolean_value,
        case when attribute_type = 'date' then cast(local_datetime as date) end as date_value,
        -- files hold local times in the client's time zone; Herald stores naive UTC
        case
            when attribute_type = 'timestamp'
                then {{ local_to_utc('local_datetime', "nullif(parse_time_zone, '')") }}
        end as timestamp_value,
        case
            when attribute_type = 'array'
                then {{ split_to_json_array('raw_value', 'parse_separator') }}
        end as array_value
    from local_datetimes
),

typed as (
    select
        keyed_values.*,
        case when keyed_values.attribute_type = 'string' then keyed_values.raw_value end as string_value,
        parsed_texts.numeric_value,
        parsed_texts.boolean_value,
        parsed_texts.date_value,
        parsed_texts.timestamp_value,
        parsed_texts.array_value
    from keyed_values
    left join parsed_texts
        on keyed_values.attribute_type = parsed_texts.attribute_type
        and keyed_values.raw_value = parsed_texts.raw_value
        and keyed_values.parse_separator = parsed_texts.parse_separator
        and keyed_values.parse_time_zone = parsed_texts.parse_time_zone
),

final as (
    select
        packet_id,
        client_id,
        packet_type,
        line_number,
        packet_received_at,
        attribute_name,
        attribute_type,
        source_column,
        raw_value,
        string_value,
        numeric_value,
        boolean_value,
        date_value,
        timestamp_value,
        array_value,
        case
            when raw_value is null then null
            else
                coalesce(
                    string_value is not null
                    or numeric_value is not null
                    or boolean_value is not null
                    or date_value is not null
                    or timestamp_value is not null
                    or array_value is not null,
                    false
                )
        end as is_parsed
    from typed
)

select * from final
