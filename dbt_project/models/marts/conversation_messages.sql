{#- One row per message in a conversation thread (the unified inbox, as data): every
    outbound message in the outbox — campaign messages (kind automated), answers to replies
    (reply: opt-out confirmations, HELP answers, auto-replies) and manual replies (manual, from
    `herald reply`) — and every inbound message, in one timeline per client, contact (or, for
    a number no contact has, the address) and channel.

    An inbound message belongs to the client whose sender number it was sent to: the client
    the compliance engine matched (herald_ops.inbound_processing), else the client that sends
    from that number (herald_ops.outbox.sender); its contact likewise, else the client's contact
    with that phone (the first by id when a household shares one). Addresses are masked. -#}
{#- E.164 country codes of two digits (one-digit: +1, +7; the rest have three) -#}
{%- set two_digit_country_codes = '^[+](20|27|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])' -%}

with

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

inbound_messages as (
    select * from {{ source('herald_raw', 'inbound_messages') }}
),

inbound_processing as (
    select * from {{ source('herald_ops', 'inbound_processing') }}
),

contacts as (
    select * from {{ ref('contacts') }}
),

-- which client sends from which number (the outbox holds the sender of every message sent)
client_senders as (
    select sender, min(client_id) as client_id
    from outbox
    where channel = 'sms' and sender is not null
    group by sender
),

outbound as (
    select
        'out:' || outbox.message_key as conversation_message_id,
        outbox.client_id,
        nullif(outbox.contact_id, '') as contact_id,
        outbox.channel,
        outbox.to_address as address,
        'outbound' as direction,
        case outbox.campaign
            when '_manual' then 'manual'
            when '_replies' then 'reply'
            else 'automated'
        end as kind,
        outbox.campaign,
        outbox.message_type,
        outbox.message_key,
        cast(null as varchar) as inbound_id,
        case when outbox.channel = 'sms' then outbox.body_text else outbox.subject end as body,
        outbox.status,
        cast(null as varchar) as inbound_action,
        coalesce(outbox.sent_at, outbox.enqueued_at) as occurred_at,
        outbox.send_after
    from outbox
),

inbound_matched as (
    select
        inbound_messages.*,
        coalesce(inbound_processing.client_id, client_senders.client_id) as client_id,
        inbound_processing.contact_id as processed_contact_id,
        inbound_processing.action as inbound_action
    from inbound_messages
    left join inbound_processing
        on inbound_messages.inbound_id = inbound_processing.inbound_id
    left join client_senders
        on inbound_messages.to_address = client_senders.sender
),

inbound as (
    select
        'in:' || inbound_matched.inbound_id as conversation_message_id,
        inbound_matched.client_id,
        coalesce(
            inbound_matched.processed_contact_id,
            (
                select min(contacts.contact_id)
                from contacts
                where contacts.client_id = inbound_matched.client_id
                    and contacts.phone_e164 = inbound_matched.from_address
            )
        ) as contact_id,
        inbound_matched.channel,
        inbound_matched.from_address as address,
        'inbound' as direction,
        'inbound' as kind,
        cast(null as varchar) as campaign,
        cast(null as varchar) as message_type,
        cast(null as varchar) as message_key,
        inbound_matched.inbound_id,
        inbound_matched.body,
        'received' as status,
        inbound_matched.inbound_action,
        inbound_matched.received_at as occurred_at,
        cast(null as timestamp) as send_after
    from inbound_matched
    -- a message to a number no client sends from belongs to no conversation
    where inbound_matched.client_id is not null
),

unioned as (
    select * from outbound
    union all
    select * from inbound
),

-- E.164 country codes are 1 digit (+1, +7), 2 digits (the ITU list below) or 3 digits
phone_country_codes as (
    select
        *,
        case
            when channel <> 'sms' then null
            when {{ herald.regexp_like('address', '^[+][17]') }} then 1
            when {{ herald.regexp_like('address', two_digit_country_codes) }} then 2
            else 3
        end as country_code_length
    from unioned
),

final as (
    select
        conversation_message_id,
        {{ herald.surrogate_key(['client_id', 'channel', "coalesce(contact_id, address)"]) }} as conversation_id,
        client_id,
        contact_id,
        channel,
        case
            when channel = 'sms' and address like '+%'
                then substr(address, 1, 1 + country_code_length)
                    || repeat('*', greatest(length(address) - 3 - country_code_length, 0))
                    || right(address, 2)
            when channel = 'email' and address like '_%@_%'
                then substr(address, 1, 1) || '***@' || split_part(address, '@', 2)
            else '***'
        end as address_masked,
        direction,
        kind,
        campaign,
        message_type,
        message_key,
        inbound_id,
        body,
        status,
        inbound_action,
        -- a person's answer to the thread: a manual reply, or Herald's answer to a keyword
        -- (opt-out confirmation, HELP); the after-hours auto-reply and campaign messages are not
        (
            direction = 'outbound'
            and kind in ('manual', 'reply')
            and coalesce(message_type, '') <> 'auto_reply'
            and status in ('queued', 'sending', 'sent')
        ) as is_answer,
        occurred_at,
        send_after
    from phone_country_codes
)

select * from final
