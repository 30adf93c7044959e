"""The CLI fails early and clearly: a wrong HERALD_* variable stops every command before it does
anything, naming the variable and what it accepts; an unknown client id is an error listing the
configured ones; the configuration is found from any working directory; every command has --help;
a failed run's first error line reaches `herald tick`'s output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import CONFIG_DIR, REPO_ROOT

HERALD = str(Path(sys.executable).parent / "herald")
CLIENTS = "bright_smiles_dental, lakeside_realty, northfield_college, summit_roofing"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TWILIO_", "RESEND_"))}
    return {**clean, "HERALD_HOME": str(tmp_path / "home"), "COLUMNS": "200"}


def herald(env: dict[str, str], *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([HERALD, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_clean_error(done: subprocess.CompletedProcess, code: int, *says: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    for text in says:
        assert text in done.stderr, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("sql", "select 1"),
        ("config", "check"),
        ("credits", "balance"),
        ("report", "bright_smiles_dental"),
        ("dropzone", "check"),
        ("tick",),
        ("tables",),
    ],
)
def test_an_unknown_provider_stops_every_command(env: dict[str, str], args: tuple[str, ...]) -> None:
    done = herald({**env, "HERALD_SMS_PROVIDER": "twillio"}, *args)
    assert_clean_error(done, 2, "HERALD_SMS_PROVIDER='twillio'", "accepts sandbox, twilio")
    assert done.stdout == ""
    assert not Path(env["HERALD_HOME"]).exists()  # nothing was attempted


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        (
            {"HERALD_EMAIL_PROVIDER": "sendgrid"},
            "HERALD_EMAIL_PROVIDER='sendgrid' is not one Herald knows; it accepts sandbox, resend",
        ),
        (
            {"HERALD_SMS_PROVIDER": "twilio"},
            "HERALD_SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        ),
        (
            {"HERALD_CONFIG_DIR": "/nonexistent/herald-config"},
            "HERALD_CONFIG_DIR: /nonexistent/herald-config is not a folder",
        ),
        ({"HERALD_WAREHOUSE_URL": "mysql://db/herald"}, "HERALD_WAREHOUSE_URL='mysql://db/herald' is not a warehouse"),
        ({"HERALD_DELIVERY_BATCH_SIZE": "lots"}, "HERALD_DELIVERY_BATCH_SIZE='lots' is not a number"),
    ],
)
def test_every_setting_is_checked_at_start(env: dict[str, str], variables: dict[str, str], says: str) -> None:
    assert_clean_error(herald({**env, **variables}, "sql", "select 1"), 2, says)


@pytest.mark.parametrize(
    "args",
    [
        ("credits", "balance", "nosuchclient"),
        ("credits", "add", "nosuchclient", "5", "--note", "x"),
        ("report", "nosuchclient"),
        ("segment", "preview", "nosuchclient", "any"),
        ("campaign", "preview", "nosuchclient", "any"),
        ("campaign", "send", "nosuchclient", "any", "--no-wait"),
        ("block", "nosuchclient", "+15125550142", "--reason", "asked"),
        ("unblock", "nosuchclient", "+15125550142", "--reason", "asked"),
        ("reply", "nosuchclient", "+15125550142", "hello"),
        ("api-key", "nosuchclient"),
        ("drop", str(CONFIG_DIR / "herald.yaml"), "--client", "nosuchclient", "--type", "leads"),
    ],
)
def test_an_unknown_client_is_an_error_listing_the_configured_ones(env: dict[str, str], args: tuple[str, ...]) -> None:
    done = herald(env, *args)
    assert_clean_error(done, 1, f"unknown client 'nosuchclient'; configured: {CLIENTS}")
    assert "no credits yet" not in done.stdout


def test_the_repository_config_is_found_from_any_directory(env: dict[str, str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked = herald(env, "config", "check", cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr
    assert f"config OK: 4 clients ({CLIENTS.replace(', ', ', ')})" in checked.stdout
    assert f"load maps in {CONFIG_DIR}" in checked.stdout
    relative = herald({**env, "HERALD_CONFIG_DIR": "config"}, "api-key", "lakeside_realty", cwd=elsewhere)
    assert relative.returncode == 0, relative.stderr
    assert "API key for lakeside_realty (shown once):" in relative.stdout
    report = herald(env, "report", "bright_smiles_dental", "--output", str(tmp_path / "r.html"), cwd=elsewhere)
    assert "configuration" not in report.stderr and "unknown client" not in report.stderr, report.stderr


def test_the_tick_line_of_a_failed_run_carries_its_first_error_line() -> None:
    from orchestration.cli import run_line

    failed = SimpleNamespace(status="FAILURE", job_name="deliver_messages_job", partition=None, run_id="abcd1234ef",
                             seconds=2.06, error="HERALD_SMS_PROVIDER='twillio' is not one Herald knows [sic]")  # fmt: skip
    assert run_line(failed) == (
        "  [red]FAILURE[/red] deliver_messages_job [dim]abcd1234[/dim] in 2.1s: "
        "HERALD_SMS_PROVIDER='twillio' is not one Herald knows \\[sic]"
    )
    ok = SimpleNamespace(status="SUCCESS", job_name="ingest_packet_job", partition="p1", run_id="ffff0000aa",
                         seconds=1.0, error=None)  # fmt: skip
    assert run_line(ok) == "  [green]SUCCESS[/green] ingest_packet_job partition p1 [dim]ffff0000[/dim] in 1.0s"


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_every_command_and_group_has_help() -> None:
    from orchestration.cli import build_app

    app = build_app()
    paths = _commands(typer.main.get_command(app))
    expected = {"sql", "tables", "describe", "docs", "tick", "dev", "demo", "report", "api-key", "block", "unblock",
                "reply", "inbound", "serve", "drop"}  # fmt: skip
    assert expected <= {p[0] for p in paths if p}
    assert {("credits", "add"), ("credits", "balance"), ("config", "check"), ("campaign", "send")} <= set(paths)
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path


def test_python_m_herald_cli_runs_without_dagster(env: dict[str, str]) -> None:
    probe = ("import sys, runpy; sys.argv = ['herald', 'sql', '--help']\n"
             "try:\n    runpy.run_module('herald.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('dagster' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.stdout.strip().endswith("False"), done.stdout + done.stderr


def test_tables_and_describe_on_a_fresh_warehouse(env: dict[str, str]) -> None:
    assert (
        herald(env, "credits", "add", "lakeside_realty", "25", "--note", "INV-7").returncode == 0
    )  # builds herald_ops
    listed = herald(env, "tables", "--schema", "herald_ops")
    assert listed.returncode == 0, listed.stderr
    ledger = next(line for line in listed.stdout.splitlines() if line.split()[:2] == ["herald_ops", "credit_ledger"])
    assert ledger.split()[-1] == "1" and "Append-only credit ledger" in ledger
    described = herald(env, "describe", "credit_ledger")
    assert described.returncode == 0, described.stderr
    assert described.stdout.startswith("herald_ops.credit_ledger (table, 1 row)")
    columns = {line.split()[0] for line in described.stdout.splitlines()[3:] if line.strip()}
    assert {"entry_id", "client_id", "kind", "amount"} <= columns
    assert_clean_error(herald(env, "describe", "herald_ops.credit_ledgr"), 1, "no table 'herald_ops.credit_ledgr'",
                       "did you mean herald_ops.credit_ledger")  # fmt: skip
    typo = herald(env, "tables", "--schema", "marts_typo")
    assert_clean_error(typo, 2, "--schema 'marts_typo' is not one of Herald's schemas: herald_raw, herald_ops, staging")
    assert_clean_error(herald(env, "tables", "--schema", "intermediate"), 1, "schema 'intermediate' has no tables yet")


def test_docs_says_how_to_generate_them_first(env: dict[str, str]) -> None:
    assert_clean_error(herald(env, "docs"), 1, "no generated docs in", "run `make docs`, or `herald docs --generate`")
