"""The portal's web side through its HTTP interface (FastAPI's test client on the real app, a
real DuckDB warehouse, the sandbox email journal): the client scope on every /app/c/ route
(enumerated from the app), CSRF, viewers, sign-in with 2FA, lockout, the emailed reset link,
open redirects, session fixation, escaping, audit rows and the offline /docs."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from herald.clock import realnow
from herald.portal import accounts
from herald.portal.audit import query
from herald.portal.store import PortalStore
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.portal import PREFIX
from tests.conftest import CONFIG_DIR
from tests.integration.portal_support import cheap_argon2, made_warehouse, portal_env  # noqa: F401

CLIENT_A, CLIENT_B = "bright_smiles_dental", "lakeside_realty"
NAME_B = "Lakeside Realty"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("portal-web")
    env = portal_env(home, "web-test-secret")
    settings, warehouse = made_warehouse(env, publish=False)
    app = create_app(settings, environ=env)
    yield {"app": app, "warehouse": warehouse, "home": home}


def store(portal: dict[str, Any]) -> PortalStore:
    """Where the portal keeps its accounts and audit rows: the portal store beside the DuckDB
    warehouse, the warehouse itself on PostgreSQL."""
    return PortalStore(portal["warehouse"].target)


def add(portal: dict[str, Any], role: str, client: str | None, **kw: Any) -> tuple[accounts.User, str]:
    """A user with 2FA enrolled; returns it and its TOTP secret."""
    secret = pyotp.random_base32()
    with store(portal).session() as s:
        user = accounts.add_user(s, kw.pop("email", f"{role}-{uuid.uuid4().hex[:6]}@example.com"), PASSWORD, role,
                                 client, **kw)  # fmt: skip
        accounts.enroll_totp(s, user, secret, pyotp.TOTP(secret).now())
        s.execute("update herald_ops.portal_users set totp_last_step = 0 where user_id = ?", [user.user_id])
    return user, secret


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(portal: dict[str, Any], email: str, secret: str, follow: bool = True) -> TestClient:
    client = TestClient(portal["app"], base_url="http://127.0.0.1")
    token = csrf(client.get(f"{PREFIX}/login").text)
    r = client.post(f"{PREFIX}/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].startswith(f"{PREFIX}/login/2fa"), r.text[:500]
    page = client.get(r.headers["location"])
    r = client.post(f"{PREFIX}/login/2fa", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf(page.text)},
                    follow_redirects=follow)  # fmt: skip
    assert r.status_code in (200, 303), r.text[:500]
    return client


def app_routes(app: Any) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every endpoint of the app, through included routers (FastAPI 0.165
    keeps an included router as one entry that expands into its routes)."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, set(route.methods)
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                yield context.path, set(context.methods or ())


def client_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) under /app/c/{client_id}: new routes are covered without editing."""
    found = []
    for path, methods in app_routes(app):
        if path.startswith(f"{PREFIX}/c/{{client_id}}"):
            found += [(method, path) for method in sorted(methods - {"HEAD"})]
    return found


def test_the_matrix_enumerates_the_client_routes(portal: dict[str, Any]) -> None:
    assert ("/healthz", {"GET"}) in [(p, m - {"HEAD"}) for p, m in app_routes(portal["app"])]  # the walk works
    routes = client_routes(portal["app"])
    assert ("GET", f"{PREFIX}/c/{{client_id}}/") in routes
    assert ("POST", f"{PREFIX}/c/{{client_id}}/users/{{user_id}}/disable") in routes
    # the Inbox (tests/integration/test_portal_inbox.py checks its pages)
    for method, path in (("GET", "inbox"), ("GET", "inbox/settings"), ("GET", "inbox/{conversation_id}"),
                         ("POST", "inbox/{conversation_id}/reply"), ("POST", "inbox/{conversation_id}/note"),
                         ("POST", "inbox/{conversation_id}/status"), ("POST", "inbox/{conversation_id}/assign"),
                         ("POST", "inbox/{conversation_id}/unread"), ("POST", "inbox/settings/quick-replies"),
                         ("POST", "inbox/settings/quick-replies/{reply_id}/delete"),
                         ("POST", "inbox/settings/auto-reply")):  # fmt: skip
        assert (method, f"{PREFIX}/c/{{client_id}}/{path}") in routes, path
    # the Campaigns pages (herald/web/portal_campaigns.py)
    for method, path in [("GET", "campaigns"), ("GET", "campaigns/{campaign}"), ("GET", "campaigns/{campaign}/review"),
                         *[("POST", f"campaigns/{{campaign}}/{a}") for a in ("pause", "resume", "phone", "test")]]:  # fmt: skip
        assert (method, f"{PREFIX}/c/{{client_id}}/{path}") in routes, path


@pytest.mark.parametrize("role", ["client_admin", "staff", "viewer"])
def test_every_client_route_answers_404_to_a_user_of_another_client(portal: dict[str, Any], role: str) -> None:
    user, secret = add(portal, role, CLIENT_A)
    victim, _ = add(portal, "staff", CLIENT_B)
    browser = sign_in(portal, user.email, secret)
    token = csrf(browser.get(f"{PREFIX}/c/{CLIENT_A}/").text)
    routes = client_routes(portal["app"])
    for method, path in routes:
        url = path.replace("{client_id}", CLIENT_B).replace("{user_id}", victim.user_id)
        url = url.replace("{conversation_id}", "some-conversation").replace("{reply_id}", "some-reply")
        url = url.replace("{campaign}", "new_listings")  # a campaign of client B
        r = browser.request(method, url, data={"csrf_token": token} if method == "POST" else None,
                            follow_redirects=False)  # fmt: skip
        assert r.status_code == 404, (method, url, r.status_code)
        assert NAME_B not in r.text and victim.email not in r.text
    with store(portal).session(read_only=True) as s:
        victim_now = accounts.get_user(s, victim.user_id)
    assert victim_now is not None and victim_now.disabled_at is None


def test_an_operator_sees_every_client_but_an_unknown_one_is_404(portal: dict[str, Any]) -> None:
    operator, secret = add(portal, "operator", None)
    browser = sign_in(portal, operator.email, secret, follow=False)
    picker = browser.get(f"{PREFIX}/clients")
    assert picker.status_code == 200 and NAME_B in picker.text and f"{PREFIX}/c/{CLIENT_A}/" in picker.text
    assert browser.get(f"{PREFIX}/c/{CLIENT_B}/").status_code == 200
    assert browser.get(f"{PREFIX}/c/no_such_client/").status_code == 404


def test_a_viewer_cannot_post_an_action(portal: dict[str, Any]) -> None:
    viewer, secret = add(portal, "viewer", CLIENT_A)
    colleague, _ = add(portal, "staff", CLIENT_A)
    browser = sign_in(portal, viewer.email, secret)
    token = csrf(browser.get(f"{PREFIX}/c/{CLIENT_A}/").text)
    r = browser.post(f"{PREFIX}/c/{CLIENT_A}/users/{colleague.user_id}/disable", data={"csrf_token": token})
    assert r.status_code == 403 and "Read-only access" in r.text
    with store(portal).session(read_only=True) as s:
        assert accounts.get_user(s, colleague.user_id).disabled_at is None  # type: ignore[union-attr]


def test_a_client_admin_disables_a_user_of_their_client(portal: dict[str, Any]) -> None:
    admin, secret = add(portal, "client_admin", CLIENT_A)
    colleague, _ = add(portal, "staff", CLIENT_A)
    browser = sign_in(portal, admin.email, secret)
    page = browser.get(f"{PREFIX}/c/{CLIENT_A}/users")
    assert page.status_code == 200 and colleague.email in page.text
    r = browser.post(f"{PREFIX}/c/{CLIENT_A}/users/{colleague.user_id}/disable", data={"csrf_token": csrf(page.text)})
    assert r.status_code == 200
    with store(portal).session(read_only=True) as s:
        assert accounts.get_user(s, colleague.user_id).disabled_at is not None  # type: ignore[union-attr]
        rows = query(s, client_id=CLIENT_A, user=admin.email, action="portal_user_disabled")
    assert [r.subject for r in rows] == [colleague.email]


@pytest.mark.parametrize("token", [None, "forged", "from-another-browser"])
def test_a_post_without_the_right_csrf_token_is_refused_and_changes_nothing(
    portal: dict[str, Any], token: str | None
) -> None:
    admin, secret = add(portal, "client_admin", CLIENT_A)
    colleague, _ = add(portal, "staff", CLIENT_A)
    browser = sign_in(portal, admin.email, secret)
    if token == "from-another-browser":
        token = csrf(TestClient(portal["app"], base_url="http://127.0.0.1").get(f"{PREFIX}/login").text)
    r = browser.post(f"{PREFIX}/c/{CLIENT_A}/users/{colleague.user_id}/disable",
                     data={} if token is None else {"csrf_token": token})  # fmt: skip
    assert r.status_code == 403 and "This form has expired" in r.text and "Nothing was changed" in r.text
    with store(portal).session(read_only=True) as s:
        assert accounts.get_user(s, colleague.user_id).disabled_at is None  # type: ignore[union-attr]
    fresh = TestClient(portal["app"], base_url="http://127.0.0.1")
    r = fresh.post(f"{PREFIX}/login", data={"email": admin.email, "password": PASSWORD})
    assert r.status_code == 403 and "herald_session" not in fresh.cookies


def test_sign_in_rotates_the_session_and_audits_the_login_and_the_view(portal: dict[str, Any]) -> None:
    user, secret = add(portal, "staff", CLIENT_A)
    browser = TestClient(portal["app"], base_url="http://127.0.0.1")
    token = csrf(browser.get(f"{PREFIX}/login").text)
    r = browser.post(f"{PREFIX}/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token,
                                              "next": "https://evil.example/"}, follow_redirects=False)  # fmt: skip
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/app" in cookie
    pending_session = browser.cookies["herald_session"]
    assert browser.get(f"{PREFIX}/c/{CLIENT_A}/", follow_redirects=False).status_code == 303  # 2FA still owed
    page = browser.get(f"{PREFIX}/login/2fa")
    r = browser.post(f"{PREFIX}/login/2fa", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf(page.text),
                                                  "next": "//evil.example/x"}, follow_redirects=False)  # fmt: skip
    assert r.headers["location"] == f"{PREFIX}/c/{CLIENT_A}/"  # never to another host
    assert browser.cookies["herald_session"] != pending_session
    # the session planted before the second factor is worth nothing now (no fixation)
    stale = TestClient(portal["app"], base_url="http://127.0.0.1", cookies={"herald_session": pending_session})
    assert stale.get(f"{PREFIX}/c/{CLIENT_A}/", follow_redirects=False).status_code == 303
    assert browser.get(f"{PREFIX}/c/{CLIENT_A}/").status_code == 200
    with store(portal).session(read_only=True) as s:
        rows = query(s, user=user.email)
    assert [(r.action, r.client_id) for r in rows][:2] == [("portal_view", CLIENT_A), ("portal_login", CLIENT_A)]
    assert rows[0].subject == f"{PREFIX}/c/{CLIENT_A}/" and rows[0].actor == f"portal:{user.email}"
    # signing out ends the session on the server
    token = csrf(browser.get(f"{PREFIX}/c/{CLIENT_A}/").text)
    session = browser.cookies["herald_session"]
    browser.post(f"{PREFIX}/logout", data={"csrf_token": token})
    replay = TestClient(portal["app"], base_url="http://127.0.0.1", cookies={"herald_session": session})
    assert replay.get(f"{PREFIX}/c/{CLIENT_A}/", follow_redirects=False).status_code == 303


def test_repeated_wrong_passwords_lock_the_account_and_are_audited(portal: dict[str, Any]) -> None:
    user, _ = add(portal, "viewer", CLIENT_A)
    browser = TestClient(portal["app"], base_url="http://127.0.0.1")
    for _ in range(accounts.MAX_FAILED_ATTEMPTS):
        token = csrf(browser.get(f"{PREFIX}/login").text)
        r = browser.post(
            f"{PREFIX}/login", data={"email": user.email, "password": "not the password", "csrf_token": token}
        )
        assert r.status_code == 401 and "wrong, or the account is locked" in r.text
    token = csrf(browser.get(f"{PREFIX}/login").text)
    r = browser.post(f"{PREFIX}/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 401  # the right password, but locked
    with store(portal).session(read_only=True) as s:
        actions = [r.action for r in query(s, user=user.email)]
    assert actions.count("portal_login_failed") == accounts.MAX_FAILED_ATTEMPTS + 1
    assert actions.count("portal_lockout") == 1


def test_a_password_is_reset_through_the_emailed_link_once(portal: dict[str, Any]) -> None:
    user, secret = add(portal, "staff", CLIENT_A)
    browser = TestClient(portal["app"], base_url="http://127.0.0.1")
    token = csrf(browser.get(f"{PREFIX}/forgot").text)
    r = browser.post(f"{PREFIX}/forgot", data={"email": user.email.upper(), "csrf_token": token})
    assert r.status_code == 200 and "If a portal account uses that address" in r.text
    journal = [json.loads(line) for line in (portal["home"] / "sandbox" / "email.jsonl").read_text().splitlines()]
    mail = [m for m in journal if m["to"] == user.email[0] + "•••@example.com"][-1]
    link = re.search(r"http://127\.0\.0\.1:8000(/app/reset/\S+)", mail["text"]).group(1)  # type: ignore[union-attr]
    page = browser.get(link)
    assert page.status_code == 200 and "Choose a new password" in page.text
    data = {"password": "my new long password", "confirm": "my new long password", "csrf_token": csrf(page.text)}
    assert "Password changed" in browser.post(link, data=data).text
    again = browser.post(link, data={**data, "csrf_token": csrf(browser.get(f"{PREFIX}/login").text)})
    assert again.status_code == 400 and "not valid any more" in again.text
    assert browser.get(link[:-3] + "xyz").status_code == 400  # a changed link
    with store(portal).session(read_only=True) as s:
        assert accounts.check_password(s, user.email, "my new long password").user is not None
        actions = [r.action for r in query(s, user=user.email)]
    assert "portal_password_reset" in actions and "portal_reset_requested" in actions
    del secret


def test_an_unknown_email_gets_the_same_answer_and_no_email(portal: dict[str, Any]) -> None:
    browser = TestClient(portal["app"], base_url="http://127.0.0.1")
    journal = portal["home"] / "sandbox" / "email.jsonl"
    before = journal.read_text() if journal.exists() else ""
    r = browser.post(f"{PREFIX}/forgot", data={"email": "nobody@example.com",
                                               "csrf_token": csrf(browser.get(f"{PREFIX}/forgot").text)})  # fmt: skip
    assert r.status_code == 200 and "If a portal account uses that address" in r.text
    assert (journal.read_text() if journal.exists() else "") == before


def test_hostile_text_is_shown_escaped(portal: dict[str, Any]) -> None:
    admin, secret = add(portal, "client_admin", CLIENT_A)
    add(portal, "viewer", CLIENT_A, email="<script>alert(1)</script>@example.com")
    page = sign_in(portal, admin.email, secret).get(f"{PREFIX}/c/{CLIENT_A}/users").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;@example.com" in page


def test_the_api_docs_and_htmx_are_served_locally(portal: dict[str, Any]) -> None:
    browser = TestClient(portal["app"], base_url="http://127.0.0.1")
    docs = browser.get("/docs").text
    assets = re.findall(r"""(?:src|href)=["']?([^"' >]+)""", docs)
    assert assets and all(a.startswith(("/static/", "/openapi.json")) for a in assets), assets
    assert "cdn" not in docs.lower()
    for asset in [*assets, "/static/htmx.min.js"]:
        assert browser.get(asset).status_code == 200, asset
    assert "openapi" in browser.get("/openapi.json").json()


def test_the_dashboard_reads_the_last_snapshot_while_another_process_holds_the_warehouse(tmp_path: Path) -> None:
    """No warehouse yet: "not computed". A run holding the file before any snapshot exists: the
    page says a run is updating it (after a short wait), never fails. Once a run published a
    snapshot, a run holding the file changes nothing: the figures come from the snapshot."""
    import subprocess
    import sys

    from herald.portal.dashboard import read_dashboard
    from herald.portal.reads import PortalReader, publish_snapshot

    settings = Settings.from_env({"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR)})
    assert read_dashboard(settings, CLIENT_A, PortalReader(settings.warehouse)).reason == (
        "the figures have not been computed yet"  # no file yet
    )
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        s.execute("create table analytics.client_dashboard as select ? as client_id, 'Bright Smiles Dental' as "
                  "client_name, timestamp '2026-12-07 08:00:00' as as_of_at, true as is_metered, 12.5 as "
                  "credit_balance, 1 as delivered_24h, 2 as delivered_3d, 3 as delivered_7d, 4 as delivered_30d, "
                  "0 as failed_30d, 1.0 as delivery_rate_30d, 1 as replied_30d, 25.0 as response_pct_30d, "
                  "0 as opt_outs_30d, 0 as credit_alerts_30d, null::timestamp as last_credit_alert_at",
                  [CLIENT_A])  # fmt: skip

    def hold() -> subprocess.Popen:
        holder = subprocess.Popen(
            [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', "
             "flush=True); time.sleep(30)", str(settings.warehouse.duckdb_path)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        return holder

    holder = hold()
    try:
        board = read_dashboard(settings, CLIENT_A, PortalReader(settings.warehouse))
    finally:
        holder.kill()
        holder.wait(10)
    assert (board.available, board.reason) == (False, "a run is updating the warehouse")

    publish_snapshot(settings.warehouse)  # what a run's dbt build does at its end
    holder = hold()
    try:
        board = read_dashboard(settings, CLIENT_A, PortalReader(settings.warehouse))
    finally:
        holder.kill()
        holder.wait(10)
    assert board.available and board.figures is not None
    assert (board.figures["delivered_30d"], float(board.figures["credit_balance"])) == (4, 12.5)


@pytest.mark.postgres
def test_sign_in_and_the_dashboard_on_postgresql(pg_database_factory: Any, tmp_path: Path) -> None:
    """The same sign-in and dashboard over PostgreSQL: accounts, sessions and audit rows in its
    herald_ops, the figures read from its analytics.client_dashboard (a hand-made row here; the
    browser test reads the one dbt builds)."""
    from decimal import Decimal

    from herald.portal.dashboard import FIGURES

    env = {"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_SECRET_KEY": "pg-secret",
           "HERALD_WAREHOUSE_URL": pg_database_factory()}  # fmt: skip
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    figures = {"client_id": CLIENT_A, "client_name": "Bright Smiles Dental", "as_of_at": "2026-12-07 08:00:00",
               "is_metered": True, "credit_balance": Decimal("1234.5"), "delivered_24h": 7, "delivered_3d": 19,
               "delivered_7d": 40, "delivered_30d": 120, "failed_30d": 3, "delivery_rate_30d": 0.97,
               "replied_30d": 30, "response_pct_30d": Decimal("25.0"), "opt_outs_30d": 2, "credit_alerts_30d": 0,
               "last_credit_alert_at": None}  # fmt: skip
    types = {
        "as_of_at": "timestamp",
        "is_metered": "boolean",
        "credit_balance": "decimal(18, 4)",
        "delivery_rate_30d": "float8",
        "response_pct_30d": "numeric",
        "last_credit_alert_at": "timestamp",
    }
    with warehouse.session() as s:
        s.execute("create table analytics.client_dashboard ("
                  + ", ".join(f"{c} {types.get(c, 'varchar' if c.startswith('client') else 'bigint')}" for c in FIGURES)
                  + ")")  # fmt: skip
        s.execute(f"insert into analytics.client_dashboard values ({', '.join('?' * len(FIGURES))})",
                  [figures[c] for c in FIGURES])  # fmt: skip
    portal = {"app": create_app(settings, environ=env), "warehouse": warehouse}
    user, secret = add(portal, "viewer", CLIENT_A)
    page = sign_in(portal, user.email, secret).get(f"{PREFIX}/c/{CLIENT_A}/").text
    shown = dict(re.findall(r'data-figure="(\w+)">([^<]+)<', page))
    assert shown == {"credit_balance": "1,234.50", "delivered_24h": "7", "delivered_3d": "19", "delivered_7d": "40",
                     "delivered_30d": "120", "response_pct_30d": "25.0%", "opt_outs_30d": "2", "failed_30d": "3"}  # fmt: skip
    assert "Figures as of 2026-12-07 08:00 UTC" in page and "Low credit" not in page
    with warehouse.session(read_only=True) as s:
        assert [r.action for r in query(s, user=user.email)] == ["portal_view", "portal_view", "portal_login"]


def test_a_phone_s_code_works_when_a_demo_shifted_the_business_clock(
    portal: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`herald demo` moves Herald's business clock; sign-in, sessions and the audit keep real time."""
    monkeypatch.setenv("HERALD_CLOCK_OFFSET", str(3 * 86400))
    user, secret = add(portal, "staff", CLIENT_A)
    assert sign_in(portal, user.email, secret).get(f"{PREFIX}/c/{CLIENT_A}/").status_code == 200
    with store(portal).session(read_only=True) as s:
        [login] = query(s, user=user.email, action="portal_login")
    assert abs((login.occurred_at - realnow()).total_seconds()) < 600
