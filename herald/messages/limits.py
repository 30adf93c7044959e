"""Resource limits for client-authored templates, enforced inside the Jinja sandbox.

Jinja's sandbox stops attribute escapes but not resource use: `'~'` doubling, `center`,
`indent`, `replace`, `%` formatting, `**`, `lipsum` and nested loops can build gigabytes or run
for minutes. The renderer runs each message under a :class:`Budget` — a wall-clock deadline, a
number of steps (loop iterations, calls, filters, operators) and a number of characters built in
all — and every construct that can build a large value checks the size it *would* build before
building it (or, where that cannot be known cheaply, bounds its inputs). Everything runs in the
rendering thread: no fork or thread per message; a check is a counter and a clock read.

A broken limit raises :class:`LimitExceeded` (a Jinja ``SecurityError``); the renderer turns it
into a ``TemplateError`` naming the limit, and the outbox holds the message with that reason.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.visitor import NodeTransformer

MAX_RENDER_SECONDS = 2.0  # wall clock per message (subject, body and HTML together)
MAX_STEPS = 1_000_000  # loop iterations + calls + filters + guarded operators per message
MAX_BUILT_CHARS = 10_000_000  # characters built by strings and filters per message, in all
MAX_VALUE_CHARS = 1_000_000  # the largest single value (its text) a template may build
MAX_SEQUENCE_LEN = 100_000  # longest str/list a single `*` or `+` may build
MAX_INT_BITS = 4_096  # largest int a single `*` or `**` may build
MAX_LIPSUM_WORDS = 2_000  # lipsum(n, max=...): n * max words at most


class LimitExceeded(jinja2.exceptions.SecurityError):
    """A template broke a resource limit; the message names the limit."""


@dataclass
class Budget:
    deadline: float
    steps: int = MAX_STEPS
    chars: int = MAX_BUILT_CHARS
    seconds: float = MAX_RENDER_SECONDS


_budget: ContextVar[Budget | None] = ContextVar("herald_template_budget", default=None)


@contextmanager
def budget(
    seconds: float = MAX_RENDER_SECONDS, steps: int = MAX_STEPS, chars: int = MAX_BUILT_CHARS
) -> Iterator[Budget]:
    """The limits for rendering one message; nested use keeps the outer (message) budget."""
    current = _budget.get()
    if current is not None:
        yield current
        return
    new = Budget(deadline=time.monotonic() + seconds, steps=steps, chars=chars, seconds=seconds)
    token = _budget.set(new)
    try:
        yield new
    finally:
        _budget.reset(token)


def step(n: int = 1) -> None:
    """Count ``n`` steps and check the clock."""
    current = _budget.get()
    if current is None:
        return
    current.steps -= n
    if current.steps < 0:
        raise LimitExceeded(f"render limit: more than {MAX_STEPS} steps (loop iterations, calls, filters)")
    if time.monotonic() > current.deadline:
        raise LimitExceeded(f"render limit: rendering took longer than {current.seconds:g} s")


def charge(chars: int) -> None:
    """Count ``chars`` characters built."""
    current = _budget.get()
    if current is None:
        return
    current.chars -= chars
    if current.chars < 0:
        raise LimitExceeded(f"render limit: builds more than {MAX_BUILT_CHARS} characters in all")


def size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``str(value)`` takes; stops counting once past ``limit``, so
    it is cheap on huge or self-referencing containers."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:  # numbers, dates, Undefined, callables: short texts
            total += 32
        if total > limit:
            return total
    return total


def check_value(value: Any, what: str) -> Any:
    """``value`` unchanged when its text is within :data:`MAX_VALUE_CHARS`."""
    if size(value) > MAX_VALUE_CHARS:
        raise LimitExceeded(f"render limit: {what} would build a value over {MAX_VALUE_CHARS} characters")
    return value


def _refuse(what: str, would: int, limit: int = MAX_VALUE_CHARS) -> None:
    if would > limit:
        raise LimitExceeded(f"render limit: {what} would build {would} characters (limit {limit})")


# -- pieces the sandbox's compiled templates call (via the tree transform below) ----------------


def loop_items(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this: one step per iteration."""
    for item in iterable:
        step()
        yield item


def concat_part(value: Any) -> Any:
    """Each operand of `~`: sized and charged before the join builds anything."""
    n = size(value)
    _refuse("'~'", n)
    charge(n)
    return value


def concat_result(value: Any) -> Any:
    return check_value(value, "'~'")


LOOP_FILTER = "_herald_loop_items"
CONCAT_PART_FILTER = "_herald_concat_part"
CONCAT_RESULT_FILTER = "_herald_concat_result"
INTERNAL_FILTERS: dict[str, Callable[[Any], Any]] = {
    LOOP_FILTER: loop_items,
    CONCAT_PART_FILTER: concat_part,
    CONCAT_RESULT_FILTER: concat_result,
}


class BoundLoopsAndConcat(NodeTransformer):
    """Rewrites a parsed template: `for` iterates through :func:`loop_items`, and `~` sizes
    its operands (:func:`concat_part`) and result (:func:`concat_result`). They are applied as
    filters, which compiled templates call directly (a sandboxed call costs several times more)."""

    def __init__(self, environment: jinja2.Environment) -> None:
        self.environment = environment

    def _apply(self, name: str, arg: nodes.Expr) -> nodes.Filter:
        applied = nodes.Filter(arg, name, [], [], None, None)
        applied.set_lineno(arg.lineno or 1)
        applied.set_environment(self.environment)
        return applied

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = self._apply(LOOP_FILTER, node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        node = self.generic_visit(node)
        node.nodes = [self._apply(CONCAT_PART_FILTER, part) for part in node.nodes]
        return self._apply(CONCAT_RESULT_FILTER, node)


# -- operators -----------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and _is_int(times):
            if len(seq) * max(times, 0) > MAX_SEQUENCE_LEN:
                raise LimitExceeded(
                    f"'*' would build a sequence of {len(seq) * times} items (limit {MAX_SEQUENCE_LEN})"
                )
            if isinstance(seq, (str, bytes)):
                charge(len(seq) * max(times, 0))
            return
    if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise LimitExceeded(f"'*' would build an integer over {MAX_INT_BITS} bits")


def check_power(base: Any, exponent: Any) -> None:
    if (
        _is_int(base)
        and _is_int(exponent)
        and exponent > 0
        and abs(base) > 1
        and ((abs(base).bit_length() - 1) * exponent > MAX_INT_BITS or exponent.bit_length() > MAX_INT_BITS)
    ):
        raise LimitExceeded(f"'**' would build an integer over {MAX_INT_BITS} bits")


def check_concat(left: Any, right: Any) -> None:
    sequences = (str, bytes, list, tuple)
    if isinstance(left, sequences) and isinstance(right, sequences):
        if len(left) + len(right) > MAX_SEQUENCE_LEN:
            raise LimitExceeded(f"'+' would build a sequence over {MAX_SEQUENCE_LEN} items")
        if isinstance(left, (str, bytes)):
            charge(len(left) + len(right))


# printf-style conversion: %[(key)][flags][width][.precision][length]type
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
_DIGITS = re.compile(r"\d+")


def check_percent_format(template: Any, args: Any, what: str = "'%'") -> None:
    """`'%5000000d' % 1` allocates its width: add the widths and precisions up, and the
    arguments' sizes, before formatting."""
    if not isinstance(template, str):
        return
    padding = 0
    for match in _PERCENT_SPEC.finditer(template):
        width, precision = match.group(1), match.group(2)
        if "*" in (width, precision):
            raise LimitExceeded(f"render limit: {what} with a '*' width or precision is not allowed")
        padding += int(width or 0) + int(precision or 0)
        if padding > MAX_VALUE_CHARS:
            break
    _refuse(what, len(template) + padding + size(args))
    charge(len(template) + padding)


def check_format_string(template: str, args: Any, kwargs: Any) -> None:
    """`'{:>99999999}'.format(x)`: the same for str.format's field widths."""
    padding = 0
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format raises the same error itself
    for _literal, _field, spec, _conversion in fields:
        if spec and "{" in spec:
            raise LimitExceeded("render limit: a nested '{}' in a format spec is not allowed")
        padding += sum(int(d) for d in _DIGITS.findall(spec or "")[:2])
        if padding > MAX_VALUE_CHARS:
            break
    _refuse("str.format", len(template) + padding + size(args) + size(kwargs))
    charge(len(template) + padding)


# -- calls: str methods that build from their arguments ------------------------------------------


def _count(text: str, old: str) -> int:
    return len(text) + 1 if old == "" else text.count(old)


def check_replace(text: Any, old: Any, new: Any, count: Any = None, what: str = "replace") -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        times = _count(text, old)
        if _is_int(count) and count >= 0:
            times = min(times, count)
        _refuse(what, len(text) + times * max(len(new) - len(old), 0))


def _width(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    return value if _is_int(value) else 0


def check_str_method(obj: Any, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Bound the str/list methods a template may call whose result size its arguments choose."""
    params = list(args) + list(kwargs.values())
    if isinstance(obj, str):
        if name in {"center", "ljust", "rjust", "zfill"} and params:
            _refuse(f"str.{name}", max(_width(params[0]), len(obj)))
        elif name == "expandtabs":
            tab = _width(params[0]) if params else 8
            _refuse("str.expandtabs", len(obj) + obj.count("\t") * tab)
        elif name == "replace" and len(params) >= 2:
            check_replace(obj, params[0], params[1], params[2] if len(params) > 2 else None, "str.replace")
        elif name == "join" and params:
            check_join(params[0], obj, "str.join")
    elif isinstance(obj, list) and name in {"extend", "__iadd__"} and params:
        other = params[0]
        if isinstance(other, (list, tuple, str)) and len(obj) + len(other) > MAX_SEQUENCE_LEN:
            raise LimitExceeded(f"render limit: list.extend would build over {MAX_SEQUENCE_LEN} items")
    elif isinstance(obj, list) and name in {"append", "insert"} and len(obj) >= MAX_SEQUENCE_LEN:
        raise LimitExceeded(f"render limit: list.{name} would build over {MAX_SEQUENCE_LEN} items")


def check_join(items: Any, separator: Any, what: str = "join") -> None:
    if not isinstance(items, (list, tuple, str)):
        return  # an iterator: the filter materialises it first (see bounded_join)
    sep = len(separator) if isinstance(separator, str) else 0
    _refuse(what, size(items) + sep * len(items))


# -- filters and globals -------------------------------------------------------------------------


def _wrap(name: str, original: Callable[..., Any], check: Callable[..., None] | None) -> Callable[..., Any]:
    """A filter that counts a step, checks its arguments, then its result's size."""
    pass_arg = getattr(original, "jinja_pass_arg", None)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        step()
        value_at = 1 if pass_arg is not None else 0
        if check is not None:
            check(*args[value_at:], **kwargs)
        elif len(args) > value_at:
            check_value(args[value_at], f"filter {name}")
        result = original(*args, **kwargs)
        if isinstance(result, str):
            _refuse(f"filter {name}", len(result))
            charge(len(result))
        return result

    return update_wrapper(guarded, original)


def _check_center(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    _refuse("filter center", max(len(str(value)) if isinstance(value, str) else size(value), _width(width)))


def _check_indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = value if isinstance(value, str) else ""
    check_value(value, "filter indent")
    _refuse("filter indent", len(text) + (text.count("\n") + 1) * _width(width))


def _check_replace(value: Any, old: Any = "", new: Any = "", count: Any = None, *_: Any, **__: Any) -> None:
    check_value(value, "filter replace")
    check_replace(value, old, new, count, "filter replace")


def _check_wordwrap(value: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
                    *_: Any, **kwargs: Any) -> None:  # fmt: skip
    check_value(value, "filter wordwrap")
    wrap = kwargs.get("wrapstring", wrapstring)
    if isinstance(value, str) and isinstance(wrap, str):
        lines = len(value) // max(_width(kwargs.get("width", width)), 1) + value.count("\n") + 1
        _refuse("filter wordwrap", len(value) + lines * len(wrap))


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent_format(value, kwargs or args, "filter format")


def _check_count_arg(name: str) -> Callable[..., None]:
    def check(value: Any, count: Any = 1, *_: Any, **__: Any) -> None:
        if _is_int(count) and count > MAX_SEQUENCE_LEN:
            raise LimitExceeded(f"render limit: filter {name} of {count} (limit {MAX_SEQUENCE_LEN})")

    return check


def bounded_join(original: Callable[..., Any]) -> Callable[..., Any]:
    """`join` materialises its items (at most :data:`MAX_SEQUENCE_LEN`) and sizes them first."""

    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        step()
        items: list[Any] = []
        for item in value:
            items.append(item)
            if len(items) > MAX_SEQUENCE_LEN:
                raise LimitExceeded(f"render limit: filter join of over {MAX_SEQUENCE_LEN} items")
        if attribute is None:
            check_join(items, d, "filter join")
        result = original(eval_ctx, items, d, attribute)
        _refuse("filter join", len(result))
        charge(len(result))
        return result

    return update_wrapper(join, original)


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "replace": _check_replace,
    "wordwrap": _check_wordwrap,
    "format": _check_format,
    "batch": _check_count_arg("batch"),
    "slice": _check_count_arg("slice"),
}


def guard_filters(filters: dict[str, Callable[..., Any]]) -> None:
    """Replace every filter of an environment with its guarded version, in place."""
    for name, original in list(filters.items()):
        if name in INTERNAL_FILTERS:
            continue
        if name == "join":
            filters[name] = bounded_join(original)
        else:
            filters[name] = _wrap(name, original, _FILTER_CHECKS.get(name))


def bounded_lipsum(original: Callable[..., str]) -> Callable[..., str]:
    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        step()
        if not (_is_int(n) and _is_int(max)) or n * max > MAX_LIPSUM_WORDS:
            raise LimitExceeded(f"render limit: lipsum of more than {MAX_LIPSUM_WORDS} words")
        return original(n=n, html=html, min=min, max=max)

    return lipsum
