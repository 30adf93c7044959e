"""Request rates per provider and sender, kept with the ``limits`` library (moving window).

Where the window lives is a storage URI (``HERALD_RATE_LIMIT_STORAGE``):

- ``memory://`` (the default, and the embedded deployment's): per process, so each delivery run
  keeps to the rate on its own — right when one run sends at a time (DuckDB has one writer).
- ``redis://host:port/db`` (or any storage ``limits`` knows: ``valkey://``, ``memcached://``,
  ``mongodb://``): one window per provider and sender shared by every worker, so concurrent
  delivery runs (PostgreSQL, several processes) keep to the provider's rate *together*. The
  moving window is checked and taken in one atomic step on the server (a Lua script on Redis),
  so no two workers can take the same slot.

Why Redis rather than a PostgreSQL-backed storage: ``limits`` ships the Redis moving window,
atomic and about 0.2 ms a hit; in PostgreSQL every hit would be a transaction on one hot row per
sender (a row lock that all workers queue on), beside the outbox's own writes on the same server.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

MEMORY_STORAGE = "memory://"
KEY_PREFIX = "herald"


def rate_item(rate_per_second: float) -> RateLimitItem | None:
    """``limits`` item for a rate (None = no limit). Below 1/s: one request per ⌈1/rate⌉ s."""
    if rate_per_second <= 0:
        return None
    if rate_per_second >= 1:
        return RateLimitItemPerSecond(int(rate_per_second))
    return RateLimitItemPerSecond(1, math.ceil(1 / rate_per_second))


def rate_limit_storage(uri: str = MEMORY_STORAGE, *, key_prefix: str = KEY_PREFIX) -> Storage:
    """The storage a URI names (``memory://`` → a new in-process one); ``key_prefix`` names the
    shared storage's keys (one deployment's workers share it; a benchmark takes its own)."""
    uri = (uri or MEMORY_STORAGE).strip()
    if uri == MEMORY_STORAGE:
        return MemoryStorage()
    options = {"key_prefix": key_prefix} if uri.startswith(("redis", "valkey")) else {}
    return storage_from_string(uri, **options)


BLOCK_SHARE = 0.005  # slots taken at once: 0.5% of the rate (2,000/s → 10; below 200/s → 1)
BLOCK_SECONDS = 0.05  # slots of a block not used this soon are dropped (counted, never sent)


def block_size(item: RateLimitItem) -> int:
    """How many slots one reservation takes: one per request for small rates; for large ones a
    block, so a shared storage is asked once per block instead of once per request (a Redis
    moving-window hit costs about 0.2 ms). Workers can together be ahead of the window by at most
    their unused blocks: 0.5% of the rate each, never more than ``BLOCK_SECONDS`` old."""
    return max(1, int(item.amount * BLOCK_SHARE))


class SendRateLimiter:
    """Blocks until one more request to ``provider`` from ``sender`` fits in its rate, counted
    in ``storage`` (default: this process's memory)."""

    def __init__(
        self,
        rates: dict[str, float],
        *,
        storage: Storage | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._items = {provider: rate_item(rate) for provider, rate in rates.items()}
        self._limiter = MovingWindowRateLimiter(storage if storage is not None else MemoryStorage())
        self._sleep, self._clock = sleep, clock
        self._held: dict[tuple[str, str], tuple[int, float]] = {}  # (provider, sender) → (slots, since)

    def acquire(self, provider: str, sender: str | None) -> float:
        """Waits for a slot; returns the seconds waited."""
        item = self._items.get(provider)
        if item is None:
            return 0.0
        key = (provider, sender or "-")
        slots, since = self._held.get(key, (0, 0.0))
        if slots > 0 and self._clock() - since <= BLOCK_SECONDS:
            self._held[key] = (slots - 1, since)
            return 0.0
        cost = block_size(item)
        waited = 0.0
        while not self._limiter.hit(item, *key, cost=cost):
            reset = self._limiter.get_window_stats(item, *key).reset_time
            pause = min(max(reset - self._clock(), 0.001), item.get_expiry())
            self._sleep(pause)
            waited += pause
        self._held[key] = (cost - 1, self._clock())
        return waited
