"""Delivery providers: the real Twilio and Resend SDKs against a local emulator, and the sandbox.

No network beyond 127.0.0.1: the emulator (tests/provider_emulator.py) stands in for both APIs
and injects 429s, 500s, Twilio error codes and slow answers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from resend.exceptions import (
    ApplicationError,
    RateLimitError,
    ResendError,
    ValidationError,
)
from twilio.base.exceptions import TwilioRestException

from herald.providers import (
    OutboundMessage,
    PermanentProviderError,
    QuotaExceededError,
    SandboxEmailProvider,
    SandboxSmsProvider,
    TransientProviderError,
)
from herald.providers.resend_email import ResendEmailProvider, classify_resend_error
from herald.providers.twilio_sms import (
    RewritingTwilioHttpClient,
    TwilioSmsProvider,
    classify_twilio_error,
)
from tests.provider_emulator import (
    ProviderEmulator,
    delay,
    resend_error,
    respond,
    twilio_error,
)

SID, TOKEN, RESEND_KEY = "ACtest0001", "secret-token", "re_test_key"


def sms(key: str = "msg-1", to: str = "+15551230001") -> OutboundMessage:
    return OutboundMessage(key, "sms", to, sender="+15550000000", body="Hello from Herald")


def email(key: str = "mail-1", to: str = "ada@example.com", subject: str = "Hi") -> OutboundMessage:
    return OutboundMessage(
        key,
        "email",
        to,
        sender="news@herald.example",
        subject=subject,
        html="<p>Hi</p>",
        text="Hi",
        headers={"List-Unsubscribe": "<mailto:u@herald.example>"},
    )


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(twilio_accounts={SID: TOKEN}, resend_api_key=RESEND_KEY) as server:
        yield server


@pytest.fixture
def fresh(emulator: ProviderEmulator) -> ProviderEmulator:
    """The shared emulator with its records and script cleared."""
    emulator.reset()
    return emulator


@pytest.fixture(scope="module")
def twilio(emulator: ProviderEmulator) -> TwilioSmsProvider:
    return TwilioSmsProvider(SID, TOKEN, base_url=emulator.url, timeout=0.5)


@pytest.fixture(scope="module")
def resend_provider(emulator: ProviderEmulator) -> ResendEmailProvider:
    return ResendEmailProvider(RESEND_KEY, base_url=emulator.url, timeout=0.5)


# -- Twilio ----------------------------------------------------------------------------------


def test_twilio_success_returns_sid_and_sends_once(fresh, twilio):
    result = twilio.send(sms())
    assert result.provider == "twilio"
    assert result.status == "queued"
    assert [s["sid"] for s in fresh.sms_sent] == [result.provider_message_id]
    assert fresh.sms_sent[0]["To"] == "+15551230001"
    assert fresh.sms_sent[0]["Body"] == "Hello from Herald"
    assert result.provider_message_id.startswith("SM")


def test_twilio_messaging_service(fresh, emulator):
    provider = TwilioSmsProvider(SID, TOKEN, messaging_service_sid="MG1", base_url=emulator.url)
    provider.send(sms())
    assert fresh.sms_sent[0]["MessagingServiceSid"] == "MG1"
    assert "From" not in fresh.sms_sent[0]


@pytest.mark.parametrize(
    "scripted, code",
    [
        (twilio_error(429, 20429, "Too Many Requests"), 20429),
        (respond(429, "slow down"), 429),
        (twilio_error(500, 20500, "Internal Server Error"), 20500),
        (respond(503, "<html>unavailable</html>"), 503),
    ],
)
def test_twilio_rate_limit_and_server_errors_are_transient(fresh, twilio, scripted, code):
    fresh.script(scripted)
    with pytest.raises(TransientProviderError) as info:
        twilio.send(sms())
    assert info.value.code == code
    assert fresh.sms_sent == []


@pytest.mark.parametrize("code", [21211, 21612, 21610, 21614])
def test_twilio_bad_numbers_are_permanent(fresh, twilio, code):
    fresh.script(twilio_error(400, code, "The 'To' number is not valid"))
    with pytest.raises(PermanentProviderError) as info:
        twilio.send(sms())
    assert info.value.code == code
    assert "not valid" in info.value.reason


def test_twilio_wrong_credentials_are_permanent(fresh, emulator):
    provider = TwilioSmsProvider(SID, "wrong", base_url=emulator.url)
    with pytest.raises(PermanentProviderError) as info:
        provider.send(sms())
    assert info.value.code == 20003
    assert fresh.sms_sent == []


def test_twilio_timeout_is_transient(fresh, twilio):
    fresh.script(delay(1.0))  # client timeout is 0.5 s
    with pytest.raises(TransientProviderError, match="timeout"):
        twilio.send(sms())
    # The slow server still accepted it: why a retried SMS after a timeout may arrive twice.
    fresh.wait_idle()
    assert len(fresh.sms_sent) == 1


def test_twilio_refused_connection_is_transient():
    port = _closed_port()
    provider = TwilioSmsProvider(SID, TOKEN, base_url=f"http://127.0.0.1:{port}", timeout=1)
    with pytest.raises(TransientProviderError, match="connection"):
        provider.send(sms())


def test_twilio_url_rewrite_covers_twilio_hosts_only():
    client = RewritingTwilioHttpClient("http://127.0.0.1:9/base")
    assert (
        client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=5")
        == "http://127.0.0.1:9/base/2010-04-01/Accounts/AC1/Messages.json?PageSize=5"
    )
    assert client.rewrite("https://messaging.twilio.com/v1/Services").startswith("http://127.0.0.1:9/base/v1/")
    assert client.rewrite("https://example.com/x") == "https://example.com/x"
    assert client.rewrite("https://nottwilio.com/x") == "https://nottwilio.com/x"


@pytest.mark.parametrize(
    "status, code, expected",
    [
        (400, 21211, PermanentProviderError),
        (400, 21612, PermanentProviderError),
        (400, 21610, PermanentProviderError),
        (400, 21614, PermanentProviderError),
        (429, 20429, TransientProviderError),
        (429, None, TransientProviderError),
        (500, 500, TransientProviderError),
        (502, None, TransientProviderError),
        (400, 21602, PermanentProviderError),
        (401, 20003, PermanentProviderError),
    ],
)
def test_classify_twilio_error(status, code, expected):
    exc = TwilioRestException(status, "https://api.twilio.com/x", "msg", code=code)
    assert type(classify_twilio_error(exc, "twilio")) is expected


# -- Resend ----------------------------------------------------------------------------------


def test_resend_success_returns_id_and_sends_once(fresh, resend_provider):
    result = resend_provider.send(email())
    assert result.provider == "resend"
    assert [e["id"] for e in fresh.emails_sent] == [result.provider_message_id]
    sent = fresh.emails_sent[0]
    assert sent["to"] == ["ada@example.com"]
    assert sent["idempotency_key"] == "mail-1"
    assert sent["headers"] == {"List-Unsubscribe": "<mailto:u@herald.example>"}


def test_resend_same_idempotency_key_sends_one_email(fresh, resend_provider):
    first = resend_provider.send(email("mail-dup"))
    second = resend_provider.send(email("mail-dup"))
    assert first.provider_message_id == second.provider_message_id
    assert len(fresh.emails_sent) == 1


def test_resend_same_key_different_body_is_permanent_conflict(fresh, resend_provider):
    resend_provider.send(email("mail-conflict", subject="one"))
    with pytest.raises(PermanentProviderError) as info:
        resend_provider.send(email("mail-conflict", subject="two"))
    assert info.value.code == 409
    assert len(fresh.emails_sent) == 1


def test_resend_retry_after_transient_failure_sends_once(fresh, resend_provider):
    fresh.script(resend_error(500, "application_error", "boom"))
    with pytest.raises(TransientProviderError):
        resend_provider.send(email("mail-retry"))
    resend_provider.send(email("mail-retry"))
    resend_provider.send(email("mail-retry"))
    assert len(fresh.emails_sent) == 1


def test_resend_rate_limit_is_transient_with_retry_after(fresh, resend_provider):
    fresh.script(resend_error(429, "rate_limit_exceeded", "Too many", {"Retry-After": "2"}))
    with pytest.raises(TransientProviderError) as info:
        resend_provider.send(email())
    assert info.value.retry_after == 2.0
    assert fresh.emails_sent == []


def test_resend_daily_quota_is_not_transient(fresh, resend_provider):
    fresh.script(resend_error(429, "daily_quota_exceeded", "Quota"))
    with pytest.raises(QuotaExceededError) as info:
        resend_provider.send(email())
    assert not isinstance(info.value, TransientProviderError)
    assert info.value.code == "daily_quota_exceeded"


@pytest.mark.parametrize("scripted", [resend_error(500, "application_error", "boom"), respond(502, "bad gateway")])
def test_resend_server_errors_are_transient(fresh, resend_provider, scripted):
    fresh.script(scripted)
    with pytest.raises(TransientProviderError):
        resend_provider.send(email())


def test_resend_validation_error_is_permanent(fresh, resend_provider):
    fresh.script(resend_error(422, "validation_error", "Invalid `to` field."))
    with pytest.raises(PermanentProviderError) as info:
        resend_provider.send(email())
    assert info.value.code == 422


def test_resend_wrong_key_is_permanent(fresh, emulator):
    with pytest.raises(PermanentProviderError) as info:
        ResendEmailProvider("re_wrong", base_url=emulator.url).send(email())
    assert info.value.code == 403


def test_resend_timeout_is_transient(fresh, resend_provider):
    fresh.script(delay(1.0))  # client timeout is 0.5 s
    with pytest.raises(TransientProviderError) as info:
        resend_provider.send(email("mail-slow"))
    # the SDK's HttpClientError from a read timeout: Resend may have it (never send it elsewhere)
    assert (info.value.code, info.value.outcome_unknown) == ("timeout", True)
    fresh.wait_idle()
    # The slow server accepted it, but the idempotency key makes the retry harmless.
    resend_provider.send(email("mail-slow"))
    assert len(fresh.emails_sent) == 1


def test_resend_refused_connection_is_transient():
    provider = ResendEmailProvider(RESEND_KEY, base_url=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(TransientProviderError) as info:
        provider.send(email())
    assert info.value.code == 500


def test_resend_restores_sdk_globals(emulator, resend_provider, fresh):
    import resend

    before = (resend.api_key, resend.api_url, resend.default_http_client)
    resend_provider.send(email("mail-globals"))
    assert (resend.api_key, resend.api_url, resend.default_http_client) == before


@pytest.mark.parametrize(
    "exc, expected",
    [
        (RateLimitError("m", "rate_limit_exceeded", 429), TransientProviderError),
        (RateLimitError("m", "daily_quota_exceeded", 429), QuotaExceededError),
        (RateLimitError("m", "monthly_quota_exceeded", 429), QuotaExceededError),
        (ApplicationError("m", "application_error", 500), TransientProviderError),
        (ValidationError("m", "validation_error", 422), PermanentProviderError),
        (ResendError(500, "HttpClientError", "refused", "retry"), TransientProviderError),
        (ResendError(503, "application_error", "m", ""), TransientProviderError),
        (ResendError(409, "invalid_idempotent_request", "m", ""), PermanentProviderError),
    ],
)
def test_classify_resend_error(exc, expected):
    assert type(classify_resend_error(exc, "resend")) is expected


# -- Sandbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize("number, code", [("+15005550001", 21211), ("+15005550002", 21612), ("+15005550009", 21610)])
def test_sandbox_magic_numbers_fail_permanently(number, code):
    provider = SandboxSmsProvider()
    with pytest.raises(PermanentProviderError) as info:
        provider.send(sms(to=number))
    assert info.value.code == code
    assert provider.sent == []


def test_sandbox_sms_ids_are_deterministic():
    provider = SandboxSmsProvider()
    first, again = provider.send(sms("k1")), provider.send(sms("k1"))
    other = provider.send(sms("k2"))
    assert first.provider_message_id == again.provider_message_id != other.provider_message_id
    assert len(first.provider_message_id) == 34
    assert first.provider_message_id.startswith("SM")
    int(first.provider_message_id[2:], 16)
    assert SandboxSmsProvider().send(sms("k1")) == first
    assert [m.message_key for m in provider.sent] == ["k1", "k1", "k2"]


@pytest.mark.parametrize("address", ["bounce@example.com", "someone@invalid.example"])
def test_sandbox_email_bounces_fail_permanently(address):
    provider = SandboxEmailProvider()
    with pytest.raises(PermanentProviderError):
        provider.send(email(to=address))
    assert provider.sent == []


def test_sandbox_email_ids_are_deterministic_uuids():
    import uuid

    result = SandboxEmailProvider().send(email("m-1"))
    assert str(uuid.UUID(result.provider_message_id)) == result.provider_message_id
    assert SandboxEmailProvider().send(email("m-1")) == result
    assert SandboxEmailProvider().send(email("m-2")) != result


def test_providers_refuse_the_wrong_channel():
    with pytest.raises(ValueError):
        SandboxSmsProvider().send(email())
    with pytest.raises(ValueError):
        SandboxEmailProvider().send(sms())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
