"""The portal's own store on the embedded DuckDB (herald/portal/store.py): sign-in and page views
answer while another process holds the warehouse's write lock, their audit rows are in
`herald audit` at once, move into herald_ops.audit_log once (never lost, never doubled, also
when the move is cut between its two commits), a privacy export finds them and an erasure
re-keys them, a deployment's existing accounts are copied into a new store, and `herald users`
and `herald audit` work on both engines (on PostgreSQL the accounts stay in the warehouse)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from herald.cli import app as cli
from herald.clock import utcnow
from herald.portal import accounts, inbox
from herald.portal import audit as portal_audit
from herald.portal.store import PortalStore, drain_spool, forget_spooled, move_spool, spooled
from herald.settings import Settings
from herald.warehouse.connection import Warehouse, WarehouseError
from herald.web.app import create_app
from herald.web.portal import PREFIX
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.portal_support import cheap_argon2, made_warehouse, portal_env  # noqa: F401
from tests.integration.test_portal_data import fill
from tests.integration.test_portal_web import PASSWORD, add, csrf, sign_in

A = "bright_smiles_dental"
CONTACT = f"c-{A}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = portal_env(tmp_path_factory.mktemp("portal-store"), "store-secret")
    settings, warehouse = made_warehouse(env, fill)
    store = PortalStore(settings.warehouse)
    secret = pyotp.random_base32()
    with store.session() as s:
        user = accounts.add_user(s, "staff@example.com", PASSWORD, "staff", A)
        accounts.enroll_totp(s, user, secret, pyotp.TOTP(secret).now())
        s.execute("update herald_ops.portal_users set totp_last_step = 0 where user_id = ?", [user.user_id])
    return {"env": env, "settings": settings, "warehouse": warehouse, "store": store, "user": user, "secret": secret,
            "app": create_app(settings, environ=env)}  # fmt: skip


def herald(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], env: dict[str, str],
           *args: str) -> tuple[int, str]:  # fmt: skip
    """A `herald` command in this process (its console writes to the process's stdout)."""
    for name in [n for n in os.environ if n.startswith("HERALD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, list(args))
    out, err = capfd.readouterr()
    return result.exit_code, out + result.output + err


def hold_warehouse(path: Path) -> subprocess.Popen[str]:
    """Another process with the DuckDB warehouse open read-write, inside a write transaction (what
    a dbt build or a send does); it prints 'held' once it has the lock."""
    code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); c.execute('begin transaction'); "
            "c.execute('create table herald_ops.held_by_a_run (x int)'); print('held', flush=True); time.sleep(60)")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def audit_ids(session: Any, where: str = "true", params: list[Any] | None = None) -> list[str]:
    _, rows = session.query(f"select audit_id from herald_ops.audit_log where {where} order by audit_id", params)
    return [r[0] for r in rows]


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    answer = call()
    return answer, time.perf_counter() - started


def test_sign_in_and_pages_answer_while_another_process_holds_the_warehouse(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    user, secret = deployment["user"], deployment["secret"]
    holder = hold_warehouse(deployment["settings"].warehouse.duckdb_path)
    try:
        # the live file is locked: opening it, even read-only, fails at once
        with (
            pytest.raises(WarehouseError, match=r"(?i)lock"),
            deployment["warehouse"].session(read_only=True, lock_wait_seconds=0),
        ):
            pass
        browser = TestClient(deployment["app"], base_url="http://127.0.0.1")
        page, took = timed(lambda: browser.get(f"{PREFIX}/login"))
        answers = [(page.status_code, took)]
        r, took = timed(lambda: browser.post(f"{PREFIX}/login", follow_redirects=False, data={
            "email": user.email, "password": PASSWORD, "csrf_token": csrf(page.text)}))  # fmt: skip
        answers.append((r.status_code, took))
        assert r.headers["location"] == f"{PREFIX}/login/2fa", r.text[:300]
        page, took = timed(lambda: browser.get(f"{PREFIX}/login/2fa"))
        answers.append((page.status_code, took))
        r, took = timed(lambda: browser.post(f"{PREFIX}/login/2fa", follow_redirects=False, data={
            "code": pyotp.TOTP(secret).now(), "csrf_token": csrf(page.text)}))  # fmt: skip
        answers.append((r.status_code, took))
        assert r.headers["location"] == f"{PREFIX}/c/{A}/"
        for path in (f"/c/{A}/", f"/c/{A}/packets", f"/c/{A}/contacts/{CONTACT}"):
            page, took = timed(lambda path=path: browser.get(PREFIX + path))
            answers.append((page.status_code, took))
        assert "Ana" in page.text  # the contact page, from the snapshot
        assert holder.poll() is None  # the run held the warehouse all along
    finally:
        holder.kill()
        holder.wait(10)
    assert [code for code, _ in answers] == [200, 303, 200, 303, 200, 200, 200]
    assert max(took for _, took in answers) < 2.0, answers

    # every view is in `herald audit` at once (it reads the warehouse's log and the store's spool)
    code, out = herald(monkeypatch, capfd, deployment["env"], "audit", "--user", user.email, "--limit", "50")
    assert code == 0, out
    assert out.count("portal_view") == 3 and out.count("portal_login ") == 1, out
    assert "4 row(s)" in out
    with deployment["store"].session(read_only=True) as s:
        views = portal_audit.query(s, user=user.email, action=portal_audit.VIEW)
    assert (views[0].subject, views[0].contact_id) == (f"{PREFIX}/c/{A}/contacts/{CONTACT}", CONTACT)
    # they wait in the store: nothing of the portal's was written to the warehouse
    with deployment["warehouse"].session(read_only=True) as s:
        assert audit_ids(s, "actor = ?", [f"portal:{user.email}"]) == []


def test_the_spool_moves_into_the_warehouse_once(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    target, store, warehouse = deployment["settings"].warehouse, deployment["store"], deployment["warehouse"]
    with store.session() as s:
        portal_audit.record(s, "portal:someone@example.com", portal_audit.VIEW, A, "/app/c/x/")
    waiting = sorted(r[0] for r in spooled(target))
    assert waiting

    # a move cut between its two commits: the warehouse has the rows, the spool still has them
    with warehouse.session() as s:
        assert sorted(move_spool(s, target)) == waiting
    code, out = herald(monkeypatch, capfd, deployment["env"], "audit", "--user", "someone@example.com")
    assert code == 0 and "1 row(s)" in out, out  # shown once

    assert drain_spool(target) == len(waiting)  # the next move skips what the warehouse has
    assert spooled(target) == [] and drain_spool(target) == 0
    with warehouse.session(read_only=True) as s:
        assert audit_ids(s, f"audit_id in ({', '.join('?' * len(waiting))})", waiting) == waiting  # each once
    code, out = herald(monkeypatch, capfd, deployment["env"], "audit", "--user", "someone@example.com")
    assert code == 0 and "1 row(s)" in out, out
    forget_spooled(target, waiting)  # forgetting twice is harmless


def test_a_privacy_export_finds_and_an_erasure_rekeys_the_portal_s_rows(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target, store = deployment["settings"].warehouse, deployment["store"]
    with store.session() as s:
        spooled_id = portal_audit.record(s, "portal:staff@example.com", portal_audit.VIEW, A,
                                         f"/app/c/{A}/contacts/{CONTACT}", contact_id=CONTACT)  # fmt: skip
    code, out = herald(monkeypatch, capfd, deployment["env"], "privacy", "export", A, CONTACT,
                       "--out", str(tmp_path / "export"))  # fmt: skip
    assert code == 0, out
    document = json.loads((tmp_path / "export" / "export.json").read_text())
    rows = json.dumps(document)
    assert spooled_id in rows  # the portal's view of the contact, moved in before the export read
    assert spooled(target) == []

    with store.session() as s:  # a view after the export, waiting in the spool
        later_id = portal_audit.record(s, "portal:staff@example.com", portal_audit.VIEW, A,
                                       f"/app/c/{A}/contacts/{CONTACT}", contact_id=CONTACT)  # fmt: skip
    code, out = herald(monkeypatch, capfd, deployment["env"], "privacy", "erase", A, CONTACT)
    assert code == 0 and "erased" in out, out
    assert spooled(target) == []
    with deployment["warehouse"].session(read_only=True) as s:
        _, found = s.query("select audit_id, contact_id from herald_ops.audit_log where audit_id in (?, ?)",
                           [spooled_id, later_id])  # fmt: skip
    assert len(found) == 2 and all(contact_id != CONTACT for _, contact_id in found), found


def test_a_backup_keeps_the_portal_store(deployment: dict[str, Any], tmp_path: Path) -> None:
    from herald.warehouse.backup import create_backup

    manifest = create_backup(deployment["settings"], tmp_path / "backup")
    assert "portal.sqlite3" in manifest.home["files"]
    copy = PortalStore(deployment["settings"].warehouse)
    copy.path = tmp_path / "backup" / "home" / "portal.sqlite3"
    with copy.session(read_only=True) as s:
        assert accounts.find_user(s, "staff@example.com") is not None


def test_the_accounts_of_a_warehouse_from_before_the_store_are_copied_once(tmp_path: Path) -> None:
    settings = Settings.from_env({"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR)})
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:  # where a deployment from before the store kept them
        old = accounts.add_user(s, "old@example.com", PASSWORD, "client_admin", A)
        accounts.start_session(s, old.user_id, accounts.STAGE_FULL)
    store = PortalStore(settings.warehouse)
    assert not store.exists()
    with store.session() as s:
        found = accounts.check_password(s, "old@example.com", PASSWORD)
        assert found.user is not None and found.user.user_id == old.user_id and found.user.role == "client_admin"
        assert s.scalar("select count(*) from herald_ops.portal_sessions") == 1
    with warehouse.session() as s:
        accounts.add_user(s, "later@example.com", PASSWORD, "viewer", A)
    with store.session(read_only=True) as s:  # made once: a later warehouse row is not the store's
        assert [u.email for u in accounts.list_users(s)] == ["old@example.com"]
    # the next move of the spool (a dbt build's end) deletes the warehouse's stale copies
    drain_spool(settings.warehouse)
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.portal_users") == 0
        assert s.scalar("select count(*) from herald_ops.portal_sessions") == 0
    with store.session(read_only=True) as s:
        assert [u.email for u in accounts.list_users(s)] == ["old@example.com"]


@pytest.mark.parametrize("engine", ENGINES)
def test_users_and_audit_commands_use_the_same_store_on_both_engines(
    engine: str, herald_env: Callable[[str], dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    env = {**herald_env(engine), "HERALD_PORTAL_PASSWORD": PASSWORD}
    code, out = herald(monkeypatch, capfd, env, "users", "add", "ops@example.com", "--role", "operator")
    assert code == 0 and "added ops@example.com" in out, out
    code, out = herald(monkeypatch, capfd, env, "users", "list")
    assert code == 0 and "ops@example.com" in out and "1 user(s)" in out, out
    code, out = herald(monkeypatch, capfd, env, "audit", "--action", "portal_user_added")
    assert code == 0 and "ops@example.com" in out and "1 row(s)" in out, out
    settings = Settings.from_env(env)
    store = PortalStore(settings.warehouse)
    if engine == "postgres":  # the warehouse, as before: no file, rows in its herald_ops
        assert not store.separate and not (Path(env["HERALD_HOME"]) / "portal.sqlite3").exists()
        with Warehouse(settings.warehouse).session(read_only=True) as s:
            assert accounts.find_user(s, "ops@example.com") is not None
            assert len(audit_ids(s, "action = 'portal_user_added'")) == 1
    else:
        assert store.path == Path(env["HERALD_HOME"]) / "portal.sqlite3" and store.exists()
        assert store.path.stat().st_mode & 0o777 == 0o600  # password hashes and TOTP keys: owner only
        with store.session(read_only=True) as s:
            assert accounts.find_user(s, "ops@example.com") is not None


# --- the Inbox (herald/portal/inbox.py): read through the snapshot, read marks in the store -------


@pytest.fixture(scope="module")
def inbox_deployment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.integration.test_portal_inbox import make_inbox

    env = portal_env(tmp_path_factory.mktemp("portal-store-inbox"), "store-secret")
    settings, warehouse = made_warehouse(env, lambda w: make_inbox(w, utcnow()))
    portal = {"env": env, "settings": settings, "warehouse": warehouse, "app": create_app(settings, environ=env)}
    user, secret = add(portal, "staff", A)
    return {**portal, "user": user, "browser": sign_in(portal, user.email, secret)}


def test_the_inbox_answers_while_another_process_holds_the_warehouse(inbox_deployment: dict[str, Any]) -> None:
    browser, user, settings = inbox_deployment["browser"], inbox_deployment["user"], inbox_deployment["settings"]
    inbox_url = f"{PREFIX}/c/{A}/inbox"
    page = browser.get(f"{inbox_url}/conv-ben")  # a note before the run: in the snapshot it republished
    r = browser.post(f"{inbox_url}/conv-ben/note", data={"csrf_token": csrf(page.text), "text": "Call back Friday"})
    assert r.status_code == 200 and "Note added" in r.text and "Call back Friday" in r.text, r.text[:500]
    assert "may take a moment" not in r.text
    holder = hold_warehouse(settings.warehouse.duckdb_path)
    try:
        answers = []
        for path in ("", "?filter=unread", "/conv-ana", "?filter=unread", "/conv-ben", "/settings"):
            page, took = timed(lambda path=path: browser.get(inbox_url + path))
            answers.append((path, page.status_code, took))
            if path == "" or path.startswith("?"):
                listed = re.findall(r'data-conversation="([^"]+)"', page.text)
            if path == "":
                assert listed == ["conv-stranger", "conv-ana", "conv-cy", "conv-ben"]
            elif path == "?filter=unread":  # Ben's was read before the run; Ana's once opened during it
                assert listed == (["conv-stranger", "conv-ana", "conv-cy"] if len(answers) == 2
                                  else ["conv-stranger", "conv-cy"])  # fmt: skip
            elif path == "/conv-ana":
                assert "Reminder: cleaning on Friday" in page.text and "Ana" in page.text
            elif path == "/conv-ben":
                assert "Call back Friday" in page.text  # the note, from the snapshot
        # an action still writes the warehouse: after the wait, "try again", nothing half-applied
        r, took = timed(lambda: browser.post(f"{inbox_url}/conv-ana/note",
                                             data={"csrf_token": csrf(page.text), "text": "Not while held"}))  # fmt: skip
        assert r.status_code == 503 and "Please try again" in r.text and took < 10
        # a change saved while a run keeps the snapshot from being published says so
        assert inbox.republish(settings) is False
        page = browser.get(f"{inbox_url}/conv-ben?notice=noted.later")
        assert "Note added (only your team sees it). The change is saved; it may take a moment" in page.text
        assert holder.poll() is None  # the run held the warehouse all along
    finally:
        holder.kill()
        holder.wait(10)
    assert [code for _, code, _ in answers] == [200] * 6, answers
    assert max(took for _, _, took in answers) < 2.0, answers
    # the read mark is in the portal store; none in the warehouse
    with PortalStore(settings.warehouse).session(read_only=True) as s:
        _, marks = s.query("select conversation_id from herald_ops.inbox_reads where user_id = ? "
                           "order by conversation_id", [user.user_id])  # fmt: skip
    assert marks == [("conv-ana",), ("conv-ben",)]
    with inbox_deployment["warehouse"].session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.inbox_reads") == 0
        assert s.scalar("select count(*) from herald_ops.inbox_entries where body = 'Not while held'") == 0


def test_a_store_of_version_1_gets_the_read_marks_table_and_the_warehouse_s_marks(tmp_path: Path) -> None:
    import sqlite3

    from herald.portal import store as store_module

    settings = Settings.from_env({"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR)})
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    store = PortalStore(settings.warehouse)
    with store.session() as s:
        accounts.add_user(s, "kept@example.com", PASSWORD, "staff", A)
    # as an older Herald left it: version 1, no read marks table; its marks in the warehouse
    raw = sqlite3.connect(store.path)
    raw.execute("drop table inbox_reads")
    raw.execute("pragma user_version = 1")
    raw.commit()
    raw.close()
    store_module._made.discard(store.path)
    with warehouse.session() as s:
        s.execute("insert into herald_ops.inbox_reads values (?, 'conv-ana', 'u1', ?)", [A, utcnow()])
    with store.session(read_only=True) as s:  # upgraded, not refused, not made again
        assert s.scalar("pragma herald_ops.user_version") == store_module.STORE_VERSION == 2
        _, marks = s.query("select client_id, conversation_id, user_id from herald_ops.inbox_reads")
        assert marks == [(A, "conv-ana", "u1")]
        assert [u.email for u in accounts.list_users(s)] == ["kept@example.com"]
