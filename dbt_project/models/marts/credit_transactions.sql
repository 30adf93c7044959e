with

credit_ledger as (
    select * from {{ source('herald_ops', 'credit_ledger') }}
),

-- the running balance orders a client's entries by time, then id (entries of one instant
-- are rare and their order does not change the balance after the last of them)
final as (
    select
        entry_id,
        client_id,
        kind,
        cast(amount as decimal(18, 4)) as amount,
        message_key,
        note,
        actor,
        created_at,
        cast(sum(amount) over (
            partition by client_id
            order by created_at, entry_id
            rows between unbounded preceding and current row
        ) as decimal(18, 4)) as balance_after
    from credit_ledger
)

select * from final
