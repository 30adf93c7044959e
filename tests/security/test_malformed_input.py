"""No 500 on any input: a corpus of malformed bodies and path values sent to every
route of `herald serve`, signed or keyed where the route needs it so the body really is parsed;
every answer is a 4xx (or the route's normal answer) and nothing is logged with a traceback.
The ingest API authenticates before it parses. Bounded property-based fuzz (hypothesis) of the
JSON guard and of the ingest API. Both landing modes (embedded files, PostgreSQL rows)."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from svix.webhooks import Webhook
from twilio.request_validator import RequestValidator

from herald.packets.api import ensure_home_key
from herald.settings import Settings
from herald.web.app import create_app
from herald.web.guard import MAX_BODY_BYTES, MAX_JSON_DEPTH, BadInput, parse_json
from tests.conftest import CONFIG_DIR, ENGINES

PUBLIC_URL = "https://herald.example"
AUTH_TOKEN = "twilio-test-auth-token"
WHSEC = "whsec_" + base64.b64encode(b"resend-test-signing-secret-32byt").decode()
CLIENT = "northfield_college"
INGEST = [
    f"/api/v1/clients/{CLIENT}/{kind}"
    for kind in ("customers", "customer-attributes", "funnel-events", "consent-events")
]
OPTIN = [f"/optin/{CLIENT}", "/optin/no_such_client", f"/optin/{CLIENT}/confirm/t"]  # the public opt-in form
PRIVACY = [f"/api/v1/clients/{CLIENT}/privacy/{kind}" for kind in ("export", "erase")]

DEEP = "[" * 100_000 + "]" * 100_000
# (name, raw body): each must be refused with a 4xx wherever a JSON body is read
BAD_JSON: list[tuple[str, bytes]] = [
    ("lone surrogate", b'{"customers": [{"external_id": "\\ud800", "email": "a@example.com"}]}'),
    ("lone surrogate key", b'{"\\udfff": 1}'),
    ("NaN", b'{"customers": [{"external_id": "x", "attributes": {"gpa": NaN}}]}'),
    ("Infinity", b'{"customers": [{"external_id": "x", "attributes": {"gpa": -Infinity}}]}'),
    ("overflowing float", b'{"customers": [{"external_id": "x", "attributes": {"gpa": 1e999}}]}'),
    ("huge integer", b'{"customers": [{"external_id": 1' + b"0" * 5000 + b"}]}"),
    ("deep nesting", DEEP.encode()),
    ("nesting over the limit", ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)).encode()),
    ("not UTF-8", b'{"customers": [{"external_id": "\xff\xfe"}]}'),
    ("NUL", b'{"customers": [{"external_id": "a\\u0000b", "email": "a@example.com"}]}'),
    ("truncated", b'{"customers": [{"external_id": '),
    ("not JSON", b"<xml/>"),
    ("empty", b""),
]
OTHER_BODIES: list[tuple[str, bytes, str]] = [
    ("json array", b"[1, 2, 3]", "application/json"),
    ("json scalar", b'"x"', "application/json"),
    ("wrong types", b'{"customers": "everyone", "events": 7}', "application/json"),
    ("form", b"a=1&b=%ED%A0%80&c=%00&d=%zz", "application/x-www-form-urlencoded"),
    ("multipart junk", b"--x\r\nContent-Disposition: form-data\r\n\r\n", "multipart/form-data; boundary=x"),
    ("multipart no boundary", b"--x--", "multipart/form-data"),
    ("binary", bytes(range(256)) * 4, "application/octet-stream"),
]
BAD_TOKENS = ["x", "A" * 5000, "%ED%A0%80", "%00", "..%2F..%2Fetc%2Fpasswd", "%FF%FE", "a.b.c", "%C0%AF"]


@pytest.fixture(params=ENGINES)
def client(request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]]) -> Iterator[TestClient]:
    env = {**herald_env(request.param), "HERALD_PUBLIC_URL": PUBLIC_URL, "HERALD_SECRET_KEY": "page-secret",
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "RESEND_WEBHOOK_SECRET": WHSEC}  # fmt: skip
    settings_ = Settings.from_env(env)
    key = ensure_home_key(settings_.home, CLIENT).read_text(encoding="utf-8").strip()
    with TestClient(create_app(settings_, environ=env), raise_server_exceptions=False) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


@pytest.fixture
def tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    caplog.set_level(logging.DEBUG)
    records: list[logging.LogRecord] = []
    yield records
    records.extend(r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage())
    assert not records, [r.getMessage() for r in records]


def resend_headers(body: bytes) -> dict[str, str]:
    at = datetime.now(UTC)
    return {"svix-id": "msg_fuzz", "svix-timestamp": str(int(at.timestamp())),
            "svix-signature": Webhook(WHSEC).sign("msg_fuzz", at, body.decode("utf-8", "replace")),
            "content-type": "application/json"}  # fmt: skip


def twilio_signed(path: str, params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, params)}


def test_every_route_is_in_the_corpus(client: TestClient) -> None:
    """A new route must be added to the corpus below (or prove it reads no body). The portal's
    form routes (/app) are fuzzed by tests/integration/test_portal_web.py (missing, forged and
    malformed fields on every form)."""
    from tests.integration.test_portal_web import app_routes

    paths = {path for path, _ in app_routes(client.app) if not path.startswith(("/app", "/static"))}
    assert {"/webhooks/twilio/inbound", "/u/{token}", "/healthz"} <= paths  # the walk sees the routers' routes
    known = {"/healthz", "/webhooks/twilio/inbound", "/webhooks/twilio/status", "/webhooks/resend",
             "/u/{token}", "/u/{token}/one-click", "/c/{token}", "/l/{token}",
             *(p.replace(CLIENT, "{client_id}") for p in INGEST + PRIVACY),
             "/optin/{client_id}", "/optin/{client_id}/confirm/{token}",
             "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # fmt: skip
    assert paths <= known, paths - known


@pytest.mark.parametrize(("name", "body"), BAD_JSON, ids=[n for n, _ in BAD_JSON])
def test_the_ingest_api_refuses_malformed_json_with_400(client: TestClient, tracebacks, name: str, body: bytes) -> None:
    for path in INGEST:
        answer = client.post(path, content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
        assert answer.json()["detail"]
        # a stranger gets 401 whatever the body: the key is checked before the body is read
        stranger = client.post(path, content=body, headers={"content-type": "application/json", "Authorization": ""})
        assert stranger.status_code == 401


@pytest.mark.parametrize(("name", "body"), BAD_JSON, ids=[n for n, _ in BAD_JSON])
def test_the_privacy_api_refuses_malformed_json_with_a_4xx(
    client: TestClient, tracebacks, name: str, body: bytes
) -> None:
    for path in PRIVACY:
        answer = client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:300])
        assert answer.json()["detail"]
        stranger = client.post(path, content=body, headers={"content-type": "application/json", "Authorization": ""})
        assert stranger.status_code == 401


@pytest.mark.parametrize(("name", "body"), BAD_JSON, ids=[n for n, _ in BAD_JSON])
def test_the_resend_webhook_refuses_malformed_json_with_400(
    client: TestClient, tracebacks, name: str, body: bytes
) -> None:
    answer = client.post("/webhooks/resend", content=body, headers=resend_headers(body))
    assert answer.status_code in (400,), (answer.status_code, answer.text[:300])


def test_the_messages_name_what_is_wrong(client: TestClient, tracebacks) -> None:
    cases = {"lone surrogate": "lone surrogate", "NaN": "NaN is not valid JSON", "deep nesting": "nested more than 32",
             "not UTF-8": "not UTF-8", "NUL": "NUL character"}  # fmt: skip
    for name, message in cases.items():
        body = dict(BAD_JSON)[name]
        answer = client.post(INGEST[0], content=body, headers={"content-type": "application/json"})
        assert message in answer.json()["detail"], (name, answer.text)


def test_an_oversized_body_is_413_on_every_route(client: TestClient, tracebacks) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    for path in [*INGEST, "/webhooks/resend", "/webhooks/twilio/inbound", "/u/t", "/c/t"]:
        assert client.post(path, content=big).status_code == 413, path

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(6):
                yield b"y" * (1024 * 1024)

        assert client.post(path, content=chunks()).status_code == 413, path


@pytest.mark.parametrize(("name", "body", "content_type"), OTHER_BODIES, ids=[n for n, *_ in OTHER_BODIES])
def test_odd_bodies_on_every_post_route_are_never_5xx(
    client: TestClient, tracebacks, name: str, body: bytes, content_type: str
) -> None:
    posts = [*INGEST, "/webhooks/resend", "/webhooks/twilio/inbound", "/webhooks/twilio/status",
             "/u/t", "/u/t/one-click", "/c/t", *OPTIN]  # fmt: skip
    for path in posts:
        headers = {"content-type": content_type}
        if path == "/webhooks/resend":
            headers.update(resend_headers(body))
        answer = client.post(path, content=body, headers=headers)
        assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])
    for name_, bad in BAD_JSON:  # JSON junk on the routes that expect forms
        for path in ("/webhooks/twilio/inbound", "/u/t", "/u/t/one-click", "/c/t", *OPTIN):
            answer = client.post(path, content=bad, headers={"content-type": "application/json"})
            assert answer.status_code < 500, (path, name_, answer.status_code)


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_malformed_tokens_in_paths_are_never_5xx(client: TestClient, tracebacks, token: str) -> None:
    for method, path in [("GET", "/u/{}"), ("POST", "/u/{}"), ("POST", "/u/{}/one-click"), ("GET", "/c/{}"),
                         ("POST", "/c/{}"), ("GET", "/l/{}"), ("HEAD", "/l/{}"),
                         ("GET", f"/optin/{CLIENT}/confirm/{{}}"), ("POST", f"/optin/{CLIENT}/confirm/{{}}")]:  # fmt: skip
        answer = client.request(method, path.format(token), follow_redirects=False)
        assert 400 <= answer.status_code < 500, (method, path, token, answer.status_code)
    for path in INGEST:
        answer = client.post(path.replace(CLIENT, token), json={"customers": []})
        assert answer.status_code in (401, 404), (path, token, answer.status_code)


@pytest.mark.parametrize(
    "params",
    [
        {"MessageSid": "SM1", "From": "+13125550188", "To": "+15125550100", "Body": "stop\x00now"},
        {"MessageSid": "SM2", "From": "+13125550188", "To": "+15125550100", "Body": "\ufffd" * 2000},
        {"MessageSid": "SM3" + "9" * 5000, "From": "x" * 5000, "To": "+15125550100", "Body": "hi"},
        {"MessageSid": "SM4", "From": "\x00", "To": "\x00"},
        {"MessageSid": "SM5", "MessageStatus": "delivered\x00", "To": "+1", "From": "+1"},
    ],
    ids=["NUL in Body", "replacement chars", "long values", "NUL addresses", "NUL status"],
)
def test_signed_twilio_forms_with_odd_values_are_never_5xx(client: TestClient, tracebacks, params) -> None:
    for path in ("/webhooks/twilio/inbound", "/webhooks/twilio/status"):
        answer = client.post(path, data=params, headers=twilio_signed(path, params))
        assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])


def test_the_ingest_api_answers_401_before_reading_a_body_at_all(client: TestClient, tracebacks) -> None:
    answer = client.post(INGEST[0], content=DEEP.encode(), headers={"Authorization": "Bearer hk_wrong"})
    assert answer.status_code == 401 and answer.json() == {"detail": "unknown client or API key"}


# -- bounded property-based fuzz -----------------------------------------------------------------

JSON_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | JSON_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_TEXT, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=True).encode()))
def test_parse_json_answers_a_value_or_bad_input_for_any_bytes(body: bytes) -> None:
    try:
        value = parse_json(body)
    except BadInput as exc:
        assert str(exc)
    else:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")  # storable as it is


def _unstorable(value: object) -> bool:
    """Whether a decoded body holds what Herald must refuse: NaN or an infinity, or a lone
    surrogate in any string or key (judged on the value, not on its JSON text, where a string
    "NaN" or a literal backslash-u would look the same)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


@pytest.mark.parametrize("engine", ["duckdb"])
def test_fuzzed_ingest_bodies_are_answered_without_5xx(engine: str, tmp_path: Path, tracebacks) -> None:
    env = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    settings_ = Settings.from_env(env)
    key = ensure_home_key(settings_.home, CLIENT).read_text(encoding="utf-8").strip()
    customer = st.fixed_dictionaries(
        {},
        optional={
            "external_id": JSON_TEXT,
            "email": JSON_TEXT,
            "phone": JSON_TEXT,
            "first_name": JSON_TEXT,
            "attributes": st.dictionaries(JSON_TEXT, JSON_VALUES, max_size=3),
        },
    )
    bodies = st.fixed_dictionaries({"customers": st.lists(customer, max_size=3)}) | JSON_VALUES

    with TestClient(create_app(settings_, environ=env), raise_server_exceptions=False) as test_client:

        @settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
        @given(bodies, st.sampled_from(INGEST))
        def fuzz(body, path: str) -> None:
            raw = json.dumps(body, ensure_ascii=True)
            answer = test_client.post(path, content=raw, headers={"Authorization": f"Bearer {key}",
                                                                   "content-type": "application/json"})  # fmt: skip
            assert answer.status_code in (202, 400, 422), (answer.status_code, raw[:200], answer.text[:300])
            if _unstorable(body):
                assert answer.status_code in (400, 422)

        fuzz()


def test_the_example_configuration_holds_no_working_secret() -> None:
    """No API key in any example file (comments included) matches a configured key hash."""
    import hashlib

    import yaml

    for path in sorted(CONFIG_DIR.rglob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        assert "hk_" not in text, path
        hashes = {h.lower() for h in re.findall(r"\b[0-9a-fA-F]{64}\b", text)}
        data = yaml.safe_load(text) or {}
        hashes |= set((data.get("ingest_api") or {}).get("key_sha256") or []) if isinstance(data, dict) else set()
        for word in set(re.findall(r"[\w\-.~+/=]{8,}", text)):
            assert hashlib.sha256(word.encode()).hexdigest() not in hashes, (path, word)
