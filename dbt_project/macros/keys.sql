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
    older value. Same SQL on both engines (ordered array_agg with a filter, 1-based index). -#}
{% macro first_value_by(value_expr, order_by, where=none) -%}
    (array_agg({{ value_expr }} order by {{ order_by }}) filter (where {{ where if where else value_expr ~ ' is not null' }}))[1]
{%- endmacro %}
