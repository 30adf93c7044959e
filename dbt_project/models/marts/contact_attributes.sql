with

attribute_values as (
    select * from {{ ref('int_attribute_values_typed') }}
),

contact_rows as (
    select * from {{ ref('int_contact_rows_cleaned') }}
),

contact_values as (
    select
        contact_rows.contact_id,
        attribute_values.*
    from attribute_values
    inner join contact_rows
        on attribute_values.packet_id = contact_rows.packet_id
        and attribute_values.line_number = contact_rows.line_number
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
),

final as (
    select
        contact_id,
        client_id,
        attribute_name,
        attribute_type,
        string_value,
        numeric_value,
        boolean_value,
        date_value,
        timestamp_value,
        array_value,
        raw_value,
        is_parsed,
        packet_id,
        line_number,
        packet_received_at as updated_at
    from ranked
    where value_rank = 1
)

select * from final
