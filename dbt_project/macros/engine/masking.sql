{#- An address as analysts may see it: a phone keeps '+', its E.164 country code (1, 2 or 3
    digits) and its last two digits ('+1********67'); an email its first character and its
    domain ('a***@example.com'); anything else is '***'. The same rule as marts.messages. -#}
{% macro mask_address(address_expr, channel_expr) -%}
    case
        when {{ channel_expr }} = 'sms' and {{ address_expr }} like '+%'
            then substr({{ address_expr }}, 1, 1 + {{ herald.phone_country_code_length(address_expr) }})
                || repeat('*', greatest(length({{ address_expr }}) - 3 - {{ herald.phone_country_code_length(address_expr) }}, 0))
                || right({{ address_expr }}, 2)
        when {{ channel_expr }} = 'email' and {{ address_expr }} like '_%@_%'
            then substr({{ address_expr }}, 1, 1) || '***@' || split_part({{ address_expr }}, '@', 2)
        else '***'
    end
{%- endmacro %}


{#- E.164 country codes are 1 digit (+1, +7), 2 digits (the ITU list below) or 3 digits. -#}
{% macro phone_country_code_length(address_expr) -%}
    case
        when {{ herald.regexp_like(address_expr, '^[+][17]') }} then 1
        when {{ herald.regexp_like(address_expr, '^[+](20|27|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])') }} then 2
        else 3
    end
{%- endmacro %}
