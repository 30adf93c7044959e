{#- The message plan, stage 5 of 5: the frequency caps per recipient across campaigns
    (marketing per 24 h; the FCC healthcare exemption's 1 a day and 3 a week). Messages earlier
    passes planned within the cap's window on either side, plus this pass's earlier messages to
    the same address, must stay under the cap; earlier messages count even if a cap leaves them
    out themselves, so the check errs on the side of sending less. One row per message the
    limits did not carry over, with final_reason: null (planned) or why it is left out. -#}

{#- Column comments are not written for the stages (their descriptions are in the dbt docs): a
    comment per column per stage on every pass was most of what the split cost. -#}
{{ config(pre_hook="{{ herald.jit_off() }}", persist_docs={"relation": true, "columns": false}) }}

with

limited as (
    select * from {{ ref('int_message_plan__limited') }}
    where carry_over is null
),

caps as (
    select * from {{ source('herald_ops', 'frequency_caps') }}
),

earlier_planned as (
    select * from {{ ref('int_message_plan__earlier') }}
),

cap_candidates as (
    select limited.*, caps.window_hours, caps.max_messages, caps.label
    from limited
    inner join caps
        on limited.client_id = caps.client_id
        and limited.category = caps.category
    where limited.window_reason is null
),

cap_existing as (
    select cap_candidates.message_key, cap_candidates.window_hours, count(earlier_planned.message_key) as existing_count
    from cap_candidates
    inner join earlier_planned
        on cap_candidates.client_id = earlier_planned.client_id
        and cap_candidates.to_address = earlier_planned.to_address
        and cap_candidates.category = earlier_planned.category
        and earlier_planned.send_after > cap_candidates.send_after - cap_candidates.window_hours * interval '1 hour'
        and earlier_planned.send_after < cap_candidates.send_after + cap_candidates.window_hours * interval '1 hour'
    group by cap_candidates.message_key, cap_candidates.window_hours
),

cap_earlier as (
    select cap_candidates.message_key, cap_candidates.window_hours, count(other.message_key) as earlier_count
    from cap_candidates
    inner join limited as other
        on cap_candidates.client_id = other.client_id
        and cap_candidates.to_address = other.to_address
        and cap_candidates.category = other.category
        and other.window_reason is null
        and cap_candidates.message_key <> other.message_key
        and other.send_after > cap_candidates.send_after - cap_candidates.window_hours * interval '1 hour'
        and (
            cap_candidates.send_after > other.send_after
            or (cap_candidates.send_after = other.send_after and cap_candidates.message_key > other.message_key)
        )
    group by cap_candidates.message_key, cap_candidates.window_hours
),

capped as (
    select cap_candidates.message_key, min(cap_candidates.label) as cap_label
    from cap_candidates
    left join cap_existing
        on cap_candidates.message_key = cap_existing.message_key
        and cap_candidates.window_hours = cap_existing.window_hours
    left join cap_earlier
        on cap_candidates.message_key = cap_earlier.message_key
        and cap_candidates.window_hours = cap_earlier.window_hours
    where
        coalesce(cap_existing.existing_count, 0) + coalesce(cap_earlier.earlier_count, 0)
        >= cap_candidates.max_messages
    group by cap_candidates.message_key
),

final as (
    select
        limited.message_key,
        limited.client_id,
        limited.campaign,
        limited.step,
        limited.step_position,
        limited.config_version,
        limited.occurrence,
        limited.enrollment_id,
        limited.hop,
        limited.entered_at,
        limited.contact_id,
        limited.message_type,
        limited.category,
        limited.campaign_status,
        limited.daily_limit,
        limited.sms_consent,
        limited.first_channel,
        limited.fallback_channel,
        limited.fallback_if_missing,
        limited.anchor_field,
        limited.anchor_value,
        limited.client_time_zone,
        limited.contact_time_zone,
        limited.postal_code,
        limited.phone,
        limited.email,
        limited.channel,
        limited.to_address,
        limited.fired_at,
        limited.scheduled_at,
        limited.variant_bucket,
        limited.suppression_reason,
        limited.has_consent,
        limited.exclusion,
        limited.reason,
        limited.send_after,
        limited.local_send_date,
        limited.window_reason,
        limited.deferral_reason,
        limited.is_carried,
        limited.is_over_quota,
        limited.carry_over,
        coalesce(limited.window_reason, 'frequency cap: at most ' || capped.cap_label) as final_reason
    from limited
    left join capped on limited.message_key = capped.message_key
)

select * from final
