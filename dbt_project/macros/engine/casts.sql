{#- Casts that give null instead of failing the whole model on one bad value. -#}

{#- Text → numeric(38, 6), or null when the text is not a plain decimal number
    (optional sign, digits, optional fraction; at most 32 integer digits so it fits). The same
    guard runs on both engines so they accept exactly the same inputs. -#}
{% macro try_cast_numeric(text_expr) -%}
    {{ return(adapter.dispatch('try_cast_numeric', 'herald')(text_expr)) }}
{%- endmacro %}

{% macro default__try_cast_numeric(text_expr) -%}
    case
        when {{ herald.regexp_like(text_expr, '^[+-]?([0-9]{1,32}([.][0-9]*)?|[.][0-9]+)$') }}
            then cast({{ text_expr }} as numeric(38, 6))
    end
{%- endmacro %}

{% macro duckdb__try_cast_numeric(text_expr) -%}
    case
        when {{ herald.regexp_like(text_expr, '^[+-]?([0-9]{1,32}([.][0-9]*)?|[.][0-9]+)$') }}
            then try_cast({{ text_expr }} as numeric(38, 6))
    end
{%- endmacro %}
