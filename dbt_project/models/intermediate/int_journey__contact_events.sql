{#- (Replies and answers are read as journey_feedback: the runs that write them also deliver,
    downstream of the plan, so a plain dependency would loop.)
    What contacts did that a journey waits for or exits on, one row per event: replied,
    confirmed (an appointment C; detail: the appointment_key it matched, if any), opted_out (detail: the
    opt-out's scope, 'all' or a message type), funnel_stage (detail: the stage), entered_segment
    (detail: the segment), delivered / opened / clicked (a message of any campaign). -#}

with

inbound_processing as (
    select * from {{ source('journey_feedback', 'inbound_processing') }}
),

inbound_messages as (
    select * from {{ source('journey_feedback_raw', 'inbound_messages') }}
),

appointment_responses as (
    select * from {{ source('journey_feedback', 'appointment_responses') }}
),

appointments as (
    select * from {{ ref('appointments') }}
),

answer_matches as (
    {{ herald.appointment_answer_matches('appointment_responses', 'appointments') }}
),

suppressions as (
    select * from {{ source('herald_ops', 'suppressions') }}
),

membership_events as (
    select * from {{ source('herald_ops', 'segment_membership_events') }}
),

funnel_events as (
    select * from {{ ref('funnel_events') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

outbox as (
    select * from {{ source('journey_feedback', 'outbox') }}
),

link_clicks as (
    select * from {{ source('journey_feedback_raw', 'link_clicks') }}
),

replies as (
    select
        inbound_processing.client_id,
        inbound_processing.contact_id,
        'replied' as event_name,
        cast(null as varchar) as detail,
        inbound_messages.received_at as occurred_at
    from inbound_processing
    inner join inbound_messages on inbound_processing.inbound_id = inbound_messages.inbound_id
    where inbound_processing.client_id is not null and inbound_processing.contact_id is not null
        -- a HELP is answered by Herald with the program's help text: not a reply to the journey
        and inbound_processing.kind <> 'help'
),

confirmations as (
    select
        appointment_responses.client_id,
        appointment_responses.contact_id,
        'confirmed' as event_name,
        answer_matches.appointment_key as detail,
        appointment_responses.received_at as occurred_at
    from appointment_responses
    left join answer_matches on appointment_responses.inbound_id = answer_matches.inbound_id
    where appointment_responses.response = 'confirmed'
),

opt_outs as (
    select
        contacts.client_id,
        contacts.contact_id,
        'opted_out' as event_name,
        suppressions.scope as detail,  -- 'all', or the message type the opt-out answered
        suppressions.created_at as occurred_at
    from suppressions
    inner join contacts
        on suppressions.client_id in (contacts.client_id, '*')
        and (
            (suppressions.channel in ('sms', '*') and suppressions.address = contacts.phone_e164)
            or (suppressions.channel in ('email', '*') and suppressions.address = contacts.email)
        )
),

stages as (
    select
        client_id,
        contact_id,
        'funnel_stage' as event_name,
        to_stage as detail,
        occurred_at
    from funnel_events
    where contact_id is not null
),

entries as (
    select
        client_id,
        contact_id,
        'entered_segment' as event_name,
        segment_name as detail,
        occurred_at
    from membership_events
    where event = 'entered'  -- noqa: RF04
),

message_events as (
    select
        client_id, contact_id, 'delivered' as event_name, cast(null as varchar) as detail, delivered_at as occurred_at
    from outbox
    where delivered_at is not null
    union all
    select client_id, contact_id, 'opened' as event_name, cast(null as varchar) as detail, opened_at as occurred_at
    from outbox
    where opened_at is not null
    union all
    select client_id, contact_id, 'clicked' as event_name, cast(null as varchar) as detail, clicked_at as occurred_at
    from outbox
    where clicked_at is not null
),

clicks as (
    select
        client_id,
        contact_id,
        'clicked' as event_name,
        cast(null as varchar) as detail,
        clicked_at as occurred_at
    from link_clicks
    where contact_id is not null and user_agent_class <> 'bot'
),

final as (
    select * from replies
    union all
    select * from confirmations
    union all
    select * from opt_outs
    union all
    select * from stages
    union all
    select * from entries
    union all
    select * from message_events
    union all
    select * from clicks
)

select * from final
