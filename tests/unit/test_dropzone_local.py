"""herald.dropzone.LocalDropZone: what a client drops is listed once, checksummed, and filed away."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from herald.dropzone import DropZoneError, LocalDropZone, PendingPacket, open_dropzone
from herald.settings import parse_dropzone_url

CONTENT = b"id,name,phone\n1,Ann,5125550142\n2,Bob,5125550143\n"
SHA256 = hashlib.sha256(CONTENT).hexdigest()
MD5 = hashlib.md5(CONTENT).hexdigest()
MTIME = 1_718_100_000  # 2024-06-11T10:00:00Z


@pytest.fixture
def zone(tmp_path: Path) -> LocalDropZone:
    return LocalDropZone(tmp_path / "zone")


@pytest.fixture
def packet_file(tmp_path: Path) -> Path:
    path = tmp_path / "upload" / "leads_2024-06-11.csv"
    path.parent.mkdir()
    path.write_bytes(CONTENT)
    return path


def drop(zone: LocalDropZone, rel: str, content: bytes = CONTENT, mtime: float = MTIME) -> Path:
    """A file placed in the zone the way any client tool would (no sidecar)."""
    path = zone.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- put ------------------------------------------------------------------------------------


def test_put_writes_the_file_and_a_sha256sum_sidecar(zone: LocalDropZone, packet_file: Path) -> None:
    zone_path = zone.put(packet_file, "acme", "leads")

    assert zone_path == "acme/incoming/leads/leads_2024-06-11.csv"
    assert (zone.root / zone_path).read_bytes() == CONTENT
    assert (zone.root / (zone_path + ".sha256")).read_text() == f"{SHA256}  leads_2024-06-11.csv\n"
    # nothing half-written is left behind
    assert files_under(zone.root) == [
        "acme/incoming/leads/leads_2024-06-11.csv",
        "acme/incoming/leads/leads_2024-06-11.csv.sha256",
    ]


def test_an_interrupted_put_leaves_nothing_to_ingest(
    zone: LocalDropZone, packet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("herald.dropzone.local.os.replace", crash)

    with pytest.raises(OSError, match="disk full"):
        zone.put(packet_file, "acme", "leads")

    assert zone.list_pending() == []  # the partial copy is hidden, the lone sidecar ignored


def test_put_under_another_name(zone: LocalDropZone, packet_file: Path) -> None:
    zone_path = zone.put(packet_file, "acme", "leads", name="june.csv")

    assert zone_path == "acme/incoming/leads/june.csv"
    assert (zone.root / "acme/incoming/leads/june.csv.sha256").read_text() == f"{SHA256}  june.csv\n"


def test_what_put_drops_is_listed_with_its_sidecar_checksum(zone: LocalDropZone, packet_file: Path) -> None:
    zone.put(packet_file, "acme", "leads")

    [packet] = zone.list_pending()

    assert (packet.zone_path, packet.sha256, packet.checksum_source) == (
        "acme/incoming/leads/leads_2024-06-11.csv",
        SHA256,
        "sidecar-sha256",
    )


def test_put_refuses_a_name_already_waiting(zone: LocalDropZone, packet_file: Path) -> None:
    zone.put(packet_file, "acme", "leads")
    packet_file.write_bytes(b"other content\n")

    with pytest.raises(
        DropZoneError, match=re.escape("acme/incoming/leads/leads_2024-06-11.csv is already waiting to be ingested")
    ):
        zone.put(packet_file, "acme", "leads")

    assert (zone.root / "acme/incoming/leads/leads_2024-06-11.csv").read_bytes() == CONTENT
    assert not list((zone.root / "acme/incoming/leads").glob(".*"))


@pytest.mark.parametrize(
    ("client_id", "packet_type"),
    [("Acme", "leads"), ("acme-co", "leads"), ("../acme", "leads"), ("", "leads"), ("acme", "Leads"), ("acme", "a/b")],
)
def test_put_refuses_bad_client_ids_and_packet_types(
    zone: LocalDropZone, packet_file: Path, client_id: str, packet_type: str
) -> None:
    with pytest.raises(
        DropZoneError, match="client id and packet type must be lower-case letters, digits and underscores"
    ):
        zone.put(packet_file, client_id, packet_type)

    assert not zone.root.exists() or files_under(zone.root) == []


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.csv",
        ".leads.csv.part",
        "..",
        "sub/leads.csv",
        "leads.csv.sha256",
        "leads.csv.md5",
        "leads.csv.manifest.json",
        "x.reason.txt",
    ],
)
def test_put_refuses_names_it_could_not_list(zone: LocalDropZone, packet_file: Path, name: str) -> None:
    with pytest.raises(DropZoneError, match="cannot be used as a packet file name"):
        zone.put(packet_file, "acme", "leads", name=name)

    assert zone.list_pending() == []


# --- list_pending ---------------------------------------------------------------------------


def test_an_empty_or_missing_zone_has_nothing_pending(zone: LocalDropZone) -> None:
    assert zone.list_pending() == []
    zone.root.mkdir()
    assert zone.list_pending() == []
    assert list(zone.clients()) == []


def test_list_pending_lists_only_client_incoming_type_files(zone: LocalDropZone, tmp_path: Path) -> None:
    for rel in [
        "acme/incoming/leads/a.csv",  # listed
        "acme/incoming/leads/b.txt",  # listed (any file)
        "zeta_co/incoming/appointments/c.csv",  # listed
        "acme/incoming/leads/.d.csv.part",  # an upload in progress
        "acme/incoming/leads/.DS_Store",
        "acme/incoming/leads/a.csv.sha256",
        "acme/incoming/leads/a.csv.md5",
        "acme/incoming/leads/a.csv.manifest.json",
        "acme/incoming/leads/old.csv.reason.txt",
        "acme/incoming/top_level.csv",  # no packet type folder
        "acme/incoming/leads/nested/e.csv",  # too deep
        "acme/archive/leads/x__a.csv",
        "acme/quarantine/leads/x__a.csv",
        "Acme/incoming/leads/f.csv",  # client folder not a slug
        "acme-co/incoming/leads/f.csv",
        "acme/incoming/Leads/f.csv",  # type folder not a slug
        "acme/incoming/a/f.csv",  # too short for a slug
        "loose.csv",
    ]:
        content = f"{SHA256}  a.csv\n".encode() if rel.endswith(".sha256") else CONTENT
        content = f"{MD5}\n".encode() if rel.endswith(".md5") else content
        content = b'{"row_count": 2}' if rel.endswith(".json") else content
        drop(zone, rel, content)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(CONTENT)
    (zone.root / "acme/incoming/leads/linked.csv").symlink_to(outside)
    (zone.root / "acme/incoming/linked_type").symlink_to(zone.root / "acme/incoming/leads")
    (zone.root / "linked_client").symlink_to(zone.root / "acme")

    assert [p.zone_path for p in zone.list_pending()] == [
        "acme/incoming/leads/a.csv",
        "acme/incoming/leads/b.txt",
        "zeta_co/incoming/appointments/c.csv",
    ]
    assert list(zone.clients()) == ["acme", "zeta_co"]


def test_a_pending_packet_describes_its_file(zone: LocalDropZone) -> None:
    drop(zone, "acme/incoming/leads/june.csv")

    [packet] = zone.list_pending()

    assert packet == PendingPacket(
        client_id="acme",
        packet_type="leads",
        file_name="june.csv",
        zone_path="acme/incoming/leads/june.csv",
        size_bytes=len(CONTENT),
        mtime_us=MTIME * 1_000_000,
        sha256=SHA256,  # computed: there is no sidecar
        md5=None,
        checksum_source="computed",
        manifest_rows=None,
    )
    assert packet.modified_at.isoformat() == "2024-06-11T10:00:00"
    assert packet.checksum == SHA256


@pytest.mark.parametrize(
    ("sidecars", "sha256", "md5", "source"),
    [
        ({".sha256": f"{SHA256}  june.csv\n"}, SHA256, None, "sidecar-sha256"),
        ({".sha256": SHA256.upper()}, SHA256, None, "sidecar-sha256"),
        ({".sha256": "0" * 64}, "0" * 64, None, "sidecar-sha256"),  # as claimed: verifying is the ingest's job
        ({".md5": f"{MD5} *june.csv\n"}, None, MD5, "sidecar-md5"),
        ({".sha256": SHA256, ".md5": MD5}, SHA256, None, "sidecar-sha256"),
        ({}, SHA256, None, "computed"),
    ],
    ids=["sha256sum format", "bare upper-case hex", "a wrong checksum", "md5sum binary format", "both", "none"],
)
def test_checksum_sidecars(
    zone: LocalDropZone, sidecars: dict[str, str], sha256: str | None, md5: str | None, source: str
) -> None:
    file = drop(zone, "acme/incoming/leads/june.csv")
    for suffix, text in sidecars.items():
        file.with_name(file.name + suffix).write_text(text)

    [packet] = zone.list_pending()

    assert (packet.sha256, packet.md5, packet.checksum_source) == (sha256, md5, source)
    assert packet.checksum == (sha256 or md5)


@pytest.mark.parametrize("text", ["", "not a checksum", "abc123  june.csv"])
def test_a_sidecar_that_is_not_a_digest_refuses_that_file(zone: LocalDropZone, text: str) -> None:
    file = drop(zone, "acme/incoming/leads/june.csv")
    file.with_name("june.csv.sha256").write_text(text)

    [packet] = zone.list_pending()  # listed with its problem (its ingest run quarantines it), never raised

    assert packet.problem is not None
    assert re.search(r"checksum sidecar holds .*, not a hex digest", packet.problem)


def test_a_manifest_gives_the_row_count(zone: LocalDropZone) -> None:
    drop(zone, "acme/incoming/leads/june.csv")
    drop(zone, "acme/incoming/leads/june.csv.manifest.json", b'{"row_count": 2, "exported_by": "crm"}')

    [packet] = zone.list_pending()

    assert packet.manifest_rows == 2


@pytest.mark.parametrize("manifest", [b"{}", b'{"row_count": "many"}', b"[2]", b"not json"])
def test_a_bad_manifest_names_the_file(zone: LocalDropZone, manifest: bytes) -> None:
    drop(zone, "acme/incoming/leads/june.csv")
    drop(zone, "acme/incoming/leads/june.csv.manifest.json", manifest)

    [packet] = zone.list_pending()  # listed with its problem (its ingest run quarantines it), never raised

    assert packet.problem is not None
    assert re.search(r'acme/incoming/leads/june\.csv\.manifest\.json must hold \{"row_count": N\}', packet.problem)


def test_known_files_are_not_hashed_again(zone: LocalDropZone) -> None:
    drop(zone, "acme/incoming/leads/seen.csv")
    drop(zone, "acme/incoming/leads/new.csv")
    first = {p.zone_path: p for p in zone.list_pending()}
    known = {path: p.fingerprint for path, p in first.items() if path.endswith("seen.csv")}

    again = {p.zone_path: p for p in zone.list_pending(known=known)}

    assert again["acme/incoming/leads/seen.csv"].sha256 is None
    assert again["acme/incoming/leads/new.csv"].sha256 == SHA256


# --- identity: packet_id, run_key, fingerprint ----------------------------------------------


def identity(packet: PendingPacket) -> tuple[str, str, str]:
    return packet.packet_id, packet.run_key, packet.fingerprint


def test_identity_of_a_packet(zone: LocalDropZone) -> None:
    drop(zone, "acme/incoming/leads/june.csv")

    [packet] = zone.list_pending()

    assert identity(packet) == (
        f"acme-leads-20240611T100000000000-{SHA256[:8]}",
        f"packet:acme:acme/incoming/leads/june.csv:{SHA256}:{MTIME * 1_000_000}",
        f"{len(CONTENT)}:{MTIME * 1_000_000}",
    )


def test_identity_is_stable_for_the_same_file(zone: LocalDropZone) -> None:
    drop(zone, "acme/incoming/leads/june.csv")

    assert identity(zone.list_pending()[0]) == identity(zone.list_pending()[0])
    assert identity(zone.list_pending()[0]) == identity(LocalDropZone(zone.root).list_pending()[0])


@pytest.mark.parametrize(
    ("content", "mtime"),
    [(CONTENT, MTIME + 60), (CONTENT, MTIME + 86_400), (CONTENT + b"3,Cy,5125550144\n", MTIME + 1)],
    ids=["same content a minute later", "same content a day later", "new content"],
)
def test_identity_changes_when_the_file_is_dropped_again(zone: LocalDropZone, content: bytes, mtime: int) -> None:
    file = drop(zone, "acme/incoming/leads/june.csv")
    [before] = zone.list_pending()

    file.unlink()
    drop(zone, "acme/incoming/leads/june.csv", content, mtime)
    [after] = zone.list_pending()

    assert after.zone_path == before.zone_path
    assert after.packet_id != before.packet_id
    assert after.run_key != before.run_key
    assert after.fingerprint != before.fingerprint


# --- archive, quarantine, locate ------------------------------------------------------------


@pytest.fixture
def waiting(zone: LocalDropZone, packet_file: Path) -> PendingPacket:
    zone.put(packet_file, "acme", "leads")
    drop(zone, "acme/incoming/leads/leads_2024-06-11.csv.manifest.json", b'{"row_count": 2}')
    drop(zone, "acme/incoming/leads/leads_2024-06-11.csv.md5", f"{MD5}\n".encode())
    drop(zone, "acme/incoming/leads/other.csv")
    return next(p for p in zone.list_pending() if p.file_name == "leads_2024-06-11.csv")


def test_archive_moves_the_file_and_its_sidecars(zone: LocalDropZone, waiting: PendingPacket) -> None:
    new_path = zone.archive(waiting.zone_path, waiting.packet_id)

    archived = f"acme/archive/leads/{waiting.packet_id}__leads_2024-06-11.csv"
    assert new_path == archived
    assert (zone.root / archived).read_bytes() == CONTENT
    assert files_under(zone.root) == sorted(
        [
            archived,
            archived + ".manifest.json",
            archived + ".md5",
            archived + ".sha256",
            "acme/incoming/leads/other.csv",
        ]
    )
    assert [p.file_name for p in zone.list_pending()] == ["other.csv"]
    assert zone.locate(waiting.zone_path, waiting.packet_id) == archived


def test_quarantine_moves_the_file_and_writes_the_reason(zone: LocalDropZone, waiting: PendingPacket) -> None:
    new_path = zone.quarantine(waiting.zone_path, waiting.packet_id, "checksum does not match the .sha256 sidecar")

    quarantined = f"acme/quarantine/leads/{waiting.packet_id}__leads_2024-06-11.csv"
    assert new_path == quarantined
    assert (zone.root / (quarantined + ".reason.txt")).read_text() == "checksum does not match the .sha256 sidecar\n"
    assert (zone.root / (quarantined + ".sha256")).read_text() == f"{SHA256}  leads_2024-06-11.csv\n"
    assert files_under(zone.root / "acme/incoming") == ["leads/other.csv"]
    assert zone.locate(waiting.zone_path, waiting.packet_id) == quarantined


def test_locate_finds_a_packet_still_incoming(zone: LocalDropZone, waiting: PendingPacket) -> None:
    assert zone.locate(waiting.zone_path, waiting.packet_id) == waiting.zone_path


def test_locate_says_when_a_packet_is_nowhere(zone: LocalDropZone, waiting: PendingPacket) -> None:
    (zone.root / waiting.zone_path).unlink()

    with pytest.raises(
        DropZoneError, match=f"packet {waiting.packet_id}: {waiting.zone_path} is neither incoming nor archived"
    ):
        zone.locate(waiting.zone_path, waiting.packet_id)


def test_archiving_an_archived_path_again_leaves_it_alone(zone: LocalDropZone, waiting: PendingPacket) -> None:
    archived = zone.archive(waiting.zone_path, waiting.packet_id)

    assert zone.archive(archived, waiting.packet_id) == archived
    assert (zone.root / archived).read_bytes() == CONTENT


def test_fetch_gives_the_file(zone: LocalDropZone, waiting: PendingPacket) -> None:
    with zone.fetch(waiting.zone_path) as path:
        assert path.read_bytes() == CONTENT

    with (
        pytest.raises(DropZoneError, match=re.escape("acme/incoming/leads/gone.csv is not in the drop zone")),
        zone.fetch("acme/incoming/leads/gone.csv"),
    ):
        pass


@pytest.mark.parametrize(
    "zone_path",
    ["../outside.csv", "acme/incoming/leads/../../../../outside.csv", "/etc/passwd", "", "acme/../.."],
)
def test_a_path_escaping_the_zone_is_refused(zone: LocalDropZone, tmp_path: Path, zone_path: str) -> None:
    (tmp_path / "outside.csv").write_bytes(CONTENT)
    zone.root.mkdir()

    for action in (
        lambda: zone.fetch(zone_path).__enter__(),
        lambda: zone.locate(zone_path, "p1"),
        lambda: zone.archive(zone_path, "p1"),
        lambda: zone.quarantine(zone_path, "p1", "why"),
    ):
        with pytest.raises(DropZoneError, match=r"is outside the drop zone|is not <client>/<area>"):
            action()
    assert (tmp_path / "outside.csv").read_bytes() == CONTENT


@pytest.mark.parametrize("zone_path", ["acme/june.csv", "acme/incoming/june.csv", "june.csv"])
def test_a_path_not_shaped_like_a_packet_is_refused(zone: LocalDropZone, zone_path: str) -> None:
    drop(zone, zone_path)
    missing = zone_path.replace("june", "gone")

    with pytest.raises(DropZoneError, match=f"{missing!r} is not <client>/<area>/<packet type>/<file>"):
        zone.locate(missing, "p1")
    for action in (lambda: zone.archive(zone_path, "p1"), lambda: zone.quarantine(zone_path, "p1", "why")):
        with pytest.raises(DropZoneError, match=f"{zone_path!r} is not <client>/<area>/<packet type>/<file>"):
            action()
    assert (zone.root / zone_path).read_bytes() == CONTENT


def test_open_dropzone_builds_a_local_zone_from_settings(tmp_path: Path) -> None:
    target = parse_dropzone_url(str(tmp_path / "zone"), tmp_path)

    zone = open_dropzone(target)

    assert isinstance(zone, LocalDropZone)
    assert zone.root == tmp_path / "zone"
    assert zone.url == (tmp_path / "zone").as_uri()


def test_symlinks_and_odd_client_folders_are_refused_and_recorded(zone: LocalDropZone, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_bytes(CONTENT)
    incoming = zone.root / "acme/incoming/leads"
    incoming.mkdir(parents=True)
    (incoming / "escape.csv").symlink_to(outside)
    (zone.root / "Not A Client").mkdir()

    assert zone.list_pending() == []
    assert "acme/incoming/leads/escape.csv: a symbolic link" in zone.refused
    assert any(r.startswith("Not A Client/: not a client id") for r in zone.refused)
