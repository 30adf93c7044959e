with

phone_numbers as (
    select * from {{ source('herald_raw', 'phone_numbers') }}
),

-- staging trims cell values, so the lookup is keyed by the trimmed raw text too; two raw
-- spellings that differ only by surrounding spaces normalize alike (prefer a valid reading)
keyed as (
    select
        {{ trim_whitespace('raw_value') }} as raw_phone,
        default_region,
        phone_e164,
        is_valid as is_phone_valid,
        checked_at,
        row_number() over (
            partition by {{ trim_whitespace('raw_value') }}, default_region
            order by case when is_valid then 0 else 1 end, checked_at desc, raw_value
        ) as spelling_rank
    from phone_numbers
),

final as (
    select
        raw_phone,
        default_region,
        phone_e164,
        is_phone_valid,
        checked_at
    from keyed
    where spelling_rank = 1
)

select * from final
