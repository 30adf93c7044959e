{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ herald.jit_off() }}"
    )
}}

{#- The message plan: every message the journey walk reached this pass (int_journey__walk,
    outcome 'message'), one row per enrollment and message step — planned (channel, address,
    A/B variant, template, when to send, the template variables) or excluded with the reason.
    A message over its campaign's daily limit or its sender's daily quota (senders.daily_limit,
    shared by the client's campaigns) is not planned and not excluded: its enrollment
    waits for the next day (marts.journey_transitions, 'carried_over'), and the steps after it
    wait with it. Append-only: a message key is planned once, so a repeated pass adds nothing
    and the plan stays the record of who was left out and why.
    The stages, each an intermediate model: int_message_plan__candidates (channel and address),
    __judged (paused, address, anchor date, suppression, consent, duplicate address), __timed
    (the send window), __limited (daily limit, sender quota, carry-over), __capped (frequency
    caps). Here: the A/B variant and the template variables of each planned message. -#}

with

capped as (
    select * from {{ ref('int_message_plan__capped') }}
),

variants as (
    select * from {{ source('herald_ops', 'campaign_variants') }}
),

final as (
    select
        capped.message_key,
        capped.client_id,
        capped.campaign,
        capped.step,
        capped.step_position,
        capped.occurrence,
        capped.enrollment_id,
        capped.hop,
        capped.entered_at,
        capped.contact_id,
        capped.message_type,
        capped.category,
        capped.channel,
        case when capped.final_reason is null then capped.to_address end as to_address,
        case when capped.final_reason is null then variants.variant end as variant,
        case
            when capped.final_reason is null then
                case capped.channel when 'sms' then variants.sms_template else variants.email_template end
        end as template,
        case
            when capped.final_reason is null and capped.channel = 'email' then variants.subject
        end as subject_template,
        case when capped.final_reason is null then 'planned' else 'excluded' end as status,
        capped.final_reason as reason,
        capped.scheduled_at,
        case when capped.final_reason is null then capped.send_after end as send_after,
        coalesce(capped.final_reason is null and capped.send_after > capped.scheduled_at, false) as is_deferred,
        case when capped.final_reason is null then capped.deferral_reason end as deferral_reason,
        case when capped.final_reason is null then template_variables.variables end as variables,
        capped.fired_at,
        {{ herald.utc_now() }} as planned_at
    from capped
    left join variants
        on capped.client_id = variants.client_id
        and capped.campaign = variants.campaign
        and capped.config_version = variants.config_version
        and capped.step = variants.step
        and capped.variant_bucket >= variants.bucket_from
        and capped.variant_bucket < variants.bucket_to
    left join {{ ref('contact_template_variables') }} as template_variables
        on capped.contact_id = template_variables.contact_id
        and capped.final_reason is null
)

select * from final
{% if is_incremental() %}
where not exists (
        select 1 from {{ this }} as planned
        where planned.message_key = final.message_key
    )
{% endif %}
