"""`herald users add/list/disable/reset-2fa` and `herald audit` as an operator runs them
(``python -m herald.cli``, the commands without Dagster), on the embedded warehouse: the first
operator bootstrapped, clear errors that change nothing, and every change in the audit log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from herald.portal import accounts
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, REPO_ROOT


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herald.cli", *args], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip


def test_users_are_added_listed_disabled_and_audited(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TWILIO_", "RESEND_"))}
    env = {**clean, "HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "COLUMNS": "200",
           "HERALD_PORTAL_PASSWORD": "a long enough password"}  # fmt: skip

    done = run(env, "users", "add", "Ops@Example.com", "--role", "operator")
    assert done.returncode == 0, done.stderr
    assert "added ops@example.com (operator, every client)" in done.stdout

    errors = [
        (("users", "add", "x@example.com", "--role", "viewer", "--client", "nope"),
         "unknown client 'nope'; configured: bright_smiles_dental"),
        (("users", "add", "x@example.com", "--role", "admin", "--client", "bright_smiles_dental"),
         "--role must be one of operator, client_admin, staff, viewer"),
        (("users", "add", "ops@example.com", "--role", "operator"), "a portal user with the email ops@example.com"),
        (("users", "disable", "ghost@example.com"), "no portal user has the email 'ghost@example.com'"),
        (("audit", "--since", "yesterday"), "--since 'yesterday' is not a date or time"),
    ]  # fmt: skip
    for args, says in errors:
        done = run(env, *args)
        assert done.returncode == 1 and says in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    weak = run({**env, "HERALD_PORTAL_PASSWORD": "short"}, "users", "add", "y@example.com", "--role", "operator")
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr

    done = run(env, "users", "add", "staff@example.com", "--role", "staff", "--client", "bright_smiles_dental",
               "--hide-contact-details")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert run(env, "users", "reset-2fa", "staff@example.com").returncode == 0
    assert run(env, "users", "disable", "staff@example.com").returncode == 0

    listed = run(env, "users", "list").stdout
    assert "ops@example.com" in listed and "staff@example.com" in listed and "disabled" in listed
    assert "2 user(s)" in listed and "x@example.com" not in listed and "y@example.com" not in listed

    audit = run(env, "audit", "--client", "bright_smiles_dental").stdout
    assert "portal_user_added" in audit and "portal_2fa_reset" in audit and "portal_user_disabled" in audit
    assert "3 row(s)" in audit
    with Warehouse(Settings.from_env(env).warehouse).session(read_only=True) as s:
        staff = accounts.find_user(s, "staff@example.com")
    assert staff is not None and staff.hide_contact_details and staff.disabled_at is not None
