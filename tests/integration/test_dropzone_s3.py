"""herald.dropzone.s3.S3DropZone against moto's S3 server on 127.0.0.1.

The zone is driven through the public DropZone API; a plain boto3 client plays the Herald
client dropping packets (with or without sidecars, metadata, multipart uploads). Every test gets
a bucket of its own on one moto server for the module.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import random
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from herald.config import Deployment
from herald.demo.packets import sized_packet
from herald.dropzone import DropZoneError, open_dropzone
from herald.dropzone.s3 import S3DropZone
from herald.packets.ingest import ingest_packet
from herald.settings import DropZoneTarget, parse_dropzone_url
from herald.warehouse.connection import Warehouse

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "herald/zone"  # a nested prefix: zone paths are keys below it
CLIENT, PTYPE = "bright_smiles_dental", "appointments"
INCOMING = f"{CLIENT}/incoming/{PTYPE}"
MiB = 1 << 20
FAKE_SECRET = "fake-secret-never-shown"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 on 127.0.0.1 (a free port), with fake credentials and no ~/.aws files read."""
    aws_dir = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
        ):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(aws_dir / "config"))  # absent: no profile of the machine's
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_dir / "credentials"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254 for anything
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        mp.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)  # no line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        try:
            yield url
        finally:
            requests.post(f"{url}/moto-api/reset", timeout=10)  # moto's state is process-wide
            server.stop()


@pytest.fixture
def s3(endpoint: str) -> Any:
    """A plain boto3 client: the Herald client uploading packets."""
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"herald-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _open(endpoint: str, url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3DropZone:
    """The zone as Herald opens it: from HERALD_DROPZONE_URL and HERALD_S3_ENDPOINT_URL."""
    monkeypatch.setenv("HERALD_S3_ENDPOINT_URL", endpoint)
    zone = open_dropzone(parse_dropzone_url(url, tmp_path))
    assert isinstance(zone, S3DropZone)
    return zone


@pytest.fixture
def zone(endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3DropZone]:
    z = _open(endpoint, f"s3://{bucket}/{PREFIX}", monkeypatch, tmp_path)
    yield z
    z.close()


def _drop(s3: Any, bucket: str, zone_path: str, data: bytes, **extra: Any) -> None:
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{zone_path}", Body=data, **extra)


def _keys(s3: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def _get(s3: Any, bucket: str, zone_path: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{zone_path}")["Body"].read()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- put and fetch -------------------------------------------------------------------------------


def test_put_writes_the_object_with_a_sha256_sidecar_and_metadata(
    zone: S3DropZone, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = b"external_id,phone\n1,5551234567\n"
    local = tmp_path / "appointments.csv"
    local.write_bytes(data)

    zone_path = zone.put(local, CLIENT, PTYPE)

    assert zone_path == f"{INCOMING}/appointments.csv"
    assert _keys(s3, bucket) == {f"{PREFIX}/{zone_path}", f"{PREFIX}/{zone_path}.sha256"}
    assert _get(s3, bucket, zone_path) == data
    assert _get(s3, bucket, zone_path + ".sha256").decode() == f"{_sha(data)}  appointments.csv\n"
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{zone_path}", ChecksumMode="ENABLED")
    assert head["Metadata"] == {"sha256": _sha(data)}
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(data).digest()  # S3 verified it
    with pytest.raises(DropZoneError, match="already waiting"):
        zone.put(local, CLIENT, PTYPE)

    [pending] = zone.list_pending()
    assert (pending.sha256, pending.checksum_source) == (_sha(data), "sidecar-sha256")
    with zone.fetch(zone_path) as fetched:
        assert fetched.read_bytes() == data and fetched.name == "appointments.csv"
    assert not fetched.exists()
    with pytest.raises(RuntimeError), zone.fetch(zone_path) as fetched:
        raise RuntimeError("the reader failed")
    assert not fetched.exists()  # removed even when the reader fails
    with pytest.raises(DropZoneError, match=f"not in the drop zone s3://{bucket}/{PREFIX}"):
        zone.fetch(f"{INCOMING}/missing.csv")


def test_fetch_streams_a_large_object_to_a_temp_file_in_bounded_memory(
    zone: S3DropZone, s3: Any, bucket: str, endpoint: str
) -> None:
    size = 48 * MiB
    data = random.Random(11).randbytes(size)
    s3.upload_fileobj(io.BytesIO(data), bucket, f"{PREFIX}/{INCOMING}/big.csv")
    expected = _sha(data)
    del data

    # Measured in a child process: moto serves from this process and reads each requested range
    # whole into memory, which tracemalloc here would count against the download.
    child = r"""
import hashlib, json, sys, tracemalloc
from pathlib import Path
from herald.dropzone import open_dropzone
from herald.settings import parse_dropzone_url
zone = open_dropzone(parse_dropzone_url(sys.argv[1], Path(".")))
tracemalloc.start()
with zone.fetch(sys.argv[2]) as local:
    digest = hashlib.sha256()
    with local.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    during = {"path": str(local), "exists": local.exists(), "size": local.stat().st_size}
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({**during, "sha256": digest.hexdigest(), "peak": peak, "exists_after": Path(during["path"]).exists()}))
"""
    env = {**os.environ, "HERALD_S3_ENDPOINT_URL": endpoint}
    done = subprocess.run(
        [sys.executable, "-c", child, f"s3://{bucket}/{PREFIX}", f"{INCOMING}/big.csv"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["sha256"] == expected and result["size"] == size and result["exists"]
    assert not result["exists_after"] and not Path(result["path"]).exists()
    assert result["peak"] < size / 6, f"peak Python heap {result['peak'] / MiB:.1f} MiB for a {size // MiB} MiB object"


# --- listing -------------------------------------------------------------------------------------


def test_list_pending_reads_sidecars_metadata_and_hashes_the_rest_under_the_prefix(
    zone: S3DropZone, s3: Any, bucket: str
) -> None:
    bodies = {
        name: f"external_id\n{name}\n".encode() for name in ("a.csv", "b.csv", "c.csv", "plain.csv", "tagged.csv")
    }
    _drop(s3, bucket, f"{INCOMING}/a.csv", bodies["a.csv"])
    _drop(s3, bucket, f"{INCOMING}/a.csv.sha256", f"{_sha(bodies['a.csv']).upper()}  a.csv\n".encode())
    md5 = hashlib.md5(bodies["b.csv"]).hexdigest()
    _drop(s3, bucket, f"{INCOMING}/b.csv", bodies["b.csv"])
    _drop(s3, bucket, f"{INCOMING}/b.csv.md5", md5.encode())
    _drop(s3, bucket, f"{INCOMING}/c.csv", bodies["c.csv"])
    _drop(s3, bucket, f"{INCOMING}/c.csv.sha256", _sha(bodies["c.csv"]).encode())
    _drop(s3, bucket, f"{INCOMING}/c.csv.manifest.json", json.dumps({"row_count": 1}).encode())
    _drop(s3, bucket, f"{INCOMING}/plain.csv", bodies["plain.csv"])
    # x-amz-meta-sha256 is trusted as given: a digest of other bytes proves the body is not read
    claimed = _sha(b"what the uploader says")
    _drop(s3, bucket, f"{INCOMING}/tagged.csv", bodies["tagged.csv"], Metadata={"sha256": claimed})
    # none of these is a pending packet
    _drop(s3, bucket, f"{INCOMING}/", b"")  # a console's folder marker
    _drop(s3, bucket, f"{INCOMING}/.upload.csv.part", b"half")
    _drop(s3, bucket, f"{INCOMING}/old.csv.reason.txt", b"stray")
    _drop(s3, bucket, f"{CLIENT}/archive/{PTYPE}/pk__old.csv", b"filed")
    _drop(s3, bucket, f"{CLIENT}/incoming/Bad-Type/x.csv", b"bad type name")
    _drop(s3, bucket, "Not_A_Client/incoming/appointments/x.csv", b"bad client name")
    _drop(s3, bucket, "northwind_clinic/incoming/contacts/n.csv", b"another client")
    for outside in (
        f"{INCOMING}/root.csv",
        f"herald/zone_old/{INCOMING}/sibling.csv",
        f"other/{PREFIX}/{INCOMING}/o.csv",
    ):
        s3.put_object(Bucket=bucket, Key=outside, Body=b"outside the prefix")

    found = {p.zone_path: p for p in zone.list_pending()}

    assert sorted(found) == sorted(
        [f"{INCOMING}/{n}" for n in ("a.csv", "b.csv", "c.csv", "plain.csv", "tagged.csv")]
        + ["northwind_clinic/incoming/contacts/n.csv"]
    )
    got = {path.rsplit("/", 1)[1]: (p.sha256, p.md5, p.checksum_source, p.manifest_rows) for path, p in found.items()}
    assert got == {
        "a.csv": (_sha(bodies["a.csv"]), None, "sidecar-sha256", None),
        "b.csv": (None, md5, "sidecar-md5", None),
        "c.csv": (_sha(bodies["c.csv"]), None, "sidecar-sha256", 1),
        "plain.csv": (_sha(bodies["plain.csv"]), None, "computed", None),
        "tagged.csv": (claimed, None, "computed", None),
        "n.csv": (_sha(b"another client"), None, "computed", None),
    }
    plain = found[f"{INCOMING}/plain.csv"]
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{INCOMING}/plain.csv")
    assert (plain.client_id, plain.packet_type, plain.file_name) == (CLIENT, PTYPE, "plain.csv")
    assert plain.size_bytes == len(bodies["plain.csv"])
    assert abs(plain.modified_at - head["LastModified"].astimezone(UTC).replace(tzinfo=None)) < timedelta(seconds=1)
    # a fingerprint already seen is not hashed again
    again = {p.zone_path: p for p in zone.list_pending(known={plain.zone_path: plain.fingerprint})}
    assert again[plain.zone_path].sha256 is None


def test_a_multipart_object_gets_its_real_sha256_not_its_etag(
    zone: S3DropZone, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(5).randbytes(12 * MiB)
    chunks = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_fileobj(io.BytesIO(data), bucket, f"{PREFIX}/{INCOMING}/multi.csv", Config=chunks)
    etag = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{INCOMING}/multi.csv")["ETag"].strip('"')
    assert etag.endswith("-3") and etag != hashlib.md5(data).hexdigest()  # 3 parts; not an MD5

    [pending] = zone.list_pending()
    assert (pending.sha256, pending.checksum_source) == (_sha(data), "computed")

    # above CopyObject's limit the move is a multipart copy: content and metadata still arrive
    monkeypatch.setattr(S3DropZone, "COPY_OBJECT_LIMIT", 5 * MiB)
    s3.copy_object(
        Bucket=bucket,
        Key=f"{PREFIX}/{INCOMING}/multi.csv",
        CopySource={"Bucket": bucket, "Key": f"{PREFIX}/{INCOMING}/multi.csv"},
        Metadata={"sha256": _sha(data)},
        MetadataDirective="REPLACE",
    )
    archived = zone.archive(pending.zone_path, "pk1")
    assert archived == f"{CLIENT}/archive/{PTYPE}/pk1__multi.csv"
    assert _keys(s3, bucket) == {f"{PREFIX}/{archived}"}
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{archived}")
    assert head["ETag"].strip('"').endswith("-1")  # a multipart copy (one part) did it
    assert head["Metadata"] == {"sha256": _sha(data)}
    with zone.fetch(archived) as local:
        assert hashlib.sha256(local.read_bytes()).hexdigest() == _sha(data)


def test_more_than_a_thousand_keys_are_each_listed_exactly_once(zone: S3DropZone, s3: Any, bucket: str) -> None:
    names = [f"p{i:05d}.csv" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: _drop(s3, bucket, f"{INCOMING}/{n}", n.encode()), names))
    # the uploader's own listing gives every fingerprint: list_pending then hashes nothing and
    # the test measures the listing alone (two pages of list_objects_v2)
    known = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        for o in page["Contents"]:
            lm = o["LastModified"]
            us = (lm - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            known[o["Key"][len(PREFIX) + 1 :]] = f"{o['Size']}:{us}"

    found = [p.zone_path for p in zone.list_pending(known=known)]

    assert len(found) == 1100
    assert sorted(found) == [f"{INCOMING}/{n}" for n in names]  # each once, none missing


# --- filing away ---------------------------------------------------------------------------------


def test_archive_and_quarantine_move_the_object_and_its_sidecars(zone: S3DropZone, s3: Any, bucket: str) -> None:
    for name in ("good.csv", "bad.csv"):
        body = f"external_id\n{name}\n".encode()
        _drop(s3, bucket, f"{INCOMING}/{name}", body, Metadata={"sha256": _sha(body)})
        _drop(s3, bucket, f"{INCOMING}/{name}.sha256", _sha(body).encode())
        _drop(s3, bucket, f"{INCOMING}/{name}.manifest.json", b'{"row_count": 1}')
    pending = {p.file_name: p for p in zone.list_pending()}

    archived = zone.archive(pending["good.csv"].zone_path, "pk_good")
    quarantined = zone.quarantine(pending["bad.csv"].zone_path, "pk_bad", "checksum mismatch (test)")

    assert archived == f"{CLIENT}/archive/{PTYPE}/pk_good__good.csv"
    assert quarantined == f"{CLIENT}/quarantine/{PTYPE}/pk_bad__bad.csv"
    sidecars = ("", ".sha256", ".manifest.json")
    assert _keys(s3, bucket) == (
        {f"{PREFIX}/{archived}{s}" for s in sidecars}
        | {f"{PREFIX}/{quarantined}{s}" for s in sidecars}
        | {f"{PREFIX}/{quarantined}.reason.txt"}
    )  # nothing left in incoming
    assert _get(s3, bucket, archived) == b"external_id\ngood.csv\n"
    assert s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{archived}")["Metadata"] == {
        "sha256": _sha(b"external_id\ngood.csv\n")
    }
    assert _get(s3, bucket, quarantined + ".reason.txt") == b"checksum mismatch (test)\n"
    assert zone.list_pending() == []
    # a re-run finds the packet where it went, and filing it again changes nothing
    assert zone.locate(pending["good.csv"].zone_path, "pk_good") == archived
    assert zone.locate(pending["bad.csv"].zone_path, "pk_bad") == quarantined
    assert zone.archive(archived, "pk_good") == archived
    with pytest.raises(DropZoneError, match="neither incoming nor archived"):
        zone.locate(pending["good.csv"].zone_path, "pk_other")


def test_an_empty_sidecar_is_a_drop_zone_error_not_an_s3_one(zone: S3DropZone, s3: Any, bucket: str) -> None:
    _drop(s3, bucket, f"{INCOMING}/e.csv", b"x")
    _drop(s3, bucket, f"{INCOMING}/e.csv.sha256", b"")  # a ranged GET of nothing: no S3 error
    [packet] = zone.list_pending()  # the file is listed with its problem: its run quarantines it
    assert packet.problem is not None and "not a hex digest" in packet.problem


# --- the whole landing ---------------------------------------------------------------------------


def test_a_packet_dropped_in_s3_lands_and_is_archived(
    zone: S3DropZone, s3: Any, bucket: str, warehouse: Warehouse, deployment: Deployment
) -> None:
    sample = sized_packet(deployment, CLIENT, PTYPE, rows=200, bad_rows=2)
    zone_path = f"{INCOMING}/{sample.file_name}"
    _drop(s3, bucket, zone_path, sample.content)
    _drop(s3, bucket, zone_path + ".sha256", f"{_sha(sample.content)}  {sample.file_name}\n".encode())
    [pending] = zone.list_pending()

    outcome = ingest_packet(warehouse, zone, deployment, pending)

    assert (outcome.status, outcome.landing.rows_landed, outcome.landing.rows_rejected) == ("landed", 198, 2)
    with warehouse.session(read_only=True) as s:
        landed = s.scalar("select count(*) from herald_raw.packet_rows where packet_id = ?", [pending.packet_id])
        rejected = s.scalar("select count(*) from herald_raw.packet_rejects where packet_id = ?", [pending.packet_id])
        sha = s.scalar("select sha256 from herald_ops.packets where packet_id = ?", [pending.packet_id])
    assert (landed, rejected, sha) == (198, 2, _sha(sample.content))
    archived = f"{CLIENT}/archive/{PTYPE}/{pending.packet_id}__{sample.file_name}"
    assert outcome.filed_at == archived
    assert _keys(s3, bucket) == {f"{PREFIX}/{archived}", f"{PREFIX}/{archived}.sha256"}
    assert _get(s3, bucket, archived) == sample.content


def test_a_tampered_object_is_quarantined_with_the_reason(
    zone: S3DropZone, s3: Any, bucket: str, warehouse: Warehouse, deployment: Deployment
) -> None:
    sample = sized_packet(deployment, CLIENT, PTYPE, rows=20)
    zone_path = f"{INCOMING}/{sample.file_name}"
    _drop(s3, bucket, zone_path, sample.content)
    _drop(s3, bucket, zone_path + ".sha256", _sha(sample.content + b"the rest").encode())
    [pending] = zone.list_pending()

    outcome = ingest_packet(warehouse, zone, deployment, pending)

    quarantined = f"{CLIENT}/quarantine/{PTYPE}/{pending.packet_id}__{sample.file_name}"
    assert outcome.filed_at == quarantined
    keys = _keys(s3, bucket)
    assert {f"{PREFIX}/{quarantined}{s}" for s in ("", ".sha256", ".reason.txt")} <= keys  # (receipts may join them)
    assert not [k for k in keys if "/incoming/" in k]
    assert "checksum mismatch" in _get(s3, bucket, quarantined + ".reason.txt").decode()


# --- errors a person can act on ------------------------------------------------------------------


def test_check_describes_a_reachable_bucket(zone: S3DropZone, bucket: str, endpoint: str) -> None:
    line = zone.check()
    assert line.startswith(f"s3://{bucket}/{PREFIX} reachable at {endpoint}") and "\n" not in line


def test_a_missing_bucket_is_named(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"s3://herald-missing-{uuid.uuid4().hex[:8]}/{PREFIX}"
    zone = _open(endpoint, url, monkeypatch, tmp_path)
    expected = f"bucket '{zone.bucket}' does not exist \\(HERALD_DROPZONE_URL={url}"
    with pytest.raises(DropZoneError, match=expected):
        zone.check()
    with pytest.raises(DropZoneError, match=expected):
        zone.list_pending()
    local = tmp_path / "p.csv"
    local.write_bytes(b"x")
    with pytest.raises(DropZoneError, match=expected):
        zone.put(local, CLIENT, PTYPE)


def test_an_unreachable_endpoint_is_named(bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    zone = _open(dead, f"s3://{bucket}", monkeypatch, tmp_path)
    with pytest.raises(DropZoneError, match=f"cannot reach S3 endpoint {dead}") as error:
        zone.check()
    assert "HERALD_S3_ENDPOINT_URL" in str(error.value)
    with pytest.raises(DropZoneError, match=f"cannot reach S3 endpoint {dead}"):
        zone.list_pending()


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"])
def test_refused_credentials_are_reported_without_the_secret(code: str, endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    zone = S3DropZone(
        DropZoneTarget(kind="s3", url="s3://refused/zone", bucket="refused", prefix="zone"), client=client
    )
    with Stubber(client) as stub:
        stub.add_client_error("head_bucket", service_error_code=code, service_message="no", http_status_code=403)
        stub.add_client_error("list_objects_v2", service_error_code=code, service_message="no", http_status_code=403)
        with pytest.raises(DropZoneError, match=f"S3 refused the credentials \\({code}") as on_check:
            zone.check()
        with pytest.raises(DropZoneError, match="S3 refused the credentials") as on_list:
            zone.list_pending()
    for error in (on_check.value, on_list.value):
        assert "s3://refused" in str(error) and FAKE_SECRET not in str(error)
