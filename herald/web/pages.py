"""Unsubscribe and preference (``/u/<token>``) and confirmation (``/c/<token>``) pages, and RFC 8058 one-click.

The unsubscribe page is also the preference center (herald.compliance.preferences): its one
"Unsubscribe" button stops the token's channel as before; below it the contact chooses topics,
channels, how often and a pause ("Save my choices" lands a ``preferences`` event), or stops
every channel ("Stop all emails and texts"). Each answer says exactly what changed.

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
import json
import logging
import secrets
import time
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from herald.clock import utcnow as _clock_now
from herald.compliance.preferences import (
    MAX_PAUSE_DAYS,
    PreferenceError,
    Preferences,
    decode_state,
    describe_changes,
    encode_state,
    from_form,
)
from herald.compliance.wording import client_wording, contact_attribute, resolve_wording
from herald.config.models import Topic
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
    "h2{font-size:1.25rem;margin-top:2rem;border-top:1px solid #ccc;padding-top:1.25rem}"
    "fieldset{border:1px solid #bbb;border-radius:.5rem;margin:0 0 1rem;padding:.5rem 1rem}"
    "legend{font-weight:600;padding:0 .25rem}"
    ".choice{display:flex;gap:.75rem;align-items:flex-start;padding:.4rem 0;min-height:44px}"
    ".choice input{width:1.4rem;height:1.4rem;margin-top:.2rem;flex:none}"
    ".choice small{display:block;color:#444;font-size:.95rem}"
    ".field{display:block;font-weight:600;margin:.5rem 0 .25rem}"
    "select,input[type=date]{font:inherit;min-height:44px;padding:.4rem;border:1px solid #777;border-radius:.4rem;"
    "background:#fff;max-width:100%;margin-bottom:1rem}"
    ".note{font-size:.95rem;color:#333}"
    "button.secondary{background:#fff;color:#8b1a1a;border-color:#8b1a1a}"
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
    found = _read_row(settings, ATTRIBUTE_SQL, [client_id, contact_id, attribute])
    return found[0] if found else None


def _read_row(settings: Settings, sql: str, params: list[Any]) -> tuple | None:
    """One row of a read-only query (``{p}`` for each parameter); None when there is none."""
    target = settings.warehouse
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
            found = con.execute(sql.format(p="?"), params).fetchone()
        finally:
            con.close()
        return tuple(found) if found else None
    import psycopg2

    conn = psycopg2.connect(
        host=target.pg_host, port=target.pg_port, user=target.pg_user, password=target.pg_password,
        dbname=target.pg_database, connect_timeout=2, options="-c statement_timeout=2000",
    )  # fmt: skip
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute(sql.format(p="%s"), params)
            found = cur.fetchone()
    finally:
        conn.close()
    return tuple(found) if found else None


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
PREFERENCES_SQL = (
    "select topics_off, email_off, sms_off, frequency, paused_until from herald_ops.contact_preferences "
    "where client_id = {p} and contact_id = {p}"
)
FREQUENCY_CHOICES = (("all", "Every message"), ("weekly", "At most one offer a week"),
                     ("monthly", "At most one offer a month"))  # fmt: skip


def current_preferences(settings: Settings, client_id: str, contact_id: str) -> Preferences:
    """The contact's stored preferences; everything on when there are none or the warehouse
    cannot be read right now (never raises)."""
    try:
        row = _read_row(settings, PREFERENCES_SQL, [client_id, contact_id])
    except Exception as exc:  # the page shows the defaults
        log.info("preferences not read (%s: %s); showing the defaults", type(exc).__name__, str(exc)[:200])
        return Preferences()
    if row is None:
        return Preferences()
    topics_off, email_off, sms_off, frequency, paused_until = row
    if isinstance(paused_until, datetime):
        paused_until = paused_until.date()
    return Preferences(frozenset(t for t in str(topics_off or "").split(",") if t), bool(email_off), bool(sms_off),
                       str(frequency or "all"), paused_until)  # fmt: skip


def _topics(context: WebContext, client_id: str) -> list[Topic]:
    client = context.deployment.clients.get(client_id)
    return list(client.config.topics) if client is not None else []


def preference_form(topics: list[Topic], current: Preferences, today: date) -> str:
    """The preference center's form: topics, channels, how often, a pause (plain HTML, no script)."""
    checked = ' checked="checked"'
    parts = [
        '<form method="post" class="prefs">',
        '<input type="hidden" name="action" value="save">',
        f'<input type="hidden" name="form_id" value="{secrets.token_urlsafe(9)}">',
        f'<input type="hidden" name="was" value="{escape(encode_state(current))}">',
        "<fieldset><legend>Topics</legend>",
    ]
    for topic in topics:
        on = "" if topic.name in current.topics_off else checked
        description = f"<small>{escape(topic.description)}</small>" if topic.description else ""
        parts.append(f'<label class="choice"><input type="checkbox" name="topic" value="{escape(topic.name)}"{on}>'
                     f"<span><strong>{escape(topic.label)}</strong>{description}</span></label>")  # fmt: skip
    parts.append("</fieldset>\n<fieldset><legend>How to reach you</legend>")
    for channel, label in (("email", "Email"), ("sms", "Text messages")):
        on = "" if current.channel_off(channel) else checked
        parts.append(f'<label class="choice"><input type="checkbox" name="channel" value="{channel}"{on}>'
                     f"<span><strong>{label}</strong></span></label>")  # fmt: skip
    parts.append('</fieldset>\n<label for="frequency" class="field">How often (offers and news)</label>')
    parts.append('<select id="frequency" name="frequency">')
    for value, label in FREQUENCY_CHOICES:
        selected = ' selected="selected"' if current.frequency == value else ""
        parts.append(f'<option value="{value}"{selected}>{label}</option>')
    parts.append("</select>\n<fieldset><legend>Pause offers and news</legend>")
    pauses = [("none", "No pause" if current.paused_until is None else "End the pause now")]
    if current.paused_until is not None:
        pauses.insert(0, ("keep", f"Keep paused until {current.paused_until.strftime('%-d %B %Y')}"))
    pauses += [("2w", "For two weeks"), ("1m", "For one month"), ("date", "Until a date:")]
    for i, (value, label) in enumerate(pauses):
        on = checked if i == 0 else ""
        parts.append(f'<label class="choice"><input type="radio" name="pause" value="{value}"{on}>'
                     f"<span>{escape(label)}</span></label>")  # fmt: skip
    first, last = today + timedelta(days=1), today + timedelta(days=MAX_PAUSE_DAYS)
    parts.append(f'<input type="date" name="pause_date" aria-label="Pause until" min="{first.isoformat()}" '
                 f'max="{last.isoformat()}">\n</fieldset>')  # fmt: skip
    parts.append('<p class="note">Appointment reminders and other messages you asked for follow your topic and '
                 "channel choices; a pause and how often apply to offers and news only.</p>")  # fmt: skip
    parts.append('<button type="submit">Save my choices</button>\n</form>')
    return "\n".join(parts)


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_page(request: Request, token: str) -> Response:
    context = web_context(request)
    data = _token(context, token, confirm=False)
    if data is None:
        return error_page()
    name = client_name(context, data.client_id)
    what = CHANNEL_WORDS.get(data.channel, "messages")
    current = await run_in_threadpool(current_preferences, context.settings, data.client_id, data.contact_id)
    form = preference_form(_topics(context, data.client_id), current, _now().date())
    return page(
        f"Unsubscribe from {name}",
        f"<p>Press the button to stop receiving {escape(what)} from {escape(name)}.</p>\n"
        '<form method="post">\n<button type="submit">Unsubscribe</button>\n</form>\n'
        f"<h2>Or choose what you get</h2>\n{form}\n"
        f"<h2>Stop everything</h2>\n<p>No more emails or text messages from {escape(name)}.</p>\n"
        '<form method="post">\n<input type="hidden" name="action" value="unsubscribe_all">\n'
        '<button type="submit" class="secondary">Stop all emails and texts</button>\n</form>',
    )


def _unsubscribed_text(data: TokenData, name: str, channels: list[str]) -> str:
    """Exactly what an unsubscribe stopped, and what it did not."""
    stopped = " or ".join(CHANNEL_WORDS.get(c, "messages") for c in channels)
    text = f"You will no longer get {stopped} from {name}."
    others = [CHANNEL_WORDS[c] for c in CHANNEL_WORDS if c not in channels]
    if others:
        how = "reply STOP to any of them" if others == ["text messages"] else "use the unsubscribe link in any of them"
        text += f" This does not stop {' or '.join(others)}: to stop those too, {how}."
    return text


def _form_error(message: str) -> HTMLResponse:
    return page(
        "Please check your choices",
        f"<p>Nothing was changed. {escape(message)}.</p>\n"
        '<p><a href="">Back to your choices</a>: correct it and save again.</p>',
        status_code=400,
    )


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str) -> Response:
    context = web_context(request)
    data = _token(context, token, confirm=False)
    if data is None:
        return error_page()
    name = client_name(context, data.client_id)
    form = await request.form()
    action = str(form.get("action") or "unsubscribe")
    if action == "save":
        return await _save_preferences(context, token, data, name, form)
    if action not in ("unsubscribe", "unsubscribe_all"):
        return _form_error(f"The form asked for {action[:40]!r}, which this page does not do")
    channels = ["email", "sms"] if action == "unsubscribe_all" else [data.channel]
    if action == "unsubscribe_all":
        payload = {"client_id": data.client_id, "contact_id": data.contact_id, "channels": channels,
                   "scope": "all", "via": "page"}  # fmt: skip
        event = ProviderEvent(event_id=token_id("unsubscribe-all", token), source="web", kind="unsubscribe",
                              payload=payload, received_at=_now())  # fmt: skip
    else:
        event = _unsubscribe_event(token, data, "page")
    if failed := await _land(context, event):
        return failed
    text = await run_in_threadpool(wording, context, data, "unsubscribe")
    exact = _unsubscribed_text(data, name, channels)
    return page("You are unsubscribed", f"<p>{escape(text)}</p>\n<p>{escape(exact)}</p>")


async def _save_preferences(context: WebContext, token: str, data: TokenData, name: str, form: Any) -> Response:
    topics = _topics(context, data.client_id)
    fields = {key: form.getlist(key) for key in ("topic", "channel", "frequency", "pause", "pause_date")}
    shown = decode_state(str(form.get("was") or ""), [t.name for t in topics])
    try:
        new = from_form({k: v for k, v in fields.items() if v}, topics, _now().date(), current=shown)
    except PreferenceError as exc:
        return _form_error(str(exc))
    payload = {"client_id": data.client_id, "contact_id": data.contact_id, "preferences": new.to_payload(),
               "source": "page", "via": "page"}  # fmt: skip
    body = json.dumps(payload, sort_keys=True)
    event = ProviderEvent(
        event_id=token_id("preferences", f"{token}|{form.get('form_id') or ''}|{body}"), source="web",
        kind="preferences", payload=payload, received_at=_now(),
    )  # fmt: skip
    if failed := await _land(context, event):
        return failed
    said = describe_changes(shown, new, topics, name)
    lines = "\n".join(f"<p>{escape(line)}</p>" for line in said)
    return page("Your choices are saved", f'{lines}\n<p><a href="">Change your choices</a></p>')


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
