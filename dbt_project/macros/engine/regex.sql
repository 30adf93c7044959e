{#- Regular expressions. PostgreSQL uses its ARE dialect, DuckDB RE2: patterns passed here keep
    to the common subset (no backslashes: `[0-9]`, `[[:space:]]`, `[.]`; `(?:...)` groups) and
    contain no single quote. -#}

{#- True when `pattern` matches somewhere in the text (anchor it with ^...$ for a full match). -#}
{% macro regexp_like(text_expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_like', 'herald')(text_expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_like(text_expr, pattern) -%}
    ({{ text_expr }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regexp_like(text_expr, pattern) -%}
    regexp_matches({{ text_expr }}, '{{ pattern }}')
{%- endmacro %}


{#- The text of capture group `group` of the first match, or null when the text does not match
    or the group took no part in the match. -#}
{% macro regexp_group(text_expr, pattern, group) -%}
    {{ return(adapter.dispatch('regexp_group', 'herald')(text_expr, pattern, group)) }}
{%- endmacro %}

{% macro default__regexp_group(text_expr, pattern, group) -%}
    (regexp_match({{ text_expr }}, '{{ pattern }}'))[{{ group }}]
{%- endmacro %}

{% macro duckdb__regexp_group(text_expr, pattern, group) -%}
    {#- regexp_extract returns '' (not null) when nothing matched. -#}
    nullif(regexp_extract({{ text_expr }}, '{{ pattern }}', {{ group }}), '')
{%- endmacro %}


{#- Replace every match. Both engines spell this the same way (`regexp_replace(..., 'g')`). -#}
{% macro regexp_replace_all(text_expr, pattern, replacement) -%}
    regexp_replace({{ text_expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}
