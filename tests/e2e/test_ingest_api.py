"""The ingest API end to end: a real HTTP request to `herald serve`'s app publishes customers
and a funnel event; `herald tick` ingests the packets like any upload, into the marts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from herald.packets.api import ensure_home_key
from herald.settings import Settings
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR, REPO_ROOT

CLIENT = "northfield_college"
HERALD = str(Path(sys.executable).parent / "herald")


@pytest.fixture
def served(tmp_path: Path):
    env = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    # the example config ships no key: one is made in the home, as `herald demo` does
    key = ensure_home_key(tmp_path / "home", CLIENT).read_text(encoding="utf-8").strip()
    app = create_app(Settings.from_env(env), environ=env)
    with running_server(app) as url:
        yield url, env, key


def herald(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([HERALD, *args], env={**os.environ, **env}, cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_published_customers_and_events_reach_the_marts(served) -> None:
    url, env, key = served
    auth = {"Authorization": f"Bearer {key}"}
    customers = {"customers": [
        {"external_id": "API-1", "first_name": "Ana", "email": "ana.api@example.com", "phone": "+1 973 555 0142",
         "attributes": {"program": "B.S. Nursing", "gpa": 3.7, "interests": ["honors program"]}},
        {"external_id": "API-2", "first_name": "Ben", "email": "ben.api@example.com"},
    ]}  # fmt: skip
    answer = httpx.post(f"{url}/api/v1/clients/{CLIENT}/customers", json=customers, headers=auth)
    assert answer.status_code == 202, answer.text
    assert answer.json()["rows"] == 2 and answer.json()["packet"].startswith(f"{CLIENT}/incoming/leads/api-customers-")
    event = {"events": [{"external_id": "API-1", "funnel_type": "sales", "from_stage": "applied",
                         "to_stage": "admitted", "occurred_at": "2026-11-20T15:00:00Z"}]}  # fmt: skip
    assert httpx.post(f"{url}/api/v1/clients/{CLIENT}/funnel-events", json=event, headers=auth).status_code == 202

    herald(env, "tick", "--force", "--until-idle")
    rows = json.loads(herald(env, "sql", "--format", "json",
        "select c.external_id, c.first_name, c.phone_e164, a.string_value as program from marts.contacts c "
        "left join marts.contact_attributes a on a.contact_id = c.contact_id and a.attribute_name = 'program' "
        "where c.external_id like 'API-%' order by 1"))  # fmt: skip
    assert rows == [
        {"external_id": "API-1", "first_name": "Ana", "phone_e164": "+19735550142", "program": "B.S. Nursing"},
        {"external_id": "API-2", "first_name": "Ben", "phone_e164": None, "program": None},
    ]
    (stage,) = json.loads(herald(env, "sql", "--format", "json", "select to_stage from marts.funnel_events"))
    assert stage == {"to_stage": "admitted"}


def test_wrong_keys_bad_payloads_and_the_docs(served) -> None:
    url, _, key = served
    body = {"customers": [{"external_id": "X-1", "email": "x@example.com"}]}
    for headers in ({}, {"Authorization": "Bearer hk_wrong"}):
        answer = httpx.post(f"{url}/api/v1/clients/{CLIENT}/customers", json=body, headers=headers)
        assert answer.status_code == 401 and answer.json() == {"detail": "unknown client or API key"}
    # a client without API access answers exactly like a wrong key
    other = httpx.post(
        f"{url}/api/v1/clients/lakeside_realty/customers", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert other.status_code == 401
    auth = {"Authorization": f"Bearer {key}"}
    bad = httpx.post(f"{url}/api/v1/clients/{CLIENT}/customers", headers=auth,
                     json={"customers": [{"external_id": "X-1", "shoe_size": 42}]})  # fmt: skip
    assert bad.status_code == 422 and "shoe_size" in bad.text
    missing = httpx.post(
        f"{url}/api/v1/clients/{CLIENT}/customers", headers=auth, json={"customers": [{"external_id": "X-2"}]}
    )
    assert missing.status_code == 422
    assert missing.json()["detail"] == [{"loc": "0.email", "msg": "required by the load map, missing"}]
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{url}/openapi.json").json()
    assert "/api/v1/clients/{client_id}/funnel-events" in spec["paths"]
