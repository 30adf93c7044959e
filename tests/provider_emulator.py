"""A local emulator of the Twilio Messages API and the Resend Emails API, for tests.

    emulator = ProviderEmulator(twilio_accounts={"AC123": "token"}, resend_api_key="re_test")
    emulator.start()            # 127.0.0.1, a free port; emulator.url is the base URL
    ...
    emulator.script(twilio_error(400, 21211, "invalid 'To'"), delay(2.0))  # next 2 requests
    ...
    emulator.stop()

Endpoints:

- ``POST /2010-04-01/Accounts/<sid>/Messages.json`` — form-encoded ``To``/``From``/``Body``
  (or ``MessagingServiceSid``), HTTP basic auth ``<sid>:<token>``; answers 201 with a Twilio-like
  message (``sid`` ``SM…``, ``status`` ``queued``). Accepted messages go to ``sms_sent``.
- ``POST /emails`` — JSON, ``Authorization: Bearer <key>``; answers ``{"id": <uuid>}``.
  ``Idempotency-Key``: the same key with the same body returns the first id without sending
  again; the same key with another body answers 409. Accepted emails go to ``emails_sent``.

- ``POST /emails/batch`` — a JSON list of emails (Resend's batch endpoint): ``Idempotency-Key``
  covers the whole request (same key and body → the first answer, nothing sent again; another
  body → 409). ``x-batch-validation: permissive`` sends the valid emails and lists the invalid
  ones in ``errors`` (``index``, ``message``); strict (the default) refuses the whole batch with
  422. Accepted emails go to ``emails_sent`` (with ``batch_idempotency_key``).
- ``GET /2010-04-01/Accounts/<sid>/Messages.json`` — lists accepted SMS, newest first,
  filtered by ``To``, ``From`` and ``DateSent>`` (one page; the Twilio SDK's ``messages.list``).
  Scripted responses apply to POSTs only. Accepted SMS are listed as ``sent`` unless
  :meth:`ProviderEmulator.set_sms_status` moved them on (``delivered``, ``undelivered`` with an
  error code, ...); :meth:`ProviderEmulator.receive_sms` adds an inbound message (a reply),
  listed with ``direction`` ``inbound``.

Failure injection: :meth:`ProviderEmulator.script` queues responses that the next requests
(of either API, in order) get instead of normal handling; ``delay`` holds the request for a
while and then handles it normally (as a slow provider that still accepts the message would).
Every request, scripted or not, is counted in ``request_count``.

Rate measurement: :meth:`ProviderEmulator.sms_accepted` gives each accepted SMS with the moment
it was accepted, and :func:`max_in_window` the most accepted within any window of a given
length — what a provider's rate limit counts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "ProviderEmulator",
    "ScriptedResponse",
    "delay",
    "max_in_window",
    "resend_error",
    "respond",
    "twilio_error",
]

HOST = "127.0.0.1"
_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")


@dataclass(frozen=True)
class ScriptedResponse:
    """What the next request gets. ``status`` None means: after ``delay``, handle normally."""

    status: int | None = None
    body: Any = None  # dict/list → JSON; str → text/plain
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def respond(status: int, body: Any = None, headers: dict[str, str] | None = None) -> ScriptedResponse:
    return ScriptedResponse(status=status, body=body, headers=dict(headers or {}))


def twilio_error(status: int, code: int, message: str = "error") -> ScriptedResponse:
    return respond(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def resend_error(
    status: int, name: str, message: str = "error", headers: dict[str, str] | None = None
) -> ScriptedResponse:
    return respond(status, {"statusCode": status, "name": name, "message": message}, headers)


def delay(seconds: float) -> ScriptedResponse:
    return ScriptedResponse(delay=seconds)


def max_in_window(moments: list[datetime], seconds: float) -> int:
    """The most of ``moments`` inside any half-open window ``[t, t + seconds)`` (a moving window,
    as a provider's per-second limit counts)."""
    ordered = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(ordered):
        while (moment - ordered[first]).total_seconds() >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


class ProviderEmulator:
    def __init__(
        self,
        *,
        twilio_accounts: dict[str, str] | None = None,
        resend_api_key: str = "re_test_key",
    ) -> None:
        self.twilio_accounts = dict(twilio_accounts or {"ACtest": "test-token"})
        self.resend_api_key = resend_api_key
        self.sms_sent: list[dict[str, str]] = []
        self.emails_sent: list[dict[str, Any]] = []
        self.request_count = 0
        self._idempotency: dict[str, tuple[str, str]] = {}  # key -> (body digest, email id)
        self._batches: dict[str, tuple[str, Any]] = {}  # batch key -> (body digest, answer)
        self._sms_sent_at: dict[str, datetime] = {}  # message sid -> when it was accepted
        self.sms_received: list[dict[str, str]] = []  # inbound messages (replies), for listing
        self._sms_status: dict[str, tuple[str, str | None, datetime]] = {}  # sid -> status, error, updated
        self._script: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ProviderEmulator:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        server = ThreadingHTTPServer((HOST, 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="provider-emulator")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ProviderEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- failure injection -----------------------------------------------------------------
    def reset(self) -> None:
        """Forgets sends, idempotency keys and scripted responses (waits for stragglers first)."""
        self.wait_idle()
        with self._lock:
            self.sms_sent.clear()
            self.emails_sent.clear()
            self._idempotency.clear()
            self._batches.clear()
            self._sms_sent_at.clear()
            self.sms_received.clear()
            self._sms_status.clear()
            self._script.clear()
            self.request_count = 0

    def script(self, *responses: ScriptedResponse) -> None:
        with self._lock:
            self._script.extend(responses)

    def _next_scripted(self) -> ScriptedResponse | None:
        with self._lock:
            self.request_count += 1
            self._in_flight += 1
            return self._script.popleft() if self._script else None

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Waits until no request is being handled (e.g. one a timed-out client left behind)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"{self._in_flight} request(s) still in flight")

    def sms_accepted(self) -> list[tuple[dict[str, str], datetime]]:
        """Every accepted SMS (a copy) with the moment (UTC) the emulator accepted it."""
        with self._lock:
            return [(dict(m), self._sms_sent_at[m["sid"]]) for m in self.sms_sent]

    # -- what Twilio would report later (polling tests) --------------------------------------
    def set_sms_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Moves an accepted SMS to ``status`` (as the carrier's receipt would), listed from now on."""
        with self._lock:
            if sid not in self._sms_sent_at:
                raise KeyError(sid)
            self._sms_status[sid] = (status, None if error_code is None else str(error_code), datetime.now(UTC))

    def receive_sms(
        self, from_: str, to: str, body: str, account_sid: str | None = None, at: datetime | None = None
    ) -> str:
        """An inbound SMS (a reply) to one of the account's numbers; returns its sid."""
        sid = "SM" + uuid.uuid4().hex
        with self._lock:
            self.sms_received.append(
                {
                    "sid": sid,
                    "account_sid": account_sid or next(iter(self.twilio_accounts)),
                    "To": to,
                    "From": from_,
                    "Body": body,
                }
            )
            self._sms_sent_at[sid] = at or datetime.now(UTC)
        return sid

    # -- the two APIs ----------------------------------------------------------------------
    def handle_twilio(self, sid: str, auth: str | None, raw: bytes) -> tuple[int, Any]:
        if not auth or not auth.startswith("Basic "):
            return 401, _twilio_body(401, 20003, "Authenticate")
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return 401, _twilio_body(401, 20003, "Authenticate")
        if user != sid or self.twilio_accounts.get(sid) != password:
            return 401, _twilio_body(401, 20003, "Authenticate")
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        if not form.get("To"):
            return 400, _twilio_body(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, _twilio_body(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body"):
            return 400, _twilio_body(400, 21602, "Message body is required.")
        message_sid = "SM" + uuid.uuid4().hex
        with self._lock:
            self.sms_sent.append({"sid": message_sid, "account_sid": sid, **form})
            self._sms_sent_at[message_sid] = datetime.now(UTC)
            stored = self.sms_sent[-1]
        return 201, _twilio_message(stored, self._sms_sent_at[message_sid], status="queued")

    def _twilio_authenticated(self, sid: str, auth: str | None) -> bool:
        if not auth or not auth.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == sid and self.twilio_accounts.get(sid) == password

    def list_twilio(self, sid: str, auth: str | None, query: str) -> tuple[int, Any]:
        if not self._twilio_authenticated(sid, auth):
            return 401, _twilio_body(401, 20003, "Authenticate")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        after = None
        if params.get("DateSent>"):
            after = datetime.fromisoformat(params["DateSent>"].replace("Z", "+00:00"))
            if after.tzinfo is None:
                after = after.replace(tzinfo=UTC)
        with self._lock:
            rows = [
                m
                for m in [*self.sms_sent, *self.sms_received]
                if m["account_sid"] == sid
                and (not params.get("To") or m["To"] == params["To"])
                and (not params.get("From") or m.get("From") == params["From"])
                and (after is None or self._sms_sent_at[m["sid"]] >= after)
            ]
            rows.sort(key=lambda m: self._sms_sent_at[m["sid"]])
            messages = [self._listed(m) for m in reversed(rows)]
        uri = f"/2010-04-01/Accounts/{sid}/Messages.json"
        return 200, {
            "messages": messages,
            "first_page_uri": uri,
            "next_page_uri": None,
            "previous_page_uri": None,
            "page": 0,
            "page_size": max(len(messages), 50),
            "start": 0,
            "end": max(len(messages) - 1, 0),
            "uri": uri,
        }

    def _listed(self, m: dict[str, Any]) -> dict[str, Any]:
        sent_at = self._sms_sent_at[m["sid"]]
        if m in self.sms_received:
            return _twilio_message(m, sent_at, status="received", direction="inbound")
        status, error_code, updated = self._sms_status.get(m["sid"], ("sent", None, sent_at))
        return _twilio_message(m, sent_at, status=status, error_code=error_code, updated_at=updated)

    def handle_resend(self, auth: str | None, idem_key: str | None, raw: bytes) -> tuple[int, Any]:
        if not auth or not auth.startswith("Bearer "):
            return 401, _resend_body(401, "missing_api_key", "Missing API key")
        if auth[7:] != self.resend_api_key:
            return 403, _resend_body(403, "invalid_api_key", "API key is invalid")
        try:
            payload = json.loads(raw or b"null")
        except json.JSONDecodeError:
            return 422, _resend_body(422, "validation_error", "Invalid JSON")
        if not isinstance(payload, dict):
            return 422, _resend_body(422, "validation_error", "Expected an object")
        for required in ("from", "to", "subject"):
            if required not in payload:
                return 422, _resend_body(422, "missing_required_field", f"Missing `{required}` field.")
        if not (payload.get("html") or payload.get("text")):
            return 422, _resend_body(422, "validation_error", "Missing `html` or `text` field.")
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if idem_key is not None and idem_key in self._idempotency:
                seen_digest, email_id = self._idempotency[idem_key]
                if seen_digest != digest:
                    return 409, _resend_body(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload.",
                    )
                return 200, {"id": email_id}
            email_id = str(uuid.uuid4())
            if idem_key is not None:
                self._idempotency[idem_key] = (digest, email_id)
            self.emails_sent.append({"id": email_id, "idempotency_key": idem_key, **payload})
        return 200, {"id": email_id}

    def handle_resend_batch(
        self, auth: str | None, idem_key: str | None, validation: str | None, raw: bytes
    ) -> tuple[int, Any]:
        if not auth or not auth.startswith("Bearer "):
            return 401, _resend_body(401, "missing_api_key", "Missing API key")
        if auth[7:] != self.resend_api_key:
            return 403, _resend_body(403, "invalid_api_key", "API key is invalid")
        try:
            payload = json.loads(raw or b"null")
        except json.JSONDecodeError:
            return 422, _resend_body(422, "validation_error", "Invalid JSON")
        if not isinstance(payload, list) or not 1 <= len(payload) <= 100:
            return 422, _resend_body(422, "validation_error", "Expected a list of 1 to 100 emails")
        errors = []
        for index, email in enumerate(payload):
            problem = _resend_email_problem(email)
            if problem:
                errors.append({"index": index, "message": problem})
        if errors and (validation or "strict") != "permissive":
            return 422, _resend_body(422, "validation_error", errors[0]["message"])
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        refused = {e["index"] for e in errors}
        with self._lock:
            batch_key = f"batch:{idem_key}" if idem_key is not None else None
            if batch_key is not None and batch_key in self._batches:
                seen_digest, answer = self._batches[batch_key]
                if seen_digest != digest:
                    return 409, _resend_body(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload.",
                    )
                return 200, answer
            data = []
            for index, email in enumerate(payload):
                if index in refused:
                    continue
                email_id = str(uuid.uuid4())
                data.append({"id": email_id})
                self.emails_sent.append(
                    {"id": email_id, "idempotency_key": None, "batch_idempotency_key": idem_key, **email}
                )
            answer: dict[str, Any] = {"data": data}
            if (validation or "strict") == "permissive":
                answer["errors"] = errors
            if batch_key is not None:
                self._batches[batch_key] = (digest, answer)
        return 200, answer


def _resend_email_problem(email: Any) -> str | None:
    if not isinstance(email, dict):
        return "Expected an object"
    for required in ("from", "to", "subject"):
        if required not in email:
            return f"Missing `{required}` field."
    if not (email.get("html") or email.get("text")):
        return "Missing `html` or `text` field."
    if any(str(to).endswith("@invalid.example") for to in email.get("to") or []):
        return "Invalid `to` field."
    return None


def _twilio_message(
    stored: dict[str, Any],
    sent_at: datetime,
    status: str,
    direction: str = "outbound-api",
    error_code: str | None = None,
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    sid, account_sid = stored["sid"], stored["account_sid"]
    when = format_datetime(sent_at)
    return {
        "sid": sid,
        "account_sid": account_sid,
        "to": stored["To"],
        "from": stored.get("From"),
        "messaging_service_sid": stored.get("MessagingServiceSid"),
        "body": stored["Body"],
        "status": status,
        "num_segments": "1",
        "direction": direction,
        "api_version": "2010-04-01",
        "date_created": when,
        "date_sent": None if status in ("queued", "accepted", "sending", "scheduled") else when,
        "date_updated": format_datetime(updated_at or sent_at),
        "error_code": None if error_code is None else int(error_code),
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


def _twilio_body(status: int, code: int, message: str) -> dict[str, Any]:
    return twilio_error(status, code, message).body


def _resend_body(status: int, name: str, message: str) -> dict[str, Any]:
    return resend_error(status, name, message).body


class _Handler(BaseHTTPRequestHandler):
    emulator: ProviderEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scripted = self.emulator._next_scripted()
        try:
            self._handle(scripted, raw)
        finally:
            self.emulator._done()

    def _handle(self, scripted: ScriptedResponse | None, raw: bytes) -> None:
        if scripted is not None:
            if scripted.delay:
                time.sleep(scripted.delay)
            if scripted.status is not None:
                self._send(scripted.status, scripted.body, scripted.headers)
                return
        path = self.path.split("?", 1)[0]
        auth = self.headers.get("Authorization")
        if match := _TWILIO_PATH.match(path):
            status, body = self.emulator.handle_twilio(match["sid"], auth, raw)
        elif path == "/emails/batch":
            status, body = self.emulator.handle_resend_batch(
                auth,
                self.headers.get("Idempotency-Key"),
                self.headers.get("x-batch-validation"),
                raw,
            )
        elif path == "/emails":
            status, body = self.emulator.handle_resend(auth, self.headers.get("Idempotency-Key"), raw)
        else:
            status, body = 404, {"message": f"no route for POST {path}"}
        self._send(status, body, {})

    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        if match := _TWILIO_PATH.match(parts.path):
            status, body = self.emulator.list_twilio(match["sid"], self.headers.get("Authorization"), parts.query)
            self._send(status, body, {})
            return
        self._send(404, {"message": f"no route for GET {parts.path}"}, {})

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        if isinstance(body, str):
            data, content_type = body.encode(), "text/plain"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)
