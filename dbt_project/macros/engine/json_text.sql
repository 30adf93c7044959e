{#- JSON stored as text (herald_raw.provider_events.payload): the text at a path of object keys,
    null when the path is missing. `json_text_at('payload', ['data', 'click', 'link'])`.
    `default__` is PostgreSQL; `duckdb__` is DuckDB. -#}
{% macro json_text_at(text_expr, keys) -%}
    {{ return(adapter.dispatch('json_text_at', 'herald')(text_expr, keys)) }}
{%- endmacro %}

{% macro default__json_text_at(text_expr, keys) -%}
    (cast({{ text_expr }} as jsonb) #>> '{{ "{" ~ keys | join(",") ~ "}" }}')
{%- endmacro %}

{% macro duckdb__json_text_at(text_expr, keys) -%}
    json_extract_string({{ text_expr }}, '{{ "$." ~ keys | join(".") }}')
{%- endmacro %}
