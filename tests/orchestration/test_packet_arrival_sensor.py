"""packet_arrival_sensor: each new or changed file in a drop zone → one partition and one ingest run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from assets.partitions import PACKETS_PARTITION
from herald.dropzone import LocalDropZone
from herald.dropzone.base import sha256_of
from resources import DropZoneResource, HeraldConfigResource
from sensors.packet_arrival import packet_arrival_sensor
from tests.conftest import CONFIG_DIR

MTIME = 1_718_100_000  # 2024-06-11T10:00:00Z


@pytest.fixture
def zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalDropZone:
    """The drop zone the resource opens (it reads the environment when the sensor runs)."""
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_DROPZONE_URL", str(tmp_path / "zone"))
    monkeypatch.setenv("HERALD_CONFIG_DIR", str(CONFIG_DIR))
    return LocalDropZone(tmp_path / "zone")


def drop(zone: LocalDropZone, zone_path: str, content: bytes, mtime: float = MTIME, sidecar: bool = True) -> None:
    """A finished upload: the file, then (by default) its .sha256 sidecar."""
    path = zone.root / zone_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    if sidecar and not zone_path.endswith((".sha256", ".md5", ".manifest.json")):
        path.with_name(path.name + ".sha256").write_text(sha256_of(path) + "\n")


def requested(cursor: str | None) -> list[str]:
    return sorted(json.loads(cursor or "{}").get("requested", {}))


def evaluate(cursor: str | None = None) -> tuple[dg.SensorResult | dg.SkipReason, str | None]:
    """One tick; returns what the sensor returned and the cursor it left."""
    context = dg.build_sensor_context(
        cursor=cursor, resources={"dropzone": DropZoneResource(), "herald_config": HeraldConfigResource()}
    )
    result = packet_arrival_sensor(context)
    return result, context.cursor


def test_an_empty_zone_skips_saying_what_it_checked(zone: LocalDropZone) -> None:
    result, cursor = evaluate()

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "no new complete packets (0 already requested, 0 still uploading)"
    assert requested(cursor) == []


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
            "sidecar-sha256",
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
    assert again.skip_message == "no new complete packets (2 already requested, 0 still uploading)"
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
    assert requested(cursor_after) == sorted([*two_dropped, "acme/incoming/leads/july.csv"])


def test_a_malformed_sidecar_is_requested_with_its_problem_beside_the_other_packets(
    zone: LocalDropZone, two_dropped: dict[str, str]
) -> None:
    drop(zone, "acme/incoming/leads/june2.csv", b"id\n1\n", sidecar=False)
    drop(zone, "acme/incoming/leads/june2.csv.sha256", b"not a checksum\n")

    result, _ = evaluate()

    # the one bad file gets its own run, which quarantines it with the reason; the others go on
    assert isinstance(result, dg.SensorResult)
    configs = {r.tags["herald/file"]: r.run_config["ops"]["packet_rows"]["config"] for r in result.run_requests}
    assert sorted(configs) == ["appts.csv", "june.csv", "june2.csv"]
    assert configs["june2.csv"]["problem"].startswith("checksum sidecar holds 'not a checksum'")
    assert configs["june.csv"]["problem"] is None


def test_a_file_still_being_uploaded_waits_until_it_is_unchanged_for_a_tick(zone: LocalDropZone) -> None:
    path = "bright_smiles_dental/incoming/appointments/big.csv"
    drop(zone, path, b"id,when\n1,2024-06-12\n", sidecar=False)  # no sidecar: only stability proves it done

    first, cursor = evaluate()
    assert isinstance(first, dg.SkipReason)
    assert first.skip_message == "no new complete packets (0 already requested, 1 still uploading)"

    drop(zone, path, b"id,when\n1,2024-06-12\n2,2024-06-13\n", MTIME + 5, sidecar=False)  # still growing
    second, cursor = evaluate(cursor)
    assert isinstance(second, dg.SkipReason) and "1 still uploading" in second.skip_message

    third, cursor = evaluate(cursor)  # unchanged since the last tick: complete
    assert isinstance(third, dg.SensorResult)
    assert [r.tags["herald/file"] for r in third.run_requests] == ["big.csv"]
    assert requested(cursor) == [path]


def test_a_sidecar_marks_the_upload_complete_at_once(zone: LocalDropZone) -> None:
    drop(zone, "bright_smiles_dental/incoming/appointments/a.csv", b"id\n1\n", sidecar=True)

    result, _ = evaluate()

    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
