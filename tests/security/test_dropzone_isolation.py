"""The drop zone isolates clients: one client's bad file never stops another's packet.

Two clients share a drop zone. The innocent one (bright_smiles_dental) drops a good packet; the
other (lakeside_realty) drops something hostile or broken. One tick — the packet_arrival sensor
evaluated once, then every run it requested — must land the innocent packet and quarantine or
report the bad file alone, with its reason. The warehouse is real, on both engines; the local
folder is the drop zone (S3 and SFTP where their code differs: see the end of the module).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from herald.config import Deployment
from herald.demo.packets import sized_packet
from herald.dropzone import DropZone, LocalDropZone, PendingPacket
from herald.dropzone.base import MAX_PACKET_NAME_BYTES, sha256_of
from herald.packets.ingest import IngestOutcome, ingest_packet
from herald.packets.landing import PACKETS_TABLE, REJECTS_TABLE, ROWS_TABLE
from herald.warehouse.connection import Warehouse
from resources import DropZoneResource, HeraldConfigResource
from sensors.packet_arrival import packet_arrival_sensor
from tests.conftest import ENGINES
from tests.privileges import file_modes_enforced

pytestmark = pytest.mark.parametrize("warehouse", ENGINES, indirect=True)

GOOD, GOOD_TYPE = "bright_smiles_dental", "appointments"
BAD, BAD_TYPE = "lakeside_realty", "buyer_leads"
GOOD_ROWS = 20


@pytest.fixture
def zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse: Warehouse) -> LocalDropZone:
    """The zone the sensor's resource opens (it reads HERALD_DROPZONE_URL when it runs)."""
    monkeypatch.setenv("HERALD_DROPZONE_URL", str(tmp_path / "zone"))
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    (tmp_path / "zone").mkdir()
    return LocalDropZone(tmp_path / "zone")


def drop(zone: LocalDropZone, zone_path: str, content: bytes, sidecar: bool = True) -> Path:
    path = zone.root / zone_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if sidecar:
        path.with_name(path.name + ".sha256").write_text(sha256_of(path) + "\n")
    return path


def drop_good(zone: LocalDropZone, deployment: Deployment) -> str:
    content = sized_packet(deployment, GOOD, GOOD_TYPE, rows=GOOD_ROWS).content
    drop(zone, f"{GOOD}/incoming/{GOOD_TYPE}/good.csv", content)
    return f"{GOOD}/incoming/{GOOD_TYPE}/good.csv"


def bad_content(deployment: Deployment) -> bytes:
    return sized_packet(deployment, BAD, BAD_TYPE, rows=5).content


def tick(warehouse: Warehouse, deployment: Deployment, zone: DropZone) -> list[IngestOutcome]:
    """The sensor once, then each run it requested (the asset is a thin adapter over
    ingest_packet, run here directly)."""
    context = dg.build_sensor_context(
        resources={"dropzone": DropZoneResource(), "herald_config": HeraldConfigResource()}
    )
    result = packet_arrival_sensor(context)
    assert isinstance(result, dg.SensorResult), result
    outcomes = []
    for request in result.run_requests:
        pending = PendingPacket(**request.run_config["ops"]["packet_rows"]["config"])
        outcomes.append(ingest_packet(warehouse, zone, deployment, pending))
    return outcomes


def packets(warehouse: Warehouse) -> dict[str, tuple]:
    """client → (status, status_reason, rows_landed) of its packets, one per client here."""
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(f"select client_id, status, status_reason, rows_landed from {PACKETS_TABLE}")
    return {r[0]: tuple(r[1:]) for r in rows}


def assert_innocent_landed(warehouse: Warehouse, zone: LocalDropZone) -> None:
    status = packets(warehouse)[GOOD]
    assert (status[0], status[2]) == ("landed", GOOD_ROWS)
    assert list((zone.root / GOOD / "incoming" / GOOD_TYPE).iterdir()) == []
    assert len(list((zone.root / GOOD / "archive" / GOOD_TYPE).glob("*__good.csv"))) == 1


def quarantined_reason(zone: LocalDropZone) -> str:
    [reason] = list((zone.root / BAD / "quarantine" / BAD_TYPE).glob("*.reason.txt"))
    return reason.read_text()


# --- per-file problems: the bad file is quarantined with its reason, the innocent packet lands -----


BAD_SIDECARS = {
    "malformed_checksum": (".sha256", b"\x00\xff not a digest at all", "checksum sidecar holds"),
    "empty_checksum": (".md5", b"", "checksum sidecar holds ''"),
    "manifest_not_json": (".manifest.json", b"{row_count: 3", 'must hold {"row_count": N}'),
    "manifest_wrong_shape": (".manifest.json", b'[{"row_count": 3}]', 'must hold {"row_count": N}'),
    "manifest_deep": (".manifest.json", b"[" * 100_000 + b"]" * 100_000, 'must hold {"row_count": N}'),
}


@pytest.mark.parametrize("case", sorted(BAD_SIDECARS))
def test_a_bad_sidecar_quarantines_that_file_alone(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone, case: str
) -> None:
    suffix, sidecar, reason = BAD_SIDECARS[case]
    drop_good(zone, deployment)
    bad = drop(zone, f"{BAD}/incoming/{BAD_TYPE}/leads.csv", bad_content(deployment), sidecar=False)
    bad.with_name(bad.name + suffix).write_bytes(sidecar)

    tick(warehouse, deployment, zone)

    assert_innocent_landed(warehouse, zone)
    status, status_reason, landed = packets(warehouse)[BAD]
    assert (status, landed) == ("rejected", 0)
    assert reason in status_reason and "\x00" not in status_reason
    assert reason in quarantined_reason(zone)
    assert not any((zone.root / BAD / "incoming" / BAD_TYPE).iterdir())  # the sidecar went along
    receipt = json.loads(next((zone.root / BAD / "quarantine" / BAD_TYPE).glob("*.receipt.json")).read_text())
    assert receipt["status"] == "rejected" and reason in receipt["reason"]


ODD_NAMES = {
    "very_long": ("x" * 250 + ".csv").encode(),
    "not_utf8": b"caf\xe9 leads.csv",
    "newline": b"leads\nsecond line.csv",
    "escape_sequence": b"\x1b[31mleads.csv",
}


@pytest.mark.parametrize("case", sorted(ODD_NAMES))
def test_an_odd_name_is_quarantined_with_a_reason(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone, case: str
) -> None:
    drop_good(zone, deployment)
    folder = zone.root / BAD / "incoming" / BAD_TYPE
    folder.mkdir(parents=True)
    odd = os.path.join(os.fsencode(folder), ODD_NAMES[case])
    with open(odd, "wb") as f:
        f.write(bad_content(deployment))

    tick(warehouse, deployment, zone)

    assert_innocent_landed(warehouse, zone)
    status, status_reason, _ = packets(warehouse)[BAD]
    assert status == "rejected"
    expected = {
        "very_long": f"packet names may hold at most {MAX_PACKET_NAME_BYTES} bytes",
        "not_utf8": "not valid UTF-8",
        "newline": "control characters",
        "escape_sequence": "control characters",
    }[case]
    assert expected in status_reason
    assert expected in quarantined_reason(zone)
    assert os.listdir(os.fsencode(folder)) == []  # nothing left behind, unreported
    for name in os.listdir(os.fsencode(zone.root / BAD / "quarantine" / BAD_TYPE)):
        assert len(name) <= 255 and b"\n" not in name and b"\x1b" not in name
        name.decode("utf-8")  # filed under a name every tool can show


@pytest.mark.parametrize("sidecar", [False, True], ids=["hashed_when_listed", "read_when_ingested"])
def test_an_unreadable_file_is_quarantined_with_a_reason(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone, sidecar: bool
) -> None:
    drop_good(zone, deployment)
    bad = drop(zone, f"{BAD}/incoming/{BAD_TYPE}/leads.csv", bad_content(deployment), sidecar=sidecar)
    bad.chmod(0)

    with file_modes_enforced():  # as root too (CI): the kernel refuses the read
        with pytest.raises(PermissionError):
            bad.open("rb")
        tick(warehouse, deployment, zone)

    assert_innocent_landed(warehouse, zone)
    assert packets(warehouse)[BAD][0] == "rejected"
    assert "Permission denied" in quarantined_reason(zone)


# --- symbolic links: never followed at any level -------------------------------------------------


def _link_incoming(zone: LocalDropZone) -> None:
    (zone.root / BAD).mkdir()
    (zone.root / BAD / "incoming").symlink_to(zone.root / GOOD / "incoming")


def _link_type_folder(zone: LocalDropZone) -> None:
    (zone.root / BAD / "incoming").mkdir(parents=True)
    (zone.root / BAD / "incoming" / BAD_TYPE).symlink_to(zone.root / GOOD / "incoming" / GOOD_TYPE)


def _link_file(zone: LocalDropZone) -> None:
    (zone.root / BAD / "incoming" / BAD_TYPE).mkdir(parents=True)
    (zone.root / BAD / "incoming" / BAD_TYPE / "leads.csv").symlink_to(
        zone.root / GOOD / "incoming" / GOOD_TYPE / "good.csv"
    )


def _link_client(zone: LocalDropZone) -> None:
    (zone.root / BAD).symlink_to(zone.root / GOOD)


LINKS = {"incoming": _link_incoming, "type_folder": _link_type_folder, "file": _link_file, "client": _link_client}


@pytest.mark.parametrize("level", sorted(LINKS))
def test_a_link_is_refused_and_never_followed(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone, level: str, caplog: pytest.LogCaptureFixture
) -> None:
    drop_good(zone, deployment)
    LINKS[level](zone)

    tick(warehouse, deployment, zone)

    # the other client's file landed once, as its own client's packet, never as lakeside's
    assert_innocent_landed(warehouse, zone)
    assert set(packets(warehouse)) == {GOOD}
    assert any("a symbolic link" in r.getMessage() for r in caplog.records if r.name == "herald.dropzone")


@pytest.mark.parametrize("level", ["file", "type_folder"])
def test_a_link_swapped_in_after_the_listing_is_refused_by_the_kernel(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone, level: str
) -> None:
    """The race the lstat checks alone cannot close: the sensor lists a regular file, then the
    file (or its folder) is replaced by a link to the other client's packet before the run
    opens it. Opened level by level with O_NOFOLLOW, the swap is refused, never followed."""
    drop_good(zone, deployment)
    drop(zone, f"{BAD}/incoming/{BAD_TYPE}/leads.csv", bad_content(deployment))
    context = dg.build_sensor_context(
        resources={"dropzone": DropZoneResource(), "herald_config": HeraldConfigResource()}
    )
    result = packet_arrival_sensor(context)
    assert isinstance(result, dg.SensorResult)
    pendings = [PendingPacket(**r.run_config["ops"]["packet_rows"]["config"]) for r in result.run_requests]

    good_file = zone.root / GOOD / "incoming" / GOOD_TYPE / "good.csv"
    bad_folder = zone.root / BAD / "incoming" / BAD_TYPE
    if level == "file":
        (bad_folder / "leads.csv").unlink()
        (bad_folder / "leads.csv").symlink_to(good_file)
    else:
        moved = bad_folder.with_name("moved_away")
        bad_folder.rename(moved)
        bad_folder.symlink_to(good_file.parent)
    outcomes = {
        p.client_id: ingest_packet(warehouse, zone, deployment, p)
        for p in sorted(pendings, key=lambda p: p.client_id != BAD)
    }

    assert outcomes[BAD].landing.status == "rejected"
    assert "symbolic link" in (outcomes[BAD].landing.reason or "")
    # the other client's rows never landed as lakeside's; its own packet landed as its own
    status = packets(warehouse)
    assert status[BAD][0] == "rejected" and not status[BAD][2]
    assert (status[GOOD][0], status[GOOD][2]) == ("landed", GOOD_ROWS)


def test_a_linked_archive_folder_is_not_written_through(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone
) -> None:
    # lakeside points its own archive at bright smiles' archive, then drops a packet
    drop_good(zone, deployment)
    drop(zone, f"{BAD}/incoming/{BAD_TYPE}/leads.csv", bad_content(deployment))
    (zone.root / GOOD / "archive").mkdir()
    (zone.root / BAD / "archive").symlink_to(zone.root / GOOD / "archive")

    with pytest.raises(Exception, match="is a symbolic link: links are never followed"):
        tick(warehouse, deployment, zone)

    # nothing of lakeside's reached bright smiles' archive
    assert [p.name for p in (zone.root / GOOD / "archive").rglob("*") if p.is_file() and BAD in p.name] == []


# --- the content: NUL bytes and stray bytes reject their own line ---------------------------------


def _with_line(content: bytes, line: int, raw: bytes) -> bytes:
    lines = content.split(b"\n")
    lines.insert(line - 1, raw)
    return b"\n".join(lines)


def rejects(warehouse: Warehouse, client_id: str) -> list[tuple[int, str, str]]:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            f"select line_number, reason, raw_text from {REJECTS_TABLE} where client_id = ? order by 1", [client_id]
        )
    return [tuple(r) for r in rows]


def test_a_nul_byte_rejects_its_line_with_the_line_number(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone
) -> None:
    drop_good(zone, deployment)
    content = bad_content(deployment)  # header + 5 rows, ';'-separated
    second_row = content.split(b"\n")[2]
    content = _with_line(content, 4, second_row.replace(b";", b"\x00;", 1))
    drop(zone, f"{BAD}/incoming/{BAD_TYPE}/leads.csv", content)

    tick(warehouse, deployment, zone)

    assert_innocent_landed(warehouse, zone)
    status, _, landed = packets(warehouse)[BAD]
    assert (status, landed) == ("landed", 5)
    [(line, reason, raw)] = rejects(warehouse, BAD)
    assert line == 4 and "NUL" in reason and "\\0;" in raw and "\x00" not in raw


def test_one_stray_byte_rejects_its_line_and_keeps_every_accent(
    warehouse: Warehouse, deployment: Deployment, zone: LocalDropZone
) -> None:
    drop_good(zone, deployment)
    # lakeside's export, saved as UTF-8 this time, with accented names ("Núñez" on line 2)
    content = bad_content(deployment).decode("windows-1252").encode("utf-8")
    first = content.split(b"\n")[1]
    assert "Núñez".encode() in first
    content = _with_line(content, 3, first.replace(b";", b"\xe9;", 1))  # one stray windows-1252 byte
    drop(zone, f"{BAD}/incoming/{BAD_TYPE}/leads.csv", content)

    tick(warehouse, deployment, zone)

    assert_innocent_landed(warehouse, zone)
    with warehouse.session(read_only=True) as s:
        encoding = s.scalar(f"select encoding from {PACKETS_TABLE} where client_id = ?", [BAD])
        cells = s.scalar(f"select row_data from {ROWS_TABLE} where client_id = ? and line_number = 2", [BAD])
    assert encoding == "utf-8"
    assert "Núñez" in (cells if isinstance(cells, dict) else json.loads(cells)).values()
    [(line, reason, _raw)] = rejects(warehouse, BAD)
    assert line == 3 and "not valid utf-8" in reason


# --- S3 and SFTP: the same rules where their storage differs --------------------------------------


@pytest.fixture
def s3_zone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[DropZone]:
    moto_server = pytest.importorskip("moto.server")
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws_config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws_credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="drops")
    monkeypatch.setenv("HERALD_DROPZONE_URL", "s3://drops/zone")
    monkeypatch.setenv("HERALD_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    zone = DropZoneResource().get()
    try:
        yield zone
    finally:
        zone.close()
        server.stop()


def test_s3_bad_sidecar_and_long_key_are_quarantined_beside_a_good_packet(
    warehouse: Warehouse, deployment: Deployment, s3_zone: DropZone, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(sized_packet(deployment, GOOD, GOOD_TYPE, rows=GOOD_ROWS).content)
    s3_zone.put(good, GOOD, GOOD_TYPE)
    bad = tmp_path / "leads.csv"
    bad.write_bytes(bad_content(deployment))
    s3_zone.put(bad, BAD, BAD_TYPE)
    s3_zone._write_bytes(f"{BAD}/incoming/{BAD_TYPE}/leads.csv.sha256", b"garbage")
    long_name = "y" * 600 + ".csv"  # S3 takes keys up to 1,024 bytes; Herald names up to 200
    s3_zone.put(bad, BAD, BAD_TYPE, name=long_name)

    outcomes = tick(warehouse, deployment, s3_zone)

    assert len(outcomes) == 3
    statuses = packets_by_file(warehouse)
    assert statuses["good.csv"][0] == "landed"
    assert statuses["leads.csv"][0] == "rejected" and "checksum sidecar holds" in statuses["leads.csv"][1]
    assert statuses[long_name][0] == "rejected" and "at most 200 bytes" in statuses[long_name][1]
    assert s3_zone.list_pending() == []
    filed = [o.filed_at for o in outcomes if o.status == "rejected"]
    assert all(f.startswith(f"{BAD}/quarantine/") and len(f.rsplit("/", 1)[-1]) <= 255 for f in filed)


def packets_by_file(warehouse: Warehouse) -> dict[str, tuple]:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(f"select file_name, status, status_reason from {PACKETS_TABLE}")
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture
def sftp_zone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[DropZone, Path]]:
    """A real SFTP server (asyncssh, tests/sftp_server.py); the zone is /zone in alice's jail."""
    from tests.sftp_server import start_sftp_server

    server = start_sftp_server(tmp_path / "sftp", {"alice": {"password": "pw-for-tests"}})
    (server.folder("alice") / "zone").mkdir()
    monkeypatch.setenv("HERALD_DROPZONE_URL", f"sftp://alice@{server.host}:{server.port}/zone")
    monkeypatch.setenv("HERALD_SFTP_PASSWORD", "pw-for-tests")
    monkeypatch.setenv("HERALD_SFTP_HOST_KEY", server.host_key_line)
    monkeypatch.delenv("HERALD_SFTP_KEY_FILE", raising=False)
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    zone = DropZoneResource().get()
    try:
        yield zone, server.folder("alice") / "zone"
    finally:
        zone.close()
        server.stop()


@pytest.mark.parametrize("level", ["incoming", "archive"])
def test_sftp_a_linked_client_folder_is_never_followed(
    warehouse: Warehouse,
    deployment: Deployment,
    sftp_zone: tuple[DropZone, Path],
    tmp_path: Path,
    level: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # links inside the server's jail: the server would follow them, so Herald must not
    zone, on_disk = sftp_zone
    good = tmp_path / "good.csv"
    good.write_bytes(sized_packet(deployment, GOOD, GOOD_TYPE, rows=GOOD_ROWS).content)
    zone.put(good, GOOD, GOOD_TYPE)
    (on_disk / GOOD / "archive").mkdir()
    (on_disk / BAD).mkdir()
    if level == "archive":
        bad = tmp_path / "leads.csv"
        bad.write_bytes(bad_content(deployment))
        zone.put(bad, BAD, BAD_TYPE)
    (on_disk / BAD / level).symlink_to(on_disk / GOOD / level)

    outcomes = []
    try:
        outcomes = tick(warehouse, deployment, zone)
    except Exception as exc:  # the linked archive: lakeside's own run fails, saying why
        assert level == "archive" and "is a symbolic link: links are never followed" in str(exc)

    statuses = packets_by_file(warehouse)
    assert statuses["good.csv"][0] == "landed"
    assert BAD not in {o.landing.client_id for o in outcomes if o.status == "landed"}
    assert not [p for p in (on_disk / GOOD / "archive").rglob("*") if BAD in p.name]
    if level == "incoming":
        assert set(statuses) == {"good.csv"}
        assert any("a symbolic link" in r.getMessage() for r in caplog.records if r.name == "herald.dropzone")
