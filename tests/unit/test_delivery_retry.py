"""Retry classification, backoff, quick retries, suppression matching and the rate limiter."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from herald.delivery.engine import DeliveryOptions, DeliveryReport, suppression_reason
from herald.delivery.ratelimit import SendRateLimiter, rate_item
from herald.delivery.retry import (
    after_transient_failure,
    backoff_seconds,
    classify,
    error_code,
    error_reason,
    quick_retrying,
)
from herald.providers.base import PermanentProviderError, QuotaExceededError, TransientProviderError

NOW = datetime(2026, 11, 23, 15, 0)


@pytest.mark.parametrize(
    "exc, expected",
    [
        (TransientProviderError("busy", provider="p", code=503), "transient_error"),
        (TransientProviderError("timeout", provider="p", outcome_unknown=True), "transient_error"),
        (PermanentProviderError("invalid 'To'", provider="p", code=21211), "permanent_error"),
        (QuotaExceededError("daily quota", provider="p", code="daily_quota_exceeded"), "permanent_error"),
        (ValueError("an email needs a sender"), "permanent_error"),
    ],
)
def test_classify(exc: Exception, expected: str) -> None:
    assert classify(exc) == expected


@pytest.mark.parametrize(
    "exc, reason, code",
    [
        (PermanentProviderError("invalid 'To' phone number", provider="p", code=21211),
         "invalid 'To' phone number (code 21211)", "21211"),
        (TransientProviderError("connection failed", provider="p"), "connection failed", None),
        (ValueError("no sender"), "ValueError: no sender", None),
    ],
)  # fmt: skip
def test_error_reason_and_code(exc: Exception, reason: str, code: str | None) -> None:
    assert error_reason(exc) == reason
    assert error_code(exc) == code


@pytest.mark.parametrize(
    "attempt, retry_after, expected",
    [
        (1, None, 1.0),
        (2, None, 2.0),
        (3, None, 4.0),
        (10, None, 10.0),  # capped
        (1, 7.0, 7.0),  # retry_after wins over a shorter backoff
        (3, 2.0, 4.0),  # ... but never shortens it
        (1, 60.0, 10.0),  # never above the cap
    ],
)
def test_backoff_seconds(attempt: int, retry_after: float | None, expected: float) -> None:
    assert backoff_seconds(attempt, initial=1.0, cap=10.0, retry_after=retry_after, jitter=0) == expected


def test_backoff_jitter_stays_within_one_initial_step() -> None:
    rng = random.Random(7)
    waits = {backoff_seconds(2, initial=1.0, cap=100.0, rng=rng) for _ in range(50)}
    assert len(waits) > 40
    assert all(2.0 <= w <= 3.0 for w in waits)


@pytest.mark.parametrize(
    "total, retry_after, status, at_least",
    [
        (1, None, "queued", 60),
        (3, None, "queued", 240),
        (2, 900.0, "queued", 900),  # a provider's retry_after is honored even beyond the cap
        (6, None, "failed", None),
        (7, None, "failed", None),
    ],
)
def test_after_transient_failure(total: int, retry_after: float | None, status: str, at_least: float | None) -> None:
    exc = TransientProviderError("busy", provider="p", code=429, retry_after=retry_after)
    verdict = after_transient_failure(
        exc, total_attempts=total, max_attempts=6, now=NOW, initial=60, cap=600, rng=random.Random(1)
    )
    assert verdict.status == status
    if status == "queued":
        assert NOW + timedelta(seconds=at_least) <= verdict.next_attempt_at
        assert verdict.next_attempt_at <= NOW + timedelta(seconds=max(at_least * 2, 900))
        assert verdict.reason == "busy (code 429)"
    else:
        assert verdict.next_attempt_at is None
        assert verdict.reason == f"gave up after {total} attempts: busy (code 429)"


class Calls:
    def __init__(self, *outcomes: object) -> None:
        self.outcomes, self.count = list(outcomes), 0

    def __call__(self) -> object:
        self.count += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def run(retrying, calls: Calls) -> object:
    for attempt in retrying:
        with attempt:
            return calls()
    return None


def busy(retry_after: float | None = None) -> TransientProviderError:
    return TransientProviderError("busy", provider="p", retry_after=retry_after)


def test_quick_retries_until_success_waiting_backoff() -> None:
    sleeps: list[float] = []
    calls = Calls(busy(), busy(0.5), "ok")
    retrying = quick_retrying(max_calls=3, initial=0.1, cap=1.0, sleep=sleeps.append)
    assert run(retrying, calls) == "ok"
    assert calls.count == 3
    assert 0.1 <= sleeps[0] <= 0.2 and sleeps[1] == pytest.approx(0.5, abs=0.1)


def test_quick_retries_stop_after_max_calls_and_reraise() -> None:
    sleeps: list[float] = []
    calls = Calls(busy(), busy(), busy(), "never")
    with pytest.raises(TransientProviderError):
        run(quick_retrying(max_calls=3, initial=0.01, cap=0.05, sleep=sleeps.append), calls)
    assert calls.count == 3 and len(sleeps) == 2 and max(sleeps) <= 0.05


@pytest.mark.parametrize("first", [PermanentProviderError("invalid", provider="p", code=21211), busy(retry_after=30.0)])
def test_no_quick_retry_for_permanent_errors_or_long_retry_after(first: Exception) -> None:
    sleeps: list[float] = []
    calls = Calls(first, "never")
    with pytest.raises(type(first)):
        run(quick_retrying(max_calls=5, initial=0.01, cap=1.0, sleep=sleeps.append), calls)
    assert calls.count == 1 and sleeps == []


@pytest.mark.parametrize(
    "suppressions, expected",
    [
        ([], None),
        ([("*", "*", "manual_block")], "manual_block"),
        ([("acme", "sms", "opt_out")], "opt_out"),
        ([("acme", "email", "hard_bounce")], None),  # another channel
        ([("globex", "*", "opt_out")], None),  # another client
        ([("*", "*", "manual_block"), ("acme", "sms", "opt_out")], "opt_out"),  # most specific first
        ([("*", "sms", "complaint"), ("acme", "*", "opt_out")], "opt_out"),
    ],
)
def test_suppression_reason(suppressions: list[tuple[str, str, str]], expected: str | None) -> None:
    assert suppression_reason("acme", "sms", suppressions) == expected


def test_rate_items() -> None:
    assert rate_item(0) is None
    assert rate_item(10).amount == 10 and rate_item(10).get_expiry() == 1
    half = rate_item(0.5)
    assert (half.amount, half.get_expiry()) == (1, 2)


def test_rate_limiter_keeps_to_the_rate_per_provider_and_sender() -> None:
    limiter = SendRateLimiter({"twilio": 20, "sandbox_sms": 0})
    started = time.monotonic()
    waited = sum(limiter.acquire("twilio", "+15550000000") for _ in range(21))
    elapsed = time.monotonic() - started
    assert waited > 0.5 and elapsed >= 0.9  # the 21st request waits for the window
    # another sender, and an unlimited provider, do not wait
    assert limiter.acquire("twilio", "+15550000001") == 0
    assert sum(limiter.acquire("sandbox_sms", None) for _ in range(100)) == 0


def test_report_summary_and_options() -> None:
    report = DeliveryReport(claimed=5, sent=3, failed=2, retried=1, failure_reasons=Counter({"hard bounce": 2}))
    text = report.summary()
    assert text.startswith("claimed 5: 3 sent, 2 failed") and "1 quick retries" in text
    assert "hard bounce × 2" in text
    with pytest.raises(ValueError):
        DeliveryOptions(batch_size=0)
