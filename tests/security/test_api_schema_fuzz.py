"""Schemathesis over `herald serve`'s own OpenAPI schema: every operation it publishes (provider
webhooks, unsubscribe and confirmation pages, the ingest API) called with generated path values,
query strings, headers and bodies — valid by the schema and not — answers without a server
error, and nothing is logged with a traceback. The ingest API gets a working key, so its
bodies are really parsed. Bounded: a fixed number of examples per operation, on the embedded
default (the PostgreSQL landing path is covered by test_malformed_input.py)."""

from __future__ import annotations

import base64
import logging
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from herald.packets.api import ensure_home_key
from herald.settings import Settings
from herald.web.app import create_app
from tests.conftest import CONFIG_DIR

CLIENT = "northfield_college"
EXAMPLES_PER_OPERATION = 30
# the schema is loaded when the module is collected (schemathesis parametrizes from it), so the
# deployment it serves lives in a folder of its own, removed when the test process ends
HOME = tempfile.TemporaryDirectory(prefix="herald-api-fuzz-")
ENV = {"HERALD_HOME": str(Path(HOME.name) / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR),
       "HERALD_WAREHOUSE_URL": "", "HERALD_PUBLIC_URL": "https://herald.example",
       "HERALD_SECRET_KEY": "page-secret", "TWILIO_AUTH_TOKEN": "twilio-test-auth-token",
       # configured, as a deployment taking these webhooks is (unconfigured, the endpoint answers
       # 503 on purpose, so the provider keeps the event and retries)
       "RESEND_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"resend-test-signing-secret-32byt").decode()}  # fmt: skip
SETTINGS = Settings.from_env(ENV)
KEY = ensure_home_key(SETTINGS.home, CLIENT).read_text(encoding="utf-8").strip()
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SETTINGS, environ=ENV))


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_published_operation_answers_without_a_server_error(
    case: schemathesis.Case, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error])
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
