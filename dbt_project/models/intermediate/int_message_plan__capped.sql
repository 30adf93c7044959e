{#- The message plan, stage 5 of 5: the frequency caps per recipient across campaigns
    (marketing per 24 h; the FCC healthcare exemption's 1 a day and 3 a week), and the contact's
    own frequency preference (weekly / monthly: one marketing message per 7 / 30 days). Messages earlier
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

-- preferences: a contact's frequency choice (contact_preferences.frequency) allows one marketing
-- message per 7 days (weekly) or 30 days (monthly), counting the messages planned for them in the
-- days before this one (earlier passes, then this pass's earlier messages)
frequency_preferences as (
    select
        client_id,
        contact_id,
        frequency,
        case frequency when 'weekly' then 7 else 30 end as window_days
    from {{ source('herald_ops', 'contact_preferences') }}
    where frequency in ('weekly', 'monthly')
),

frequency_candidates as (
    select
        limited.message_key,
        limited.client_id,
        limited.contact_id,
        limited.send_after,
        frequency_preferences.frequency,
        frequency_preferences.window_days
    from limited
    inner join frequency_preferences
        on limited.client_id = frequency_preferences.client_id
        and limited.contact_id = frequency_preferences.contact_id
    where limited.window_reason is null and limited.category = 'marketing'
),

-- the contact's marketing messages the count looks at: earlier passes', and this pass's
frequency_others as (
    select
        message_key,
        client_id,
        contact_id,
        send_after
    from earlier_planned
    where category = 'marketing'
    union all
    select
        message_key,
        client_id,
        contact_id,
        send_after
    from limited
    where category = 'marketing' and window_reason is null
),

frequency_sent as (
    select
        frequency_candidates.message_key,
        count(*) as sent_count
    from frequency_candidates
    inner join frequency_others
        on frequency_candidates.client_id = frequency_others.client_id
        and frequency_candidates.contact_id = frequency_others.contact_id
        and frequency_candidates.message_key <> frequency_others.message_key
        and frequency_candidates.send_after - frequency_candidates.window_days * interval '1 day'
        < frequency_others.send_after
        and (
            frequency_candidates.send_after > frequency_others.send_after
            or (
                frequency_candidates.send_after = frequency_others.send_after
                and frequency_candidates.message_key > frequency_others.message_key
            )
        )
    group by frequency_candidates.message_key
),

frequency_limited as (
    select
        frequency_candidates.message_key,
        'preference: frequency ' || frequency_candidates.frequency
        || ' (' || cast(frequency_sent.sent_count as varchar)
        || ' sent in the last ' || cast(frequency_candidates.window_days as varchar) || ' days)' as frequency_reason
    from frequency_candidates
    inner join frequency_sent on frequency_candidates.message_key = frequency_sent.message_key
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
        coalesce(
            limited.window_reason, frequency_limited.frequency_reason, 'frequency cap: at most ' || capped.cap_label
        ) as final_reason
    from limited
    left join capped on limited.message_key = capped.message_key
    left join frequency_limited on limited.message_key = frequency_limited.message_key
)

select * from final
