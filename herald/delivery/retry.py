"""Retry rules for provider calls: what an error means, how long to wait, when to give up.

Pure functions (table-tested) plus the ``tenacity`` pieces the engine retries with:

- inside one run a :class:`TransientProviderError` is retried quickly (``max_attempts_per_run``
  calls in all), waiting exponential backoff with jitter, at least the provider's
  ``retry_after``, at most ``max_backoff_seconds``. A ``retry_after`` longer than that cap ends
  the quick retries at once: waiting it out belongs in the outbox, not in a sleeping run.
- a message still failing transiently goes back to ``queued`` with ``next_attempt_at`` after a
  longer backoff, until its total attempts reach ``max_attempts`` → ``failed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import tenacity
from tenacity.wait import wait_base

from herald.providers.base import ProviderError, TransientProviderError

TRANSIENT, PERMANENT = "transient_error", "permanent_error"


def classify(exc: BaseException) -> str:
    """``transient_error`` (retry later) or ``permanent_error`` (never retry) for an error a
    provider call raised. Anything outside the taxonomy (a message the provider cannot even
    build, e.g. an email without a sender) is permanent: retrying would fail the same way."""
    if isinstance(exc, TransientProviderError):
        return TRANSIENT
    return PERMANENT


def error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    return None if code is None else str(code)


def error_reason(exc: BaseException) -> str:
    """The text an operator reads in ``status_reason``: the provider's reason and code."""
    if isinstance(exc, ProviderError):
        return f"{exc.reason} (code {exc.code})" if exc.code is not None else exc.reason
    return f"{type(exc).__name__}: {exc}"


def backoff_seconds(
    attempt: int,
    *,
    initial: float,
    cap: float,
    retry_after: float | None = None,
    jitter: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Wait before call ``attempt + 1`` (``attempt`` ≥ 1 calls made so far): ``initial·2^(n-1)``
    plus up to ``jitter`` (default ``initial``) at random, never below ``retry_after``, never
    above ``cap``."""
    rng = rng or random.Random()
    exponential = initial * 2 ** max(attempt - 1, 0)
    wait = exponential + rng.uniform(0, initial if jitter is None else jitter)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return max(0.0, min(wait, cap))


def retry_after_of(exc: BaseException | None) -> float | None:
    return getattr(exc, "retry_after", None) if isinstance(exc, TransientProviderError) else None


@dataclass(frozen=True)
class TransientVerdict:
    status: str  # queued | failed
    next_attempt_at: datetime | None
    reason: str


def after_transient_failure(
    exc: BaseException,
    *,
    total_attempts: int,
    max_attempts: int,
    now: datetime,
    initial: float,
    cap: float,
    rng: random.Random | None = None,
) -> TransientVerdict:
    """Where a message goes when its last call in this run failed transiently: back to
    ``queued`` after a backoff (honoring ``retry_after``), or ``failed`` once it has had
    ``max_attempts`` calls in all."""
    reason = error_reason(exc)
    if total_attempts >= max_attempts:
        return TransientVerdict("failed", None, f"gave up after {total_attempts} attempts: {reason}")
    wait = backoff_seconds(total_attempts, initial=initial, cap=cap, retry_after=retry_after_of(exc), rng=rng)
    # A retry_after beyond the cap is still honored: sending earlier would only be refused.
    wait = max(wait, retry_after_of(exc) or 0.0, 1.0)
    return TransientVerdict("queued", now + timedelta(seconds=wait), reason)


class wait_provider_backoff(wait_base):
    """tenacity wait: :func:`backoff_seconds` for the error the last call raised."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None, calls_made: int = 0) -> None:
        self.initial, self.cap, self.rng, self.calls_made = initial, cap, rng, calls_made

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return self.seconds_after(retry_state.attempt_number + self.calls_made, exc)

    def seconds_after(self, calls: int, exc: BaseException | None) -> float:
        """The wait after ``calls`` calls, the last of which raised ``exc``."""
        return backoff_seconds(calls, initial=self.initial, cap=self.cap, retry_after=retry_after_of(exc), rng=self.rng)


def quick_retrying(
    *,
    max_calls: int,
    initial: float,
    cap: float,
    sleep=None,
    rng: random.Random | None = None,
    calls_made: int = 0,
) -> tenacity.Retrying:
    """Retries transient errors inside one run: at most ``max_calls`` calls, and none after a
    ``retry_after`` longer than ``cap``. Re-raises the last error. ``calls_made``: calls already
    made before this loop (the engine makes the first call without it), so the waits go on from
    there."""

    def retry_after_too_long(retry_state: tenacity.RetryCallState) -> bool:
        retry_after = retry_after_of(retry_state.outcome.exception() if retry_state.outcome else None)
        return retry_after is not None and retry_after > cap

    kwargs = {"sleep": sleep} if sleep is not None else {}
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, max_calls)) | retry_after_too_long,
        wait=wait_provider_backoff(initial, cap, rng, calls_made),
        retry=tenacity.retry_if_exception_type(TransientProviderError),
        reraise=True,
        **kwargs,
    )
