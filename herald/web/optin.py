"""The hosted opt-in form ``/optin/<client_id>`` and its email confirmation link.

A public page (no account) that works on a phone without JavaScript. GET shows the client's
disclosures from client.yaml (``optin:``) word for word, one checkbox each; a client without
an ``optin:`` block has no form (404). POST checks, in order: the rate of sign-ups from the IP
(the ``limits`` library, moving windows), the form's CSRF token (signed, bound to this client,
two hours at most, and to a random value in a SameSite=Strict cookie: a page on another site
cannot post it), that the wording shown is still the configured one (its sha256 travels with
the form), the ticked boxes and the phone or email. Any problem is a page naming it, with the
form again; nothing is recorded. Otherwise one ``optin_request`` event per channel is landed
(one write: both or neither) with the proof — the exact wording and its sha256, channel,
topics, time, IP, user agent, the form's address — and :mod:`herald.compliance.optin` turns
it into a pending double opt-in and queues the confirmation request (a "reply YES" text, or an
email whose link leads to ``/optin/<client_id>/confirm/<token>``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from html import escape
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from herald.clock import utcnow
from herald.compliance import optin
from herald.compliance.consent import wording_hash
from herald.config.models import Client
from herald.contacts.phones import mask_email, mask_phone
from herald.events.landing import ProviderEvent
from herald.messages.unsubscribe import InvalidToken, make_token, read_token
from herald.web.context import WebContext, web_context
from herald.web.pages import page

log = logging.getLogger("herald.web.optin")
router = APIRouter(tags=["pages"])

COOKIE = "herald_optin"
FORM_MAX_AGE = 2 * 3600  # seconds a form may stay open before it is sent
MAX_FIELD = 320
# sign-ups per IP: a person needs one or two; a script gets a 429 page
RATES: tuple[RateLimitItem, ...] = (RateLimitItemPerMinute(5), RateLimitItemPerHour(30))
_limiter = MovingWindowRateLimiter(MemoryStorage())
CHECKBOX_STYLE = (
    "<style>label{display:block;margin:.75rem 0}fieldset{border:1px solid #ccc;border-radius:.5rem;margin:1rem 0}"
    ".agree{display:flex;gap:.75rem;align-items:flex-start;padding:.5rem 0}"
    ".agree input{width:1.5rem;height:1.5rem;flex:none;margin-top:.2rem}"
    "input[type=tel],input[type=email]{font:inherit;width:100%;box-sizing:border-box;padding:.6rem;"
    "border:2px solid #555;border-radius:.4rem;min-height:48px}"
    ".error{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecea}</style>"
)


def _signer(context: WebContext) -> Any:
    from itsdangerous import TimestampSigner

    key = hashlib.sha256(f"herald-optin|{context.links.secret}".encode()).digest()
    return TimestampSigner(key, salt="optin-form")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or web_context(request).links.public_url.startswith("https://")


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _client(context: WebContext, client_id: str) -> Client | None:
    client = context.deployment.clients.get(client_id)
    return client if client is not None and client.config.optin is not None else None


def _no_form() -> HTMLResponse:
    return page("There is no sign-up form here", "<p>Check the address you were given.</p>", status_code=404)


def _all_wording(client: Client) -> str:
    assert client.config.optin is not None
    return "\n\n".join(f"{d.channel}|{d.topic}|{d.text}" for d in client.config.optin.disclosures)


def _form(request: Request, client: Client, *, error: str | None = None, values: dict[str, Any] | None = None,
          status_code: int = 200) -> HTMLResponse:  # fmt: skip
    """The form (with ``error`` above it), a fresh CSRF token and its cookie."""
    context = web_context(request)
    assert client.config.optin is not None
    values = values or {}
    nonce = request.cookies.get(COOKIE) or secrets.token_urlsafe(24)
    token = _signer(context).sign(f"{client.client_id}|{nonce}").decode()
    ticked = set(values.get("agree") or [])
    channels = {d.channel for d in client.config.optin.disclosures}
    boxes = []
    for index, d in enumerate(client.config.optin.disclosures):
        label = d.label or ("Text messages" if d.channel == "sms" else "Emails")
        check = " checked" if str(index) in ticked else ""
        boxes.append(
            f'<div class="agree"><input type="checkbox" id="agree{index}" name="agree" value="{index}"{check}>'
            f'<label for="agree{index}" style="margin:0"><strong>{escape(label)}</strong><br>'
            f'<span class="disclosure">{escape(d.text)}</span></label></div>'
        )
    fields = []
    if "sms" in channels:
        fields.append(f'<label for="phone">Mobile number</label><input type="tel" id="phone" name="phone" '
                      f'autocomplete="tel" maxlength="{MAX_FIELD}" value="{escape(values.get("phone", ""))}">')  # fmt: skip
    if "email" in channels:
        fields.append(f'<label for="email">Email</label><input type="email" id="email" name="email" '
                      f'autocomplete="email" maxlength="{MAX_FIELD}" value="{escape(values.get("email", ""))}">')  # fmt: skip
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"{CHECKBOX_STYLE}{problem}<p>Sign up for messages from {escape(client.config.name)}. "
        'Tick what you agree to; you can stop at any time.</p>\n<form method="post">\n'
        f'<input type="hidden" name="form_token" value="{escape(token)}">'
        f'<input type="hidden" name="wording_sha256" value="{wording_hash(_all_wording(client))}">'
        f"{''.join(fields)}<fieldset><legend>I agree to</legend>{''.join(boxes)}</fieldset>"
        '<button type="submit">Sign up</button>\n</form>'
    )
    title = client.config.optin.title or f"Sign up for messages from {client.config.name}"
    response = page(title, body, status_code=status_code)
    response.set_cookie(COOKIE, nonce, httponly=True, samesite="strict", secure=_secure(request),
                        path=f"/optin/{client.client_id}", max_age=FORM_MAX_AGE)  # fmt: skip
    return response


@router.get("/optin/{client_id}", response_class=HTMLResponse)
async def optin_form(request: Request, client_id: str) -> Response:
    client = _client(web_context(request), client_id)
    return _form(request, client) if client else _no_form()


def _rate_limited(client_id: str, ip: str) -> bool:
    # every window is counted (hit), so a burst cannot slip past a later window
    return not all([_limiter.hit(rate, "optin", client_id, ip) for rate in RATES])  # noqa: C419


class FormProblem(Exception):
    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


def _phone(client: Client, text: str) -> str:
    try:
        number = phonenumbers.parse(text, client.default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise FormProblem(f"The mobile number {text!r} is not a phone number we can text; check it and try again.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(text: str) -> str:
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise FormProblem(f"The email {text!r} is not an email address: {exc}") from None


def _check(request: Request, client: Client, form: Any) -> dict[str, tuple[str, list[str]]]:
    """channel → (address, topics) of a valid submission; :class:`FormProblem` naming what is wrong."""
    assert client.config.optin is not None
    context = web_context(request)
    from itsdangerous import BadSignature, SignatureExpired

    token, nonce = form.get("form_token"), request.cookies.get(COOKIE)
    try:
        signed = _signer(context).unsign(str(token or ""), max_age=FORM_MAX_AGE).decode()
    except SignatureExpired:
        raise FormProblem("This form was open too long. Nothing was recorded: please fill it in again.", 403) from None
    except BadSignature:
        raise FormProblem("This form was not sent from this page. Nothing was recorded: please fill it in again.",
                          403) from None  # fmt: skip
    if not nonce or signed != f"{client.client_id}|{nonce}":
        raise FormProblem("This form was not sent from this page. Nothing was recorded: please fill it in again.", 403)
    if form.get("wording_sha256") != wording_hash(_all_wording(client)):
        raise FormProblem("The wording of this form has changed since you opened it. Please read it again below.")
    disclosures = client.config.optin.disclosures
    ticked: list[int] = []
    for value in form.getlist("agree"):
        if not str(value).isdigit() or int(value) >= len(disclosures):
            raise FormProblem(f"Unknown choice {str(value)[:40]!r}: please use the boxes below.")
        ticked.append(int(value))
    if not ticked:
        raise FormProblem("Tick at least one box to agree to the wording shown.")
    chosen: dict[str, tuple[str, list[str]]] = {}
    for channel, field, read in (("sms", "phone", lambda t: _phone(client, t)), ("email", "email", _email)):
        topics = [disclosures[i].topic for i in sorted(set(ticked)) if disclosures[i].channel == channel]
        text = str(form.get(field) or "").strip()[:MAX_FIELD]
        if topics and not text:
            what = "mobile number" if channel == "sms" else "email"
            raise FormProblem(f"Enter your {what}: you ticked a box for {'texts' if channel == 'sms' else 'emails'}.")
        if topics:
            chosen[channel] = (read(text), topics)
    return chosen


@router.post("/optin/{client_id}", response_class=HTMLResponse)
async def optin_submit(request: Request, client_id: str) -> Response:
    context = web_context(request)
    client = _client(context, client_id)
    if client is None:
        return _no_form()
    ip = _ip(request)
    if _rate_limited(client_id, ip):
        log.warning("opt-in form: too many sign-ups from one IP for %s", client_id)
        return page("Too many sign-ups", "<p>Too many sign-ups came from your network just now. Nothing was "
                    "recorded: please try again in a few minutes.</p>", status_code=429)  # fmt: skip
    try:
        form = await request.form()
    except Exception:  # a malformed body: the same answer as a bad field
        return _form(request, client, error="The form could not be read; please fill it in again.", status_code=400)
    values = {"phone": str(form.get("phone") or "")[:MAX_FIELD], "email": str(form.get("email") or "")[:MAX_FIELD],
              "agree": [str(v) for v in form.getlist("agree")]}  # fmt: skip
    try:
        chosen = _check(request, client, form)
    except FormProblem as exc:
        return _form(request, client, error=str(exc), values=values, status_code=exc.status_code)
    now = utcnow()
    nonce = request.cookies.get(COOKIE, "")
    events = []
    for channel, (address, topics) in chosen.items():
        event_id = "optin:" + hashlib.sha256(f"{client_id}|{nonce}|{channel}|{address}".encode()).hexdigest()[:32]
        wording = optin.disclosure_wording(client, channel, topics)
        payload = {
            "client_id": client_id, "channel": channel, "address": address, "topics": topics, "wording": wording,
            "wording_sha256": wording_hash(wording), "ip": ip,
            "user_agent": request.headers.get("user-agent", "")[:500], "page_url": str(request.url.remove_query_params(
                list(request.query_params.keys()))), "submitted_at": now.isoformat(sep=" "),
        }  # fmt: skip
        if channel == "email":
            token = make_token(context.links.secret, client_id, event_id, "email", optin.OPTIN_SCOPE)
            payload["confirm_url"] = f"{context.links.public_url.rstrip('/')}/optin/{client_id}/confirm/{token}"
        events.append(ProviderEvent(event_id=event_id, source="web", kind=optin.REQUEST_EVENT, payload=payload,
                                    received_at=now))  # fmt: skip
    try:
        await run_in_threadpool(context.sink().append, *events)
    except Exception:
        log.exception("could not land an opt-in request for %s", client_id)
        return page("Please try again", "<p>We could not record your sign-up just now. Please try again in a few "
                    "minutes.</p>", status_code=503)  # fmt: skip
    lines = []
    if "sms" in chosen:
        lines.append(f"<p>We are texting {escape(mask_phone(chosen['sms'][0]))}. <strong>Reply YES</strong> to that "
                     "text to confirm.</p>")  # fmt: skip
    if "email" in chosen:
        lines.append(f"<p>We are emailing {escape(mask_email(chosen['email'][0]))}. <strong>Open the link</strong> "
                     "in that email to confirm.</p>")  # fmt: skip
    lines.append("<p>Until you confirm, you will not receive any messages.</p>")
    return page("Almost done: please confirm", "\n".join(lines))


def _link(context: WebContext, client_id: str, token: str) -> str | None:
    """The opt-in request a confirmation link names, when the link is untouched and this client's."""
    try:
        data = read_token(context.links.secret, token)
    except InvalidToken:
        return None
    if data.scope != optin.OPTIN_SCOPE or data.client_id != client_id or data.channel != "email":
        return None
    return data.contact_id  # the request id travels in the token's contact field


def _bad_link() -> HTMLResponse:
    return page("This link does not work", "<p>The link is incomplete or has been changed. Please open it again "
                "from the email you received.</p>", status_code=400)  # fmt: skip


@router.get("/optin/{client_id}/confirm/{token}", response_class=HTMLResponse)
async def optin_confirm_page(request: Request, client_id: str, token: str) -> Response:
    context = web_context(request)
    if _link(context, client_id, token) is None:
        return _bad_link()
    client = context.deployment.clients.get(client_id)
    name = client.config.name if client else client_id
    return page(f"Confirm your subscription to {name}",
                f"<p>Press the button to confirm that you want to receive emails from {escape(name)}.</p>\n"
                '<form method="post">\n<button type="submit">Confirm</button>\n</form>')  # fmt: skip


@router.post("/optin/{client_id}/confirm/{token}", response_class=HTMLResponse)
async def optin_confirm(request: Request, client_id: str, token: str) -> Response:
    context = web_context(request)
    request_id = _link(context, client_id, token)
    if request_id is None:
        return _bad_link()
    event = ProviderEvent(
        event_id="optin_confirm:" + hashlib.sha256(token.encode()).hexdigest()[:32], source="web",
        kind=optin.CONFIRM_EVENT, received_at=utcnow(),
        payload={"client_id": client_id, "request_id": request_id, "ip": _ip(request),
                 "user_agent": request.headers.get("user-agent", "")[:500]},
    )  # fmt: skip
    try:
        await run_in_threadpool(context.sink().append, event)
    except Exception:
        log.exception("could not land an opt-in confirmation for %s", client_id)
        return page("Please try again", "<p>We could not record your confirmation just now. Please try again in a "
                    "few minutes.</p>", status_code=503)  # fmt: skip
    client = context.deployment.clients.get(client_id)
    name = client.config.name if client else client_id
    return page("You are subscribed", f"<p>Thank you: you will receive emails from {escape(name)}. Every email "
                "has a link to unsubscribe.</p>")  # fmt: skip
