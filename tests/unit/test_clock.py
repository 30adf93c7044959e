"""Herald's one clock (herald/clock.py) and the demo's timeline (herald/demo/timeline.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from herald.clock import (
    CLOCK_FILE,
    ENV_CLOCK_OFFSET,
    ClockError,
    dbt_env,
    offset_seconds,
    realnow,
    set_clock,
    utcnow,
)
from herald.config import load_deployment
from herald.demo.timeline import demo_advance, demo_start, local_date, next_demo_moment
from herald.settings import SettingsError, check_environment
from tests.conftest import CONFIG_DIR


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (ENV_CLOCK_OFFSET, "HERALD_SMS_PROVIDER", "HERALD_EMAIL_PROVIDER"):
        # set, then unset: monkeypatch records the variable's original state (absent) only when it
        # changes it, and set_clock() writes the offset into os.environ; without the record a later
        # delenv in a test would restore that offset for every test after it in the process
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_CONFIG_DIR", str(CONFIG_DIR))
    return tmp_path / "home"


def test_the_real_time_without_a_setting(home: Path) -> None:
    before = realnow()
    assert before <= utcnow() <= realnow() + timedelta(seconds=1)
    assert offset_seconds() == 0.0 and dbt_env() == {"HERALD_DBT_CLOCK_OFFSET": "0"}


def test_the_variable_shifts_the_clock_and_wins_over_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True)
    (home / CLOCK_FILE).write_text("7200\n")
    assert offset_seconds() == 7200.0
    monkeypatch.setenv(ENV_CLOCK_OFFSET, "86400")
    shifted = utcnow() - realnow()
    assert timedelta(hours=23, minutes=59) < shifted <= timedelta(days=1)
    assert dbt_env() == {"HERALD_DBT_CLOCK_OFFSET": "86400"}


@pytest.mark.parametrize(
    ("variable", "value"), [("HERALD_SMS_PROVIDER", "twilio"), ("HERALD_EMAIL_PROVIDER", "resend")]
)
def test_a_shifted_clock_is_refused_unless_both_providers_are_the_sandbox(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "x")
    monkeypatch.setenv("RESEND_API_KEY", "re_x")
    assert offset_seconds() == 0.0  # no shift: nothing to refuse
    check_environment()
    monkeypatch.setenv(ENV_CLOCK_OFFSET, "3600")
    with pytest.raises(ClockError, match=f"{variable}={value} sends for real"):
        utcnow()
    with pytest.raises(SettingsError, match="would move real quiet hours"):
        check_environment()
    # the demo's own setter refuses before it writes anything
    monkeypatch.delenv(ENV_CLOCK_OFFSET)
    with pytest.raises(ClockError):
        set_clock(datetime(2030, 1, 1), home)
    assert not (home / CLOCK_FILE).exists()


def test_the_home_clock_file_is_refused_too_with_its_path(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_clock(realnow() + timedelta(days=2), home)
    monkeypatch.delenv(ENV_CLOCK_OFFSET)  # a later command in the same home reads the file
    assert 2 * 86400 - 5 < offset_seconds() <= 2 * 86400
    monkeypatch.setenv("HERALD_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "x")
    with pytest.raises(SettingsError, match=str(home / CLOCK_FILE)):
        check_environment()


@pytest.mark.parametrize("value", ["soon", "nan", "1e12"])
def test_a_bad_offset_names_the_variable(home: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_CLOCK_OFFSET, value)
    with pytest.raises(SettingsError, match=ENV_CLOCK_OFFSET):
        check_environment()


CHICAGO = ZoneInfo("America/Chicago")


def chicago(day: int, hour: int, minute: int = 0) -> datetime:
    """A naive UTC moment for December ``day`` 2026, ``hour`` o'clock in Chicago (Dec 7 is a Monday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=CHICAGO).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("now", "start", "advanced"),
    [
        (chicago(7, 9), chicago(7, 11), chicago(11, 11)),  # Monday before 11:00 → today; Friday
        (chicago(7, 11), chicago(8, 11), chicago(14, 11)),  # exactly 11:00 → tomorrow; Saturday → Monday
        (chicago(10, 15), chicago(11, 11), chicago(15, 11)),  # Thursday afternoon → Friday; Tuesday
        (chicago(12, 10), chicago(14, 11), chicago(18, 11)),  # Saturday → Monday
    ],
)
def test_the_demo_runs_on_a_weekday_at_eleven_in_chicago(now: datetime, start: datetime, advanced: datetime) -> None:
    assert demo_start(now) == start
    assert demo_advance(start) == advanced
    assert demo_advance(start) - start >= timedelta(days=3, hours=1)
    assert local_date(start) == start.date()


def test_the_demo_moment_is_inside_every_example_clients_day() -> None:
    # calling hours (8:00-21:00 federal, 9:00 in Texas) and business hours in each client's zone
    moment = next_demo_moment(chicago(7, 12))
    for client in load_deployment(CONFIG_DIR).clients.values():
        local = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(client.time_zone)).time()
        assert time(9, 0) <= local <= time(17, 0), (client.client_id, local)
    for zone in ("America/Los_Angeles", "America/New_York"):  # recipients anywhere on the mainland
        local = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone)).time()
        assert time(9, 0) <= local <= time(17, 0), zone
