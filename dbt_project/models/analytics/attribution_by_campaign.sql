{#- One row per client, attribution model and campaign: the conversions the campaign's
    messages are credited with, and their revenue. -#}

with

attributed_conversions as (
    select * from {{ ref('attributed_conversions') }}
),

final as (
    select
        client_id,
        model,
        campaign,
        sum(credit) as conversions_credited,
        sum(revenue) as revenue,
        count(distinct conversion_id) as conversions_touched
    from attributed_conversions
    group by client_id, model, campaign
)

select * from final
