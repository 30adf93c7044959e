"""Request rates per provider and sender, kept with the ``limits`` library (moving window).

One :class:`SendRateLimiter` per delivery run; its memory storage is per process, so two
concurrent runs each keep to the rate on their own (the provider's 429s and the engine's
retries cover the sum).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


def rate_item(rate_per_second: float) -> RateLimitItem | None:
    """``limits`` item for a rate (None = no limit). Below 1/s: one request per ⌈1/rate⌉ s."""
    if rate_per_second <= 0:
        return None
    if rate_per_second >= 1:
        return RateLimitItemPerSecond(int(rate_per_second))
    return RateLimitItemPerSecond(1, math.ceil(1 / rate_per_second))


class SendRateLimiter:
    """Blocks until one more request to ``provider`` from ``sender`` fits in its rate."""

    def __init__(
        self,
        rates: dict[str, float],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._items = {provider: rate_item(rate) for provider, rate in rates.items()}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._sleep, self._clock = sleep, clock

    def acquire(self, provider: str, sender: str | None) -> float:
        """Waits for a slot; returns the seconds waited."""
        item = self._items.get(provider)
        if item is None:
            return 0.0
        waited = 0.0
        while not self._limiter.hit(item, provider, sender or "-"):
            reset = self._limiter.get_window_stats(item, provider, sender or "-").reset_time
            pause = min(max(reset - self._clock(), 0.001), item.get_expiry())
            self._sleep(pause)
            waited += pause
        return waited
