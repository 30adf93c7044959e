"""Twilio webhooks: inbound SMS and message status callbacks, signature-checked.

Twilio signs ``X-Twilio-Signature`` = HMAC-SHA1(auth token, the URL it called + the sorted POST
parameters). The URL is rebuilt from ``HERALD_PUBLIC_URL`` (the address Twilio is configured
with), never from the Host header: behind a proxy the Host is the proxy's, and trusting it would
let a caller choose the URL the signature is checked against.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator, get_signature_algorithm

from herald.clock import utcnow as _clock_now
from herald.compliance.landing import InboundMessage
from herald.contacts.phones import mask_phone
from herald.events.landing import ProviderEvent
from herald.settings import ENV_TWILIO_SECONDARY_SID, ENV_TWILIO_SECONDARY_TOKEN, ENV_TWILIO_SID, ENV_TWILIO_TOKEN
from herald.web.context import WebContext, web_context

log = logging.getLogger("herald.web.twilio")
# (provider account, its account SID variable, its auth token variable), the primary first
TWILIO_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("twilio", ENV_TWILIO_SID, ENV_TWILIO_TOKEN),
    ("twilio_secondary", ENV_TWILIO_SECONDARY_SID, ENV_TWILIO_SECONDARY_TOKEN),
)
SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])


def public_request_url(public_url: str, request: Request) -> str:
    """The URL Twilio called: the configured public address + this request's path and query."""
    query = request.url.query
    return public_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def _now() -> datetime:
    return _clock_now()


@dataclass(frozen=True)
class SigningAccount:
    """A Twilio account whose webhooks herald serve accepts (its token is never in a repr)."""

    provider: str  # twilio | twilio_secondary
    account_sid: str | None
    token: str = field(repr=False)


def signing_accounts(environ: Mapping[str, str]) -> list[SigningAccount]:
    """The Twilio accounts with an auth token in ``environ``, the primary first."""
    found = []
    for provider, sid_variable, token_variable in TWILIO_ACCOUNTS:
        token = (environ.get(token_variable) or "").strip()
        if token:
            found.append(SigningAccount(provider, (environ.get(sid_variable) or "").strip() or None, token))
    return found


def signed_by(
    accounts: list[SigningAccount], url: str, params: Mapping[str, str], signature: str, algorithm: Any = None
) -> SigningAccount | None:
    """The account whose auth token produced ``signature`` over ``url`` + ``params``, or None.
    The account the request names (``AccountSid``) is tried first, so two accounts sharing a
    token (a misconfiguration Twilio does not allow) still land under the right name."""
    if not signature:
        return None
    named = params.get("AccountSid")
    ordered = sorted(accounts, key=lambda a: a.account_sid is None or a.account_sid != named)
    for account in ordered:
        if RequestValidator(account.token).validate(url, params, signature, algorithm):
            return account
    return None


async def _verified_form(request: Request, context: WebContext) -> tuple[FormData, str] | Response:
    """The posted parameters and the account that signed them when the signature is Twilio's
    (either account's); else the answer to give."""
    accounts = signing_accounts(context.environ)
    if not accounts:
        log.error(
            "twilio webhook %s refused: neither %s nor %s is set",
            request.url.path, ENV_TWILIO_TOKEN, ENV_TWILIO_SECONDARY_TOKEN,
        )  # fmt: skip
        return PlainTextResponse(
            f"Twilio webhooks are not configured: set {ENV_TWILIO_TOKEN} (the account's auth token; "
            f"{ENV_TWILIO_SECONDARY_TOKEN} for a second account) and HERALD_PUBLIC_URL (the https address "
            "Twilio calls) for herald serve.",
            status_code=503,
        )
    form = await request.form()
    url = public_request_url(context.links.public_url, request)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    algorithm = get_signature_algorithm(request.headers.get(SETTINGS_HEADER))
    texts = all(isinstance(v, str) for _, v in form.multi_items())
    account = signed_by(accounts, url, form, signature, algorithm) if texts else None  # type: ignore[arg-type]
    if account is None:
        log.warning(
            "twilio webhook %s refused with 403: %s X-Twilio-Signature for %s (checked with %s; MessageSid %s, From %s)",
            request.url.path, "a bad" if signature else "no", url, " and ".join(a.provider for a in accounts),
            form.get("MessageSid"), mask_phone(str(form.get("From") or "")),
        )  # fmt: skip
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    if any("\x00" in str(v) for _, v in form.multi_items()):  # no SMS holds one; PostgreSQL cannot store it
        return PlainTextResponse("a parameter holds a NUL character", status_code=400)
    return form, account.provider


def _missing(form: FormData, *names: str) -> Response | None:
    absent = [n for n in names if not form.get(n)]
    if absent:
        return PlainTextResponse(f"missing {', '.join(absent)}", status_code=400)
    return None


@router.post("/inbound")
async def inbound(request: Request) -> Response:
    """An SMS reply: landed for the compliance engine (STOP, HELP, C/R), answered with empty TwiML."""
    context = web_context(request)
    verified = await _verified_form(request, context)
    if isinstance(verified, Response):
        return verified
    form, provider = verified
    if problem := _missing(form, "MessageSid", "From", "To"):
        return problem
    message = InboundMessage(
        inbound_id=str(form["MessageSid"]), from_address=str(form["From"]), to_address=str(form["To"]),
        body=str(form.get("Body") or ""), received_at=_now(), provider=provider,
    )  # fmt: skip
    await run_in_threadpool(context.sink().append_inbound, message)
    log.info("%s inbound %s from %s landed", provider, message.inbound_id, mask_phone(message.from_address))
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/status", status_code=204)
async def status(request: Request) -> Response:
    """A message status callback; ``<MessageSid>:<status>`` is its id, so a retry lands once."""
    context = web_context(request)
    verified = await _verified_form(request, context)
    if isinstance(verified, Response):
        return verified
    form, provider = verified
    if problem := _missing(form, "MessageSid", "MessageStatus"):
        return problem
    sid, state = str(form["MessageSid"]), str(form["MessageStatus"])
    event = ProviderEvent(
        event_id=f"{sid}:{state}", source=provider, kind="sms_status", payload={k: str(v) for k, v in form.items()},
        received_at=_now(), provider_message_id=sid,
    )  # fmt: skip
    await run_in_threadpool(context.sink().append, event)
    log.info("%s status %s landed", provider, event.event_id)
    return Response(status_code=204)
