"""Ingest API payloads become packets in the client's own load-map format."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from herald.dropzone.local import LocalDropZone
from herald.packets.api import (
    CustomerIn,
    FunnelEventIn,
    PayloadError,
    drop_api_packet,
    key_matches,
    new_api_key,
    packet_bytes,
    packet_rows,
)

COLLEGE = "northfield_college"


def test_customers_are_written_with_the_load_maps_columns(deployment) -> None:
    load_map = deployment.clients[COLLEGE].load_maps["leads"]
    customer = CustomerIn(
        external_id="NF-1", first_name="Ana", email="ana@example.com", phone="+1 973 555 0100",
        attributes={"program": "B.S. Nursing", "gpa": 3.5, "campus_tour_booked": True,
                    "interests": ["honors program", "study abroad"], "intake_date": "2027-08-30"},
    )  # fmt: skip
    rows = packet_rows(load_map, [customer.model_dump(exclude_none=True)])
    record = dict(zip(rows[0], rows[1], strict=False))
    assert rows[0] == list(load_map.columns)
    assert (record["lms_lead_id"], record["first_name"], record["mobile"]) == ("NF-1", "Ana", "+1 973 555 0100")
    assert (record["program"], record["gpa"], record["campus_tour_booked"]) == ("B.S. Nursing", "3.5", "true")
    assert record["interests"] == "honors program;study abroad"
    parsed = list(csv.reader(io.StringIO(packet_bytes(load_map, rows).decode())))
    assert parsed == rows


def test_unknown_keys_and_missing_required_fields_are_named(deployment) -> None:
    load_map = deployment.clients[COLLEGE].load_maps["leads"]
    records = [
        CustomerIn(external_id="NF-1", attributes={"shoe_size": 42}).model_dump(exclude_none=True),
        CustomerIn(email="b@example.com", postal_code="07001").model_dump(exclude_none=True),
    ]
    with pytest.raises(PayloadError) as caught:
        packet_rows(load_map, records)
    problems = dict(caught.value.problems)
    assert problems["0.email"] == "required by the load map, missing"
    assert problems["0.attributes.shoe_size"].startswith("not an attribute of load map 'leads' (it has: ")
    assert problems["1.external_id"] == "required by the load map, missing"
    assert problems["1.postal_code"] == "load map 'leads' has no column for 'postal_code'"
    with pytest.raises(PayloadError, match="no records"):
        packet_rows(load_map, [])


def test_a_request_lands_as_a_packet_in_the_clients_incoming_area(deployment, tmp_path: Path) -> None:
    zone = LocalDropZone(tmp_path / "zone")
    event = FunnelEventIn(external_id="NF-1", funnel_type="sales", from_stage="applied", to_stage="admitted",
                          occurred_at=datetime(2026, 11, 20, 15, 0, tzinfo=UTC))  # fmt: skip
    path, rows = drop_api_packet(zone, deployment.clients[COLLEGE], "funnel_events", [event.model_dump()],
                                 datetime(2026, 11, 20, 15, 1))  # fmt: skip
    assert rows == 1 and path.startswith(f"{COLLEGE}/incoming/funnel_events/api-funnel_events-")
    landed = (tmp_path / "zone" / path).read_text()
    assert "2026-11-20 15:00:00" in landed and "admitted" in landed
    assert (tmp_path / "zone" / (path + ".sha256")).exists()
    with pytest.raises(PayloadError, match="accepts no customers through the API"):
        drop_api_packet(
            zone, deployment.clients["lakeside_realty"], "customers", [{"external_id": "x"}], datetime.now()
        )


def test_api_keys_are_checked_against_their_hashes() -> None:
    key, digest = new_api_key()
    assert key.startswith("hk_") and key_matches(key, [digest])
    assert not key_matches(key + "x", [digest]) and not key_matches(None, [digest]) and not key_matches(key, [])


def test_config_check_refuses_an_api_load_map_of_the_wrong_kind(tmp_path: Path) -> None:
    import shutil

    from herald.config import check_config
    from tests.conftest import CONFIG_DIR

    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    client_yaml = target / "clients" / COLLEGE / "client.yaml"
    client_yaml.write_text(client_yaml.read_text().replace("  customers: leads", "  customers: funnel_events"))
    _, problems = check_config(target)
    assert [str(p) for p in problems] == [
        f"config/clients/{COLLEGE}/client.yaml: ingest_api.customers: 'funnel_events' is not a contacts "
        "load map of this client (contacts load maps: leads)"
    ]
