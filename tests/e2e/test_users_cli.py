"""`herald users add/list/disable/reset-2fa` and `herald audit` as an operator runs them, on the
embedded warehouse: the first operator bootstrapped, clear errors that change nothing, every
change in the audit log. In-process (the commands' own Typer app; their console writes to the
process's stdout and stderr, read with capfd), so a dozen commands cost no dozen start-ups."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from herald.cli import app
from herald.portal import accounts
from herald.portal.store import PortalStore
from herald.settings import Settings
from tests.conftest import CONFIG_DIR


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name in [n for n in os.environ if n.startswith("HERALD_")]:
        monkeypatch.delenv(name)
    values = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR),
              "HERALD_PORTAL_PASSWORD": "a long enough password"}  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    # real argon2id with small costs (tests/integration/test_portal_accounts.py checks the product's)
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield values


def run(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    out, err = capfd.readouterr()
    return result.exit_code, out + result.output, err


def test_users_are_added_listed_disabled_and_audited(
    env: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capfd, "users", "add", "Ops@Example.com", "--role", "operator")
    assert code == 0, err
    assert "added ops@example.com (operator, every client)" in out

    errors = [
        (("users", "add", "x@example.com", "--role", "viewer", "--client", "nope"),
         "unknown client 'nope'; configured: bright_smiles_dental"),
        (("users", "add", "x@example.com", "--role", "admin", "--client", "bright_smiles_dental"),
         "--role must be one of operator, client_admin, staff, viewer"),
        (("users", "add", "x@example.com", "--role", "viewer"), "a viewer belongs to one client: give the client"),
        (("users", "add", "ops@example.com", "--role", "operator"), "a portal user with the email ops@example.com"),
        (("users", "disable", "ghost@example.com"), "no portal user has the email 'ghost@example.com'"),
        (("audit", "--since", "yesterday"), "--since 'yesterday' is not a date or time"),
    ]  # fmt: skip
    for args, says in errors:
        code, out, err = run(capfd, *args)
        assert code == 1 and says in err and "Traceback" not in err + out, (args, err)
    monkeypatch.setenv("HERALD_PORTAL_PASSWORD", "short")
    code, _, err = run(capfd, "users", "add", "y@example.com", "--role", "operator")
    assert code == 1 and "at least 12 characters" in err
    monkeypatch.setenv("HERALD_PORTAL_PASSWORD", env["HERALD_PORTAL_PASSWORD"])

    code, _, err = run(capfd, "users", "add", "staff@example.com", "--role", "staff", "--client",
                       "bright_smiles_dental", "--hide-contact-details")  # fmt: skip
    assert code == 0, err
    assert run(capfd, "users", "reset-2fa", "staff@example.com")[0] == 0
    assert run(capfd, "users", "disable", "staff@example.com")[0] == 0

    listed = run(capfd, "users", "list")[1]
    assert "ops@example.com" in listed and "staff@example.com" in listed and "disabled" in listed
    assert "2 user(s)" in listed and "x@example.com" not in listed and "y@example.com" not in listed

    audit = run(capfd, "audit", "--client", "bright_smiles_dental")[1]
    assert "portal_user_added" in audit and "portal_2fa_reset" in audit and "portal_user_disabled" in audit
    assert "3 row(s)" in audit
    # on the embedded DuckDB the accounts live in the portal store beside the warehouse file
    store = PortalStore(Settings.from_env(env).warehouse)
    assert store.path == Path(env["HERALD_HOME"]) / "portal.sqlite3" and store.exists()
    with store.session(read_only=True) as s:
        staff = accounts.find_user(s, "staff@example.com")
    assert staff is not None and staff.hide_contact_details and staff.disabled_at is not None
