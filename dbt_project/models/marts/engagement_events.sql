-- one row per open or click of a message: clicks on Herald's tracked links (link previews and
-- mail scanners left out) and Resend's opened / clicked webhooks, each with its outbox message
-- `event` is the column name journeys read (wait_for: clicked / opened)
with

link_clicks as (
    select * from {{ source('herald_raw', 'link_clicks') }}
),

provider_events as (
    select * from {{ source('herald_raw', 'provider_events') }}
),

provider_event_processing as (
    select * from {{ source('herald_ops', 'provider_event_processing') }}
),

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

tracked_clicks as (
    select
        click_id as event_id,
        message_key,
        'clicked' as event,  -- noqa: RF04
        url,
        clicked_at as occurred_at
    from link_clicks
    where user_agent_class <> 'bot'
),

-- an opened / clicked webhook counts once it was applied to its message (engagement_recorded)
provider_engagement as (
    select
        provider_events.event_id,
        provider_event_processing.message_key,
        case
            when {{ herald.json_text_at('provider_events.payload', ['type']) }} = 'email.opened' then 'opened'
            else 'clicked'
        end as event,  -- noqa: RF04
        {{ herald.json_text_at('provider_events.payload', ['data', 'click', 'link']) }} as url,
        provider_events.received_at as occurred_at
    from provider_events
    inner join provider_event_processing
        on provider_events.event_id = provider_event_processing.event_id
    where provider_events.source = 'resend'
        and provider_event_processing.action = 'engagement_recorded'
),

all_events as (
    select * from tracked_clicks
    union all
    select * from provider_engagement
),

final as (
    select
        all_events.event_id,
        all_events.message_key,
        outbox.client_id,
        outbox.campaign,
        outbox.step,
        outbox.variant,
        outbox.contact_id,
        outbox.channel,
        all_events.event,
        all_events.url,
        all_events.occurred_at
    from all_events
    inner join outbox
        on all_events.message_key = outbox.message_key
)

select * from final
