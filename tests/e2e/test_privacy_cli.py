"""`herald privacy export|erase` as a user runs them (DuckDB; the same code runs on PostgreSQL in
tests/integration/test_privacy.py and tests/e2e/test_privacy_api.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, REPO_ROOT

CLIENT = "bright_smiles_dental"
# the commands that need no Dagster, as `herald` runs them, without importing Dagster (3x faster)
HERALD = [sys.executable, "-m", "herald.cli"]


def test_export_erase_and_their_errors_from_the_cli(tmp_path: Path) -> None:
    env = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        s.execute("create table marts.contacts (contact_id varchar, client_id varchar, first_name varchar, "
                  "email varchar, phone_e164 varchar)")  # fmt: skip
        s.execute("insert into marts.contacts values ('k1', ?, 'Kim', 'kim@example.com', '+15125550142')", [CLIENT])

    def herald(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*HERALD, "privacy", *args], env={**os.environ, **env}, cwd=REPO_ROOT,
                              capture_output=True, text=True)  # fmt: skip

    unknown = herald("erase", CLIENT, "someone@example.com")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        f"error: no contact of client '{CLIENT}' has that contact id, phone or email: nothing was changed"
    )
    assert "someone@example.com" not in unknown.stderr + unknown.stdout

    out = tmp_path / "kim.zip"
    exported = herald("export", CLIENT, "(512) 555-0142", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert f"exported 1 rows on 1 contact(s) to {out}" in exported.stdout
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("export.json"))["data"]["marts__contacts"][0]["first_name"] == "Kim"
        assert "Kim" in archive.read("marts__contacts.csv").decode()

    done = herald("erase", CLIENT, "KIM@example.com")
    assert done.returncode == 0, done.stderr
    assert "erased 1 contact(s)" in done.stdout and "marts.contacts: 1" in done.stdout
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from marts.contacts") == 0
        assert s.scalar("select count(*) from herald_ops.audit_log where action = 'erase'") == 1
