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
    and the plan stays the record of who was left out and why. -#}

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

variants as (
    select * from {{ source('herald_ops', 'campaign_variants') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

windows as (
    select * from {{ source('herald_ops', 'send_windows') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

suppressions as (
    select * from {{ source('herald_ops', 'suppressions') }}
),

consent_events as (
    select * from {{ source('herald_ops', 'consent_events') }}
),

legal_windows as (
    select * from {{ source('herald_ops', 'legal_windows') }}
),

regions as (
    select * from {{ source('herald_raw', 'address_regions') }}
),

caps as (
    select * from {{ source('herald_ops', 'frequency_caps') }}
),

sender_quotas as (
    select * from {{ source('herald_ops', 'sender_quotas') }}
),

-- messages earlier passes planned: what the frequency caps count (the plan, not the outbox,
-- so the plan never depends on the assets downstream of it)
earlier_planned as (
    {% if is_incremental() %}
    select message_key, client_id, to_address, category, send_after
    from {{ this }}
    where status = 'planned'
    {% else %}
    select
        cast(null as varchar) as message_key,
        cast(null as varchar) as client_id,
        cast(null as varchar) as to_address,
        cast(null as varchar) as category,
        cast(null as timestamp) as send_after
    where 1 = 0
    {% endif %}
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
        steps.channel as first_channel,
        steps.fallback_channel,
        steps.fallback_if_missing,
        steps.anchor_field,
        steps.anchor_minutes,
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
        and walk.step = steps.step
    inner join clients
        on walk.client_id = clients.client_id
    inner join contacts
        on walk.contact_id = contacts.contact_id
),

-- the channel the rule picks ("sms; email if phone is missing") and its address
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
        end as channel,
        anchor_value + anchor_minutes * interval '1 minute' as anchored_at
    from step_contacts
),

addressed as (
    select
        *,
        case channel when 'sms' then phone when 'email' then email end as to_address,
        coalesce(due_at, fired_at) as scheduled_at,
        {{ herald.hash_bucket("contact_id || '|' || campaign || '|' || step", 10000) }} as variant_bucket,
        {{ herald.surrogate_key(
            ['client_id', 'campaign', 'step', 'contact_id', 'channel', 'occurrence']
        ) }} as message_key
    from routed
),

-- whether a suppression covers the address: this client's or every client's ('*'), this
-- channel or all, the message type the opt-out answered or all
suppression_checked as (
    select
        addressed.*,
        (
            select min(suppressions.reason)
            from suppressions
            where suppressions.address = addressed.to_address
                and suppressions.client_id in (addressed.client_id, '*')
                and suppressions.channel in (addressed.channel, '*')
                and suppressions.scope in (addressed.message_type, 'all')
        ) as suppression_reason,
        -- express written consent (marketing texts): the latest consent event for the address
        -- and scope grants it, or the client's packet says so (a sms_consent column)
        case
            when addressed.channel <> 'sms' or (addressed.sms_consent is distinct from 'express_written') then true
            else
                coalesce(
                    (
                        select events.kind in ('opt_in', 'confirm') and events.consent_level = 'express_written'
                        from consent_events as events
                        where events.client_id = addressed.client_id
                            and events.channel = 'sms'
                            and events.address = addressed.to_address
                            and events.scope in (addressed.message_type, 'all')
                        order by events.occurred_at desc, events.recorded_at desc
                        limit 1
                    ),
                    exists (
                        select 1 from {{ ref('contact_attributes') }} as consent
                        where consent.contact_id = addressed.contact_id
                            and consent.attribute_name = 'sms_consent'
                            and consent.boolean_value
                    ),
                    false
                )
        end as has_consent
    from addressed
),

-- the first reason that leaves a contact out, in order of precedence
judged as (
    select
        *,
        case
            when campaign_status = 'paused' then 'campaign paused'
            when channel is null and fallback_channel is null
                then 'no ' || case first_channel when 'sms' then 'valid phone' else 'valid email' end
                    || ' for ' || first_channel
            when channel is null then 'no valid phone or email'
            when anchor_field is not null and anchor_value is null then 'no ' || anchor_field
            when anchor_field is not null and anchor_value < fired_at then anchor_field || ' has passed'
            when suppression_reason is not null then 'suppressed: ' || suppression_reason
            when not has_consent then 'no consent: express written consent needed for marketing texts'
        end as exclusion
    from suppression_checked
),

-- one message per address and step: a second contact sharing a phone or email is left out
deduplicated as (
    select
        *,
        case
            when exclusion is null
                and row_number() over (
                    partition by client_id, campaign, occurrence, step, channel, to_address
                    order by case when exclusion is null then 0 else 1 end, contact_id
                ) > 1
                then 'duplicate address'
            else exclusion
        end as reason
    from judged
),

-- Where each recipient is: their own time zone, else their ZIP's, else every zone of their
-- phone's area code (the window must hold in all of them), else the client's; the state (ZIP,
-- else area code) picks the state's calling-hours law, else the federal one.
recipient_zones as (
    select
        deduplicated.message_key,
        deduplicated.client_id,
        coalesce(
            deduplicated.contact_time_zone, postal.time_zones, phone.time_zones, deduplicated.client_time_zone
        ) as zone_list,
        coalesce(postal.state, phone.state) as state
    from deduplicated
    left join regions as postal
        on postal.kind = 'postal' and deduplicated.postal_code = postal.address_value
    left join regions as phone
        on phone.kind = 'phone' and deduplicated.phone = phone.address_value
    where deduplicated.reason is null
),

recipient_zone_rows as (
    select message_key, client_id, state, {{ herald.unnest_csv('zone_list') }} as time_zone
    from recipient_zones
),

-- the window search starts at the scheduled time, or at the pass's clock when that is later: a
-- message due while no pass ran (a carried-over day, a click seen late) is sent at the next
-- allowed moment from now, never at an allowed moment already past (which would send it at once,
-- whatever the time of day)
message_times as (
    select
        recipient_zone_rows.*,
        greatest(deduplicated.scheduled_at, clock.as_of) as scheduled_at,
        count(*) over (partition by recipient_zone_rows.message_key) as zone_count
    from recipient_zone_rows
    inner join deduplicated on recipient_zone_rows.message_key = deduplicated.message_key
    cross join {{ ref('int_journey__clock') }} as clock
),

day_offsets as (
    {%- for offset in range(8) %}
    select {{ offset }} as day_offset
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

-- each zone's allowed intervals for the next eight local days: the client's own hours (its
-- policy and business hours) intersected with the law of the recipient's state
local_days as (
    select
        message_times.*,
        cast({{ herald.utc_to_local('message_times.scheduled_at', 'message_times.time_zone') }} as date)
        + day_offsets.day_offset as local_day
    from message_times
    cross join day_offsets
),

zone_intervals as (
    select
        local_days.message_key,
        local_days.time_zone,
        local_days.zone_count,
        local_days.scheduled_at,
        {{ herald.local_to_utc(
            "cast(local_days.local_day as timestamp)"
            ~ " + greatest(windows.start_minute, coalesce(state_law.start_minute, federal_law.start_minute))"
            ~ " * interval '1 minute'",
            'local_days.time_zone'
        ) }} as opens_at,
        {{ herald.local_to_utc(
            "cast(local_days.local_day as timestamp)"
            ~ " + least(windows.end_minute, coalesce(state_law.end_minute, federal_law.end_minute))"
            ~ " * interval '1 minute'",
            'local_days.time_zone'
        ) }} as closes_at
    from local_days
    inner join windows
        on local_days.client_id = windows.client_id
        and windows.iso_day_of_week = {{ herald.iso_day_of_week('local_days.local_day') }}
    inner join legal_windows as federal_law
        on federal_law.jurisdiction = 'US'
        and federal_law.iso_day_of_week = {{ herald.iso_day_of_week('local_days.local_day') }}
    left join legal_windows as state_law
        on local_days.state = state_law.jurisdiction
        and state_law.iso_day_of_week = {{ herald.iso_day_of_week('local_days.local_day') }}
    where greatest(windows.start_minute, coalesce(state_law.start_minute, federal_law.start_minute))
        < least(windows.end_minute, coalesce(state_law.end_minute, federal_law.end_minute))
),

-- the earliest moment at or after the scheduled time that is inside an interval of every zone:
-- it is the scheduled time itself or the opening of some zone's interval
candidate_moments as (
    select distinct message_key, zone_count, scheduled_at as moment from zone_intervals
    union
    select distinct message_key, zone_count, opens_at as moment
    from zone_intervals
    where opens_at > scheduled_at
),

open_zones as (
    select
        candidate_moments.message_key,
        candidate_moments.moment,
        candidate_moments.zone_count,
        count(distinct zone_intervals.time_zone) as zones_open
    from candidate_moments
    inner join zone_intervals
        on candidate_moments.message_key = zone_intervals.message_key
        and candidate_moments.moment >= zone_intervals.opens_at
        and candidate_moments.moment < zone_intervals.closes_at
    group by candidate_moments.message_key, candidate_moments.moment, candidate_moments.zone_count
),

allowed as (
    select message_key, min(moment) as window_send_after
    from open_zones
    where zones_open = zone_count
    group by message_key
),

sendable as (
    select
        deduplicated.*,
        allowed.window_send_after as send_after,
        cast({{ herald.utc_to_local('allowed.window_send_after', 'deduplicated.client_time_zone') }} as date)
            as local_send_date,
        case
            when deduplicated.reason is null and allowed.window_send_after is null
                then 'no allowed sending time within a week'
            else deduplicated.reason
        end as window_reason
    from deduplicated
    left join allowed on deduplicated.message_key = allowed.message_key
),

-- the daily limit counts messages already planned for that local day by earlier occurrences
already_planned as (
    {% if is_incremental() %}
    select
        planned.client_id,
        planned.campaign,
        planned.channel,
        {{ herald.utc_to_local('planned.send_after', 'clients.time_zone') }} as local_at
    from {{ this }} as planned
    inner join clients on planned.client_id = clients.client_id
    where planned.status = 'planned'
    {% else %}
    select
        cast(null as varchar) as client_id,
        cast(null as varchar) as campaign,
        cast(null as varchar) as channel,
        cast(null as timestamp) as local_at
    where 1 = 0
    {% endif %}
),

planned_per_day as (
    select client_id, campaign, cast(local_at as date) as local_send_date, count(*) as planned_count
    from already_planned
    group by client_id, campaign, cast(local_at as date)
),

-- the daily limit: messages already planned for the local day plus this pass's, in order of
-- entry (first in, first out); one past the limit is carried over to a later day
limit_ranked as (
    select
        sendable.*,
        coalesce(
            sendable.window_reason is null
            and sendable.daily_limit is not null
            and coalesce(planned_per_day.planned_count, 0) + row_number() over (
                partition by
                    sendable.client_id, sendable.campaign, sendable.local_send_date,
                    case when sendable.window_reason is null then 0 else 1 end
                order by sendable.entered_at, sendable.contact_id, sendable.step_position
            ) > sendable.daily_limit,
            false
        ) as is_carried,
        sendable.window_reason as limited_reason
    from sendable
    left join planned_per_day
        on sendable.client_id = planned_per_day.client_id
        and sendable.campaign = planned_per_day.campaign
        and sendable.local_send_date = planned_per_day.local_send_date
),

-- the sender's daily quota (client.yaml senders.daily_limit): one count per client and channel
-- across all its campaigns, over the messages the campaign limits let through, in order of entry
sender_planned_per_day as (
    select client_id, channel, cast(local_at as date) as local_send_date, count(*) as planned_count
    from already_planned
    group by client_id, channel, cast(local_at as date)
),

quota_ranked as (
    select
        limit_ranked.*,
        coalesce(
            limit_ranked.window_reason is null
            and not limit_ranked.is_carried
            and sender_quotas.daily_limit is not null
            and coalesce(sender_planned_per_day.planned_count, 0) + row_number() over (
                partition by
                    limit_ranked.client_id, limit_ranked.channel, limit_ranked.local_send_date,
                    case when limit_ranked.window_reason is null and not limit_ranked.is_carried then 0 else 1 end
                order by
                    limit_ranked.entered_at, limit_ranked.contact_id, limit_ranked.campaign,
                    limit_ranked.step_position
            ) > sender_quotas.daily_limit,
            false
        ) as is_over_quota
    from limit_ranked
    left join sender_quotas
        on limit_ranked.client_id = sender_quotas.client_id
        and limit_ranked.channel = sender_quotas.channel
    left join sender_planned_per_day
        on limit_ranked.client_id = sender_planned_per_day.client_id
        and limit_ranked.channel = sender_planned_per_day.channel
        and limit_ranked.local_send_date = sender_planned_per_day.local_send_date
),

-- a carried message (campaign limit or sender quota) holds its enrollment: the messages after
-- it wait too
carried as (
    select enrollment_id, min(hop) as carried_hop
    from quota_ranked
    where is_carried or is_over_quota
    group by enrollment_id
),

limited as (
    select quota_ranked.*
    from quota_ranked
    left join carried on quota_ranked.enrollment_id = carried.enrollment_id
    where carried.carried_hop is null or quota_ranked.hop < carried.carried_hop
),

-- Frequency caps per recipient across campaigns (marketing per 24 h; the FCC healthcare
-- exemption's 1 a day and 3 a week): messages earlier occurrences planned within the cap's
-- window on either side, plus this run's earlier messages to the same address, must stay under
-- the cap.
-- Earlier messages count even if a cap leaves them out themselves, so the check errs on the
-- side of sending less.
cap_candidates as (
    select limited.*, caps.window_hours, caps.max_messages, caps.label
    from limited
    inner join caps
        on limited.client_id = caps.client_id
        and limited.category = caps.category
    where limited.limited_reason is null
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
        and other.limited_reason is null
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

judged_final as (
    select
        limited.*,
        coalesce(limited.limited_reason, 'frequency cap: at most ' || capped.cap_label) as final_reason
    from limited
    left join capped on limited.message_key = capped.message_key
),

final as (
    select
        limited.message_key,
        limited.client_id,
        limited.campaign,
        limited.step,
        limited.step_position,
        limited.occurrence,
        limited.enrollment_id,
        limited.hop,
        limited.entered_at,
        limited.contact_id,
        limited.message_type,
        limited.category,
        limited.channel,
        case when limited.final_reason is null then limited.to_address end as to_address,
        case when limited.final_reason is null then variants.variant end as variant,
        case
            when limited.final_reason is null then
                case limited.channel when 'sms' then variants.sms_template else variants.email_template end
        end as template,
        case
            when limited.final_reason is null and limited.channel = 'email' then variants.subject
        end as subject_template,
        case when limited.final_reason is null then 'planned' else 'excluded' end as status,
        limited.final_reason as reason,
        limited.scheduled_at,
        case when limited.final_reason is null then limited.send_after end as send_after,
        coalesce(limited.final_reason is null and limited.send_after > limited.scheduled_at, false) as is_deferred,
        case when limited.final_reason is null then template_variables.variables end as variables,
        limited.fired_at,
        {{ herald.utc_now() }} as planned_at
    from judged_final as limited
    left join variants
        on limited.client_id = variants.client_id
        and limited.campaign = variants.campaign
        and limited.step = variants.step
        and limited.variant_bucket >= variants.bucket_from
        and limited.variant_bucket < variants.bucket_to
    left join {{ ref('contact_template_variables') }} as template_variables
        on limited.contact_id = template_variables.contact_id
        and limited.final_reason is null
)

select * from final
{% if is_incremental() %}
where not exists (
        select 1 from {{ this }} as planned
        where planned.message_key = final.message_key
    )
{% endif %}
