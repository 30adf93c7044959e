"""The emulator's rate measurement: the most accepted within any window (a moving window)."""

from datetime import datetime, timedelta

import pytest

from tests.provider_emulator import max_in_window

T0 = datetime(2026, 12, 7, 3, 0)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


@pytest.mark.parametrize(
    ("moments", "window", "most"),
    [
        ([], 1.0, 0),
        (at(0), 1.0, 1),
        (at(0, 0.5, 0.99), 1.0, 3),
        (at(0, 0.5, 1.0), 1.0, 2),  # half-open: [t, t + 1 s)
        (at(0.9, 0.1, 0.5, 1.05), 1.0, 4),  # order does not matter: [0.1 s, 1.1 s) holds all four
        (at(0.9, 0.1, 0.5, 1.15), 1.0, 3),  # the window moves: 1.15 s is past 0.1 s + 1 s
        (at(0, 0.4, 0.8, 1.2, 1.6, 2.0), 1.0, 3),
        (at(0, 0.4, 0.8, 1.2, 1.6, 2.0), 5.0, 6),
    ],
)
def test_max_in_window(moments: list[datetime], window: float, most: int) -> None:
    assert max_in_window(moments, window) == most
