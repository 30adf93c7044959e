"""Providers from the environment (and their errors), the Dagster resource, the sandbox journal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from herald.delivery.engine import DeliveryOptions
from herald.providers.base import OutboundMessage, OutcomeUnknownError
from herald.providers.factory import delivery_options_from_env, providers_from_env
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.settings import SettingsError

SINCE = datetime(2026, 11, 23, 15, 0)


def sms(key: str = "k1") -> OutboundMessage:
    return OutboundMessage(key, "sms", "+15551230001", sender="+15550000000", body="Hello")


def test_sandbox_is_the_default(tmp_path: Path) -> None:
    providers = providers_from_env({}, home=tmp_path)
    assert isinstance(providers["sms"], SandboxSmsProvider)
    assert isinstance(providers["email"], SandboxEmailProvider)
    assert providers["sms"].rate_per_second == providers["email"].rate_per_second == 0
    assert providers["sms"].journal_path == tmp_path / "sandbox" / "sms.jsonl"
    assert providers["email"].journal_path == tmp_path / "sandbox" / "email.jsonl"


def test_home_defaults_to_herald_home(tmp_path: Path) -> None:
    providers = providers_from_env({"HERALD_HOME": str(tmp_path / "h")})
    assert providers["sms"].journal_path == (tmp_path / "h" / "sandbox" / "sms.jsonl").resolve()


@pytest.mark.parametrize(
    "variable, value, accepted",
    [
        ("HERALD_SMS_PROVIDER", "nexmo", "sandbox, twilio"),
        ("HERALD_EMAIL_PROVIDER", "sendgrid", "sandbox, resend"),
    ],
)
def test_unknown_provider_names_the_variable_and_the_choices(
    tmp_path: Path, variable: str, value: str, accepted: str
) -> None:
    with pytest.raises(SettingsError) as info:
        providers_from_env({variable: value}, home=tmp_path)
    assert variable in str(info.value) and value in str(info.value) and accepted in str(info.value)


def test_twilio_needs_its_credentials(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        providers_from_env({"HERALD_SMS_PROVIDER": "twilio"}, home=tmp_path)
    with pytest.raises(SettingsError) as info:
        providers_from_env({"HERALD_SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1"}, home=tmp_path)
    assert "TWILIO_AUTH_TOKEN" in str(info.value) and "AC1" not in str(info.value)


def test_resend_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="RESEND_API_KEY"):
        providers_from_env({"HERALD_EMAIL_PROVIDER": "resend"}, home=tmp_path)


def test_real_providers_with_default_rates_and_no_secret_in_repr(tmp_path: Path) -> None:
    env = {
        "HERALD_SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "ACfactory",
        "TWILIO_AUTH_TOKEN": "tw-secret-token",
        "HERALD_TWILIO_BASE_URL": "http://127.0.0.1:9",
        "HERALD_EMAIL_PROVIDER": "Resend",
        "RESEND_API_KEY": "re_secret_key",
        "HERALD_RESEND_BASE_URL": "http://127.0.0.1:9",
    }
    providers = providers_from_env(env, home=tmp_path)
    assert (providers["sms"].name, providers["sms"].rate_per_second) == ("twilio", 10)
    assert (providers["email"].name, providers["email"].rate_per_second) == ("resend", 2)
    text = repr(providers)
    assert "tw-secret-token" not in text and "re_secret_key" not in text
    assert "ACfactory" in text and "127.0.0.1:9" in text


@pytest.mark.parametrize("value, expected", [("5", 5.0), ("0.5", 0.5), ("0", 0.0), ("", 0.0)])
def test_rate_overrides(tmp_path: Path, value: str, expected: float) -> None:
    env = {"HERALD_SMS_RATE_PER_SECOND": value, "HERALD_EMAIL_RATE_PER_SECOND": value}
    providers = providers_from_env(env, home=tmp_path)
    assert providers["sms"].rate_per_second == providers["email"].rate_per_second == expected


@pytest.mark.parametrize("value", ["fast", "-1"])
def test_bad_rate_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="HERALD_EMAIL_RATE_PER_SECOND"):
        providers_from_env({"HERALD_EMAIL_RATE_PER_SECOND": value}, home=tmp_path)


def test_sandbox_delay_from_env(tmp_path: Path) -> None:
    providers = providers_from_env({"HERALD_SANDBOX_SEND_DELAY_SECONDS": "0.25"}, home=tmp_path)
    assert providers["sms"].send_delay_seconds == 0.25


def test_delivery_options_from_env() -> None:
    assert delivery_options_from_env({}) == DeliveryOptions()
    options = delivery_options_from_env(
        {"HERALD_DELIVERY_BATCH_SIZE": "50", "HERALD_DELIVERY_MAX_ATTEMPTS": "4", "HERALD_DELIVERY_LEASE_SECONDS": "60"}
    )
    assert (options.batch_size, options.max_attempts, options.lease_seconds) == (50, 4, 60)
    with pytest.raises(SettingsError, match="HERALD_DELIVERY_BATCH_SIZE"):
        delivery_options_from_env({"HERALD_DELIVERY_BATCH_SIZE": "0"})


def test_sandbox_journal_makes_lookup_exact_across_instances(tmp_path: Path) -> None:
    sender = SandboxSmsProvider(journal_dir=tmp_path)
    result = sender.send(sms("k1"))
    other_process = SandboxSmsProvider(journal_dir=tmp_path)  # a fresh instance: no memory
    assert other_process.lookup(sms("k1"), since=SINCE) == result
    assert other_process.lookup(sms("k2"), since=SINCE) is None
    sender.send(sms("k1"))
    assert other_process.journal_counts() == {"k1": 2}
    line = (tmp_path / "sms.jsonl").read_text().splitlines()[0]
    assert '"message_key": "k1"' in line and result.provider_message_id in line


def test_sandbox_without_journal_cannot_vouch_for_other_processes() -> None:
    provider = SandboxSmsProvider()
    result = provider.send(sms("k1"))
    assert provider.lookup(sms("k1"), since=SINCE) == result
    with pytest.raises(OutcomeUnknownError):
        provider.lookup(sms("k2"), since=SINCE)
