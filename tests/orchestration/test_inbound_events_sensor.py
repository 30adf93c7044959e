"""inbound_events_sensor: replies waiting as files → one run keyed by their names."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from herald.compliance.landing import InboundMessage, append_inbound
from resources import HeraldSettingsResource, WarehouseResource
from sensors.inbound_events import inbound_events_sensor, pending_run_key
from tests.conftest import CONFIG_DIR

AT = datetime(2026, 11, 23, 15, 0)


def message(n: int, body: str = "STOP") -> InboundMessage:
    return InboundMessage(f"SM{n:032d}", "+15125550142", "+15125550100", body, AT)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.delenv("HERALD_WAREHOUSE_URL", raising=False)
    return tmp_path / "home"


def context() -> dg.SensorEvaluationContext:
    return dg.build_sensor_context(
        resources={"herald_settings": HeraldSettingsResource(), "warehouse": WarehouseResource()}
    )


def test_the_sensor_requests_one_run_per_set_of_waiting_files(home: Path) -> None:
    skipped = inbound_events_sensor(context())
    assert isinstance(skipped, dg.SkipReason) and "no inbound replies waiting" in (skipped.skip_message or "")
    first = append_inbound(home, message(1))
    request = inbound_events_sensor(context())
    assert isinstance(request, dg.RunRequest) and request.run_key == pending_run_key([first.name])
    second = append_inbound(home, message(2))
    again = inbound_events_sensor(context())
    assert again.run_key == pending_run_key([second.name, first.name]) != request.run_key
    assert not (home / "warehouse.duckdb").exists()  # the sensor never opens an embedded warehouse
