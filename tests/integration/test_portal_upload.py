"""A portal upload through the real arrival path: two clients' files streamed into the drop
zone by ``upload_packet``, found ready by the arrival sensor's listing, ingested by the ingest
job's own function, mapped and cleaned by dbt (in process) followed by the dbt asset's
after-build steps (the mapped/cleaned events, the snapshot) — each packet reaches "cleaned" in
its client's timeline, read from the snapshot; and an upload into an S3 drop zone is listed
with its checksum sidecar. (``herald tick --until-idle`` does the same through Dagster in about
4 minutes on this machine, too slow for the suite; tests/e2e/test_pipeline_cli.py covers it.)"""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from herald.config import load_deployment
from herald.demo.packets import sized_packet
from herald.dropzone import open_dropzone
from herald.dropzone.readiness import sort_pending
from herald.packets.ingest import ingest_packet
from herald.packets.transform_steps import record_transform_steps
from herald.portal import contacts, packets
from herald.portal.reads import PortalReader, current_snapshot, publish_snapshot
from herald.settings import Settings, parse_dropzone_url
from herald.warehouse.config_tables import load_config_tables
from herald.warehouse.connection import Warehouse
from herald.warehouse.dbt_run import run_models
from tests.conftest import CONFIG_DIR

UPLOADS = [("northfield_college", "leads", 300, 3, 5), ("lakeside_realty", "buyer_leads", 200, 2, 6)]


def test_uploads_reach_cleaned_through_the_arrival_path(tmp_path: Path) -> None:
    env = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    settings = Settings.from_env(env)
    deployment = load_deployment(CONFIG_DIR)
    made = {}
    for client, ptype, rows, bad, seed in UPLOADS:
        sample = sized_packet(deployment, client, ptype, rows=rows, bad_rows=bad, seed=seed)
        made[client] = sample
        # streamed in small chunks, as a web server hands over a request body
        body = io.BytesIO(sample.content)
        chunks = iter(lambda body=body: body.read(8192), b"")
        done = packets.upload_packet(settings, client, ptype, f"{client}-upload.csv", chunks)
        assert done.zone_path == f"{client}/incoming/{ptype}/{client}-upload.csv"
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as session:
        load_config_tables(session, deployment)  # what the ingest job's client_config asset does
    zone = open_dropzone(settings.dropzone)
    ready = sort_pending(zone.list_pending(), {}, {}, {}).ready  # what the arrival sensor requests
    assert sorted((p.client_id, p.checksum_source) for p in ready) == [
        ("lakeside_realty", "sidecar-sha256"), ("northfield_college", "sidecar-sha256"),
    ]  # fmt: skip
    for pending in ready:
        assert ingest_packet(warehouse, zone, deployment, pending).landing.status == "landed"
    # the transform job's dbt build, then the dbt asset's own after-build steps
    run_models(settings.warehouse, ["+contacts", "+contact_sources"], tmp_path / "dbt")
    run_results = json.loads((tmp_path / "dbt" / "target" / "run_results.json").read_text())
    assert len(record_transform_steps(warehouse, run_results)) == 2
    assert publish_snapshot(settings.warehouse) is not None
    assert current_snapshot(settings.warehouse) is not None
    reader = PortalReader(settings.warehouse)
    try:
        for client, ptype, rows, bad, _seed in UPLOADS:
            (mine,) = packets.list_packets(settings, client, reader=reader)
            assert (mine.file_name, mine.packet_type, mine.status) == (f"{client}-upload.csv", ptype, "landed")
            assert (mine.rows_in_file, mine.rows_landed, mine.rows_rejected) == (rows, rows - bad, bad)
            assert mine.current_step == "cleaned"
            times = [s.at for s in mine.timeline]
            assert None not in times and times == sorted(times), mine.timeline
            assert mine.timeline[4].at < mine.timeline[5].at  # mapped, then cleaned: dbt's own times
            lines = [
                r[0]
                for r in csv.reader(
                    io.StringIO(
                        packets.rejects_csv(settings, client, mine.packet_id, reader=reader).decode("utf-8-sig")
                    )
                )
            ]
            assert lines[1:] == [str(n) for n in sorted(made[client].bad_lines)]
            assert (
                f"Rows loaded:      {rows - bad}"
                in packets.receipt(settings, client, mine.packet_id, reader=reader).text
            )
        # the other client's packet is not found through this client
        (college,) = packets.list_packets(settings, "northfield_college", reader=reader)
        with pytest.raises(packets.PacketNotFound):
            packets.packet(settings, "lakeside_realty", college.packet_id, reader=reader)
        with reader.session() as s:
            assert (
                s.as_of is not None
                and s.scalar("select count(*) from marts.contacts where client_id = 'lakeside_realty'") == 198
            )
            email = s.scalar(
                "select email from marts.contacts where client_id = 'lakeside_realty' order by contact_id limit 1"
            )
        (found,) = contacts.search_contacts(settings, "lakeside_realty", email, reader=reader)
        assert found.email == email
        assert contacts.search_contacts(settings, "northfield_college", email, reader=reader) == []
    finally:
        reader.close()


def test_an_upload_into_s3_is_listed_with_its_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"herald-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        monkeypatch.setenv("HERALD_S3_ENDPOINT_URL", endpoint)
        settings = Settings.from_env({"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR)})
        settings = Settings(**{**settings.__dict__, "dropzone": parse_dropzone_url(f"s3://{bucket}/zone", tmp_path)})
        content = sized_packet(load_deployment(CONFIG_DIR), "lakeside_realty", "buyer_leads", rows=50).content
        done = packets.upload_packet(settings, "lakeside_realty", "buyer_leads", "leads.csv", io.BytesIO(content))
        with pytest.raises(packets.UploadError, match="not a CSV file"):
            packets.upload_packet(settings, "lakeside_realty", "buyer_leads", "leads.pdf", io.BytesIO(content))
        zone = open_dropzone(settings.dropzone)
        try:
            (pending,) = zone.list_pending()
        finally:
            zone.close()
        assert (pending.zone_path, pending.checksum_source, pending.sha256) == (
            done.zone_path,
            "sidecar-sha256",
            done.sha256,
        )
        assert pending.size_bytes == len(content)
    finally:
        server.stop()
