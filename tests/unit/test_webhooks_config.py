"""client.yaml `webhooks`: what `herald config check` accepts and how it names each mistake;
the signature a receiver verifies; the retry schedule; the payload carries ids only."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from herald.config import check_config
from herald.webhooks.config import EVENT_TYPES
from herald.webhooks.dispatch import MAX_ATTEMPTS, RETRY_DELAYS, build_payload, classify, retry_delay
from herald.webhooks.signing import WebhookSecretError, load_secret, signed_headers

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENT = "bright_smiles_dental"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", target)
    return target


def with_webhooks(config: Path, yaml_text: str) -> None:
    path = config / "clients" / CLIENT / "client.yaml"
    path.write_text(path.read_text() + "\nwebhooks:\n" + yaml_text)


def test_a_subscription_loads_with_all_events_by_default(config_copy: Path) -> None:
    with_webhooks(config_copy, "  - url: https://crm.example.com/herald\n    secret_env: CRM_WEBHOOK_SECRET\n"
                               "  - url: http://localhost:9000/hook\n    secret_env: LOCAL_SECRET\n"
                               "    events: [delivered, sent, delivered]\n    description: our warehouse\n")  # fmt: skip
    deployment, problems = check_config(config_copy)
    assert problems == []
    first, second = deployment.clients[CLIENT].config.webhooks
    assert first.events == list(EVENT_TYPES) and first.secret_env == "CRM_WEBHOOK_SECRET"
    assert second.events == ["sent", "delivered"] and second.description == "our warehouse"


@pytest.mark.parametrize(
    ("yaml_text", "field", "message"),
    [
        ("  - url: ftp://crm.example.com\n    secret_env: S\n", "webhooks.0.url", "is not an http(s) URL"),
        ("  - url: https://crm.example.com\n    secret_env: S\n    events: [bounced]\n", "webhooks.0.events.0",
         "enrolled"),
        ("  - url: https://crm.example.com\n    secret_env: S\n    events: []\n", "webhooks.0.events",
         "must name at least one event"),
        ("  - url: https://crm.example.com\n    secret_env: whsec_abc\n", "webhooks.0.secret_env",
         "never put the secret itself here"),
        ("  - url: https://crm.example.com\n    secret_env: my-secret\n", "webhooks.0.secret_env",
         "is not an environment variable name"),
        ("  - url: https://crm.example.com\n", "webhooks.0.secret_env", "required"),
        ("  - url: https://crm.example.com\n    secret_env: S\n    secret: whsec_x\n", "webhooks.0.secret",
         "unknown key"),
        ("  - url: https://a.example.com\n    secret_env: S\n  - url: https://a.example.com\n    secret_env: T\n",
         "webhooks", "is subscribed twice"),
    ],
    ids=["scheme", "unknown-event", "no-events", "secret-in-yaml", "bad-env-name", "no-secret-env", "unknown-key",
         "duplicate-url"],
)  # fmt: skip
def test_each_mistake_names_the_file_and_field(config_copy: Path, yaml_text: str, field: str, message: str) -> None:
    with_webhooks(config_copy, yaml_text)
    deployment, problems = check_config(config_copy)
    assert deployment is None
    assert len(problems) == 1, [str(p) for p in problems]
    assert problems[0].file == f"config/clients/{CLIENT}/client.yaml"
    assert problems[0].field == field and message in problems[0].message, str(problems[0])


def test_the_signature_verifies_with_the_receivers_copy_of_the_secret() -> None:
    signer = load_secret("HOOK", {"HOOK": SECRET}, "https://x.example")
    body = '{"type":"message.sent"}'
    headers = signed_headers(signer, "evt_1", body, datetime.now(UTC))
    assert headers["webhook-id"] == "evt_1" and headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(body, headers) == {"type": "message.sent"}
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(other).verify(body, headers)


@pytest.mark.parametrize(
    ("environ", "message"),
    [({}, "environment variable HOOK (the signing secret of https://x.example) is not set"),
     ({"HOOK": "plain"}, "must hold a secret of the form whsec_<base64>"),
     ({"HOOK": "whsec_%%%"}, "is not a valid whsec_<base64> secret")],
)  # fmt: skip
def test_a_missing_or_malformed_secret_is_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(WebhookSecretError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_secret("HOOK", environ, "https://x.example")


def test_the_retry_schedule_spans_more_than_a_day() -> None:
    assert [retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)] == [*RETRY_DELAYS, None]
    assert RETRY_DELAYS[0] == timedelta(seconds=5) and sum(RETRY_DELAYS, timedelta()) > timedelta(hours=24)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(200, "delivered"), (204, "delivered"), (410, "gone"), (400, "failed"), (404, "failed"), (408, "retry"),
     (429, "retry"), (500, "retry"), (503, "retry"), (None, "retry")],
)  # fmt: skip
def test_status_codes_decide_the_outcome(code: int | None, outcome: str) -> None:
    assert classify(code) == outcome


def test_the_payload_names_the_type_and_ids_only() -> None:
    body = json.loads(build_payload("clinic", {
        "event_id": "e1", "event_type": "delivered", "occurred_at": datetime(2026, 3, 2, 12, 0, 5),
        "contact_id": "c1", "external_id": "EXT-1", "campaign": "reminders", "step": "day_before",
        "message_key": "mk", "channel": "sms", "detail": None,
    }))  # fmt: skip
    assert body["type"] == "message.delivered" and body["timestamp"] == "2026-03-02T12:00:05Z"
    assert body["data"]["contact_id"] == "c1" and body["data"]["client_id"] == "clinic"
    assert set(body["data"]) == {"event_id", "event_type", "client_id", "contact_id", "external_id", "campaign",
                                 "step", "message_key", "channel", "detail"}  # fmt: skip
