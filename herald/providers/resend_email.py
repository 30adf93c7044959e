"""Email through Resend's real SDK.

The message key is sent as ``Idempotency-Key`` (Resend keeps keys 24 h), so a retried send of
the same message never produces a second email. :meth:`ResendEmailProvider.send_batch` uses the
batch endpoint (``resend.Batch.send``, up to 100 emails per request) in permissive validation
mode (an invalid email fails alone, not the whole request); its ``Idempotency-Key`` is derived
from the batch's message keys, so a retried batch of the same messages is never sent twice.
The SDK keeps its API key, base URL and HTTP client in module globals, so each call sets them
under one lock and restores them afterwards.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import requests
import resend
from resend.exceptions import (
    ApplicationError,
    MissingRequiredFieldsError,
    RateLimitError,
    ResendError,
    ValidationError,
)
from resend.http_client_requests import RequestsClient

from herald.providers.base import (
    BatchItemResult,
    OutboundMessage,
    PermanentProviderError,
    Provider,
    QuotaExceededError,
    SendResult,
    TransientProviderError,
    parse_retry_after,
)

DEFAULT_API_URL = "https://api.resend.com"
BATCH_LIMIT = 100  # emails per batch request (Resend's limit)
QUOTA_ERROR_TYPES = {"daily_quota_exceeded", "monthly_quota_exceeded"}
_SDK_GLOBALS_LOCK = threading.Lock()


def _status(exc: ResendError) -> int | None:
    try:
        return int(exc.code)
    except (TypeError, ValueError):
        return None


TIMEOUT_CODE = "timeout"  # a request that timed out after it was sent: Resend may have the email


def _read_timeout(exc: BaseException) -> bool:
    """True when the SDK's ``HttpClientError`` came from a timeout after the request was sent
    (the SDK wraps the ``requests`` error in a RuntimeError, then in a ResendError)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, requests.Timeout):
            return not isinstance(cause, requests.ConnectTimeout)
        cause = cause.__cause__ or cause.__context__
    return False


def classify_resend_error(exc: ResendError, provider: str) -> Exception:
    """The taxonomy error for one ``ResendError`` (a pure function, table-tested). A read
    timeout is transient with ``outcome_unknown`` and code ``timeout``: a retry at Resend is
    safe (the idempotency key), a send of the same email through another provider is not."""
    status, error_type = _status(exc), exc.error_type
    reason = f"{error_type}: {exc.message}"
    if error_type == "HttpClientError" and _read_timeout(exc):
        return TransientProviderError(reason, provider=provider, code=TIMEOUT_CODE, outcome_unknown=True)
    if error_type in QUOTA_ERROR_TYPES:
        return QuotaExceededError(reason, provider=provider, code=error_type)
    if isinstance(exc, RateLimitError) or status == 429:
        retry_after = parse_retry_after({k.lower(): v for k, v in (exc.headers or {}).items()}.get("retry-after"))
        return TransientProviderError(reason, provider=provider, code=429, retry_after=retry_after)
    if isinstance(exc, (ValidationError, MissingRequiredFieldsError)):
        return PermanentProviderError(reason, provider=provider, code=status or error_type)
    if isinstance(exc, ApplicationError) or error_type == "HttpClientError":
        # HttpClientError: refused connection, timeout, DNS — nothing reached Resend's answer.
        return TransientProviderError(reason, provider=provider, code=status or error_type)
    if status is not None and status >= 500:
        return TransientProviderError(reason, provider=provider, code=status)
    # 401/403 keys, 409 idempotency conflict, other 4xx: retrying the same request won't help.
    return PermanentProviderError(reason, provider=provider, code=status or error_type)


def batch_idempotency_key(message_keys: Sequence[str]) -> str:
    """The ``Idempotency-Key`` of a batch: the same messages in the same order → the same key
    (Resend allows 256 characters; a digest keeps it short)."""
    digest = hashlib.sha256("\n".join(message_keys).encode()).hexdigest()
    return f"herald-batch/{len(message_keys)}/{digest}"


class ResendEmailProvider(Provider):
    name = "resend"
    channel = "email"
    max_batch_size = BATCH_LIMIT

    def __init__(self, api_key: str, *, base_url: str | None = None, timeout: float = 10.0) -> None:
        self._api_key = api_key
        self._api_url = (base_url or DEFAULT_API_URL).rstrip("/")
        self._http_client = RequestsClient(timeout=timeout)

    def _params(self, message: OutboundMessage) -> dict:
        if not message.sender:
            raise ValueError(f"{message.message_key}: an email needs a sender")
        params: dict = {
            "from": message.sender,
            "to": [message.to],
            "subject": message.subject or "",
        }
        if message.html:
            params["html"] = message.html
        if message.text:
            params["text"] = message.text
        if message.headers:
            params["headers"] = dict(message.headers)
        return params

    def __repr__(self) -> str:  # never the API key
        return f"ResendEmailProvider(api_url={self._api_url!r})"

    def _call(self, call: Callable[[], Any]) -> Any:
        with _SDK_GLOBALS_LOCK:
            saved = (resend.api_key, resend.api_url, resend.default_http_client)
            resend.api_key = self._api_key
            resend.api_url = self._api_url
            resend.default_http_client = self._http_client
            try:
                return call()
            except ResendError as exc:
                raise classify_resend_error(exc, self.name) from exc
            finally:
                resend.api_key, resend.api_url, resend.default_http_client = saved

    def send(self, message: OutboundMessage) -> SendResult:
        self._check_channel(message)
        params = self._params(message)
        options = {"idempotency_key": message.message_key}
        response = self._call(lambda: resend.Emails.send(params, options=options))
        return SendResult(self.name, response["id"], "sent")

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[BatchItemResult]:
        if len(messages) > BATCH_LIMIT:
            raise ValueError(f"a Resend batch holds at most {BATCH_LIMIT} emails, got {len(messages)}")
        results: list[BatchItemResult | None] = [None] * len(messages)
        indexes, params = [], []
        for index, message in enumerate(messages):
            self._check_channel(message)
            try:
                params.append(self._params(message))
            except ValueError as exc:
                results[index] = PermanentProviderError(str(exc), provider=self.name, code="invalid_message")
                continue
            indexes.append(index)
        if params:
            options = {
                "idempotency_key": batch_idempotency_key([messages[i].message_key for i in indexes]),
                "batch_validation": "permissive",
            }
            response = self._call(lambda: resend.Batch.send(params, options=options))
            refused = {int(e["index"]): str(e.get("message") or "refused") for e in response.get("errors") or []}
            ids = [item["id"] for item in response.get("data") or []]
            if len(ids) != len(indexes) - len(refused):
                expected = len(indexes) - len(refused)
                raise RuntimeError(f"Resend answered {len(ids)} ids for {expected} accepted emails")
            accepted = iter(ids)
            for position, index in enumerate(indexes):
                if position in refused:
                    results[index] = PermanentProviderError(refused[position], provider=self.name, code=422)
                else:
                    results[index] = SendResult(self.name, next(accepted), "sent")
        return [r for r in results if r is not None]
