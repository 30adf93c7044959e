{#- The message plan, stage 2 of 5: each candidate message judged — the first reason that
    leaves it out, in order of precedence: the campaign is paused; no address for the channel
    rule; the anchor date is missing or has passed; a suppression covers the address (or its
    salted hash, for an erased person: 'suppressed: erased'); a marketing
    text without express written consent; another contact of the same step already has the
    address (a consent grant past its expires_at counts as none, and says so). `reason` is null for a message still going (the send window, the limits and the
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
        end as has_consent
    from candidates
),

-- consent with proof: a marketing text whose latest consent grant has expired (the client's
-- consent.expires_after) says so, with the date
consent_expiry as (
    select
        suppression_checked.*,
        case
            when
                not suppression_checked.has_consent
                and suppression_checked.channel = 'sms'
                and suppression_checked.sms_consent = 'express_written'
                then (
                    select case when events.kind in ('opt_in', 'confirm') then events.expires_at end
                    from consent_events as events
                    where events.client_id = suppression_checked.client_id
                        and events.channel = 'sms'
                        and events.address = suppression_checked.to_address
                        and events.scope in (suppression_checked.message_type, 'all')
                    order by events.occurred_at desc, events.recorded_at desc
                    limit 1
                )
        end as consent_expired_at
    from suppression_checked
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
            when not has_consent and consent_expired_at is not null
                then 'no consent: express written consent expired on '
                    || cast(cast(consent_expired_at as date) as varchar)
            when not has_consent then 'no consent: express written consent needed for marketing texts'
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
