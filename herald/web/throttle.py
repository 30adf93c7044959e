"""Per source address limits on the portal's sign-in and "Forgot your password?" forms, kept with
the ``limits`` library (a moving window, as the delivery's send rates in
:mod:`herald.delivery.ratelimit`).

- **Sign-in**: failed attempts (a wrong password, a wrong TOTP or recovery code) from one
  address, ``HERALD_PORTAL_LOGIN_RATE`` (default 20 per 15 minutes). Only failures count, so an
  office of many users behind one address is not held up by its own sign-ins. Once the address
  is over the limit, every sign-in POST from it (the right password too) is answered 429 before
  any account is looked up: no attempt is counted against an account, nothing is written.
- **Forgot your password?**: every request from one address counts (each may send an email),
  ``HERALD_PORTAL_FORGOT_RATE`` (default 5 per 15 minutes); over it, 429, no lookup, no email.

The per-account lockout (:mod:`herald.portal.accounts`) stays: this limit is the defence against
one address trying many accounts. The windows live in this process's memory by default, or in
the storage ``HERALD_RATE_LIMIT_STORAGE`` names (Redis), which every ``herald serve`` process
then shares. The address is the TCP peer's: ``herald serve`` trusts no X-Forwarded-For, so
behind a reverse proxy every request has the proxy's address (set the limits with that in mind).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter

from herald.delivery.ratelimit import rate_limit_storage
from herald.settings import SettingsError, parse_rate_limit_storage

ENV_LOGIN_RATE = "HERALD_PORTAL_LOGIN_RATE"
ENV_FORGOT_RATE = "HERALD_PORTAL_FORGOT_RATE"
DEFAULT_LOGIN_RATE = "20 per 15 minutes"
DEFAULT_FORGOT_RATE = "5 per 15 minutes"
KEY_PREFIX = "herald-portal"
LOGIN, FORGOT = "login", "forgot"


def parse_rate(env: Mapping[str, str], name: str, default: str) -> RateLimitItem:
    """A rate such as ``20 per 15 minutes`` or ``5/hour`` (unset or blank → ``default``), or an
    error naming the variable."""
    raw = (env.get(name) or "").strip() or default
    try:
        item = parse(raw)
    except ValueError as exc:
        raise SettingsError(
            f"{name}={raw!r} is not a rate: write it as a count per period, such as '20 per 15 minutes' or '5/hour'"
        ) from exc
    return item


@dataclass
class Throttle:
    """The portal's per-address windows."""

    login: RateLimitItem
    forgot: RateLimitItem
    storage: Storage

    def __post_init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(self.storage)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Throttle:
        return cls(
            parse_rate(env, ENV_LOGIN_RATE, DEFAULT_LOGIN_RATE),
            parse_rate(env, ENV_FORGOT_RATE, DEFAULT_FORGOT_RATE),
            rate_limit_storage(parse_rate_limit_storage(env), key_prefix=KEY_PREFIX),
        )

    def _item(self, kind: str) -> RateLimitItem:
        return self.login if kind == LOGIN else self.forgot

    def minutes_left(self, kind: str, address: str) -> int:
        """Minutes until the address's window has room again (at least 1)."""
        reset = self._limiter.get_window_stats(self._item(kind), kind, address).reset_time
        return max(1, math.ceil((reset - time.time()) / 60))

    def blocked(self, kind: str, address: str) -> int | None:
        """None when the address may try now; else the minutes to wait. Counts nothing."""
        if self._limiter.test(self._item(kind), kind, address):
            return None
        return self.minutes_left(kind, address)

    def hit(self, kind: str, address: str) -> int | None:
        """Counts one attempt; None when it fitted, else the minutes to wait (not counted)."""
        if self._limiter.hit(self._item(kind), kind, address):
            return None
        return self.minutes_left(kind, address)
