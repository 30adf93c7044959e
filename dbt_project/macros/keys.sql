{#- Keys and picking values across rows. -#}

{#- A deterministic md5 key of several expressions. Parts are joined with '|' and a null part
    is spelled '<null>', so ('a', null) and ('a', '') hash differently. -#}
{% macro surrogate_key(expressions) -%}
    md5(
        {%- for expression in expressions %}
        coalesce(cast({{ expression }} as varchar), '<null>')
        {%- if not loop.last %} || '|' ||{% endif %}
        {%- endfor %}
    )
{%- endmacro %}


{#- In a group by: the first `value_expr` when the group's rows are sorted by `order_by`,
    among rows where `where` holds (default: the value is not null). With a descending
    recency order this is "the latest non-null value", so a null in a newer row never erases an
    older value. `order_by` is a comma-separated list of column expressions, each optionally
    followed by asc or desc (no commas inside an expression). -#}
{% macro first_value_by(value_expr, order_by, where=none) -%}
    {{ return(adapter.dispatch('first_value_by', 'herald')(value_expr, order_by, where if where else value_expr ~ ' is not null')) }}
{%- endmacro %}

{#- PostgreSQL: an ordered array_agg with a filter, 1-based index. -#}
{% macro default__first_value_by(value_expr, order_by, where) -%}
    (array_agg({{ value_expr }} order by {{ order_by }}) filter (where {{ where }}))[1]
{%- endmacro %}

{#- DuckDB: arg_min_null keeps one candidate per group where an ordered aggregate buffers and
    sorts every row of it; create_sort_key folds the mixed asc/desc order into one comparable
    key. arg_min_null (not arg_min) so a null value on the first row is returned, as array_agg
    would. Nulls in the order columns sort last, DuckDB's default for ORDER BY. -#}
{% macro duckdb__first_value_by(value_expr, order_by, where) -%}
    {%- set sort_key_arguments = [] -%}
    {%- for term in order_by.split(',') -%}
        {%- set words = term.strip().split() -%}
        {%- if words[-1] | lower in ['asc', 'desc'] -%}
            {%- do sort_key_arguments.append(words[:-1] | join(' ')) -%}
            {%- do sort_key_arguments.append("'" ~ (words[-1] | upper) ~ " NULLS LAST'") -%}
        {%- else -%}
            {%- do sort_key_arguments.append(words | join(' ')) -%}
            {%- do sort_key_arguments.append("'ASC NULLS LAST'") -%}
        {%- endif -%}
    {%- endfor -%}
    arg_min_null({{ value_expr }}, create_sort_key({{ sort_key_arguments | join(', ') }})) filter (where {{ where }})
{%- endmacro %}


{#- The lower-case hex sha256 of a text expression (UTF-8), e.g. for the hashed suppressions of
    erased addresses ('erased:' || sha256(salt || address), herald/privacy). -#}
{% macro sha256_hex(text_expr) -%}
    {{ return(adapter.dispatch('sha256_hex', 'herald')(text_expr)) }}
{%- endmacro %}

{% macro default__sha256_hex(text_expr) -%}
    encode(sha256(convert_to({{ text_expr }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro duckdb__sha256_hex(text_expr) -%}
    sha256({{ text_expr }})
{%- endmacro %}
