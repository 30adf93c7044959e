"""Email through Resend's real SDK.

The message key is sent as ``Idempotency-Key`` (Resend keeps keys 24 h), so a retried send of
the same message never produces a second email. The SDK keeps its API key, base URL and HTTP
client in module globals, so each call sets them under one lock and restores them afterwards.
"""

from __future__ import annotations

import threading

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
    OutboundMessage,
    PermanentProviderError,
    Provider,
    QuotaExceededError,
    SendResult,
    TransientProviderError,
    parse_retry_after,
)

DEFAULT_API_URL = "https://api.resend.com"
QUOTA_ERROR_TYPES = {"daily_quota_exceeded", "monthly_quota_exceeded"}
_SDK_GLOBALS_LOCK = threading.Lock()


def _status(exc: ResendError) -> int | None:
    try:
        return int(exc.code)
    except (TypeError, ValueError):
        return None


def classify_resend_error(exc: ResendError, provider: str) -> Exception:
    """The taxonomy error for one ``ResendError`` (a pure function, table-tested)."""
    status, error_type = _status(exc), exc.error_type
    reason = f"{error_type}: {exc.message}"
    if error_type in QUOTA_ERROR_TYPES:
        return QuotaExceededError(reason, provider=provider, code=error_type)
    if isinstance(exc, RateLimitError) or status == 429:
        retry_after = parse_retry_after(
            {k.lower(): v for k, v in (exc.headers or {}).items()}.get("retry-after")
        )
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


class ResendEmailProvider(Provider):
    name = "resend"
    channel = "email"

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

    def send(self, message: OutboundMessage) -> SendResult:
        self._check_channel(message)
        params = self._params(message)
        options = {"idempotency_key": message.message_key}
        with _SDK_GLOBALS_LOCK:
            saved = (resend.api_key, resend.api_url, resend.default_http_client)
            resend.api_key = self._api_key
            resend.api_url = self._api_url
            resend.default_http_client = self._http_client
            try:
                response = resend.Emails.send(params, options=options)
            except ResendError as exc:
                raise classify_resend_error(exc, self.name) from exc
            finally:
                resend.api_key, resend.api_url, resend.default_http_client = saved
        return SendResult(self.name, response["id"], "sent")
