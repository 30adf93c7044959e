"""The full ingest flow from a remote drop zone, on DuckDB: a client uploads to S3 (moto's
server on 127.0.0.1) or to SFTP (an asyncssh server on 127.0.0.1) with their own tools; then
``herald dropzone check`` and ``herald tick --until-idle`` run as a user runs them, and the
packet ends in ``marts.contacts`` with its receipt back in the client's area.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import boto3
import pytest
from moto.server import ThreadedMotoServer

from herald.config import load_deployment
from herald.demo.packets import sized_packet
from tests.conftest import CONFIG_DIR, REPO_ROOT, jobs_run, last_tick_done
from tests.sftp_server import start_sftp_server

HERALD = str(Path(sys.executable).parent / "herald")
CLIENT, TYPE = "bright_smiles_dental", "appointments"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


# Herald's clock pinned a week before the sample appointments (from DEFAULT_REFERENCE_DATE): no
# reminder is due yet, whatever day the suite runs on (with the real clock, their reminders fell
# due as December 2026 went by, and receipts and replies made the runs these tests count)
PINNED_NOW = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def pinned_clock() -> dict[str, str]:
    return {"HERALD_CLOCK_OFFSET": str(int((PINNED_NOW - datetime.now(UTC)).total_seconds()))}


def herald(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([HERALD, *args], env={**os.environ, **env}, cwd=REPO_ROOT, capture_output=True, text=True)
    if check and proc.returncode != 0:
        pytest.fail(f"herald {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def packet() -> tuple[bytes, list[int]]:
    sample = sized_packet(load_deployment(CONFIG_DIR), CLIENT, TYPE, rows=300, bad_rows=2, seed=5)
    return sample.content, sorted(sample.bad_lines)


def assert_landed_in_marts(env: dict[str, str], tick_output: str) -> None:
    assert jobs_run(tick_output) == [
        "SUCCESS ingest_packet_job",
        "SUCCESS transform_packets_job",
        "SUCCESS refresh_segments_job",
        "SUCCESS refresh_analytics_job",
        "SUCCESS send_campaigns_job",
    ]  # ingest, dbt, segments and the analytics marts, the campaign trigger check
    assert last_tick_done(tick_output) == "tick done: 0 runs"
    rows = json.loads(
        herald(
            env,
            "sql",
            "--format",
            "json",
            "select status, rows_in_file, rows_landed, rows_rejected from herald_ops.packets",
        ).stdout
    )
    assert rows == [{"status": "landed", "rows_in_file": 300, "rows_landed": 298, "rows_rejected": 2}]
    (count,) = json.loads(herald(env, "sql", "--format", "json", "select count(*) as n from marts.contacts").stdout)
    assert count["n"] == 298


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[dict[str, str], object]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        **{k.lower(): v for k, v in FAKE_AWS.items() if k != "AWS_DEFAULT_REGION"},
        region_name=FAKE_AWS["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket="drops")
    env = {
        **FAKE_AWS,
        "HERALD_HOME": str(tmp_path / "home"),
        "HERALD_CONFIG_DIR": str(CONFIG_DIR),
        "HERALD_WAREHOUSE_URL": "",
        "HERALD_DROPZONE_URL": "s3://drops/clients",
        "HERALD_S3_ENDPOINT_URL": endpoint,
        **pinned_clock(),
    }
    yield env, client
    server.stop()


def test_packet_uploaded_to_s3_lands_and_gets_its_receipt(
    s3: tuple[dict[str, str], object], packet: tuple[bytes, list[int]]
) -> None:
    env, client = s3
    content, bad_lines = packet
    key = f"clients/{CLIENT}/incoming/{TYPE}/june.csv"
    client.put_object(Bucket="drops", Key=key + ".sha256", Body=hashlib.sha256(content).hexdigest().encode())
    client.put_object(Bucket="drops", Key=key, Body=content)
    # a second upload still in progress: no sidecar yet, so it must wait for a stable listing
    client.put_object(Bucket="drops", Key=f"clients/{CLIENT}/incoming/{TYPE}/partial.csv", Body=content[:500])

    check = herald(env, "dropzone", "check").stdout
    assert "drop zone OK" in check and f"{CLIENT}/incoming/{TYPE}/june.csv" in check

    first = herald(env, "tick", "--force").stdout
    assert "tick done: 1 run" in first  # june.csv only: partial.csv is still being uploaded
    partial_key = f"clients/{CLIENT}/incoming/{TYPE}/partial.csv"
    assert client.head_object(Bucket="drops", Key=partial_key)["ContentLength"] == 500
    client.delete_object(Bucket="drops", Key=partial_key)  # the client gave that upload up
    rest = herald(env, "tick", "--force", "--until-idle").stdout
    assert jobs_run(rest) == [
        "SUCCESS transform_packets_job",
        "SUCCESS refresh_segments_job",
        "SUCCESS refresh_analytics_job",
        "SUCCESS send_campaigns_job",
    ]  # dbt build, segment refresh and the analytics marts, the campaign trigger check
    assert last_tick_done(rest) == "tick done: 0 runs"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="drops", Prefix=f"clients/{CLIENT}/")["Contents"]}
    archived = [k for k in keys if k.startswith(f"clients/{CLIENT}/archive/{TYPE}/") and k.endswith("__june.csv")]
    assert len(archived) == 1 and archived[0] + ".sha256" in keys
    receipt = json.loads(client.get_object(Bucket="drops", Key=archived[0] + ".receipt.json")["Body"].read())
    assert (receipt["rows_landed"], receipt["rows_rejected"]) == (298, 2)
    assert [r["line"] for r in receipt["first_rejects"]] == bad_lines
    assert receipt["contacts_created"] == 298
    (count,) = json.loads(
        herald(
            env,
            "sql",
            "--format",
            "json",
            "select count(*) as n from herald_raw.packet_rows r join herald_ops.packets p "
            "using (packet_id) where p.file_name = 'june.csv'",
        ).stdout
    )
    assert count["n"] == 298


def test_packet_uploaded_over_sftp_lands_and_gets_its_receipt(tmp_path: Path, packet: tuple[bytes, list[int]]) -> None:
    content, bad_lines = packet
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "herald_id"
    key_file.write_bytes(user_key.export_private_key("openssh"))
    key_file.chmod(0o600)
    with start_sftp_server(
        tmp_path / "sftp", {"herald": {"public_key": user_key.export_public_key("openssh").decode()}}
    ) as server:
        env = {
            "HERALD_HOME": str(tmp_path / "home"),
            "HERALD_CONFIG_DIR": str(CONFIG_DIR),
            "HERALD_WAREHOUSE_URL": "",
            "HERALD_DROPZONE_URL": f"sftp://herald@127.0.0.1:{server.port}/drops",
            "HERALD_SFTP_KEY_FILE": str(key_file),
            "HERALD_SFTP_HOST_KEY": server.host_key_line,
            **pinned_clock(),
        }
        incoming = server.folder("herald") / "drops" / CLIENT / "incoming" / TYPE
        incoming.mkdir(parents=True)
        (incoming / "june.csv").write_bytes(content)
        (incoming / "june.csv.sha256").write_text(hashlib.sha256(content).hexdigest() + "  june.csv\n")

        check = herald(env, "dropzone", "check").stdout
        assert "drop zone OK" in check and f"{CLIENT}/incoming/{TYPE}/june.csv" in check
        ticks = herald(env, "tick", "--force", "--until-idle").stdout
        assert_landed_in_marts(env, ticks)
        archive = server.folder("herald") / "drops" / CLIENT / "archive" / TYPE
        (receipt_file,) = archive.glob("*__june.csv.receipt.json")
        receipt = json.loads(receipt_file.read_text())
        assert (receipt["rows_landed"], receipt["rows_rejected"], receipt["contacts_created"]) == (298, 2, 298)
        assert [r["line"] for r in receipt["first_rejects"]] == bad_lines
        assert not (incoming / "june.csv").exists()

        # a wrong pinned host key: refused, with a message saying so
        wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
        refused = herald({**env, "HERALD_SFTP_HOST_KEY": wrong}, "dropzone", "check", check=False)
        assert refused.returncode == 1 and "host key" in refused.stderr
