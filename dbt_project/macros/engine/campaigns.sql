{#- Helpers of the message plan. -#}

{#- A stable bucket 0 .. buckets-1 of a text: the first 32 bits of its md5, as an unsigned
    integer, modulo `buckets`. The same on both engines and in Python
    (int(md5(text).hexdigest()[:8], 16) % buckets), so a contact's A/B variant never depends on
    the engine or on which tool computed it. -#}
{% macro hash_bucket(text_expr, buckets) -%}
    {{ return(adapter.dispatch('hash_bucket', 'herald')(text_expr, buckets)) }}
{%- endmacro %}

{% macro default__hash_bucket(text_expr, buckets) -%}
    (('x' || substr(md5({{ text_expr }}), 1, 8))::bit(32)::bigint % {{ buckets }})
{%- endmacro %}

{% macro duckdb__hash_bucket(text_expr, buckets) -%}
    (cast('0x' || substr(md5({{ text_expr }}), 1, 8) as bigint) % {{ buckets }})
{%- endmacro %}


{#- ISO day of week of a date or timestamp: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'herald')(expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(expr) -%}
    cast(extract(isodow from {{ expr }}) as bigint)
{%- endmacro %}

{% macro duckdb__iso_day_of_week(expr) -%}
    cast(isodow({{ expr }}) as bigint)
{%- endmacro %}


{#- A value as JSON (json on DuckDB, jsonb on PostgreSQL). -#}
{% macro to_json_value(expr) -%}
    {{ return(adapter.dispatch('to_json_value', 'herald')(expr)) }}
{%- endmacro %}

{% macro default__to_json_value(expr) -%}
    to_jsonb({{ expr }})
{%- endmacro %}

{% macro duckdb__to_json_value(expr) -%}
    to_json({{ expr }})
{%- endmacro %}


{#- In a group by: one JSON object of key → JSON value. -#}
{% macro json_object_agg(key_expr, value_expr) -%}
    {{ return(adapter.dispatch('json_object_agg', 'herald')(key_expr, value_expr)) }}
{%- endmacro %}

{% macro default__json_object_agg(key_expr, value_expr) -%}
    jsonb_object_agg({{ key_expr }}, {{ value_expr }})
{%- endmacro %}

{% macro duckdb__json_object_agg(key_expr, value_expr) -%}
    json_group_object({{ key_expr }}, {{ value_expr }})
{%- endmacro %}


{#- A JSON array as JSON (array_value columns are already JSON on both engines). -#}
{% macro json_as_value(expr) -%}
    {{ return(adapter.dispatch('json_as_value', 'herald')(expr)) }}
{%- endmacro %}

{% macro default__json_as_value(expr) -%}
    cast({{ expr }} as jsonb)
{%- endmacro %}

{% macro duckdb__json_as_value(expr) -%}
    cast({{ expr }} as json)
{%- endmacro %}


{#- In a select list: one row per item of a comma-separated text ('a,b' → 'a', 'b'). -#}
{% macro unnest_csv(text_expr) -%}
    {{ return(adapter.dispatch('unnest_csv', 'herald')(text_expr)) }}
{%- endmacro %}

{% macro default__unnest_csv(text_expr) -%}
    unnest(string_to_array({{ text_expr }}, ','))
{%- endmacro %}

{% macro duckdb__unnest_csv(text_expr) -%}
    unnest(string_split({{ text_expr }}, ','))
{%- endmacro %}
