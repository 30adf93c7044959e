{#- The message plan, stage 4 of 5: the campaign's daily limit and the sender's daily quota
    (client.yaml senders.daily_limit, shared by the client's campaigns). Each counts the
    messages earlier passes planned for the client's local day, then this pass's in order of
    entry (first in, first out); a message past either is carried over to a later day
    (carry_over says which), and the steps after it in its enrollment wait with it. Carried rows
    stay here for inspection; the plan has no row for them (marts.journey_transitions shows the
    enrollment 'carried_over'). -#}

{#- Column comments are not written for the stages (their descriptions are in the dbt docs): a
    comment per column per stage on every pass was most of what the split cost. -#}
{{ config(pre_hook="{{ herald.jit_off() }}", persist_docs={"relation": true, "columns": false}) }}

with

timed as (
    select * from {{ ref('int_message_plan__timed') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

sender_quotas as (
    select * from {{ source('herald_ops', 'sender_quotas') }}
),

-- the local day of each message earlier passes planned
already_planned as (
    select
        planned.client_id,
        planned.campaign,
        planned.channel,
        {{ herald.utc_to_local('planned.send_after', 'clients.time_zone') }} as local_at
    from {{ ref('int_message_plan__earlier') }} as planned
    inner join clients on planned.client_id = clients.client_id
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
        timed.*,
        coalesce(
            timed.window_reason is null
            and timed.daily_limit is not null
            and coalesce(planned_per_day.planned_count, 0) + row_number() over (
                partition by
                    timed.client_id, timed.campaign, timed.local_send_date,
                    case when timed.window_reason is null then 0 else 1 end
                order by timed.entered_at, timed.contact_id, timed.step_position
            ) > timed.daily_limit,
            false
        ) as is_carried
    from timed
    left join planned_per_day
        on timed.client_id = planned_per_day.client_id
        and timed.campaign = planned_per_day.campaign
        and timed.local_send_date = planned_per_day.local_send_date
),

-- the sender's daily quota: one count per client and channel across all its campaigns, over
-- the messages the campaign limits let through, in order of entry
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

final as (
    select
        quota_ranked.message_key,
        quota_ranked.client_id,
        quota_ranked.campaign,
        quota_ranked.step,
        quota_ranked.step_position,
        quota_ranked.config_version,
        quota_ranked.occurrence,
        quota_ranked.enrollment_id,
        quota_ranked.hop,
        quota_ranked.entered_at,
        quota_ranked.contact_id,
        quota_ranked.message_type,
        quota_ranked.category,
        quota_ranked.campaign_status,
        quota_ranked.daily_limit,
        quota_ranked.sms_consent,
        quota_ranked.first_channel,
        quota_ranked.fallback_channel,
        quota_ranked.fallback_if_missing,
        quota_ranked.anchor_field,
        quota_ranked.anchor_value,
        quota_ranked.client_time_zone,
        quota_ranked.contact_time_zone,
        quota_ranked.postal_code,
        quota_ranked.phone,
        quota_ranked.email,
        quota_ranked.channel,
        quota_ranked.to_address,
        quota_ranked.fired_at,
        quota_ranked.scheduled_at,
        quota_ranked.variant_bucket,
        quota_ranked.suppression_reason,
        quota_ranked.has_consent,
        quota_ranked.exclusion,
        quota_ranked.reason,
        quota_ranked.send_after,
        quota_ranked.local_send_date,
        quota_ranked.window_reason,
        quota_ranked.deferral_reason,
        quota_ranked.is_carried,
        quota_ranked.is_over_quota,
        case
            when carried.carried_hop is null or quota_ranked.hop < carried.carried_hop then null
            when quota_ranked.hop > carried.carried_hop then 'an earlier step was carried over'
            when quota_ranked.is_carried then 'daily limit'
            else 'sender quota'
        end as carry_over
    from quota_ranked
    left join carried on quota_ranked.enrollment_id = carried.enrollment_id
)

select * from final
