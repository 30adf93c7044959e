"""Resend webhooks (signed the Svix way): delivered, bounced, complained, opened, clicked.

The signature is checked on the raw request bytes (re-serialized JSON would not match) by the
``svix`` library, whose tolerance for ``svix-timestamp`` is 5 minutes either way: an older
delivery (a replay) is refused. The ``svix-id`` is the event's id, so a retry lands once.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from svix.webhooks import Webhook, WebhookVerificationError

from herald.clock import utcnow as _clock_now
from herald.events.landing import ProviderEvent
from herald.web.context import web_context
from herald.web.guard import BadInput, parse_json

log = logging.getLogger("herald.web.resend")
ENV_WEBHOOK_SECRET = "RESEND_WEBHOOK_SECRET"
SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("/resend", status_code=204)
async def resend_event(request: Request) -> Response:
    context = web_context(request)
    secret = context.environ.get(ENV_WEBHOOK_SECRET)
    if not secret:
        log.error("resend webhook refused: %s is not set", ENV_WEBHOOK_SECRET)
        return PlainTextResponse(
            f"Resend webhooks are not configured: set {ENV_WEBHOOK_SECRET} (the endpoint's whsec_ signing secret) "
            "for herald serve.",
            status_code=503,
        )
    try:
        verifier = Webhook(secret)
    except Exception:  # a secret that is not whsec_<base64>; never echo it
        log.error("resend webhook refused: %s is not a valid signing secret", ENV_WEBHOOK_SECRET)
        return PlainTextResponse(f"{ENV_WEBHOOK_SECRET} is not a valid whsec_ signing secret", status_code=503)
    body = await request.body()
    headers = {name: request.headers.get(name, "") for name in SVIX_HEADERS}
    try:
        verifier.verify(body, headers)
    except UnicodeDecodeError:  # svix decodes the body to check it
        return PlainTextResponse("the body is not UTF-8", status_code=400)
    except WebhookVerificationError as exc:
        log.warning("resend webhook refused with 400 (svix-id %r): %s", headers["svix-id"][:64], exc)
        return PlainTextResponse(f"invalid webhook signature: {exc}", status_code=400)
    try:
        payload = parse_json(body)
    except BadInput as exc:
        return PlainTextResponse(str(exc), status_code=400)
    if not isinstance(payload, dict):
        return PlainTextResponse("the body is not a JSON object", status_code=400)
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    email_id = data.get("email_id")
    event = ProviderEvent(
        event_id=headers["svix-id"], source="resend", kind="email_event", payload=payload,
        received_at=_clock_now(),
        provider_message_id=str(email_id) if email_id else None,
    )  # fmt: skip
    await run_in_threadpool(context.sink().append, event)
    log.info("resend %s %s landed", payload.get("type"), event.event_id)
    return Response(status_code=204)
