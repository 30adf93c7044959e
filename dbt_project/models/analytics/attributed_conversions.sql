{#- One row per conversion × touch × attribution model. A touch is a message sent to the
    converting contact before the conversion and within its channel's lookback
    (var attribution_lookback_days); every model credits every touch, 0 where it gives none,
    and a conversion's credits sum to 1 under each model. Conversions without a touch have no
    rows here (analytics.conversions keeps them). -#}
{%- set lookback_days = var('attribution_lookback_days') -%}
{%- set half_life_days = var('attribution_half_life_days') -%}

with

conversions as (
    select * from {{ ref('conversions') }}
),

messages as (
    select * from {{ ref('messages') }}
),

sent_messages as (
    select
        *,
        case channel
            {%- for channel, days in lookback_days.items() %}
            when '{{ channel }}' then {{ days }}
            {%- endfor %}
        end as lookback_days
    from messages
    where status = 'sent'
        and sent_at is not null
),

-- age in days from the touch to the conversion; a channel without a lookback never counts
touches as (
    select
        conversions.conversion_id,
        conversions.client_id,
        conversions.contact_id,
        conversions.kind as conversion_kind,
        conversions.occurred_at as converted_at,
        conversions.value,
        sent_messages.message_key,
        sent_messages.campaign,
        sent_messages.step,
        sent_messages.variant,
        sent_messages.channel,
        sent_messages.sent_at as touch_at,
        cast(
            (extract(epoch from conversions.occurred_at) - extract(epoch from sent_messages.sent_at)) / 86400.0
            as double precision
        ) as age_days,
        sent_messages.lookback_days
    from conversions
    inner join sent_messages
        on conversions.client_id = sent_messages.client_id
        and conversions.contact_id = sent_messages.contact_id
        and conversions.occurred_at > sent_messages.sent_at
),

touches_in_window as (
    select
        *,
        power(2.0, -age_days / {{ half_life_days }}) as decay_weight
    from touches
    where age_days <= lookback_days
),

-- touches in send order (message_key breaks ties between messages sent at the same instant)
positioned as (
    select
        *,
        row_number() over (partition by conversion_id order by touch_at, message_key) as touch_number,
        count(*) over (partition by conversion_id) as touch_count,
        sum(decay_weight) over (partition by conversion_id) as total_decay_weight
    from touches_in_window
),

attribution_models as (
    select models.model from (
        values ('first_touch'), ('last_touch'), ('linear'), ('time_decay'), ('position_based')
    ) as models (model)
),

credited as (
    select
        positioned.*,
        cast(attribution_models.model as varchar) as model,
        cast(
            case attribution_models.model
                when 'first_touch' then case when positioned.touch_number = 1 then 1.0 else 0.0 end
                when 'last_touch' then case when positioned.touch_number = positioned.touch_count then 1.0 else 0.0 end
                when 'linear' then 1.0 / positioned.touch_count
                when 'time_decay' then positioned.decay_weight / positioned.total_decay_weight
                -- 40/20/40: first and last 40% each, the middle touches share 20%; a lone touch
                -- takes all, two touches halve it
                when 'position_based' then
                    case
                        when positioned.touch_count = 1 then 1.0
                        when positioned.touch_count = 2 then 0.5
                        when positioned.touch_number = 1 or positioned.touch_number = positioned.touch_count then 0.4
                        else 0.2 / (positioned.touch_count - 2)
                    end
            end
            as double precision
        ) as credit
    from positioned
    cross join attribution_models
),

final as (
    select
        conversion_id,
        model,
        message_key as message_id,
        client_id,
        contact_id,
        conversion_kind,
        converted_at,
        campaign,
        step,
        variant,
        channel,
        touch_at,
        touch_number,
        touch_count,
        credit,
        credit * cast(value as double precision) as revenue
    from credited
)

select * from final
