{#- The message plan, stage 1 of 5: every message step the journey walk reached this pass
    (int_journey__walk, outcome 'message') with its campaign, step and contact — the channel the
    step's rule picks ("sms; email if phone is missing") and its address, when it is due, the A/B
    hash bucket and the message key. Nothing is judged yet. -#}

{#- Column comments are not written for the stages (their descriptions are in the dbt docs): a
    comment per column per stage on every pass was most of what the split cost. -#}
{{ config(pre_hook="{{ herald.jit_off() }}", persist_docs={"relation": true, "columns": false}) }}

with

walk as (
    select * from {{ ref('int_journey__walk') }}
    where outcome = 'message'
),

campaigns as (
    select * from {{ source('herald_ops', 'campaigns') }}
),

steps as (
    select * from {{ source('herald_ops', 'campaign_steps') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

-- each message step the walk reached, with the addresses it may use
step_contacts as (
    select
        walk.client_id,
        walk.campaign,
        walk.occurrence,
        walk.arrived_at as fired_at,
        walk.due_at,
        walk.contact_id,
        walk.enrollment_id,
        walk.entered_at,
        walk.hop,
        campaigns.message_type,
        campaigns.category,
        campaigns.status as campaign_status,
        campaigns.daily_limit,
        campaigns.sms_consent,
        steps.step,
        steps.position as step_position,
        walk.graph_version as config_version,
        steps.channel as first_channel,
        steps.fallback_channel,
        steps.fallback_if_missing,
        steps.anchor_field,
        clients.time_zone as client_time_zone,
        contacts.time_zone as contact_time_zone,
        contacts.postal_code,
        case when contacts.is_phone_valid then contacts.phone_e164 end as phone,
        case when contacts.is_email_valid then contacts.email end as email,
        walk.anchor_value
    from walk
    inner join campaigns
        on walk.client_id = campaigns.client_id
        and walk.campaign = campaigns.campaign
    inner join steps
        on walk.client_id = steps.client_id
        and walk.campaign = steps.campaign
        and walk.graph_version = steps.config_version
        and walk.step = steps.step
    inner join clients
        on walk.client_id = clients.client_id
    inner join contacts
        on walk.contact_id = contacts.contact_id
),

-- the channel the rule picks and its address
routed as (
    select
        *,
        case
            when first_channel = 'sms' and phone is not null then 'sms'
            when first_channel = 'email' and email is not null then 'email'
            when fallback_channel = 'email' and fallback_if_missing = 'phone' and phone is null and email is not null
                then 'email'
            when fallback_channel = 'sms' and fallback_if_missing = 'email' and email is null and phone is not null
                then 'sms'
        end as channel
    from step_contacts
),

final as (
    select
        {{ herald.surrogate_key(
            ['client_id', 'campaign', 'step', 'contact_id', 'channel', 'occurrence']
        ) }} as message_key,
        client_id,
        campaign,
        step,
        step_position,
        config_version,
        occurrence,
        enrollment_id,
        hop,
        entered_at,
        contact_id,
        message_type,
        category,
        campaign_status,
        daily_limit,
        sms_consent,
        first_channel,
        fallback_channel,
        fallback_if_missing,
        anchor_field,
        anchor_value,
        client_time_zone,
        contact_time_zone,
        postal_code,
        phone,
        email,
        channel,
        case channel when 'sms' then phone when 'email' then email end as to_address,
        fired_at,
        coalesce(due_at, fired_at) as scheduled_at,
        {{ herald.hash_bucket("contact_id || '|' || campaign || '|' || step", 10000) }} as variant_bucket
    from routed
)

select * from final
