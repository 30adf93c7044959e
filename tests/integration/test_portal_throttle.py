"""The per-address throttle on the portal's sign-in and "Forgot your password?" forms (FastAPI's
test client on the real app, a real DuckDB warehouse, the sandbox email journal): failed
sign-ins from one address, over the limit, get a 429 page saying how long to wait, before any
account is looked up (the right password too; no attempt counted against the account, no audit
row, no session); another address is not held up; successful sign-ins do not count; wrong 2FA
codes count; the forgotten-password form sends no email over its limit; a rate that does not
parse stops the app with the variable's name."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from herald.portal import accounts
from herald.portal.audit import query
from herald.settings import Settings, SettingsError
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.portal import PREFIX
from tests.conftest import CONFIG_DIR
from tests.integration.test_portal_web import PASSWORD, add, csrf, store

CLIENT = "bright_smiles_dental"
LOGIN_RATE, FORGOT_RATE = 3, 2
TOO_MANY = re.compile(r"Too many attempts from this address; try again in (\d+) minutes?\.")


def environment(home: Path, **extra: str) -> dict[str, str]:
    return {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_SECRET_KEY": "throttle-secret",
            "HERALD_PUBLIC_URL": "http://127.0.0.1:8000", "HERALD_SANDBOX_RECEIPTS": "off",
            "HERALD_PORTAL_LOGIN_RATE": f"{LOGIN_RATE} per 15 minutes",
            "HERALD_PORTAL_FORGOT_RATE": f"{FORGOT_RATE}/15minutes", **extra}  # fmt: skip


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    product = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # real argon2, cheap
    home = tmp_path_factory.mktemp("portal-throttle")
    env = environment(home)
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    yield {"app": create_app(settings, environ=env), "warehouse": warehouse, "home": home}
    accounts._hasher = product


def browser(portal: dict[str, Any], address: str) -> TestClient:
    return TestClient(portal["app"], base_url="http://127.0.0.1", client=(address, 50000))


def post_login(client: TestClient, email: str, password: str) -> Any:
    token = csrf(client.get(f"{PREFIX}/login").text)
    return client.post(f"{PREFIX}/login", data={"email": email, "password": password, "csrf_token": token},
                       follow_redirects=False)  # fmt: skip


def account(portal: dict[str, Any], user: accounts.User) -> tuple[Any, ...]:
    with store(portal).session(read_only=True) as s:
        _, rows = s.query("select failed_attempts, locked_until from herald_ops.portal_users where user_id = ?",
                          [user.user_id])  # fmt: skip
        return rows[0]


def audit_count(portal: dict[str, Any]) -> int:
    with store(portal).session(read_only=True) as s:
        return len(query(s, limit=100000))


def test_failed_sign_ins_from_one_address_get_a_429_before_any_lookup(portal: dict[str, Any]) -> None:
    user, _ = add(portal, "staff", CLIENT)
    other, _ = add(portal, "staff", CLIENT)
    attacker = browser(portal, "203.0.113.7")
    for n in range(LOGIN_RATE):  # wrong passwords of different accounts (no account reaches its lockout)
        assert post_login(attacker, (user if n % 2 else other).email, "wrong password!!").status_code == 401
    rows, state = audit_count(portal), account(portal, user)
    r = post_login(attacker, user.email, PASSWORD)  # the right password: refused all the same
    assert r.status_code == 429
    found = TOO_MANY.search(r.text)
    assert found and int(found.group(1)) == 15, r.text
    assert "Nothing was changed" in r.text and "herald_session" not in r.headers.get("set-cookie", "")
    assert account(portal, user) == state and audit_count(portal) == rows  # nothing looked up, nothing written
    # another address signs the same account in
    r = post_login(browser(portal, "198.51.100.20"), user.email, PASSWORD)
    assert r.status_code == 303 and r.headers["location"].startswith(f"{PREFIX}/login/2fa")


def test_successful_sign_ins_do_not_count(portal: dict[str, Any]) -> None:
    user, _ = add(portal, "staff", CLIENT)
    office = browser(portal, "192.0.2.44")
    for _ in range(LOGIN_RATE + 2):
        assert post_login(office, user.email, PASSWORD).status_code == 303


def test_wrong_codes_count_and_the_second_step_is_throttled_too(portal: dict[str, Any]) -> None:
    user, secret = add(portal, "staff", CLIENT)
    phone = browser(portal, "192.0.2.99")
    assert post_login(phone, user.email, PASSWORD).status_code == 303
    page = phone.get(f"{PREFIX}/login/2fa")
    for _ in range(LOGIN_RATE):
        r = phone.post(f"{PREFIX}/login/2fa", data={"code": "000000", "csrf_token": csrf(page.text)})
        assert r.status_code == 401
    state = account(portal, user)
    r = phone.post(f"{PREFIX}/login/2fa", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf(page.text)},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 429 and TOO_MANY.search(r.text)
    assert account(portal, user) == state
    assert post_login(phone, user.email, PASSWORD).status_code == 429


def test_the_forgotten_password_form_sends_nothing_over_its_limit(portal: dict[str, Any]) -> None:
    user, _ = add(portal, "staff", CLIENT)
    journal = portal["home"] / "sandbox" / "email.jsonl"

    def sent() -> int:
        lines = journal.read_text().splitlines() if journal.exists() else []
        return sum(1 for line in lines if json.loads(line)["subject"] == "Reset your Herald portal password")

    asker = browser(portal, "203.0.113.50")
    for _ in range(FORGOT_RATE):
        token = csrf(asker.get(f"{PREFIX}/forgot").text)
        assert asker.post(f"{PREFIX}/forgot", data={"email": user.email, "csrf_token": token}).status_code == 200
    before, rows = sent(), audit_count(portal)
    assert before == FORGOT_RATE
    token = csrf(asker.get(f"{PREFIX}/forgot").text)
    r = asker.post(f"{PREFIX}/forgot", data={"email": user.email, "csrf_token": token})
    assert r.status_code == 429 and TOO_MANY.search(r.text)
    assert sent() == before and audit_count(portal) == rows
    # the sign-in form of that address is not affected by its reset requests
    assert post_login(asker, user.email, PASSWORD).status_code == 303


def test_a_rate_that_does_not_parse_stops_the_app_naming_the_variable(tmp_path: Path) -> None:
    env = environment(tmp_path, HERALD_PORTAL_LOGIN_RATE="lots")
    with pytest.raises(SettingsError, match="HERALD_PORTAL_LOGIN_RATE='lots' is not a rate"):
        create_app(Settings.from_env(env), environ=env)


@pytest.mark.redis
def test_two_servers_sharing_redis_share_the_window(portal: dict[str, Any], redis_url: str) -> None:
    """Two ``herald serve`` processes (two apps here) with ``HERALD_RATE_LIMIT_STORAGE`` on Redis:
    failures on one count on the other."""
    env = environment(portal["home"], HERALD_RATE_LIMIT_STORAGE=redis_url)
    first, second = ({"app": create_app(Settings.from_env(env), environ=env)} for _ in range(2))
    user, _ = add(portal, "staff", CLIENT)
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    for n in range(LOGIN_RATE):
        assert post_login(browser(first if n % 2 else second, address), user.email, "wrong!!").status_code == 401
    assert post_login(browser(second, address), user.email, PASSWORD).status_code == 429
    assert post_login(browser(first, address), user.email, PASSWORD).status_code == 429
