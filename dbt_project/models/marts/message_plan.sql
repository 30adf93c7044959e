{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns'
    )
}}

{#- The message plan: every campaign occurrence not planned yet, expanded into one row per
    step and audience contact — planned (channel, address, A/B variant, template, when to send,
    the template variables) or excluded with the reason. Append-only: an occurrence is
    planned once (herald_ops.campaign_occurrences.planned_at is set right after), so a
    repeated run adds nothing and the plan stays the record of who was left out and why. -#}

with

occurrences as (
    select * from {{ source('herald_ops', 'campaign_occurrences') }}
    where planned_at is null
    {% if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as planned
            where planned.client_id = campaign_occurrences.client_id
                and planned.campaign = campaign_occurrences.campaign
                and planned.occurrence = campaign_occurrences.occurrence
        )
    {% endif %}
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

members as (
    select * from {{ source('segments', 'segment_members') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

suppressions as (
    select * from {{ source('herald_ops', 'suppressions') }}
),

-- who each occurrence is for: the audience segment's current members, narrowed by the trigger
-- to the packet's contacts, the contacts who entered the segment, or those who reached the stage
audience as (
    select
        occurrences.client_id,
        occurrences.campaign,
        occurrences.occurrence,
        occurrences.fired_at,
        members.contact_id
    from occurrences
    inner join campaigns
        on campaigns.client_id = occurrences.client_id
        and campaigns.campaign = occurrences.campaign
    inner join members
        on members.client_id = occurrences.client_id
        and members.segment_name = campaigns.audience
    where
        occurrences.trigger_type in ('schedule', 'manual')
        or (
            occurrences.trigger_type = 'packet_arrival'
            and exists (
                select 1 from {{ ref('contact_sources') }} as sources
                where sources.contact_id = members.contact_id
                    and sources.packet_id = occurrences.packet_id
            )
        )
        or (
            occurrences.trigger_type = 'segment_entry'
            and exists (
                select 1 from {{ source('herald_ops', 'segment_membership_events') }} as entries
                where entries.client_id = members.client_id
                    and entries.segment_name = members.segment_name
                    and entries.contact_id = members.contact_id
                    and entries.event = 'entered'
                    and entries.occurred_at <= occurrences.fired_at
                    and (occurrences.events_since is null or entries.occurred_at > occurrences.events_since)
            )
        )
        or (
            occurrences.trigger_type = 'funnel_event'
            and exists (
                select 1 from {{ ref('funnel_events') }} as events
                where events.contact_id = members.contact_id
                    and events.to_stage = campaigns.trigger_to_stage
                    and (campaigns.trigger_funnel_type is null or events.funnel_type = campaigns.trigger_funnel_type)
                    and events.loaded_at <= occurrences.fired_at
                    and (occurrences.events_since is null or events.loaded_at > occurrences.events_since)
            )
        )
),

-- each step for each contact, with the date it is anchored to and the addresses it may use
step_contacts as (
    select
        audience.client_id,
        audience.campaign,
        audience.occurrence,
        audience.fired_at,
        audience.contact_id,
        campaigns.message_type,
        campaigns.category,
        campaigns.status as campaign_status,
        campaigns.daily_limit,
        steps.step,
        steps.position as step_position,
        steps.channel as first_channel,
        steps.fallback_channel,
        steps.fallback_if_missing,
        steps.anchor_field,
        steps.anchor_minutes,
        clients.time_zone,
        case when contacts.is_phone_valid then contacts.phone_e164 end as phone,
        case when contacts.is_email_valid then contacts.email end as email,
        anchors.anchor_value
    from audience
    inner join campaigns
        on campaigns.client_id = audience.client_id
        and campaigns.campaign = audience.campaign
    inner join steps
        on steps.client_id = audience.client_id
        and steps.campaign = audience.campaign
    inner join clients
        on clients.client_id = audience.client_id
    inner join contacts
        on contacts.contact_id = audience.contact_id
    left join (
        select
            contact_id,
            attribute_name,
            coalesce(timestamp_value, cast(date_value as timestamp)) as anchor_value
        from {{ ref('contact_attributes') }}
        where attribute_type in ('timestamp', 'date')
    ) as anchors
        on anchors.contact_id = audience.contact_id
        and anchors.attribute_name = steps.anchor_field
),

-- the channel the rule picks ("sms; email if phone is missing") and its address
routed as (
    select
        *,
        case
            when first_channel = 'sms' and phone is not null then 'sms'
            when first_channel = 'email' and email is not null then 'email'
            when fallback_channel = 'email' and fallback_if_missing = 'phone' and phone is null and email is not null then 'email'
            when fallback_channel = 'sms' and fallback_if_missing = 'email' and email is null and phone is not null then 'sms'
        end as channel,
        anchor_value + anchor_minutes * interval '1 minute' as anchored_at
    from step_contacts
),

addressed as (
    select
        *,
        case channel when 'sms' then phone when 'email' then email end as to_address,
        case
            when anchor_field is null then fired_at + anchor_minutes * interval '1 minute'
            when anchored_at < fired_at then fired_at
            else anchored_at
        end as scheduled_at,
        {{ herald.hash_bucket("contact_id || '|' || campaign || '|' || step", 10000) }} as variant_bucket
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
        ) as suppression_reason
    from addressed
),

-- the first reason that leaves a contact out, in order of precedence
judged as (
    select
        *,
        case
            when campaign_status = 'paused' then 'campaign paused'
            when channel is null and fallback_channel is null then 'no ' || case first_channel when 'sms' then 'valid phone' else 'valid email' end || ' for ' || first_channel
            when channel is null then 'no valid phone or email'
            when anchor_field is not null and anchor_value is null then 'no ' || anchor_field
            when anchor_field is not null and anchor_value < fired_at then anchor_field || ' has passed'
            when suppression_reason is not null then 'suppressed: ' || suppression_reason
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

-- the next allowed moment in the client's time zone: the scheduled time when it is inside
-- the day's send window, else the start of the next window (up to a week ahead)
local_times as (
    select
        client_id,
        contact_id,
        campaign,
        occurrence,
        step,
        time_zone,
        {{ herald.utc_to_local('scheduled_at', 'time_zone') }} as local_at
    from deduplicated
    where reason is null
),

day_offsets as (
    {%- for offset in range(8) %}
    select {{ offset }} as day_offset{% if not loop.last %} union all{% endif %}
    {%- endfor %}
),

window_candidates as (
    select
        local_times.client_id,
        local_times.contact_id,
        local_times.campaign,
        local_times.occurrence,
        local_times.step,
        local_times.time_zone,
        case
            when day_offsets.day_offset = 0
                and extract(hour from local_at) * 60 + extract(minute from local_at) >= windows.start_minute
                and extract(hour from local_at) * 60 + extract(minute from local_at) < windows.end_minute
                then local_at
            when day_offsets.day_offset = 0
                and extract(hour from local_at) * 60 + extract(minute from local_at) < windows.start_minute
                then cast(cast(local_at as date) as timestamp) + windows.start_minute * interval '1 minute'
            when day_offsets.day_offset > 0
                then cast(cast(local_at as date) + day_offsets.day_offset as timestamp) + windows.start_minute * interval '1 minute'
        end as allowed_local_at
    from local_times
    cross join day_offsets
    inner join windows
        on windows.client_id = local_times.client_id
        and windows.iso_day_of_week = {{ herald.iso_day_of_week('cast(local_times.local_at as date) + day_offsets.day_offset') }}
),

allowed as (
    select
        client_id,
        contact_id,
        campaign,
        occurrence,
        step,
        min(time_zone) as time_zone,
        min(allowed_local_at) as allowed_local_at
    from window_candidates
    group by client_id, contact_id, campaign, occurrence, step
),

timed as (
    select
        deduplicated.*,
        {{ herald.local_to_utc('allowed.allowed_local_at', 'allowed.time_zone') }} as window_send_after,
        cast(allowed.allowed_local_at as date) as local_send_date
    from deduplicated
    left join allowed
        on allowed.client_id = deduplicated.client_id
        and allowed.contact_id = deduplicated.contact_id
        and allowed.campaign = deduplicated.campaign
        and allowed.occurrence = deduplicated.occurrence
        and allowed.step = deduplicated.step
),

-- a contact's window may start a moment before the scheduled time once converted back
-- (a skipped DST hour): never send earlier than scheduled
sendable as (
    select
        *,
        case when window_send_after < scheduled_at then scheduled_at else window_send_after end as send_after
    from timed
),

-- the daily limit counts messages already planned for that local day by earlier occurrences
already_planned as (
    {% if is_incremental() %}
        select
            client_id,
            campaign,
            {{ herald.utc_to_local('send_after', 'clients.time_zone') }} as local_at
        from {{ this }} as planned
        inner join clients using (client_id)
        where planned.status = 'planned'
    {% else %}
        select
            cast(null as varchar) as client_id,
            cast(null as varchar) as campaign,
            cast(null as timestamp) as local_at
        where 1 = 0
    {% endif %}
),

planned_per_day as (
    select client_id, campaign, cast(local_at as date) as local_send_date, count(*) as planned_count
    from already_planned
    group by client_id, campaign, cast(local_at as date)
),

limited as (
    select
        sendable.*,
        case
            when sendable.reason is null
                and sendable.daily_limit is not null
                and coalesce(planned_per_day.planned_count, 0) + row_number() over (
                    partition by sendable.client_id, sendable.campaign, sendable.local_send_date,
                        case when sendable.reason is null then 0 else 1 end
                    order by sendable.send_after, sendable.contact_id, sendable.step_position
                ) > sendable.daily_limit
                then 'over the daily limit of ' || cast(sendable.daily_limit as varchar)
            else sendable.reason
        end as final_reason
    from sendable
    left join planned_per_day
        on planned_per_day.client_id = sendable.client_id
        and planned_per_day.campaign = sendable.campaign
        and planned_per_day.local_send_date = sendable.local_send_date
),

final as (
    select
        {{ herald.surrogate_key(['limited.client_id', 'limited.campaign', 'limited.step', 'limited.contact_id', 'limited.channel', 'limited.occurrence']) }} as message_key,
        limited.client_id,
        limited.campaign,
        limited.step,
        limited.step_position,
        limited.occurrence,
        limited.contact_id,
        limited.message_type,
        limited.category,
        limited.channel,
        case when limited.final_reason is null then limited.to_address end as to_address,
        case when limited.final_reason is null then variants.variant end as variant,
        case when limited.final_reason is null then
            case limited.channel when 'sms' then variants.sms_template else variants.email_template end
        end as template,
        case when limited.final_reason is null and limited.channel = 'email' then variants.subject end as subject_template,
        case when limited.final_reason is null then 'planned' else 'excluded' end as status,
        limited.final_reason as reason,
        limited.scheduled_at,
        case when limited.final_reason is null then limited.send_after end as send_after,
        coalesce(limited.final_reason is null and limited.send_after > limited.scheduled_at, false) as is_deferred,
        case when limited.final_reason is null then template_variables.variables end as variables,
        limited.fired_at,
        {{ herald.utc_now() }} as planned_at
    from limited
    left join variants
        on variants.client_id = limited.client_id
        and variants.campaign = limited.campaign
        and variants.step = limited.step
        and limited.variant_bucket >= variants.bucket_from
        and limited.variant_bucket < variants.bucket_to
    left join {{ ref('contact_template_variables') }} as template_variables
        on template_variables.contact_id = limited.contact_id
        and limited.final_reason is null
)

select * from final
