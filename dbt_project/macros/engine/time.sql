{#- Time zones and clocks. Every `*_at` column Herald writes is a naive timestamp in UTC. -#}

{#- A naive local timestamp read in the IANA zone `time_zone_expr` → naive UTC. A local time that
    a DST change skips or repeats resolves the same way on both engines (to standard time). -#}
{% macro local_to_utc(timestamp_expr, time_zone_expr) -%}
    {{ return(adapter.dispatch('local_to_utc', 'herald')(timestamp_expr, time_zone_expr)) }}
{%- endmacro %}

{% macro default__local_to_utc(timestamp_expr, time_zone_expr) -%}
    (({{ timestamp_expr }}) at time zone {{ time_zone_expr }}) at time zone 'UTC'
{%- endmacro %}

{% macro duckdb__local_to_utc(timestamp_expr, time_zone_expr) -%}
    {#- timezone(zone, timestamp) reads the timestamp in the zone (ICU) → timestamptz;
        timezone('UTC', timestamptz) → naive UTC. -#}
    timezone('UTC', timezone({{ time_zone_expr }}, {{ timestamp_expr }}))
{%- endmacro %}


{#- A naive UTC timestamp → the naive local time on the wall clock in the IANA zone
    `time_zone_expr` (the inverse of local_to_utc; unambiguous, as every UTC instant has one
    local time). -#}
{% macro utc_to_local(timestamp_expr, time_zone_expr) -%}
    {{ return(adapter.dispatch('utc_to_local', 'herald')(timestamp_expr, time_zone_expr)) }}
{%- endmacro %}

{% macro default__utc_to_local(timestamp_expr, time_zone_expr) -%}
    (({{ timestamp_expr }}) at time zone 'UTC') at time zone {{ time_zone_expr }}
{%- endmacro %}

{% macro duckdb__utc_to_local(timestamp_expr, time_zone_expr) -%}
    {#- timezone('UTC', timestamp) reads the timestamp as UTC → timestamptz;
        timezone(zone, timestamptz) → the naive wall-clock time in the zone. -#}
    timezone({{ time_zone_expr }}, timezone('UTC', {{ timestamp_expr }}))
{%- endmacro %}


{#- The current time as a naive UTC timestamp, whatever the session's time zone; shifted by
    Herald's simulated clock (herald/clock.py: HERALD_DBT_CLOCK_OFFSET seconds, sandbox only). -#}
{% macro utc_now() -%}
    {%- set offset = clock_offset_seconds() -%}
    {%- if offset != 0 -%}
        ({{ adapter.dispatch('utc_now', 'herald')() }} + interval '{{ offset }} seconds')
    {%- else -%}
        {{ return(adapter.dispatch('utc_now', 'herald')()) }}
    {%- endif -%}
{%- endmacro %}

{#- Seconds Herald's clock is shifted by (0 unless a sandbox deployment simulates time). -#}
{% macro clock_offset_seconds() -%}
    {{ return(env_var('HERALD_DBT_CLOCK_OFFSET', '0') | int) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    cast(now() at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro duckdb__utc_now() -%}
    cast(timezone('UTC', get_current_timestamp()) as timestamp)
{%- endmacro %}
