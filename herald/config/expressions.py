"""Branch conditions: a small expression language over a contact's fields and attributes.

A journey's ``branch`` step may route a contact by a condition such as::

    program == "Nursing" and gpa >= 3.5
    state in ["IL", "WI"] or not scholarship
    first_name is not None

The text is parsed by Python's own parser (:func:`ast.parse` in ``eval`` mode, so a statement,
an import or an assignment is not even an expression) and then only these forms are accepted:
``and``/``or``/``not``, comparisons (``== != < <= > >=``, ``in``/``not in`` a list of literals,
``is None``/``is not None``) of a *name* with a *literal*, and a bare name (true when the
attribute is a true boolean). Names are contact fields (first_name, last_name, email, phone,
postal_code, external_id, time_zone) or the client's attributes. Calls, attribute access,
subscripts, arithmetic and everything else are refused with the position and what to write.

The accepted tree is compiled to SQL by Herald itself — names become column references or a
lookup in ``marts.contact_attributes`` typed by the literal they are compared with, literals
are quoted by Herald — so the warehouse never sees text the client wrote.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from herald.config.base import SLUG_RE

# contact fields a condition may name, and their column in marts.contacts
CONTACT_COLUMNS: dict[str, str] = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone_e164",
    "postal_code": "postal_code",
    "external_id": "external_id",
    "time_zone": "time_zone",
}
# the alias of the contact row the compiled SQL is evaluated against (a marts.contacts row)
CONTACT_ALIAS = "branch_contact"
ATTRIBUTES_TABLE = "marts.contact_attributes"
_OPERATORS: dict[type, str] = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
MAX_LENGTH = 500
HINT = 'write e.g. program == "Nursing" and gpa >= 3.5'


class ExpressionError(ValueError):
    """The condition is not one Herald accepts; the message says where and what to write."""


@dataclass(frozen=True)
class Condition:
    text: str
    sql: str
    names: frozenset[str]


def _literal_sql(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ExpressionError(f"unsupported literal {value!r}")


def _column(name: str, literal: object) -> str:
    """SQL for the value of ``name`` for the contact, typed like ``literal``."""
    if name in CONTACT_COLUMNS:
        return f"{CONTACT_ALIAS}.{CONTACT_COLUMNS[name]}"
    if isinstance(literal, bool):
        column = "a.boolean_value"
    elif isinstance(literal, int | float):
        column = "a.numeric_value"
    elif literal is None:
        column = "a.raw_value"
    else:
        column = "coalesce(a.string_value, a.raw_value)"
    return (
        f"(select {column} from {ATTRIBUTES_TABLE} as a where a.contact_id = {CONTACT_ALIAS}.contact_id "
        f"and a.attribute_name = '{name}')"
    )


class _Compiler:
    def __init__(self, text: str):
        self.text = text
        self.names: set[str] = set()

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        column = getattr(node, "col_offset", 0) + 1
        return ExpressionError(f"{message} (at column {column} of {self.text!r}); {HINT}")

    def name(self, node: ast.AST) -> str:
        if not isinstance(node, ast.Name):
            raise self.fail(node, "the left side of a comparison must be a field or attribute name")
        if not SLUG_RE.match(node.id):
            raise self.fail(node, f"{node.id!r} is not a field or attribute name")
        self.names.add(node.id)
        return node.id

    def literal(self, node: ast.AST) -> object:
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str | int | float | bool)):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = node.operand.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value
        raise self.fail(node, "compare a name with a literal: a quoted text, a number, true/false or None")

    def compile(self, node: ast.AST) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = " and " if isinstance(node.op, ast.And) else " or "
            return "(" + joiner.join(self.compile(v) for v in node.values) + ")"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"(not coalesce({self.compile(node.operand)}, false))"
        if isinstance(node, ast.Name):
            name = self.name(node)
            return f"coalesce({_column(name, True)}, false)"
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise self.fail(node, "chain comparisons with `and`, e.g. gpa >= 3 and gpa < 4")
            name = self.name(node.left)
            op, right = node.ops[0], node.comparators[0]
            if isinstance(op, ast.Is | ast.IsNot):
                if not (isinstance(right, ast.Constant) and right.value is None):
                    raise self.fail(right, "`is` and `is not` compare with None only")
                test = "is null" if isinstance(op, ast.Is) else "is not null"
                return f"({_column(name, None)} {test})"
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, ast.List | ast.Tuple) or not right.elts:
                    raise self.fail(right, '`in` takes a list of literals, e.g. state in ["IL", "WI"]')
                values = [self.literal(v) for v in right.elts]
                if len({type(v) for v in values}) > 1 or None in values:
                    raise self.fail(right, "the values of a list must all be texts or all numbers")
                listed = ", ".join(_literal_sql(v) for v in values)
                negate = "not " if isinstance(op, ast.NotIn) else ""
                return f"coalesce({_column(name, values[0])} {negate}in ({listed}), false)"
            if type(op) not in _OPERATORS:
                raise self.fail(node, "unsupported comparison")
            value = self.literal(right)
            if value is None:
                raise self.fail(right, "compare with None using `is None` or `is not None`")
            return f"coalesce({_column(name, value)} {_OPERATORS[type(op)]} {_literal_sql(value)}, false)"
        if isinstance(node, ast.Constant):
            raise self.fail(node, "a condition cannot be a constant")
        kind = type(node).__name__
        raise self.fail(node, f"{kind} is not allowed in a condition (only comparisons, and, or, not)")


def compile_condition(text: str) -> Condition:
    """``text`` checked and compiled to a SQL boolean over the contact, or :class:`ExpressionError`."""
    source = str(text).strip()
    if not source:
        raise ExpressionError(f"empty condition; {HINT}")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"condition is {len(source)} characters long; keep it under {MAX_LENGTH}")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            f"not an expression: {exc.msg} (at column {exc.offset or 0} of {source!r}); {HINT}"
        ) from None
    compiler = _Compiler(source)
    sql = compiler.compile(tree.body)
    return Condition(source, sql, frozenset(compiler.names))
