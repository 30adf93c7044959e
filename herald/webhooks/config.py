"""A client's outbound webhook subscriptions (``webhooks:`` in ``client.yaml``).

Each subscription names an endpoint of the client's own systems, the client events it wants
(default: all of them) and the environment variable holding its Standard Webhooks signing
secret (``whsec_<base64>``); the secret itself never goes in YAML.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# the client events a subscription can ask for (the event_type values of marts.client_events)
EVENT_TYPES = ("enrolled", "sent", "delivered", "failed", "replied", "clicked", "opted_out", "converted", "exited")
EventType = Literal["enrolled", "sent", "delivered", "failed", "replied", "clicked", "opted_out", "converted", "exited"]
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class WebhookSubscription(BaseModel):
    """One endpoint of the client's and the events it receives. Strict like every configuration
    model (unknown keys are errors, values frozen); it imports nothing from herald.config, which
    imports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    events: list[EventType] = Field(default_factory=lambda: list(EVENT_TYPES))
    secret_env: str
    description: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL such as 'https://crm.example.com/herald'")
        return value.strip()

    @field_validator("events")
    @classmethod
    def _some_events(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"must name at least one event (leave it out for all: {', '.join(EVENT_TYPES)})")
        return sorted(set(value), key=EVENT_TYPES.index)

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value.startswith("whsec_"):
            raise ValueError("names the environment variable holding the secret; never put the secret itself here")
        if not ENV_NAME_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (letters, digits and underscores)")
        return value


def subscription_id(client_id: str, url: str) -> str:
    """A subscription's stable id: the same client and URL are the same subscription."""
    return hashlib.md5(f"{client_id}|{url}".encode()).hexdigest()[:16]


def check_unique_urls(subscriptions: list[WebhookSubscription]) -> list[WebhookSubscription]:
    seen: set[str] = set()
    for sub in subscriptions:
        if sub.url in seen:
            raise ValueError(f"{sub.url!r} is subscribed twice; list each endpoint once with all its events")
        seen.add(sub.url)
    return subscriptions
