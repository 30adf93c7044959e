{#- Every exited enrollment says why (an exit criterion, an exit step, a removed step). -#}
{% test exited_enrollments_have_a_reason(model) %}
    select enrollment_id
    from {{ model }}
    where status = 'exited' and (exit_reason is null or exit_reason = '')
{% endtest %}
