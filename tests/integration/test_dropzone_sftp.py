"""The SFTP drop zone against a real SFTP server (asyncssh on 127.0.0.1, see tests/sftp_server.py).

One server for the module; every test works in a folder of its own under the user's jail, so
the tests stay independent. What the server stores is checked on its filesystem directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest

from herald.config import Deployment
from herald.demo.packets import sized_packet
from herald.dropzone import open_dropzone
from herald.dropzone.base import DropZoneError
from herald.dropzone.sftp import SFTPDropZone
from herald.packets.ingest import ingest_packet
from herald.settings import Settings, parse_dropzone_url
from herald.warehouse.connection import Warehouse
from tests.sftp_server import SFTPTestServer, public_key_line, start_sftp_server

BOB_PASSWORD = "correct horse battery staple"
PASSPHRASE = "open sesame 42"
SFTP_ENV = ("HERALD_SFTP_PASSWORD", "HERALD_SFTP_KEY_FILE", "HERALD_SFTP_KEY_PASSPHRASE", "HERALD_SFTP_HOST_KEY")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """alice's key, as a plain file and as a passphrase-protected copy."""
    folder = tmp_path_factory.mktemp("keys")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(folder / "alice"))
    # few bcrypt rounds: at the default cost each decryption takes about a second and a half; a
    # throwaway test key needs no protection from brute force, so bcrypt's warning is silenced here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*bcrypt\.kdf\(\) called with only", category=UserWarning)
        key.write_private_key(str(folder / "alice_protected"), passphrase=PASSPHRASE, rounds=4)
    (folder / "alice.pub").write_text(public_key_line(key) + "\n")
    return {"alice": folder / "alice", "alice_protected": folder / "alice_protected", "alice.pub": folder / "alice.pub"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Iterator[SFTPTestServer]:
    srv = start_sftp_server(
        tmp_path_factory.mktemp("sftp"),
        {
            "alice": {"public_key": keys["alice.pub"].read_text()},  # key login only
            "bob": {"password": BOB_PASSWORD},  # password login only
        },
    )
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HERALD_SFTP_* from the machine running the tests: each test sets what it means."""
    for name in SFTP_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def zone_factory(
    server: SFTPTestServer, keys: dict[str, Path], request: pytest.FixtureRequest
) -> Iterator[Callable[..., SFTPDropZone]]:
    """Zones in a folder of this test's own (``/<test name>`` in the user's jail); closed afterwards."""
    opened: list[SFTPDropZone] = []
    folder = "/" + request.node.name.replace("[", "_").replace("]", "")[:60]

    def make(user: str = "alice", prefix: str | None = None, **credentials: object) -> SFTPDropZone:
        if user == "alice" and not credentials:
            credentials = {"key_file": keys["alice"], "host_key": server.host_key_line}
        path = folder if prefix is None else prefix
        target = parse_dropzone_url(f"sftp://{user}@{server.host}:{server.port}{path}", Path("/unused"))
        zone = SFTPDropZone(target, **credentials)  # type: ignore[arg-type]
        opened.append(zone)
        return zone

    yield make
    for zone in opened:
        zone.close()


def on_server(server: SFTPTestServer, zone: SFTPDropZone, zone_path: str = "") -> Path:
    """Where a zone path is on the server's own filesystem."""
    base = server.folder(zone.user) / zone.root.lstrip("/")
    return base / zone_path if zone_path else base


def write_local(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --- logging in -------------------------------------------------------------------------------


def test_key_login_from_the_environment_with_a_passphrase(
    server: SFTPTestServer, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the way a deployment runs: sftp:// URL in the settings, secrets in HERALD_SFTP_*
    monkeypatch.setenv("HERALD_SFTP_KEY_FILE", str(keys["alice_protected"]))
    monkeypatch.setenv("HERALD_SFTP_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("HERALD_SFTP_HOST_KEY", server.host_key_line + " root@sftp-host")  # comment tolerated
    (server.folder("alice") / "srv" / "drops" / "acme_clinic").mkdir(parents=True)
    settings = Settings.from_env(
        {"HERALD_HOME": "/unused", "HERALD_DROPZONE_URL": f"sftp://alice@127.0.0.1:{server.port}/srv/drops"}
    )
    zone = open_dropzone(settings.dropzone)
    assert isinstance(zone, SFTPDropZone)
    try:
        line = zone.check()
        assert list(zone.clients()) == ["acme_clinic"]
    finally:
        zone.close()
    assert line.startswith(f"sftp://alice@127.0.0.1:{server.port}/srv/drops: connected as alice@127.0.0.1:")
    assert server.host_key.get_fingerprint("sha256") in line  # the fingerprint OpenSSH would print
    assert "1 client folder(s): acme_clinic" in line and "\n" not in line
    assert PASSPHRASE not in line

    # a wrong passphrase: a clear error, the passphrase not in it
    monkeypatch.setenv("HERALD_SFTP_KEY_PASSPHRASE", "not it")
    with pytest.raises(DropZoneError, match="cannot load the private key") as err:
        open_dropzone(settings.dropzone).check()
    assert "not it" not in str(err.value) and "wrong passphrase in HERALD_SFTP_KEY_PASSPHRASE" in str(err.value)
    monkeypatch.delenv("HERALD_SFTP_KEY_PASSPHRASE")
    with pytest.raises(DropZoneError, match="is encrypted: set its passphrase in HERALD_SFTP_KEY_PASSPHRASE"):
        open_dropzone(settings.dropzone).check()


def test_password_login_into_the_login_folder(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], tmp_path: Path
) -> None:
    # prefix "" = the login folder (what the jail shows as "/")
    zone = zone_factory("bob", prefix="", password=BOB_PASSWORD, host_key=server.host_key_line)
    assert zone.root == ""
    line = zone.check()
    assert server.logins[-1] == "bob"
    assert "root the login folder holds 0 client folder(s)" in line
    assert BOB_PASSWORD not in line

    zone_path = zone.put(write_local(tmp_path, "list.csv", b"id,phone\n1,555\n"), "bob_clinic", "contacts")
    assert (server.folder("bob") / "bob_clinic/incoming/contacts/list.csv").read_bytes() == b"id,phone\n1,555\n"
    assert [p.zone_path for p in zone.list_pending()] == [zone_path]


def test_a_wrong_pinned_host_key_is_refused_naming_host_and_offered_fingerprint(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], keys: dict[str, Path]
) -> None:
    impostor = public_key_line(asyncssh.generate_private_key("ssh-ed25519"))
    zone = zone_factory("alice", key_file=keys["alice"], host_key=impostor)
    logins_before = len(server.logins)
    with pytest.raises(DropZoneError) as err:
        zone.check()
    assert len(server.logins) == logins_before  # refused before authenticating
    message = str(err.value)
    offered = server.host_key.get_fingerprint("sha256")
    assert message.startswith(
        f"unknown host key for 127.0.0.1:{server.port}: the server offered ssh-ed25519 {offered}; "
        "pin it in HERALD_SFTP_HOST_KEY"
    )
    assert "does not match" in message
    assert zone._sftp is None  # no session was kept


def test_no_pinned_host_key_is_refused_before_logging_in(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], keys: dict[str, Path], tmp_path: Path
) -> None:
    zone = zone_factory("alice", key_file=keys["alice"])  # HERALD_SFTP_HOST_KEY unset
    logins_before = len(server.logins)
    offered = r"unknown host key for 127\.0\.0\.1:\d+: the server offered ssh-ed25519 SHA256:"
    with pytest.raises(DropZoneError, match=offered) as err:
        zone.put(write_local(tmp_path, "a.csv", b"x\n"), "acme_clinic", "contacts")
    assert server.host_key.get_fingerprint("sha256") in str(err.value)
    assert len(server.logins) == logins_before  # the key was refused before any credential was sent
    assert not on_server(server, zone).exists()  # nothing was written

    # a value that is not a key at all is named as such
    bad = zone_factory("alice", key_file=keys["alice"], host_key="AAAA-not-a-key")
    with pytest.raises(DropZoneError, match="not an OpenSSH public key line"):
        bad.check()


def test_bad_password_and_unreachable_server_give_actionable_errors(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_SFTP_PASSWORD", "hunter2-wrong")
    monkeypatch.setenv("HERALD_SFTP_HOST_KEY", server.host_key_line)
    zone = zone_factory("bob", prefix="", password=None)
    logins_before = len(server.logins)
    with pytest.raises(DropZoneError) as err:
        zone.check()
    assert len(server.logins) == logins_before
    message = str(err.value)
    assert message.startswith(f"authentication failed for bob@127.0.0.1:{server.port}")
    assert "hunter2" not in message and "HERALD_SFTP_PASSWORD" in message
    assert "hunter2" not in repr(zone)

    # no credentials at all
    monkeypatch.delenv("HERALD_SFTP_PASSWORD")
    with pytest.raises(DropZoneError, match=re.escape("no credentials for bob@127.0.0.1")):
        zone.check()

    # nothing listening: a closed port on 127.0.0.1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    target = parse_dropzone_url(f"sftp://bob@127.0.0.1:{free_port}/x", Path("/unused"))
    with pytest.raises(DropZoneError, match=rf"cannot reach the SFTP server 127\.0\.0\.1:{free_port}"):
        SFTPDropZone(target, password="whatever", host_key=server.host_key_line).check()


# --- the layout over SFTP -------------------------------------------------------------------------


def test_put_and_list_pending_reads_sidecars_and_ignores_hidden_files(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], tmp_path: Path
) -> None:
    zone = zone_factory()
    content = b"id,first_name,phone\n1,Ana,5550100\n2,Bo,5550101\n"
    sftp = zone._session()
    renames: list[tuple[str, str, bool]] = []
    real_rename = sftp.posix_rename

    def spy(old: str, new: str) -> None:  # what a reader could see at the moment of the rename
        renames.append((old, new, (on_server(server, zone) / new.removeprefix(zone.root + "/")).exists()))
        real_rename(old, new)

    sftp.posix_rename = spy  # type: ignore[method-assign]
    zone_path = zone.put(write_local(tmp_path, "roster.csv", content), "acme_clinic", "contacts")

    assert zone_path == "acme_clinic/incoming/contacts/roster.csv"
    folder = on_server(server, zone, "acme_clinic/incoming/contacts")
    # the file reached its name in one rename from a hidden .part file; the sidecar came first
    assert [(Path(o).name, Path(n).name, existed) for o, n, existed in renames] == [
        (".roster.csv.sha256.part", "roster.csv.sha256", False),
        (".roster.csv.part", "roster.csv", False),
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["roster.csv", "roster.csv.sha256"]
    assert (folder / "roster.csv").read_bytes() == content

    # dropped straight on the server: a file with no sidecar, its manifest, an md5 one, an upload in progress
    unsigned = b"id,first_name,phone\n3,Cy,5550102\n"
    (folder / "unsigned.csv").write_bytes(unsigned)
    (folder / "unsigned.csv.manifest.json").write_text(json.dumps({"row_count": 1}))
    (folder / "legacy.csv").write_bytes(b"id\n9\n")
    (folder / "legacy.csv.md5").write_text(hashlib.md5(b"id\n9\n").hexdigest() + "  legacy.csv\n")
    (folder / ".big.csv.part").write_bytes(b"half a fi")
    (folder / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(DropZoneError, match="already waiting"):
        zone.put(write_local(tmp_path, "roster.csv", content), "acme_clinic", "contacts")

    pending = {p.file_name: p for p in zone.list_pending()}
    assert sorted(pending) == ["legacy.csv", "roster.csv", "unsigned.csv"]
    roster, unsigned_p, legacy = pending["roster.csv"], pending["unsigned.csv"], pending["legacy.csv"]
    assert (roster.checksum_source, roster.sha256) == ("sidecar-sha256", hashlib.sha256(content).hexdigest())
    assert (unsigned_p.checksum_source, unsigned_p.sha256) == ("computed", hashlib.sha256(unsigned).hexdigest())
    assert unsigned_p.manifest_rows == 1
    assert (legacy.checksum_source, legacy.md5) == ("sidecar-md5", hashlib.md5(b"id\n9\n").hexdigest())
    assert roster.size_bytes == len(content)
    assert roster.mtime_us == int(os.stat(folder / "roster.csv").st_mtime) * 1_000_000  # SFTP v3: whole seconds

    # a file already seen (same fingerprint) is not hashed again
    again = {p.file_name: p for p in zone.list_pending(known={unsigned_p.zone_path: unsigned_p.fingerprint})}
    assert again["unsigned.csv"].sha256 is None


def test_a_symlink_out_of_the_jail_is_neither_listed_nor_readable(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], tmp_path: Path
) -> None:
    zone = zone_factory()
    zone.put(write_local(tmp_path, "ok.csv", b"id\n1\n"), "acme_clinic", "contacts")
    secret_dir = server.root.parent / f"{server.root.name}-outside"
    secret_dir.mkdir(exist_ok=True)
    secret = secret_dir / "secret.csv"
    secret.write_bytes(b"id,ssn\n1,123-45-6789\n")
    incoming = on_server(server, zone, "acme_clinic/incoming/contacts")
    (incoming / "stolen.csv").symlink_to(secret)  # a link file planted in the client's folder
    (on_server(server, zone, "acme_clinic/incoming") / "secrets").symlink_to(secret_dir)  # a link folder
    (on_server(server, zone) / "evil_client").symlink_to(secret_dir)

    assert [p.file_name for p in zone.list_pending()] == ["ok.csv"]
    assert "evil_client" not in list(zone.clients())
    # each link is recorded (and logged) as refused, like the local zone does
    assert {
        "evil_client: a symbolic link",
        "acme_clinic/incoming/secrets: a symbolic link",
        "acme_clinic/incoming/contacts/stolen.csv: a symbolic link",
    } <= set(zone.refused)
    # refused at the link itself: every level of a path is looked at with lstat first
    refused = "is a symbolic link: links are never followed"
    with (
        pytest.raises(DropZoneError, match=f"acme_clinic/incoming/contacts/stolen.csv in .* {refused}"),
        zone.fetch("acme_clinic/incoming/contacts/stolen.csv"),
    ):
        pass
    with pytest.raises(DropZoneError, match=f"acme_clinic/incoming/secrets in .* {refused}"):
        zone._read_bytes("acme_clinic/incoming/secrets/secret.csv")
    with pytest.raises(DropZoneError, match=f"acme_clinic/incoming/secrets in .* {refused}"):
        zone.write_text("acme_clinic/incoming/secrets/x.txt", "planted")
    with pytest.raises(DropZoneError, match="outside the drop zone"):
        zone.fetch("acme_clinic/incoming/../../x/secret.csv")

    # and the server itself refuses the escape to any SFTP client, whatever the path
    sftp = zone._session()
    base = zone.root
    with pytest.raises(PermissionError):
        sftp.open(f"{base}/acme_clinic/incoming/contacts/stolen.csv", "rb").read()
    with pytest.raises(PermissionError):
        sftp.listdir(f"{base}/acme_clinic/incoming/secrets")
    with pytest.raises(PermissionError):  # writing through the link is refused as well
        sftp.open(f"{base}/acme_clinic/incoming/secrets/planted.csv", "wb").close()
    with pytest.raises(FileNotFoundError):  # ".." stops at the jail's "/"
        sftp.stat(f"/../../../{secret_dir.name}/secret.csv")
    assert sorted(p.name for p in secret_dir.iterdir()) == ["secret.csv"]
    assert secret.read_bytes() == b"id,ssn\n1,123-45-6789\n"


def test_archive_and_quarantine_move_the_file_and_its_sidecars(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], tmp_path: Path
) -> None:
    zone = zone_factory()
    kept = zone.put(write_local(tmp_path, "good.csv", b"id\n1\n"), "acme_clinic", "contacts")
    refused = zone.put(write_local(tmp_path, "bad.csv", b"garbage"), "acme_clinic", "contacts")
    on_server(server, zone, refused + ".manifest.json").write_text('{"row_count": 5}')

    archived = zone.archive(kept, "pk-good")
    quarantined = zone.quarantine(refused, "pk-bad", "no header row")

    assert archived == "acme_clinic/archive/contacts/pk-good__good.csv"
    assert quarantined == "acme_clinic/quarantine/contacts/pk-bad__bad.csv"
    files = sorted(
        str(p.relative_to(on_server(server, zone))) for p in on_server(server, zone).rglob("*") if p.is_file()
    )
    assert files == [
        "acme_clinic/archive/contacts/pk-good__good.csv",
        "acme_clinic/archive/contacts/pk-good__good.csv.sha256",
        "acme_clinic/quarantine/contacts/pk-bad__bad.csv",
        "acme_clinic/quarantine/contacts/pk-bad__bad.csv.manifest.json",
        "acme_clinic/quarantine/contacts/pk-bad__bad.csv.reason.txt",
        "acme_clinic/quarantine/contacts/pk-bad__bad.csv.sha256",
    ]
    assert on_server(server, zone, quarantined + ".reason.txt").read_text() == "no header row\n"
    assert zone.list_pending() == []
    # where a packet went can still be found, and filing again is a no-op
    assert zone.locate(kept, "pk-good") == archived
    assert zone.archive(archived, "pk-good") == archived


def test_fetch_streams_a_large_file_and_removes_the_temp_copy(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], tmp_path: Path
) -> None:
    zone = zone_factory()
    content = os.urandom(6 * 1024 * 1024 + 123)  # 6 MB and an odd tail: several chunks, a short last one
    folder = on_server(server, zone, "acme_clinic/incoming/contacts")
    folder.mkdir(parents=True)
    (folder / "big.csv").write_bytes(content)  # no sidecar: list_pending hashes it over SFTP
    expected = hashlib.sha256(content).hexdigest()

    [pending] = zone.list_pending()
    assert (pending.size_bytes, pending.sha256) == (len(content), expected)
    with zone.fetch(pending.zone_path) as local:
        assert local.name == "big.csv"
        assert local.stat().st_size == len(content)
        assert hashlib.sha256(local.read_bytes()).hexdigest() == expected
        temp_folder = local.parent
    assert not local.exists() and not temp_folder.exists()

    # the temp copy goes away when the reader fails too
    with pytest.raises(RuntimeError, match="reader blew up"), zone.fetch(pending.zone_path) as local:
        raise RuntimeError("reader blew up")
    assert not local.exists()


def test_a_session_that_died_is_reopened(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], tmp_path: Path
) -> None:
    zone = zone_factory()
    zone.put(write_local(tmp_path, "a.csv", b"id\n1\n"), "acme_clinic", "contacts")
    first = zone._session()
    assert zone._session() is first  # one session, reused
    assert zone._client is not None
    zone._client.get_transport().close()  # type: ignore[union-attr]  # e.g. the server dropped us
    assert [p.file_name for p in zone.list_pending()] == ["a.csv"]
    assert zone._session() is not first
    zone.close()
    assert zone._sftp is None and zone._client is None


# --- one packet, end to end ------------------------------------------------------------------------


def test_a_packet_uploaded_over_sftp_lands_and_is_archived_on_the_server(
    server: SFTPTestServer, zone_factory: Callable[..., SFTPDropZone], deployment: Deployment, tmp_path: Path
) -> None:
    warehouse = Warehouse(Settings.from_env({"HERALD_HOME": str(tmp_path / "home")}).warehouse)
    warehouse.ensure_schema()
    sample = sized_packet(deployment, "bright_smiles_dental", "appointments", rows=200, bad_rows=2)
    zone = zone_factory()
    local = write_local(tmp_path, sample.file_name, sample.content)
    zone_path = zone.put(local, "bright_smiles_dental", "appointments")
    assert zone_path == f"bright_smiles_dental/incoming/appointments/{sample.file_name}"

    [pending] = zone.list_pending()
    outcome = ingest_packet(warehouse, zone, deployment, pending)

    landing = outcome.landing
    assert (landing.status, landing.rows_in_file, landing.rows_landed, landing.rows_rejected) == ("landed", 200, 198, 2)
    assert landing.sha256 == hashlib.sha256(sample.content).hexdigest()
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_raw.packet_rows where packet_id = ?", [pending.packet_id]) == 198
        assert s.scalar("select count(*) from herald_raw.packet_rejects where packet_id = ?", [pending.packet_id]) == 2
    assert outcome.filed_at == f"bright_smiles_dental/archive/appointments/{pending.packet_id}__{sample.file_name}"
    archived = on_server(server, zone, outcome.filed_at)
    assert archived.read_bytes() == sample.content
    assert archived.with_name(archived.name + ".sha256").exists()
    assert list(on_server(server, zone, "bright_smiles_dental/incoming/appointments").iterdir()) == []
    assert zone.list_pending() == []
