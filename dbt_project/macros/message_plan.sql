{#- The relation of marts.message_plan as it stands before this pass, or none: before it exists
    (the first pass), in a full refresh (the plan starts again from nothing, as an incremental
    model's is_incremental() says) and when dbt only parses. The plan's stages read the earlier
    plan through it (int_message_plan__earlier): a ref would make the plan depend on itself. -#}
{% macro message_plan_so_far() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set plan = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('package_name', 'equalto', 'herald') | selectattr('name', 'equalto', 'message_plan') | first -%}
    {%- set relation = adapter.get_relation(database=plan.database, schema=plan.schema, identifier=plan.alias) -%}
    {{ return(relation if relation is not none and relation.is_table else none) }}
{%- endmacro %}
