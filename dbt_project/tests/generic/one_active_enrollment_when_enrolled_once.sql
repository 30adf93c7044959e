{#- Under the `once` rule a contact is enrolled in a campaign at most once: never two enrollments
    of one contact in one `once` campaign. -#}
{% test one_active_enrollment_when_enrolled_once(model) %}
    select client_id, campaign, contact_id, count(*) as enrollments
    from {{ model }}
    where enrollment_rule = 'once'
    group by client_id, campaign, contact_id
    having count(*) > 1
{% endtest %}
