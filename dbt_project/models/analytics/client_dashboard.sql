{#- The windows end at `dashboard_as_of` (var, 'YYYY-MM-DD HH:MM:SS' UTC; default: the build's
    time), so the numbers are reproducible and testable. -#}
{%- set now = modules.datetime.datetime.utcnow() + modules.datetime.timedelta(seconds=herald.clock_offset_seconds()) -%}
{%- set as_of = var('dashboard_as_of', now.strftime('%Y-%m-%d %H:%M:%S')) -%}

with

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

deliveries as (
    select * from {{ ref('deliveries') }}
),

outbox as (
    select * from {{ source('herald_ops', 'outbox') }}
),

inbound_messages as (
    select * from {{ source('herald_raw', 'inbound_messages') }}
),

inbound_processing as (
    select * from {{ source('herald_ops', 'inbound_processing') }}
),

suppressions as (
    select * from {{ source('herald_ops', 'suppressions') }}
),

credit_transactions as (
    select * from {{ ref('credit_transactions') }}
),

credit_alerts as (
    select * from {{ source('herald_ops', 'credit_alerts') }}
),

as_of as (
    select cast('{{ as_of }}' as timestamp) as as_of_at
),

-- a notification counts as delivered only when the provider said so: a delivery (or read)
-- receipt; failed when its final outcome was failed, undelivered or bounced (a refusal
-- included). An accepted message with no receipt yet is neither (the client report's definitions)
delivered as (
    select
        deliveries.client_id,
        deliveries.message_key,
        coalesce(deliveries.delivered_at, deliveries.sent_at) as delivered_at
    from deliveries
    where (deliveries.delivered_at is not null or deliveries.final_status in ('delivered', 'read'))
        -- Herald's own answers (_replies, _manual) are conversations, not notifications
        and left(coalesce(deliveries.campaign, ''), 1) <> '_'
),

failed as (
    select
        deliveries.client_id,
        coalesce(deliveries.failed_at, deliveries.bounced_at, deliveries.sent_at) as failed_at
    from deliveries
    where deliveries.delivered_at is null
        and deliveries.final_status in ('failed', 'undelivered', 'bounced')
        and left(coalesce(deliveries.campaign, ''), 1) <> '_'
),

failure_counts as (
    select
        failed.client_id,
        count(*) as failed_30d
    from failed
    cross join as_of
    where failed.failed_at > as_of.as_of_at - interval '30 days'
        and failed.failed_at <= as_of.as_of_at
    group by failed.client_id
),

-- a reply is credited to the latest message sent to its sender from the number (or address) it
-- was sent to, within the 7 days before it (as in campaign_performance_daily)
reply_touches as (
    select
        outbox.message_key,
        row_number() over (
            partition by inbound_messages.inbound_id
            order by outbox.sent_at desc, outbox.message_key desc
        ) as touch_rank
    from inbound_messages
    inner join outbox
        on inbound_messages.channel = outbox.channel
        and inbound_messages.from_address = outbox.to_address
        and inbound_messages.to_address = outbox.sender
        and inbound_messages.received_at >= outbox.sent_at
        and inbound_messages.received_at < outbox.sent_at + interval '7 days'
),

replied as (
    select distinct message_key
    from reply_touches
    where touch_rank = 1
),

delivery_counts as (
    select
        delivered.client_id,
        count(*) filter (where delivered.delivered_at > as_of.as_of_at - interval '1 day') as delivered_24h,
        count(*) filter (where delivered.delivered_at > as_of.as_of_at - interval '3 days') as delivered_3d,
        count(*) filter (where delivered.delivered_at > as_of.as_of_at - interval '7 days') as delivered_7d,
        count(*) filter (where delivered.delivered_at > as_of.as_of_at - interval '30 days') as delivered_30d,
        count(replied.message_key) filter (
            where delivered.delivered_at > as_of.as_of_at - interval '30 days'
        ) as replied_30d
    from delivered
    cross join as_of
    left join replied
        on delivered.message_key = replied.message_key
    where delivered.delivered_at <= as_of.as_of_at
    group by delivered.client_id
),

-- opt-outs: STOP replies that suppressed (the compliance engine's record), plus web
-- unsubscribes and carrier opt-outs (suppressions from web/provider; a reply's suppression is
-- already counted through inbound_processing)
opt_out_events as (
    select client_id, processed_at as opted_out_at
    from inbound_processing
    where kind = 'opt_out' and action = 'suppressed' and client_id is not null
    union all
    select client_id, created_at as opted_out_at
    from suppressions
    where reason = 'opt_out' and source in ('web', 'provider')
),

opt_out_counts as (
    select
        opt_out_events.client_id,
        count(*) as opt_outs_30d
    from opt_out_events
    cross join as_of
    where opt_out_events.opted_out_at > as_of.as_of_at - interval '30 days'
        and opt_out_events.opted_out_at <= as_of.as_of_at
    group by opt_out_events.client_id
),

balances as (
    select
        credit_transactions.client_id,
        sum(credit_transactions.amount) as credit_balance
    from credit_transactions
    cross join as_of
    where credit_transactions.created_at <= as_of.as_of_at
    group by credit_transactions.client_id
),

alert_counts as (
    select
        credit_alerts.client_id,
        count(*) filter (where credit_alerts.crossed_at > as_of.as_of_at - interval '30 days') as credit_alerts_30d,
        max(credit_alerts.crossed_at) as last_credit_alert_at
    from credit_alerts
    cross join as_of
    where credit_alerts.crossed_at <= as_of.as_of_at
    group by credit_alerts.client_id
),

final as (
    select
        clients.client_id,
        clients.name as client_name,
        as_of.as_of_at,
        balances.client_id is not null as is_metered,
        cast(balances.credit_balance as decimal(18, 4)) as credit_balance,
        coalesce(delivery_counts.delivered_24h, 0) as delivered_24h,
        coalesce(delivery_counts.delivered_3d, 0) as delivered_3d,
        coalesce(delivery_counts.delivered_7d, 0) as delivered_7d,
        coalesce(delivery_counts.delivered_30d, 0) as delivered_30d,
        coalesce(failure_counts.failed_30d, 0) as failed_30d,
        -- over the messages with a final outcome; null while none has
        cast(coalesce(delivery_counts.delivered_30d, 0) as float8)
        / nullif(coalesce(delivery_counts.delivered_30d, 0) + coalesce(failure_counts.failed_30d, 0), 0)
            as delivery_rate_30d,
        coalesce(delivery_counts.replied_30d, 0) as replied_30d,
        case
            when coalesce(delivery_counts.delivered_30d, 0) > 0
                then round(cast(100.0 * delivery_counts.replied_30d / delivery_counts.delivered_30d as numeric), 1)
        end as response_pct_30d,
        coalesce(opt_out_counts.opt_outs_30d, 0) as opt_outs_30d,
        coalesce(alert_counts.credit_alerts_30d, 0) as credit_alerts_30d,
        alert_counts.last_credit_alert_at
    from clients
    cross join as_of
    left join balances
        on clients.client_id = balances.client_id
    left join delivery_counts
        on clients.client_id = delivery_counts.client_id
    left join failure_counts
        on clients.client_id = failure_counts.client_id
    left join opt_out_counts
        on clients.client_id = opt_out_counts.client_id
    left join alert_counts
        on clients.client_id = alert_counts.client_id
)

select * from final
