{{ config(materialized='ephemeral') }}

{#- The messages earlier passes planned: marts.message_plan's planned rows as they were before
    this pass, which the daily limit, the sender quota and the frequency caps count (the plan,
    not the outbox, so the plan never depends on the assets downstream of it). The plan is built
    from this model, so it is read by its name (herald.message_plan_so_far), not by ref: empty
    on the first pass and in a full refresh, as the incremental plan itself. Ephemeral: inlined
    into the stages that read it, never a copy of the plan. -#}

{%- set plan = herald.message_plan_so_far() %}

{% if plan is not none %}
select message_key, client_id, campaign, channel, to_address, category, send_after, contact_id
from {{ plan }}
where status = 'planned'
{% else %}
select
    cast(null as varchar) as message_key,
    cast(null as varchar) as client_id,
    cast(null as varchar) as campaign,
    cast(null as varchar) as channel,
    cast(null as varchar) as to_address,
    cast(null as varchar) as category,
    cast(null as timestamp) as send_after,
    cast(null as varchar) as contact_id
where 1 = 0
{% endif %}
