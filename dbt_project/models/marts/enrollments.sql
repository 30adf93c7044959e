{#- One row per campaign, contact and enrollment: where the contact is in the journey, from the
    ledger the send runs keep (herald_ops.enrollments), with how many of the enrollment's
    messages were planned, left out and sent. Rebuilt after each send and delivery. -#}

with

ledger as (
    select * from {{ source('journey_feedback', 'enrollments') }}
),

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

messages as (
    select
        client_id,
        campaign,
        contact_id,
        occurrence,
        count(*) as messages_enqueued,
        count(case when status = 'sent' then 1 end) as messages_sent,
        count(case when status = 'cancelled' then 1 end) as messages_cancelled
    from outbox
    group by client_id, campaign, contact_id, occurrence
),

final as (
    select
        ledger.enrollment_id,
        ledger.client_id,
        ledger.campaign,
        ledger.contact_id,
        ledger.occurrence,
        ledger.enrollment_rule,
        ledger.config_version,
        ledger.entered_at,
        ledger.status,
        ledger.step,
        ledger.step_entered_at,
        ledger.next_at,
        ledger.wait_reason,
        ledger.exit_reason,
        ledger.ended_at,
        coalesce(messages.messages_enqueued, 0) as messages_enqueued,
        coalesce(messages.messages_sent, 0) as messages_sent,
        coalesce(messages.messages_cancelled, 0) as messages_cancelled,
        ledger.updated_at
    from ledger
    left join messages
        on ledger.client_id = messages.client_id
        and ledger.campaign = messages.campaign
        and ledger.contact_id = messages.contact_id
        and ledger.occurrence = messages.occurrence
)

select * from final
