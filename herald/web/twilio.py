"""Twilio webhooks: inbound SMS and message status callbacks, signature-checked.

Twilio signs ``X-Twilio-Signature`` = HMAC-SHA1(auth token, the URL it called + the sorted POST
parameters). The URL is rebuilt from ``HERALD_PUBLIC_URL`` (the address Twilio is configured
with), never from the Host header: behind a proxy the Host is the proxy's, and trusting it would
let a caller choose the URL the signature is checked against.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator, get_signature_algorithm

from herald.clock import utcnow as _clock_now
from herald.compliance.landing import InboundMessage
from herald.contacts.phones import mask_phone
from herald.events.landing import ProviderEvent
from herald.web.context import WebContext, web_context

log = logging.getLogger("herald.web.twilio")
ENV_AUTH_TOKEN = "TWILIO_AUTH_TOKEN"
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


async def _verified_form(request: Request, context: WebContext) -> FormData | Response:
    """The posted parameters when the signature is Twilio's; else the answer to give."""
    token = context.environ.get(ENV_AUTH_TOKEN)
    if not token:
        log.error("twilio webhook %s refused: %s is not set", request.url.path, ENV_AUTH_TOKEN)
        return PlainTextResponse(
            f"Twilio webhooks are not configured: set {ENV_AUTH_TOKEN} (the account's auth token) "
            "and HERALD_PUBLIC_URL (the https address Twilio calls) for herald serve.",
            status_code=503,
        )
    form = await request.form()
    url = public_request_url(context.links.public_url, request)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    algorithm = get_signature_algorithm(request.headers.get(SETTINGS_HEADER))
    texts = all(isinstance(v, str) for _, v in form.multi_items())
    if not signature or not texts or not RequestValidator(token).validate(url, form, signature, algorithm):
        log.warning(
            "twilio webhook %s refused with 403: %s X-Twilio-Signature for %s (MessageSid %s, From %s)",
            request.url.path, "a bad" if signature else "no", url,
            form.get("MessageSid"), mask_phone(str(form.get("From") or "")),
        )  # fmt: skip
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    if any("\x00" in str(v) for _, v in form.multi_items()):  # no SMS holds one; PostgreSQL cannot store it
        return PlainTextResponse("a parameter holds a NUL character", status_code=400)
    return form


def _missing(form: FormData, *names: str) -> Response | None:
    absent = [n for n in names if not form.get(n)]
    if absent:
        return PlainTextResponse(f"missing {', '.join(absent)}", status_code=400)
    return None


@router.post("/inbound")
async def inbound(request: Request) -> Response:
    """An SMS reply: landed for the compliance engine (STOP, HELP, C/R), answered with empty TwiML."""
    context = web_context(request)
    form = await _verified_form(request, context)
    if isinstance(form, Response):
        return form
    if problem := _missing(form, "MessageSid", "From", "To"):
        return problem
    message = InboundMessage(
        inbound_id=str(form["MessageSid"]), from_address=str(form["From"]), to_address=str(form["To"]),
        body=str(form.get("Body") or ""), received_at=_now(), provider="twilio",
    )  # fmt: skip
    await run_in_threadpool(context.sink().append_inbound, message)
    log.info("twilio inbound %s from %s landed", message.inbound_id, mask_phone(message.from_address))
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/status", status_code=204)
async def status(request: Request) -> Response:
    """A message status callback; ``<MessageSid>:<status>`` is its id, so a retry lands once."""
    context = web_context(request)
    form = await _verified_form(request, context)
    if isinstance(form, Response):
        return form
    if problem := _missing(form, "MessageSid", "MessageStatus"):
        return problem
    sid, state = str(form["MessageSid"]), str(form["MessageStatus"])
    event = ProviderEvent(
        event_id=f"{sid}:{state}", source="twilio", kind="sms_status", payload={k: str(v) for k, v in form.items()},
        received_at=_now(), provider_message_id=sid,
    )  # fmt: skip
    await run_in_threadpool(context.sink().append, event)
    log.info("twilio status %s landed", event.event_id)
    return Response(status_code=204)
