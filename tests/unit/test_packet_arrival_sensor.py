"""packet_arrival_sensor: each new or changed file in a drop zone → one partition and one ingest run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from herald.dropzone import LocalDropZone
from orchestration.partitions import PACKETS_PARTITION
from resources import DropZoneResource
from sensors.packet_arrival import packet_arrival_sensor

MTIME = 1_718_100_000  # 2024-06-11T10:00:00Z


@pytest.fixture
def zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalDropZone:
    """The drop zone the resource opens (it reads the environment when the sensor runs)."""
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_DROPZONE_URL", str(tmp_path / "zone"))
    return LocalDropZone(tmp_path / "zone")


def drop(zone: LocalDropZone, zone_path: str, content: bytes, mtime: float = MTIME) -> None:
    path = zone.root / zone_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))


def evaluate(cursor: str | None = None) -> tuple[dg.SensorResult | dg.SkipReason, str | None]:
    """One tick; returns what the sensor returned and the cursor it left."""
    context = dg.build_sensor_context(cursor=cursor, resources={"dropzone": DropZoneResource()})
    result = packet_arrival_sensor(context)
    return result, context.cursor


def test_an_empty_zone_skips_saying_what_it_checked(zone: LocalDropZone) -> None:
    result, cursor = evaluate()

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "no new packets (0 waiting, all already requested)"
    assert json.loads(cursor or "{}") == {}


@pytest.fixture
def two_dropped(zone: LocalDropZone) -> dict[str, str]:
    drop(zone, "acme/incoming/leads/june.csv", b"id,phone\n1,5125550142\n")
    drop(zone, "bright_smiles/incoming/appointments/appts.csv", b"id,when\n7,2024-06-12 09:00\n")
    return {p.zone_path: p.packet_id for p in zone.list_pending()}


def test_two_dropped_files_are_two_runs_and_two_partitions(zone: LocalDropZone, two_dropped: dict[str, str]) -> None:
    result, _ = evaluate()

    assert isinstance(result, dg.SensorResult)
    requests = {r.run_config["ops"]["packet_rows"]["config"]["zone_path"]: r for r in result.run_requests}
    assert sorted(requests) == sorted(two_dropped)
    for zone_path, packet_id in two_dropped.items():
        request = requests[zone_path]
        client_id = zone_path.split("/")[0]
        assert request.run_key is not None and request.run_key.startswith(f"packet:{client_id}:{zone_path}:")
        assert request.partition_key == packet_id
        assert request.tags["herald/client"] == client_id
        assert request.tags["herald/file"] == zone_path.rsplit("/", 1)[1]
        config = request.run_config["ops"]["packet_rows"]["config"]
        assert (config["client_id"], config["file_name"], config["checksum_source"]) == (
            client_id,
            zone_path.rsplit("/", 1)[1],
            "computed",
        )
        assert config["sha256"] is not None and len(config["sha256"]) == 64
    [add] = result.dynamic_partitions_requests
    assert isinstance(add, dg.AddDynamicPartitionsRequest)
    assert add.partitions_def_name == PACKETS_PARTITION
    assert sorted(add.partition_keys) == sorted(two_dropped.values())


def test_the_next_tick_with_the_cursor_requests_nothing(zone: LocalDropZone, two_dropped: dict[str, str]) -> None:
    _, cursor = evaluate()

    again, cursor_after = evaluate(cursor)

    assert isinstance(again, dg.SkipReason)
    assert again.skip_message == "no new packets (2 waiting, all already requested)"
    assert cursor_after == cursor


def test_a_file_touched_again_is_exactly_one_new_run(zone: LocalDropZone, two_dropped: dict[str, str]) -> None:
    first, cursor = evaluate()
    assert isinstance(first, dg.SensorResult)
    first_keys = {r.run_key for r in first.run_requests}
    os.utime(zone.root / "acme/incoming/leads/june.csv", (MTIME + 3600, MTIME + 3600))

    result, _ = evaluate(cursor)

    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    assert request.run_key is not None and request.run_key.startswith("packet:acme:acme/incoming/leads/june.csv:")
    assert request.run_key not in first_keys
    assert request.partition_key != two_dropped["acme/incoming/leads/june.csv"]
    [add] = result.dynamic_partitions_requests
    assert list(add.partition_keys) == [request.partition_key]


def test_a_new_file_next_to_requested_ones_is_the_only_new_run(
    zone: LocalDropZone, two_dropped: dict[str, str]
) -> None:
    _, cursor = evaluate()
    drop(zone, "acme/incoming/leads/july.csv", b"id,phone\n2,5125550143\n", MTIME + 60)

    result, cursor_after = evaluate(cursor)

    assert isinstance(result, dg.SensorResult)
    assert [r.tags["herald/file"] for r in result.run_requests] == ["july.csv"]
    assert sorted(json.loads(cursor_after or "{}")) == sorted([*two_dropped, "acme/incoming/leads/july.csv"])


def test_an_unreadable_zone_skips_with_the_reason(zone: LocalDropZone) -> None:
    drop(zone, "acme/incoming/leads/june.csv", b"id\n1\n")
    drop(zone, "acme/incoming/leads/june.csv.sha256", b"not a checksum\n")

    result, _ = evaluate()

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message is not None
    assert result.skip_message.startswith("cannot list the drop zone: checksum sidecar holds 'not a checksum'")
