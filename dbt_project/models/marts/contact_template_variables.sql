{{ config(materialized='view') }}

{#- One JSON object per contact: every variable a message template can use. A view, so it
    costs nothing until the message plan (or `herald campaign preview`) reads a few contacts. -#}

with

contacts as (
    select * from {{ ref('contacts') }}
),

clients as (
    select * from {{ source('herald_ops', 'clients') }}
),

attributes as (
    select * from {{ ref('contact_attributes') }}
),

-- the contact's own fields and the client's name, as (name, JSON value) pairs
field_values as (
    {%- set fields = ['external_id', 'first_name', 'last_name', 'email', 'postal_code'] %}
    {%- for field in fields %}
    select contact_id, '{{ field }}' as variable_name, {{ herald.to_json_value(field) }} as variable_value
    from contacts
    where {{ field }} is not null
    union all
    {%- endfor %}
    select contact_id, 'phone' as variable_name, {{ herald.to_json_value('phone_e164') }} as variable_value
    from contacts
    where phone_e164 is not null
    union all
    select
        contacts.contact_id,
        'client_name' as variable_name,
        {{ herald.to_json_value('clients.name') }} as variable_value
    from contacts
    inner join clients on contacts.client_id = clients.client_id
),

-- typed attribute values; a value that did not parse stays out (a template using it fails
-- for that contact, naming the variable, instead of printing the raw text)
attribute_values as (
    select
        contact_id,
        attribute_name as variable_name,
        case attribute_type
            when 'numeric' then {{ herald.to_json_value('numeric_value') }}
            when 'boolean' then {{ herald.to_json_value('boolean_value') }}
            when 'date' then {{ herald.to_json_value('date_value') }}
            when 'timestamp' then {{ herald.to_json_value('timestamp_value') }}
            when 'array' then {{ herald.json_as_value('array_value') }}
            else {{ herald.to_json_value('string_value') }}
        end as variable_value
    from attributes
    where is_parsed
),

all_values as (
    select * from field_values
    union all
    select * from attribute_values
),

final as (
    select
        contact_id,
        {{ herald.json_object_agg('variable_name', 'variable_value') }} as variables
    from all_values
    group by contact_id
)

select * from final
