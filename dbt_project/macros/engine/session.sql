{#- Session settings a model needs before it runs (a pre_hook). -#}

{#- PostgreSQL's JIT compiler: the journey walk and the message plan are long queries whose
    row estimates compound across their steps, so the planner judges them expensive enough to
    JIT-compile — a minute of compiling to run a query that takes milliseconds. Off for them;
    DuckDB has nothing to turn off. -#}
{% macro jit_off() -%}
    {{ return(adapter.dispatch('jit_off', 'herald')()) }}
{%- endmacro %}

{% macro default__jit_off() -%}
    set jit = off
{%- endmacro %}

{% macro duckdb__jit_off() -%}
    select 1
{%- endmacro %}
