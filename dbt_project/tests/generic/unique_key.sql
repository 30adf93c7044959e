{#- The columns are the model's key: no two rows share a combination and no part is null.
    One query instead of a composite `unique` plus a `not_null` per column (dbt_utils is not
    available offline). Returns each offending combination. -#}
{% test unique_key(model, columns) %}

with

grouped as (
    select
        {{ columns | join(', ') }},
        count(*) as row_count
    from {{ model }}
    group by {{ columns | join(', ') }}
),

final as (
    select * from grouped
    where
        row_count > 1{% for column in columns %}
        or {{ column }} is null{% endfor %}
)

select * from final

{% endtest %}
