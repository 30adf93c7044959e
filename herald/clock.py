"""Herald's one clock for business time: when a message is due, whether a recipient's send
window is open, how long a journey waits, when a receipt, click or reply happened.

Normally it is the real time (naive UTC). A sandbox deployment may shift it — ``herald demo``
does, so its messages go out inside the recipients' send windows and its journeys can run
three days in a minute — with ``HERALD_CLOCK_OFFSET`` (seconds added to the real time; time
flows on from there), or with the file ``$HERALD_HOME/clock_offset`` that ``herald demo``
writes so every later command in that home keeps the same clock. The variable wins over the
file.

A shifted clock would move real quiet hours, so it is refused (:class:`ClockError`, and a
settings error at the start of every command) unless both providers are the sandbox.
dbt reads the same offset from ``HERALD_DBT_CLOCK_OFFSET``, which :func:`dbt_env` gives it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

ENV_CLOCK_OFFSET = "HERALD_CLOCK_OFFSET"
ENV_DBT_CLOCK_OFFSET = "HERALD_DBT_CLOCK_OFFSET"
CLOCK_FILE = "clock_offset"
# the same names as herald.settings (not imported: the settings import this module)
_ENV_HOME, _DEFAULT_HOME = "HERALD_HOME", ".herald"
_PROVIDER_VARIABLES = ("HERALD_SMS_PROVIDER", "HERALD_EMAIL_PROVIDER")
SANDBOX = "sandbox"


class ClockError(ValueError):
    """The clock's setting is not a number, or shifts the clock of a deployment that sends for real."""


def clock_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(_ENV_HOME) or _DEFAULT_HOME).expanduser() / CLOCK_FILE


def _parse(value: str, where: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ClockError(f"{where}={value!r} is not a number; it accepts seconds added to the real time") from None
    if seconds != seconds or abs(seconds) > 10 * 366 * 86400:  # NaN, or more than ten years
        raise ClockError(f"{where}={value!r} is out of range; it accepts seconds within ten years")
    return seconds


def offset_seconds(environ: Mapping[str, str] | None = None) -> float:
    """The shift in seconds: ``HERALD_CLOCK_OFFSET`` when set, else the home's clock file, else 0.
    Raises :class:`ClockError` when it is not a number, or when it is not 0 and a provider is
    not the sandbox."""
    env = os.environ if environ is None else environ
    value = (env.get(ENV_CLOCK_OFFSET) or "").strip()
    where = ENV_CLOCK_OFFSET
    if not value:
        path = clock_file(env)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError):
            return 0.0
        where = str(path)
        if not value:
            return 0.0
    seconds = _parse(value, where)
    if seconds:
        real = [f"{name}={env[name]}" for name in _PROVIDER_VARIABLES if (env.get(name) or SANDBOX) != SANDBOX]
        if real:
            raise ClockError(
                f"{where} shifts the clock by {seconds:.0f}s, but {', '.join(real)} sends for real and a shifted "
                f"clock would move real quiet hours: unset {ENV_CLOCK_OFFSET} and remove {clock_file(env)} "
                "(or use the sandbox providers)"
            )
    return seconds


def realnow() -> datetime:
    """The real time, naive UTC (for timing and bookkeeping, never for business decisions)."""
    return datetime.now(UTC).replace(tzinfo=None)


def utcnow() -> datetime:
    """Business time: the real time plus the offset, naive UTC."""
    seconds = offset_seconds()
    now = realnow()
    return now + timedelta(seconds=seconds) if seconds else now


def utcnow_aware() -> datetime:
    """:func:`utcnow` with its UTC time zone attached."""
    return utcnow().replace(tzinfo=UTC)


def set_clock(at: datetime, home: Path) -> float:
    """Shift the clock so it reads ``at`` (naive UTC) now; kept in ``home``'s clock file for the
    commands that follow and in this process's environment (for the runs it starts and dbt).
    Returns the offset in seconds. The sandbox check applies (:func:`offset_seconds`)."""
    seconds = round((at - realnow()).total_seconds())
    offset_seconds({**os.environ, ENV_CLOCK_OFFSET: str(seconds)})  # refused unless both providers are the sandbox
    home.mkdir(parents=True, exist_ok=True)
    (home / CLOCK_FILE).write_text(f"{seconds}\n", encoding="utf-8")
    os.environ[ENV_CLOCK_OFFSET] = str(seconds)
    return seconds


def dbt_env() -> dict[str, str]:
    """What dbt's ``utc_now()`` reads: the same offset, whole seconds."""
    return {ENV_DBT_CLOCK_OFFSET: str(round(offset_seconds()))}
