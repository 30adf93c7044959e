"""Standard Webhooks signing (https://www.standardwebhooks.com) with the ``standardwebhooks``
library: each POST carries ``webhook-id`` (the event id, the same on every retry),
``webhook-timestamp`` (Unix seconds of the attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``)."""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

USER_AGENT = "Herald-Webhooks/1"


class WebhookSecretError(ValueError):
    """A subscription's signing secret is missing or not a ``whsec_<base64>`` secret."""


def load_secret(secret_env: str, environ: Mapping[str, str], url: str) -> Webhook:
    """The signer for the secret in the environment variable ``secret_env``."""
    value = environ.get(secret_env, "").strip()
    if not value:
        raise WebhookSecretError(f"environment variable {secret_env} (the signing secret of {url}) is not set")
    if not value.startswith("whsec_"):
        raise WebhookSecretError(f"environment variable {secret_env} must hold a secret of the form whsec_<base64>")
    try:
        return Webhook(value)
    except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
        raise WebhookSecretError(
            f"environment variable {secret_env} is not a valid whsec_<base64> secret: {exc}"
        ) from None


def signed_headers(signer: Webhook, msg_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """The headers of one POST of ``body`` signed at ``at`` (default: now)."""
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(msg_id=msg_id, timestamp=at, data=body),
    }
