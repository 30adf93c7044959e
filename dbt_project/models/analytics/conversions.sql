{#- One row per conversion: a funnel event reaching a converting stage, a confirmed appointment,
    or a reply. Settings are the `conversion_*` vars in dbt_project.yml. -#}
{%- set stages = var('conversion_funnel_stages') | map('lower') | list -%}
{%- set value_attributes = var('conversion_value_attributes') -%}
{%- set fixed_values = var('conversion_values') -%}
{#- the stages and attribute names as SQL string lists: 'a', 'b' -#}
{%- set stage_list = "'" ~ stages | join("', '") ~ "'" -%}
{%- set value_attribute_list = "'" ~ value_attributes | join("', '") ~ "'" -%}

{#- the fixed value of each kind, as SQL: null when the var leaves it unknown -#}
{%- set fixed_value = {} -%}
{%- for kind in ['funnel_event', 'appointment_confirmed', 'reply'] -%}
{%- set value = fixed_values.get(kind) -%}
{%- do fixed_value.update({kind: 'cast(' ~ ('null' if value is none else value) ~ ' as numeric(38, 6))'}) -%}
{%- endfor %}

with

funnel_events as (
    select * from {{ ref('funnel_events') }}
),

appointment_confirmations as (
    select * from {{ ref('appointment_confirmations') }}
),

contact_attributes as (
    select * from {{ ref('contact_attributes') }}
),

inbound_messages as (
    select * from {{ source('herald_raw', 'inbound_messages') }}
),

inbound_processing as (
    select * from {{ source('herald_ops', 'inbound_processing') }}
),

appointment_responses as (
    select * from {{ source('herald_ops', 'appointment_responses') }}
),

-- a contact's value is its first numeric attribute in the order the var lists them
value_candidates as (
    select
        client_id,
        contact_id,
        numeric_value,
        case attribute_name
            {%- for name in value_attributes %}
            when '{{ name }}' then {{ loop.index }}
            {%- endfor %}
        end as preference
    from contact_attributes
    where numeric_value is not null
        {%- if value_attributes %}
        and attribute_name in ({{ value_attribute_list }})
        {%- else %}
        and false
        {%- endif %}
),

contact_values as (
    select
        client_id,
        contact_id,
        numeric_value as contact_value,
        row_number() over (partition by client_id, contact_id order by preference) as preference_rank
    from value_candidates
),

funnel_conversions as (
    select
        funnel_events.client_id,
        funnel_events.contact_id,
        cast('funnel_event' as varchar) as kind,
        funnel_events.occurred_at,
        coalesce(cast(contact_values.contact_value as numeric(38, 6)), {{ fixed_value['funnel_event'] }}) as value,
        funnel_events.event_id as source_id
    from funnel_events
    left join contact_values
        on funnel_events.client_id = contact_values.client_id
        and funnel_events.contact_id = contact_values.contact_id
        and contact_values.preference_rank = 1
    where funnel_events.contact_id is not null
        {%- if stages %}
        and lower(funnel_events.to_stage) in ({{ stage_list }})
        {%- else %}
        and false
        {%- endif %}
),

appointment_conversions as (
    select
        client_id,
        contact_id,
        cast('appointment_confirmed' as varchar) as kind,
        responded_at as occurred_at,
        {{ fixed_value['appointment_confirmed'] }} as value,
        inbound_id as source_id
    from appointment_confirmations
    where is_confirmed
),

-- a reply that answered an appointment reminder is judged as an appointment (above), so one
-- inbound message never counts twice; opt-outs, opt-ins and HELP are not conversions
reply_conversions as (
    select
        inbound_processing.client_id,
        inbound_processing.contact_id,
        cast('reply' as varchar) as kind,
        inbound_messages.received_at as occurred_at,
        {{ fixed_value['reply'] }} as value,
        inbound_processing.inbound_id as source_id
    from inbound_processing
    inner join inbound_messages
        on inbound_processing.inbound_id = inbound_messages.inbound_id
    where inbound_processing.kind in ('other', 'confirm')
        and inbound_processing.client_id is not null
        and inbound_processing.contact_id is not null
        and not exists (
            select 1 from appointment_responses
            where appointment_responses.inbound_id = inbound_processing.inbound_id
        )
),

unioned as (
    select * from funnel_conversions
    union all
    select * from appointment_conversions
    union all
    select * from reply_conversions
),

final as (
    select
        {{ surrogate_key(['kind', 'client_id', 'contact_id', 'source_id']) }} as conversion_id,
        client_id,
        contact_id,
        kind,
        occurred_at,
        value,
        source_id
    from unioned
)

select * from final
