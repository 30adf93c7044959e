"""Input that ``herald serve`` refuses before any handler sees it, with a 4xx and a clear message.

- :class:`BodyLimit`: a body over :data:`MAX_BODY_BYTES` (by ``Content-Length`` or by counting a
  chunked body) is answered 413 before the route reads it.
- :func:`parse_json`: strict JSON for the handlers that read JSON themselves — UTF-8 only, no
  ``NaN``/``Infinity``, no lone surrogates (``"\\ud800"`` decodes to a string nothing can write),
  no NUL (PostgreSQL cannot store one), at most :data:`MAX_JSON_DEPTH` levels of nesting.

Callers authenticate first, then parse (a stranger learns nothing from a parse error).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 5 * 1024 * 1024  # the ingest API's 10,000 records fit; webhooks are a few KB
MAX_JSON_DEPTH = 32


class BadInput(ValueError):
    """A request body Herald refuses; the message is safe to show the caller."""


def _no_constant(name: str) -> Any:
    raise BadInput(f"{name} is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise BadInput(f"the number {text[:40]} is too large (numbers must be finite)")
    return value


def _check(value: Any) -> None:
    """Depth and lone surrogates, iteratively (a deep document must not exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise BadInput(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if "\x00" in text:  # PostgreSQL stores no NUL in text or jsonb; no caller needs one
        raise BadInput("the JSON holds a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("the JSON holds a lone surrogate escape (\\ud800-\\udfff without its pair)") from None


def parse_json(body: bytes) -> Any:
    """The document in ``body``, or :class:`BadInput` saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadInput(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise BadInput(f"the body is not valid JSON: {exc}") from None
    _check(value)
    return value


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, before the app reads it."""

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, larger: Callable[[Scope], Larger | None] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        larger = self.larger(scope) if self.larger else None
        if larger is not None:
            await self._streamed(scope, receive, send, larger, declared)
            return
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                await _answer(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await _answer(send, 413, f"the request body is over {self.limit} bytes")
                return
        # a chunked body (or one longer than declared) is read here, up to the limit, then replayed
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _answer(send, 413, f"the request body is over {self.limit} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, larger: Larger, declared: Any) -> None:
        """A route that streams a large body itself (the portal's upload): its own limit, checked
        on ``Content-Length`` and while counting, and the body passed on unbuffered."""
        try:
            too_big = declared is not None and int(declared) > larger.limit
        except ValueError:
            await _answer(send, 400, "Content-Length is not a number")
            return
        if too_big:
            await _answer(send, 413, larger.message, html=True)
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > larger.limit:  # a chunked body over the limit: the route sees the client leave
                return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)


@dataclass(frozen=True)
class Larger:
    """The limit of a route that takes a larger body, and the page answered over it."""

    limit: int
    message: str


async def _answer(send: Send, status: int, message: str, html: bool = False) -> None:
    if html:
        text = f"<!doctype html><meta charset=utf-8><title>Too large</title><h1>Too large</h1><p>{escape(message)}</p>"
        body = text.encode()
        kind = b"text/html; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        return
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
