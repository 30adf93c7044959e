"""Calling-hours law as data (``data/legal_windows.yaml``) → rows the message plan joins.

Each row is (jurisdiction, ISO day of week, start minute, end minute) in the recipient's local
time; jurisdiction ``US`` is the federal rule, a two-letter code a state's own rule, which
replaces the federal one for recipients in that state.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

LEGAL_WINDOWS_FILE = Path(__file__).parent / "data" / "legal_windows.yaml"
FEDERAL = "US"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _days(spec: str) -> list[int]:
    """'all' | 'sun' | 'mon-sat' → ISO days of week (1 = Monday)."""
    if spec == "all":
        return list(range(1, 8))
    if "-" in spec:
        first, last = spec.split("-")
        return list(range(_DAYS.index(first) + 1, _DAYS.index(last) + 2))
    return [_DAYS.index(spec) + 1]


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _rows(jurisdiction: str, hours: dict[str, list[str]]) -> list[tuple[str, int, int, int]]:
    found: dict[int, tuple[int, int]] = {}
    for spec, (start, end) in hours.items():
        for day in _days(spec):
            found[day] = (_minutes(start), _minutes(end))
    missing = sorted(set(range(1, 8)) - set(found))
    if missing:
        raise ValueError(f"legal windows: {jurisdiction} has no hours for ISO days {missing}")
    return [(jurisdiction, day, start, end) for day, (start, end) in sorted(found.items())]


@lru_cache(maxsize=1)
def legal_window_rows(path: Path = LEGAL_WINDOWS_FILE) -> tuple[tuple[str, int, int, int], ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = _rows(FEDERAL, data["federal"]["hours"])
    for state, rule in sorted(data.get("states", {}).items()):
        rows += _rows(state, rule["hours"])
    return tuple(rows)
