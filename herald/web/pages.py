"""Unsubscribe (``/u/<token>``) and confirmation (``/c/<token>``) pages, and RFC 8058 one-click.

Plain HTML that works on a phone without JavaScript or cookies. A token is HMAC-signed
(:mod:`herald.messages.unsubscribe`); anything but an untouched token gets a plain error page
that shows nobody's data. Visiting a page changes nothing: only the form's POST (or a mail
provider's one-click POST) lands an event, and its id comes from the token, so pressing twice
lands once.

The wording after the POST follows this precedence: herald.yaml → the client's
``verbiage`` → the contact's own ``<key>_wording`` attribute. That attribute is read from the
warehouse read-only with a short wait: in embedded mode a run may hold DuckDB's lock, and then
the client's wording is shown; the page never fails for it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime
from html import escape
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from herald.clock import utcnow as _clock_now
from herald.compliance.wording import client_wording, contact_attribute, resolve_wording
from herald.events.landing import ProviderEvent
from herald.messages.unsubscribe import InvalidToken, TokenData, read_token
from herald.settings import Settings
from herald.web.context import WebContext, web_context

log = logging.getLogger("herald.web.pages")
CONFIRM_SCOPE = "confirm"
CONTACT_LOOKUP_SECONDS = 1.0
ATTRIBUTE_SQL = (
    "select string_value from marts.contact_attributes "
    "where client_id = {p} and contact_id = {p} and attribute_name = {p} and is_parsed limit 1"
)
# The token is in the URL: keep it out of Referer headers, caches and search engines.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
}
STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;padding:1.5rem;"
    "line-height:1.5;color:#1a1a1a;background:#fff;font-size:1.125rem}"
    "main{max-width:34rem;margin:0 auto}h1{font-size:1.6rem;line-height:1.25}"
    "button{font:inherit;font-weight:600;min-height:48px;min-width:48px;width:100%;padding:.75rem 1rem;"
    "border:2px solid #0b3d91;border-radius:.5rem;background:#0b3d91;color:#fff;cursor:pointer}"
    "button:focus-visible{outline:3px solid #f9a825;outline-offset:3px}"
)

router = APIRouter(tags=["pages"])


def page(title: str, body_html: str, status_code: int = 200) -> HTMLResponse:
    """A whole page; ``body_html`` is already escaped."""
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{escape(title)}</h1>\n{body_html}\n</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def error_page() -> HTMLResponse:
    return page(
        "This link does not work",
        "<p>The link is incomplete or has been changed. Please open it again from the message you received, "
        "or reply to that message to reach the sender.</p>",
        status_code=400,
    )


def form_page(title: str, text: str, button: str) -> HTMLResponse:
    # no action attribute: the form posts back to the page's own address (works behind a prefix)
    return page(
        title,
        f'<p>{escape(text)}</p>\n<form method="post">\n<button type="submit">{escape(button)}</button>\n</form>',
    )


def _token(context: WebContext, token: str, confirm: bool) -> TokenData | None:
    """The token's data when it is untouched and meant for this page (an unsubscribe token does
    not confirm, a confirmation token does not unsubscribe)."""
    try:
        data = read_token(context.links.secret, token)
    except InvalidToken as exc:
        log.warning("page refused a token (%s)", exc)
        return None
    if data.scope == "optin":  # an opt-in confirmation link's token (herald/web/optin.py) is for that page only
        log.warning("page refused an opt-in token")
        return None
    if (data.scope == CONFIRM_SCOPE) != confirm:
        log.warning("page refused a %r token on the %s page", data.scope, "confirmation" if confirm else "unsubscribe")
        return None
    return data


def token_id(prefix: str, token: str) -> str:
    return f"{prefix}:{hashlib.sha256(token.encode()).hexdigest()[:32]}"


def client_name(context: WebContext, client_id: str) -> str:
    client = context.deployment.clients.get(client_id)
    return client.config.name if client is not None else client_id


def contact_variables(settings: Settings, client_id: str, contact_id: str, key: str) -> dict[str, Any]:
    """``{<key>_wording: text}`` when the contact has its own wording; ``{}`` when not, or when
    the warehouse cannot be read right now (never raises)."""
    attribute = contact_attribute(key)
    try:
        row = _read_attribute(settings, client_id, contact_id, attribute)
    except Exception as exc:  # the page falls back to the client's wording
        log.info("contact wording not read (%s: %s); using the client's", type(exc).__name__, str(exc)[:200])
        return {}
    return {attribute: row} if isinstance(row, str) and row.strip() else {}


def _read_attribute(settings: Settings, client_id: str, contact_id: str, attribute: str) -> Any:
    target = settings.warehouse
    params = [client_id, contact_id, attribute]
    if target.engine == "duckdb":
        import duckdb

        assert target.duckdb_path is not None
        if not target.duckdb_path.exists():
            return None
        deadline = time.monotonic() + CONTACT_LOOKUP_SECONDS
        while True:  # read-only: never takes the write lock; a writer holding it makes us wait briefly
            try:
                con = duckdb.connect(str(target.duckdb_path), read_only=True)
                break
            except duckdb.IOException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            found = con.execute(ATTRIBUTE_SQL.format(p="?"), params).fetchone()
        finally:
            con.close()
        return found[0] if found else None
    import psycopg2

    conn = psycopg2.connect(
        host=target.pg_host, port=target.pg_port, user=target.pg_user, password=target.pg_password,
        dbname=target.pg_database, connect_timeout=2, options="-c statement_timeout=2000",
    )  # fmt: skip
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute(ATTRIBUTE_SQL.format(p="%s"), params)
            found = cur.fetchone()
    finally:
        conn.close()
    return found[0] if found else None


def wording(context: WebContext, data: TokenData, key: str) -> str:
    """herald.yaml → client.yaml ``verbiage`` → the contact's ``<key>_wording``."""
    variables = contact_variables(context.settings, data.client_id, data.contact_id, key)
    client = context.deployment.clients.get(data.client_id)
    if client is None:  # a client removed from the configuration: still honour the request
        return resolve_wording(key, context.deployment.herald.verbiage, None, variables, client_name=data.client_id)
    return client_wording(key, client, context.deployment.herald, variables)


async def _land(context: WebContext, event: ProviderEvent) -> Response | None:
    try:
        await run_in_threadpool(context.sink().append, event)
    except Exception:  # never tell someone they are unsubscribed when it was not recorded
        log.exception("could not land %s event %s", event.kind, event.event_id)
        return page(
            "Please try again",
            "<p>We could not record your request just now. Please try again in a few minutes.</p>",
            status_code=503,
        )
    log.info("landed %s event %s", event.kind, event.event_id)
    return None


def _now() -> datetime:
    return _clock_now()


def _unsubscribe_event(token: str, data: TokenData, via: str) -> ProviderEvent:
    payload = {"client_id": data.client_id, "contact_id": data.contact_id, "channel": data.channel,
               "scope": data.scope, "via": via}  # fmt: skip
    return ProviderEvent(event_id=token_id("unsubscribe", token), source="web", kind="unsubscribe",
                         payload=payload, received_at=_now())  # fmt: skip


CHANNEL_WORDS = {"email": "emails", "sms": "text messages"}


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_page(request: Request, token: str) -> Response:
    context = web_context(request)
    data = _token(context, token, confirm=False)
    if data is None:
        return error_page()
    name = client_name(context, data.client_id)
    what = CHANNEL_WORDS.get(data.channel, "messages")
    return form_page(
        f"Unsubscribe from {name}", f"Press the button to stop receiving {what} from {name}.", "Unsubscribe"
    )


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str) -> Response:
    context = web_context(request)
    data = _token(context, token, confirm=False)
    if data is None:
        return error_page()
    if failed := await _land(context, _unsubscribe_event(token, data, "page")):
        return failed
    text = await run_in_threadpool(wording, context, data, "unsubscribe")
    return page("You are unsubscribed", f"<p>{escape(text)}</p>")


@router.post("/u/{token}/one-click")
async def one_click(request: Request, token: str) -> Response:
    """RFC 8058: the mail provider POSTs ``List-Unsubscribe=One-Click``; no cookies, no redirect."""
    context = web_context(request)
    data = _token(context, token, confirm=False)
    if data is None:
        return PlainTextResponse("invalid unsubscribe link", status_code=400)
    try:
        await run_in_threadpool(context.sink().append, _unsubscribe_event(token, data, "one-click"))
    except Exception:
        log.exception("could not land a one-click unsubscribe")
        return PlainTextResponse("could not record the request; try again", status_code=503)
    return PlainTextResponse("You are unsubscribed.", headers={"Cache-Control": "no-store"})


@router.get("/c/{token}", response_class=HTMLResponse)
async def confirmation_page(request: Request, token: str) -> Response:
    context = web_context(request)
    data = _token(context, token, confirm=True)
    if data is None:
        return error_page()
    name = client_name(context, data.client_id)
    return form_page(f"Confirm with {name}", f"Press the button to confirm your appointment with {name}.", "Confirm")


@router.post("/c/{token}", response_class=HTMLResponse)
async def confirm(request: Request, token: str) -> Response:
    context = web_context(request)
    data = _token(context, token, confirm=True)
    if data is None:
        return error_page()
    event = ProviderEvent(
        event_id=token_id("confirm", token), source="web", kind="confirm",
        payload={"client_id": data.client_id, "contact_id": data.contact_id, "channel": data.channel},
        received_at=_now(),
    )  # fmt: skip
    if failed := await _land(context, event):
        return failed
    text = await run_in_threadpool(wording, context, data, "confirmation")
    return page("Confirmed", f"<p>{escape(text)}</p>")
