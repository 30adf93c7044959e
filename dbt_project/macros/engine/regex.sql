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


{#- Replace every match. Both engines spell this the same way (`regexp_replace(..., 'g')`). -#}
{% macro regexp_replace_all(text_expr, pattern, replacement) -%}
    regexp_replace({{ text_expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}


{#- All capture groups of the first match in one value, so a pattern with many groups is run
    once per row: a text[] on PostgreSQL (null when nothing matched), a struct g1..gN on DuckDB
    ('' members when nothing matched). Read a group with `regexp_groups_at`. -#}
{% macro regexp_groups(text_expr, pattern, group_count) -%}
    {{ return(adapter.dispatch('regexp_groups', 'herald')(text_expr, pattern, group_count)) }}
{%- endmacro %}

{% macro default__regexp_groups(text_expr, pattern, group_count) -%}
    regexp_match({{ text_expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regexp_groups(text_expr, pattern, group_count) -%}
    regexp_extract({{ text_expr }}, '{{ pattern }}', [{% for n in range(1, group_count + 1) %}'g{{ n }}'{% if not loop.last %}, {% endif %}{% endfor %}])
{%- endmacro %}


{#- Group `group` (1-based) of a `regexp_groups` value, or null when it did not participate. -#}
{% macro regexp_groups_at(groups_expr, group) -%}
    {{ return(adapter.dispatch('regexp_groups_at', 'herald')(groups_expr, group)) }}
{%- endmacro %}

{% macro default__regexp_groups_at(groups_expr, group) -%}
    ({{ groups_expr }})[{{ group }}]
{%- endmacro %}

{% macro duckdb__regexp_groups_at(groups_expr, group) -%}
    nullif(struct_extract({{ groups_expr }}, 'g{{ group }}'), '')
{%- endmacro %}
