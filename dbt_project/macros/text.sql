{#- Text cleaning shared by the staging and intermediate models. -#}

{#- Strip leading and trailing whitespace (spaces, tabs, line breaks). -#}
{% macro trim_whitespace(text_expr) -%}
    {{ return(adapter.dispatch('trim_whitespace', 'herald')(text_expr)) }}
{%- endmacro %}

{% macro default__trim_whitespace(text_expr) -%}
    {{ herald.regexp_replace_all(text_expr, '^[[:space:]]+|[[:space:]]+$', '') }}
{%- endmacro %}

{#- RE2's [[:space:]] is exactly these six ASCII characters; trim() strips them without running
    a regular expression on every cell. -#}
{% macro duckdb__trim_whitespace(text_expr) -%}
    trim({{ text_expr }}, chr(32) || chr(9) || chr(10) || chr(11) || chr(12) || chr(13))
{%- endmacro %}


{#- Trim and collapse every run of whitespace inside to one space; '' becomes null. -#}
{% macro collapse_whitespace(text_expr) -%}
    nullif({{ herald.trim_whitespace(herald.regexp_replace_all(text_expr, '[[:space:]]+', ' ')) }}, '')
{%- endmacro %}


{#- A column header as a snake_case name: 'Referred By (Dr.)' → 'referred_by_dr'. -#}
{% macro slugify(text_expr) -%}
    {{ herald.regexp_replace_all(herald.regexp_replace_all('lower(' ~ text_expr ~ ')', '[^a-z0-9]+', '_'), '^_+|_+$', '') }}
{%- endmacro %}


{#- Email as Herald stores it: trimmed and lower-cased; '' becomes null. -#}
{% macro normalize_email(text_expr) -%}
    nullif(lower({{ herald.trim_whitespace(text_expr) }}), '')
{%- endmacro %}


{#- A sane check of a normalized (lower-case) address: dot-separated local part of common
    characters, '@', dot-separated domain labels not starting or ending with '-', and an
    alphabetic top-level domain of 2+ letters. Null → false. -#}
{% macro is_valid_email(email_expr) -%}
    coalesce(
        {{ herald.regexp_like(email_expr, '^[a-z0-9_%+-]+([.][a-z0-9_%+-]+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?[.])+[a-z]{2,}$') }},
        false
    )
{%- endmacro %}
