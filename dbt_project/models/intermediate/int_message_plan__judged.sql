{#- The message plan, stage 2 of 5: each candidate message judged — the first reason that
    leaves it out, in order of precedence: the campaign is paused (in its configuration, or in
    the portal: herald_ops.campaign_pauses, 'paused by <user> in the portal'); no address for the channel
    rule; the anchor date is missing or has passed; a suppression covers the address (or its
    salted hash, for an erased person: 'suppressed: erased'); a marketing
    text without express written consent (a consent grant past its expires_at counts as none, and
    says so); the contact's preferences ('preference: topic offers off', 'preference: email off',
    'preference: paused until 2026-12-21'); another contact of the same step already has the
    address. `reason` is null for a message still going (the send window, the limits and the
    frequency caps come next). -#}

{#- Column comments are not written for the stages (their descriptions are in the dbt docs): a
    comment per column per stage on every pass was most of what the split cost. -#}
{{ config(pre_hook="{{ herald.jit_off() }}", persist_docs={"relation": true, "columns": false}) }}

with

planned_candidates as (
    select * from {{ ref('int_message_plan__candidates') }}
),

privacy_salt as (
    select max(salt) as salt from {{ source('herald_ops', 'privacy_salt') }}
),

-- an erased person's address is kept only as a salted hash (herald/privacy): each recipient's
-- address is hashed the same way, so a new packet's row for them is still left out
candidates as (
    select
        planned_candidates.*,
        'erased:' || {{ herald.sha256_hex("coalesce(privacy_salt.salt, '') || planned_candidates.to_address") }}
            as erased_address
    from planned_candidates
    cross join privacy_salt
),

suppressions as (
    select * from {{ source('herald_ops', 'suppressions') }}
),

consent_events as (
    select * from {{ source('herald_ops', 'consent_events') }}
),

-- a pause from the portal (herald_ops.campaign_pauses): a runtime override of the campaign's
-- configured status, with who paused it
portal_pauses as (
    select * from {{ source('herald_ops', 'campaign_pauses') }}
),

-- the moment this pass plans at: a consent past its expires_at by then counts as none
clock as (
    select as_of from {{ ref('int_journey__clock') }}
),

-- whether a suppression covers the address: this client's or every client's ('*'), this
-- channel or all, the message type the opt-out answered or all
suppression_checked as (
    select
        candidates.*,
        coalesce(
            (
                select min(suppressions.reason)
                from suppressions
                where suppressions.address = candidates.to_address
                    and suppressions.client_id in (candidates.client_id, '*')
                    and suppressions.channel in (candidates.channel, '*')
                    and suppressions.scope in (candidates.message_type, 'all')
            ),
            (
                select min(suppressions.reason)
                from suppressions
                where suppressions.address = candidates.erased_address
                    and suppressions.client_id in (candidates.client_id, '*')
                    and suppressions.channel in (candidates.channel, '*')
                    and suppressions.scope in (candidates.message_type, 'all')
            )
        ) as suppression_reason,
        -- express written consent (marketing texts): the latest consent event for the address
        -- and scope grants it, or the client's packet says so (a sms_consent column)
        case
            when candidates.channel <> 'sms' or (candidates.sms_consent is distinct from 'express_written') then true
            else
                coalesce(
                    (
                        select
                            events.kind in ('opt_in', 'confirm') and events.consent_level = 'express_written'
                            and (events.expires_at is null or events.expires_at > (select clock.as_of from clock))
                        from consent_events as events
                        where events.client_id = candidates.client_id
                            and events.channel = 'sms'
                            and events.address = candidates.to_address
                            and events.scope in (candidates.message_type, 'all')
                        order by events.occurred_at desc, events.recorded_at desc
                        limit 1
                    ),
                    exists (
                        select 1 from {{ ref('contact_attributes') }} as consent
                        where consent.contact_id = candidates.contact_id
                            and consent.attribute_name = 'sms_consent'
                            and consent.boolean_value
                    ),
                    false
                )
        end as has_consent,
        (
            select max(portal_pauses.paused_by)
            from portal_pauses
            where portal_pauses.client_id = candidates.client_id
                and portal_pauses.campaign = candidates.campaign
        ) as portal_paused_by
    from candidates
),

-- preferences (herald/compliance/preferences.py): the contact turned the campaign's topic or
-- the channel off (any message), or paused marketing until a date; frequency is in __capped
preferences as (
    select * from {{ source('herald_ops', 'contact_preferences') }}
),

campaign_topics as (
    select * from {{ source('herald_ops', 'campaign_topics') }}
),

preference_checked as (
    select
        suppression_checked.*,
        case
            when preferences.contact_id is null then null
            when campaign_topics.topic is not null
                and ',' || preferences.topics_off || ',' like '%,' || campaign_topics.topic || ',%'
                then 'preference: topic ' || campaign_topics.topic || ' off'
            when suppression_checked.channel = 'email' and preferences.email_off then 'preference: email off'
            when suppression_checked.channel = 'sms' and preferences.sms_off then 'preference: sms off'
            when suppression_checked.category = 'marketing'
                and cast(suppression_checked.scheduled_at as date) < preferences.paused_until
                then 'preference: paused until ' || cast(preferences.paused_until as varchar)
        end as preference_reason
    from suppression_checked
    left join preferences
        on suppression_checked.client_id = preferences.client_id
        and suppression_checked.contact_id = preferences.contact_id
    left join campaign_topics
        on suppression_checked.client_id = campaign_topics.client_id
        and suppression_checked.campaign = campaign_topics.campaign
),

-- consent with proof: a marketing text whose latest consent grant has expired (the client's
-- consent.expires_after) says so, with the date
consent_expiry as (
    select
        preference_checked.*,
        case
            when
                not preference_checked.has_consent
                and preference_checked.channel = 'sms'
                and preference_checked.sms_consent = 'express_written'
                then (
                    select case when events.kind in ('opt_in', 'confirm') then events.expires_at end
                    from consent_events as events
                    where events.client_id = preference_checked.client_id
                        and events.channel = 'sms'
                        and events.address = preference_checked.to_address
                        and events.scope in (preference_checked.message_type, 'all')
                    order by events.occurred_at desc, events.recorded_at desc
                    limit 1
                )
        end as consent_expired_at
    from preference_checked
),

-- the first reason that leaves a contact out, in order of precedence
judged as (
    select
        *,
        case
            when campaign_status = 'paused' then 'campaign paused'
            when portal_paused_by is not null then 'paused by ' || portal_paused_by || ' in the portal'
            when channel is null and fallback_channel is null
                then 'no ' || case first_channel when 'sms' then 'valid phone' else 'valid email' end
                    || ' for ' || first_channel
            when channel is null then 'no valid phone or email'
            when anchor_field is not null and anchor_value is null then 'no ' || anchor_field
            when anchor_field is not null and anchor_value < fired_at then anchor_field || ' has passed'
            when suppression_reason is not null then 'suppressed: ' || suppression_reason
            when not has_consent and consent_expired_at is not null
                then 'no consent: express written consent expired on '
                    || cast(cast(consent_expired_at as date) as varchar)
            when not has_consent then 'no consent: express written consent needed for marketing texts'
            when preference_reason is not null then preference_reason
        end as exclusion
    from consent_expiry
),

-- one message per address and step: a second contact sharing a phone or email is left out
final as (
    select
        message_key,
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
        to_address,
        fired_at,
        scheduled_at,
        variant_bucket,
        suppression_reason,
        has_consent,
        exclusion,
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
)

select * from final
