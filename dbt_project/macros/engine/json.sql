{#- JSON helpers. `default__` is PostgreSQL (jsonb); `duckdb__` is DuckDB (json). -#}

{#- A lateral subquery with one row per key of a JSON object: `column_name`, `column_value`
    (the value as text; JSON null becomes null). Use as `cross join {{ json_object_entries('t.col') }} as e`. -#}
{% macro json_object_entries(json_expr) -%}
    {{ return(adapter.dispatch('json_object_entries', 'herald')(json_expr)) }}
{%- endmacro %}

{% macro default__json_object_entries(json_expr) -%}
    lateral (
        select
            key as column_name,
            value as column_value
        from jsonb_each_text({{ json_expr }})
    )
{%- endmacro %}

{% macro duckdb__json_object_entries(json_expr) -%}
    lateral (
        select
            key as column_name,
            value ->> '$' as column_value
        from json_each({{ json_expr }})
    )
{%- endmacro %}


{#- Split text on a separator into a JSON array of trimmed, non-empty strings, in order
    ('a; b ;' with ';' → ["a","b"]). -#}
{% macro split_to_json_array(text_expr, separator_expr) -%}
    {{ return(adapter.dispatch('split_to_json_array', 'herald')(text_expr, separator_expr)) }}
{%- endmacro %}

{% macro default__split_to_json_array(text_expr, separator_expr) -%}
    (
        select coalesce(jsonb_agg(trim(elements.element) order by elements.position), cast('[]' as jsonb))
        from unnest(string_to_array({{ text_expr }}, {{ separator_expr }})) with ordinality as elements (element, position)
        where trim(elements.element) <> ''
    )
{%- endmacro %}

{% macro duckdb__split_to_json_array(text_expr, separator_expr) -%}
    to_json([trim(element) for element in string_split({{ text_expr }}, {{ separator_expr }}) if trim(element) <> ''])
{%- endmacro %}
