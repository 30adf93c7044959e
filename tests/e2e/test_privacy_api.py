"""Privacy requests through the ingest API (a real HTTP server, both engines): a client exports
and erases its own contact; another client's key can neither see nor erase it (a 404 exactly like
an unknown contact, nothing changed)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.packets.api import ensure_home_key
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR, ENGINES

A = "northfield_college"  # has the ingest API in the example configuration
B = "bright_smiles_dental"  # given it below
PHONE = "+13125550177"
LOADED = datetime(2026, 11, 1)
CONTACTS_DDL = """create table marts.contacts (
    contact_id varchar, client_id varchar, external_id varchar, first_name varchar, last_name varchar,
    email varchar, is_email_valid boolean, phone_e164 varchar, is_phone_valid boolean,
    postal_code varchar, time_zone varchar)"""


@pytest.fixture(params=ENGINES)
def served(request: pytest.FixtureRequest, tmp_path: Path, herald_env: Any):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    with (config / "clients" / B / "client.yaml").open("a", encoding="utf-8") as f:
        f.write("\ningest_api:\n  key_sha256: []\n")
    env = {**herald_env(request.param), "HERALD_CONFIG_DIR": str(config)}
    home = Path(env["HERALD_HOME"])
    keys = {c: ensure_home_key(home, c).read_text(encoding="utf-8").strip() for c in (A, B)}
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        s.execute(CONTACTS_DDL)
        s.execute(
            "insert into marts.contacts values ('b1', ?, 'B-1', 'Bea', null, 'bea@example.com', true, ?, true, null, null)",
            [B, PHONE],
        )
        s.execute(
            "insert into herald_ops.consent_events values ('ev-b1', ?, 'b1', 'sms', ?, 'opt_in', 'all', "
            "'express_written', 'web', 'form', ?, ?, null, null)",
            [B, PHONE, LOADED, LOADED],
        )
    app = create_app(settings, environ=env)
    with running_server(app) as url:
        yield url, keys, warehouse


def call(url: str, client: str, key: str, what: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/clients/{client}/privacy/{what}", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=60)  # fmt: skip


def test_a_client_exports_and_erases_only_its_own_contacts(served) -> None:
    url, keys, warehouse = served
    unknown = "no contact of client 'northfield_college' has that contact id, phone or email"
    # A cannot reach B's contact, by id or phone, for export or erasure; nor by B's path with A's key
    for what in ("export", "erase"):
        for contact in ("b1", "(312) 555-0177"):
            answer = call(url, A, keys[A], what, {"contact": contact})
            assert answer.status_code == 404 and answer.json()["detail"].startswith(unknown), answer.text
        assert call(url, B, keys[A], what, {"contact": "b1"}).status_code == 401
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from marts.contacts") == 1
        assert s.scalar("select count(*) from herald_ops.consent_events") == 1
        assert s.scalar("select count(*) from herald_ops.privacy_requests") == 0

    exported = call(url, B, keys[B], "export", {"contact": "bea@example.com"})
    assert exported.status_code == 200, exported.text
    data = exported.json()["data"]
    assert data["marts__contacts"][0]["first_name"] == "Bea"
    assert data["herald_ops__consent_events"][0]["evidence"] == "form"

    erased = call(url, B, keys[B], "erase", {"contact": "b1"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["status"] == "done" and erased.json()["counts"]["herald_ops.consent_events"] == 1
    again = call(url, B, keys[B], "erase", {"contact": PHONE}).json()
    assert again["status"] == "already_erased" and again["message"].startswith("already erased on ")
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from marts.contacts") == 0
        assert s.query("select kind, source, requested_by from herald_ops.privacy_requests order by kind")[1] == [
            ("erase", "api", f"api:{B}"), ("export", "api", f"api:{B}")
        ]  # fmt: skip
    bad = call(url, B, keys[B], "erase", {"contact": ""})
    assert bad.status_code == 422
