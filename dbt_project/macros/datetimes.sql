{#- Parsing the date and time formats clients put in their files:
      ISO  YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS[.fff]], YYYY-MM-DDTHH:MM[:SS[.fff]]
      US   M/D/YYYY, M/D/YYYY H:MM[:SS] with an optional AM/PM (any case)
    Parsing takes three CTEs so each value runs at most one regular expression (PostgreSQL's
    regex engine is the cost here):
      1. `datetime_matches(text)`    adds dt_iso_groups, dt_us_groups
      2. `datetime_parts()`          adds integer dt_year ... dt_second and dt_meridiem
      3. `local_datetime_from_parts()`  a naive local timestamp, or null when a part is out of
                                        range (month 13, 30 February, 25:00, 13 PM). -#}

{% macro datetime_matches(text_expr) -%}
    {%- set iso = '^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[T ]+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.][0-9]+)?)?)?$' -%}
    {%- set us = '^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})(?:[[:space:]]+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?[[:space:]]*([AP]M)?)?$' -%}
    case when {{ text_expr }} like '%-%' then {{ herald.regexp_groups('upper(' ~ text_expr ~ ')', iso, 6) }} end as dt_iso_groups,
    case when {{ text_expr }} like '%/%' then {{ herald.regexp_groups('upper(' ~ text_expr ~ ')', us, 7) }} end as dt_us_groups
{%- endmacro %}


{% macro datetime_parts() -%}
    {%- set iso, us = 'dt_iso_groups', 'dt_us_groups' -%}
    cast(coalesce({{ herald.regexp_groups_at(iso, 1) }}, {{ herald.regexp_groups_at(us, 3) }}) as integer) as dt_year,
    cast(coalesce({{ herald.regexp_groups_at(iso, 2) }}, {{ herald.regexp_groups_at(us, 1) }}) as integer) as dt_month,
    cast(coalesce({{ herald.regexp_groups_at(iso, 3) }}, {{ herald.regexp_groups_at(us, 2) }}) as integer) as dt_day,
    cast(coalesce({{ herald.regexp_groups_at(iso, 4) }}, {{ herald.regexp_groups_at(us, 4) }}) as integer) as dt_hour,
    cast(coalesce({{ herald.regexp_groups_at(iso, 5) }}, {{ herald.regexp_groups_at(us, 5) }}) as integer) as dt_minute,
    cast(coalesce({{ herald.regexp_groups_at(iso, 6) }}, {{ herald.regexp_groups_at(us, 6) }}) as integer) as dt_second,
    {{ herald.regexp_groups_at(us, 7) }} as dt_meridiem
{%- endmacro %}


{% macro local_datetime_from_parts() -%}
    case
        when dt_year between 1 and 9999
            and dt_month between 1 and 12
            and dt_day between 1 and (
                case
                    when dt_month in (4, 6, 9, 11) then 30
                    when dt_month <> 2 then 31
                    when (dt_year % 4 = 0 and dt_year % 100 <> 0) or dt_year % 400 = 0 then 29
                    else 28
                end
            )
            and (
                (dt_meridiem is null and coalesce(dt_hour, 0) between 0 and 23)
                or (dt_meridiem is not null and dt_hour between 1 and 12)
            )
            and coalesce(dt_minute, 0) between 0 and 59
            and coalesce(dt_second, 0) between 0 and 59
            then make_timestamp(
                dt_year,
                dt_month,
                dt_day,
                case
                    when dt_meridiem = 'AM' and dt_hour = 12 then 0
                    when dt_meridiem = 'PM' and dt_hour < 12 then dt_hour + 12
                    else coalesce(dt_hour, 0)
                end,
                coalesce(dt_minute, 0),
                coalesce(dt_second, 0)
            )
    end
{%- endmacro %}
