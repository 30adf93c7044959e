"""Branch conditions: only comparisons of a name with a literal, joined by and/or/not, compile."""

from __future__ import annotations

import pytest

from herald.config.expressions import ExpressionError, compile_condition


def test_a_comparison_compiles_to_a_typed_attribute_lookup() -> None:
    condition = compile_condition('program == "Nursing" and gpa >= 3.5')
    assert condition.names == {"program", "gpa"}
    assert "select coalesce(a.string_value, a.raw_value) from marts.contact_attributes" in condition.sql
    assert "attribute_name = 'program') = 'Nursing'" in condition.sql
    assert "select a.numeric_value from" in condition.sql and "attribute_name = 'gpa') >= 3.5" in condition.sql
    assert " and " in condition.sql


def test_contact_fields_read_their_column_and_literals_are_quoted_by_herald() -> None:
    condition = compile_condition('first_name == "O\'Brien" or not campus_tour_booked')
    assert "branch_contact.first_name = 'O''Brien'" in condition.sql
    assert "(not coalesce(coalesce((select a.boolean_value" in condition.sql


def test_lists_and_none() -> None:
    assert " in ('IL', 'WI')" in compile_condition('state in ["IL", "WI"]').sql
    assert "is not null" in compile_condition("intake_date is not None").sql


@pytest.mark.parametrize(
    "text, message",
    [
        ("import os", "not an expression"),
        ("x = 1", "not an expression"),
        ("__import__('os').system('id')", "Call is not allowed"),
        ("program.upper() == 'X'", "must be a field or attribute name"),
        ("gpa + 1 > 3", "must be a field or attribute name"),
        ("program == other_field", "compare a name with a literal"),
        ("1 < gpa < 4", "chain comparisons with `and`"),
        ("'yes'", "cannot be a constant"),
        ("gpa == None", "is None"),
        ("state in ['IL', 2]", "all be texts or all numbers"),
        ("", "empty condition"),
    ],
)
def test_anything_but_a_plain_condition_is_refused_with_the_fix(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_condition(text)
