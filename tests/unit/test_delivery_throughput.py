"""The pieces that let delivery go fast without giving up a promise: the shared rate limit's
setting and its blocks of slots, the sandbox journal's group commit, the retry loop entered
only after a first failed call."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from herald.delivery.engine import DeliveryOptions
from herald.delivery.ratelimit import SendRateLimiter, block_size, rate_item, rate_limit_storage
from herald.delivery.retry import backoff_seconds, wait_provider_backoff
from herald.providers.base import OutboundMessage
from herald.providers.factory import delivery_options_from_env
from herald.providers.sandbox import SandboxSmsProvider, read_journal
from herald.settings import SettingsError, check_environment, parse_rate_limit_storage


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "memory://"),
        ("", "memory://"),
        ("memory://", "memory://"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (" rediss://cache.internal:6380/2 ", "rediss://cache.internal:6380/2"),
        ("valkey://127.0.0.1:6379", "valkey://127.0.0.1:6379"),
    ],
)
def test_rate_limit_storage_setting(value: str | None, expected: str) -> None:
    env = {} if value is None else {"HERALD_RATE_LIMIT_STORAGE": value}
    assert parse_rate_limit_storage(env) == expected
    assert delivery_options_from_env(env).rate_limit_storage == expected


@pytest.mark.parametrize("value", ["postgresql://127.0.0.1/herald", "redis", "127.0.0.1:6379", "file:///tmp/x"])
def test_an_unknown_rate_limit_storage_is_an_error_naming_the_variable(value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"HERALD_RATE_LIMIT_STORAGE=.*accepts memory://"):
        parse_rate_limit_storage({"HERALD_RATE_LIMIT_STORAGE": value})
    with pytest.raises(SettingsError, match="HERALD_RATE_LIMIT_STORAGE"):
        check_environment({"HERALD_HOME": str(tmp_path), "HERALD_RATE_LIMIT_STORAGE": value}, config_dir_needed=False)


def test_memory_is_the_default_storage_and_each_is_new() -> None:
    assert DeliveryOptions().rate_limit_storage == "memory://"
    first, second = rate_limit_storage(), rate_limit_storage("memory://")
    assert isinstance(first, MemoryStorage) and first is not second


@pytest.mark.parametrize("rate, block", [(0.5, 1), (1, 1), (10, 1), (199, 1), (200, 1), (400, 2), (2000, 10)])
def test_block_size(rate: float, block: int) -> None:
    item = rate_item(rate)
    assert item is not None and block_size(item) == block


def test_a_large_rate_is_taken_from_the_storage_in_blocks() -> None:
    storage = MemoryStorage()
    limiter = SendRateLimiter({"twilio": 2000}, storage=storage)
    window = MovingWindowRateLimiter(storage)
    item = rate_item(2000)
    assert item is not None
    for taken in range(1, 11):  # one block of 10 slots serves ten requests
        assert limiter.acquire("twilio", "+15550000000") == 0
        assert window.get_window_stats(item, "twilio", "+15550000000").remaining == 1990, taken
    limiter.acquire("twilio", "+15550000000")  # the eleventh takes the next block
    assert window.get_window_stats(item, "twilio", "+15550000000").remaining == 1980


def test_a_blocks_unused_slots_expire_rather_than_burst_later() -> None:
    now = [1000.0]
    storage = MemoryStorage()
    limiter = SendRateLimiter({"twilio": 2000}, storage=storage, clock=lambda: now[0])
    item = rate_item(2000)
    assert item is not None
    limiter.acquire("twilio", None)
    now[0] += 0.2  # later than BLOCK_SECONDS: the 9 slots left are dropped, a new block is taken
    limiter.acquire("twilio", None)
    assert MovingWindowRateLimiter(storage).get_window_stats(item, "twilio", "-").remaining == 1980


def _sms(n: int) -> OutboundMessage:
    return OutboundMessage(f"k{n}", "sms", f"+1555123{n:04d}", sender="+15550000000", body="Hello")


def test_the_sandbox_journal_is_fsynced_once_per_group_and_each_line_is_there_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = SandboxSmsProvider(journal_dir=tmp_path)
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    with provider.group_commit():
        for n in range(5):
            provider.send(_sms(n))
            # written (another process's lookup finds it) before the group ends
            assert [e["message_key"] for e in read_journal(provider.journal_path)][-1] == f"k{n}"
        assert fsyncs == []
    assert len(fsyncs) == 1
    provider.send(_sms(5))  # outside a group: fsynced before send returns, as before
    assert len(fsyncs) == 2
    assert provider.journal_counts() == {f"k{n}": 1 for n in range(6)}


def test_the_retry_loop_after_a_first_call_waits_as_if_it_had_made_it() -> None:
    wait = wait_provider_backoff(1.0, 100.0, random.Random(7), calls_made=1)
    assert wait.seconds_after(2, None) == backoff_seconds(2, initial=1.0, cap=100.0, rng=random.Random(7))
    assert 2.0 <= wait_provider_backoff(1.0, 100.0, calls_made=1).seconds_after(2, None) < 3.0
