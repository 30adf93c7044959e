with

attribute_values as (
    select * from {{ ref('stg_packets__attribute_values') }}
),

prepared as (
    select
        *,
        case
            when attribute_type = 'numeric' then
                -- drop currency symbols, thousands separators and spaces; (12.50) is negative
                {{ regexp_replace_all(
                    regexp_replace_all('raw_value', '^[(](.*)[)]$', '-\\1'),
                    '[$€£¥,[:space:]]', ''
                ) }}
        end as numeric_text,
        case when attribute_type in ('date', 'timestamp') then raw_value end as datetime_text
    from attribute_values
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

typed as (
    select
        *,
        case when attribute_type = 'string' then raw_value end as string_value,
        case when attribute_type = 'numeric' then {{ try_cast_numeric('numeric_text') }} end as numeric_value,
        case
            when attribute_type = 'boolean' and lower(raw_value) in ('true', 'yes', 'y', '1') then true
            when attribute_type = 'boolean' and lower(raw_value) in ('false', 'no', 'n', '0') then false
        end as boolean_value,
        case when attribute_type = 'date' then cast(local_datetime as date) end as date_value,
        -- files hold local times in the client's time zone; Herald stores naive UTC
        case
            when attribute_type = 'timestamp'
                then {{ local_to_utc('local_datetime', 'client_time_zone') }}
        end as timestamp_value,
        case
            when attribute_type = 'array' and raw_value is not null
                then {{ split_to_json_array('raw_value', "coalesce(nullif(array_separator, ''), ',')") }}
        end as array_value
    from local_datetimes
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
            else coalesce(
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
