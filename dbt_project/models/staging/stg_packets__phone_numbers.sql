{%- set final_columns = ['raw_phone', 'default_region', 'phone_e164', 'is_phone_valid', 'checked_at'] -%}

with

-- not materialized (here and below): the lookup is read three times, and re-reading it is
-- cheaper than the copy both engines would otherwise make of a CTE read more than once
phone_numbers as not materialized (
    select * from {{ source('herald_raw', 'phone_numbers') }}
),

-- staging trims cell values, so the lookup is keyed by the trimmed raw text too
keyed as not materialized (
    select
        {{ trim_whitespace('raw_value') }} as raw_phone,
        default_region,
        phone_e164,
        is_valid as is_phone_valid,
        checked_at,
        raw_value
    from phone_numbers
),

-- (raw_value, default_region) is the source's key, so two rows share a trimmed key only when
-- one of them has surrounding spaces; only such keys need a choice between spellings
respelled_keys as (
    select distinct
        raw_phone,
        default_region
    from keyed
    where raw_value <> raw_phone
),

single_spellings as (
    select * from keyed
    where
        not exists (
            select 1 from respelled_keys
            where respelled_keys.raw_phone = keyed.raw_phone
                and respelled_keys.default_region = keyed.default_region
        )
),

-- materialized: the (few) respelled rows are picked out before the window sorts them; a
-- planner could otherwise sort the whole lookup first
respellings as materialized (
    select * from keyed
    where
        exists (
            select 1 from respelled_keys
            where respelled_keys.raw_phone = keyed.raw_phone
                and respelled_keys.default_region = keyed.default_region
        )
),

-- spellings that differ only by surrounding spaces normalize alike: prefer a valid reading
ranked_spellings as (
    select
        *,
        row_number() over (
            partition by raw_phone, default_region
            order by case when is_phone_valid then 0 else 1 end, checked_at desc, raw_value asc
        ) as spelling_rank
    from respellings
),

final as (
    select
        {{ final_columns | join(',\n        ') }}
    from single_spellings
    union all
    select
        {{ final_columns | join(',\n        ') }}
    from ranked_spellings
    where spelling_rank = 1
)

select * from final
