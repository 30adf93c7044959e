{#- One row per conversation thread (client, contact — or the address when no contact has it —
    and channel): when it started and last moved, who spoke last, how many messages each way,
    and whether it is open: the latest inbound message has no answer after it (a manual reply,
    or Herald's answer to a keyword; an after-hours auto-reply or a campaign message does not
    answer anyone). -#}

with

messages as (
    select * from {{ ref('conversation_messages') }}
),

ordered as (
    select
        *,
        row_number() over (
            partition by conversation_id
            order by occurred_at desc, case direction when 'inbound' then 0 else 1 end, conversation_message_id desc
        ) as recency
    from messages
),

threads as (
    select
        conversation_id,
        min(client_id) as client_id,
        min(contact_id) as contact_id,
        min(channel) as channel,
        min(occurred_at) as first_activity_at,
        max(occurred_at) as last_activity_at,
        count(*) filter (where direction = 'inbound') as inbound_count,
        count(*) filter (where direction = 'outbound') as outbound_count,
        max(occurred_at) filter (where direction = 'inbound') as last_inbound_at,
        max(occurred_at) filter (where is_answer) as last_answered_at
    from messages
    group by conversation_id
),

last_messages as (
    select conversation_id, address_masked, direction, kind
    from ordered
    where recency = 1
),

final as (
    select
        threads.conversation_id,
        threads.client_id,
        threads.contact_id,
        threads.channel,
        last_messages.address_masked,
        threads.first_activity_at,
        threads.last_activity_at,
        last_messages.direction as last_direction,
        last_messages.kind as last_kind,
        threads.inbound_count,
        threads.outbound_count,
        threads.last_inbound_at,
        threads.last_answered_at,
        case
            when threads.last_inbound_at is not null
                and (threads.last_answered_at is null or threads.last_answered_at < threads.last_inbound_at)
                then 'open'
            else 'closed'
        end as status
    from threads
    inner join last_messages
        on threads.conversation_id = last_messages.conversation_id
)

select * from final
