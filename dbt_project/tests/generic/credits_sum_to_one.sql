{#- Within each group (e.g. a conversion and an attribution model) the credits sum to 1, within
    `tolerance` for floating-point rounding (a third three times is not exactly 1). Returns each
    group whose credits do not. -#}
{% test credits_sum_to_one(model, group_by, credit_column='credit', tolerance=0.000001) %}

with

grouped as (
    select
        {{ group_by | join(', ') }},
        sum({{ credit_column }}) as credit_total
    from {{ model }}
    group by {{ group_by | join(', ') }}
),

final as (
    select * from grouped
    where credit_total is null
        or abs(credit_total - 1) > {{ tolerance }}
)

select * from final

{% endtest %}
