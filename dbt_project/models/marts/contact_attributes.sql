{%- set final_columns = [
    'contact_id', 'client_id', 'attribute_name', 'attribute_type', 'string_value', 'numeric_value',
    'boolean_value', 'date_value', 'timestamp_value', 'array_value', 'raw_value', 'is_parsed',
    'packet_id', 'line_number', 'packet_received_at as updated_at',
] -%}

with

-- not materialized (here and in contact_values): the values are read twice, and re-reading
-- the table is cheaper than the copy both engines would otherwise make of a CTE read more
-- than once
attribute_values as not materialized (
    select * from {{ ref('int_attribute_values_typed') }}
),

contact_rows as (
    select * from {{ ref('int_contact_rows_cleaned') }}
),

-- Values compete only within a contact merged from several rows; a contact from a single row
-- (most contacts of a big first packet) has one value per attribute already. Materialized:
-- each of the two branches below joins it.
counted_contact_rows as materialized (
    select
        packet_id,
        line_number,
        contact_id,
        count(*) over (partition by contact_id) as contact_row_count
    from contact_rows
),

contact_values as not materialized (
    select
        counted_contact_rows.contact_id,
        counted_contact_rows.contact_row_count,
        attribute_values.*
    from attribute_values
    inner join counted_contact_rows
        on attribute_values.packet_id = counted_contact_rows.packet_id
        and attribute_values.line_number = counted_contact_rows.line_number
    where attribute_values.raw_value is not null
),

-- latest value wins; an empty cell never erases a value and an unparseable value never
-- replaces a parsed one (it still shows, with is_parsed false, when it is all there is)
ranked as (
    select
        *,
        row_number() over (
            partition by contact_id, attribute_name
            order by
                case when is_parsed then 0 else 1 end,
                packet_received_at desc,
                packet_id desc,
                line_number desc
        ) as value_rank
    from contact_values
    where contact_row_count > 1
),

final as (
    select
        {{ final_columns | join(',\n        ') }}
    from contact_values
    where contact_row_count = 1
    union all
    select
        {{ final_columns | join(',\n        ') }}
    from ranked
    where value_rank = 1
)

select * from final
