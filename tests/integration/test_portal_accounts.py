"""Portal accounts on both engines (herald_ops.portal_*): argon2 passwords, the lockout, TOTP
with a code working once, recovery codes spent once, reset tokens that expire, work once and
refuse forgeries, sessions that end. One warehouse per engine for the module; each test uses its
own users."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher

from herald.portal import accounts
from herald.portal.accounts import AccountError
from herald.settings import parse_warehouse_url
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

NOW = datetime(2026, 12, 7, 9, 0, 0)
PASSWORD = "correct horse battery"
SECRET = "test-secret-key"


@pytest.fixture(autouse=True, scope="module")
def cheap_argon2() -> Iterator[None]:
    """Real argon2id with small costs: the product's (64 MiB, 3 passes) take ~0.5 s a hash on this
    shared machine; one test checks the product's parameters on a hash made with them."""
    product = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    accounts._hasher = product


def test_the_product_hashes_with_argon2id_at_64_mib_and_3_passes() -> None:
    from argon2 import extract_parameters

    params = extract_parameters(PasswordHasher().hash(PASSWORD))
    assert (params.type.name, params.memory_cost, params.time_cost) == ("ID", 65536, 3)
    assert accounts._DUMMY_HASH.startswith("$argon2id$v=19$m=65536,t=3")


@pytest.fixture(scope="module", params=ENGINES)
def wh(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    tmp: Path = tmp_path_factory.mktemp(f"portal-{request.param}")
    url = request.getfixturevalue("pg_database_factory")() if request.param == "postgres" else ""
    warehouse = Warehouse(parse_warehouse_url(url, tmp))
    warehouse.ensure_schema()
    yield warehouse


def new_user(wh: Warehouse, role: str = accounts.STAFF, client: str | None = "clinic", **kw: object) -> accounts.User:
    with wh.session() as s:
        return accounts.add_user(s, f"{uuid.uuid4().hex[:8]}@Example.com", PASSWORD, role, client, now=NOW, **kw)


def enrolled(wh: Warehouse) -> tuple[accounts.User, str, list[str]]:
    user = new_user(wh)
    secret = pyotp.random_base32()
    with wh.session() as s:
        codes = accounts.enroll_totp(s, user, secret, pyotp.TOTP(secret).at(NOW), now=NOW)
    return user, secret, codes


def test_a_password_is_stored_as_an_argon2_hash_and_checked(wh: Warehouse) -> None:
    user = new_user(wh)
    assert user.email == user.email.lower()
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    with wh.session() as s:
        assert accounts.check_password(s, user.email.upper(), PASSWORD, now=NOW).user is not None
        wrong = accounts.check_password(s, user.email, PASSWORD + "!", now=NOW)
        unknown = accounts.check_password(s, "nobody@example.com", PASSWORD, now=NOW)
    assert (wrong.user, wrong.known) == (None, True)
    assert (unknown.user, unknown.known) == (None, False)


@pytest.mark.parametrize(
    ("role", "client", "message"),
    [
        ("admin", "clinic", "the role must be one of operator, client_admin, staff, viewer"),
        ("operator", "clinic", "an operator sees every client"),
        ("viewer", None, "a viewer belongs to one client"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason(wh: Warehouse, role: str, client: str | None, message: str) -> None:
    with pytest.raises(AccountError, match=message), wh.session() as s:
        accounts.add_user(s, "bad@example.com", PASSWORD, role, client, now=NOW)


def test_weak_passwords_and_taken_emails_are_refused(wh: Warehouse) -> None:
    user = new_user(wh)
    with pytest.raises(AccountError, match="at least 12 characters"), wh.session() as s:
        accounts.add_user(s, "short@example.com", "short", "viewer", "clinic")
    with pytest.raises(AccountError, match="already exists"), wh.session() as s:
        accounts.add_user(s, user.email, PASSWORD, "viewer", "clinic")
    with wh.session(read_only=True) as s:
        assert accounts.find_user(s, "short@example.com") is None


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(wh: Warehouse) -> None:
    user = new_user(wh)
    with wh.session() as s:
        results = [accounts.check_password(s, user.email, "wrong password!", now=NOW) for _ in range(5)]
        assert [r.just_locked for r in results] == [False, False, False, False, True]
        # locked: even the right password is refused until the period ends
        assert accounts.check_password(s, user.email, PASSWORD, now=NOW + timedelta(minutes=14)).locked
        assert accounts.check_password(s, user.email, PASSWORD, now=NOW + timedelta(minutes=16)).user is not None
        assert accounts.get_user(s, user.user_id).failed_attempts == 0  # type: ignore[union-attr]


def test_a_totp_code_signs_in_once_and_a_wrong_one_counts_as_a_failure(wh: Warehouse) -> None:
    user, secret, _ = enrolled(wh)
    later = NOW + timedelta(seconds=60)
    code = pyotp.TOTP(secret).at(later)
    with wh.session() as s:
        assert accounts.check_second_factor(s, user.user_id, code, now=later).user is not None
        assert accounts.check_second_factor(s, user.user_id, code, now=later).user is None  # replayed
        assert accounts.check_second_factor(s, user.user_id, "000000" if code != "000000" else "111111",
                                            now=later + timedelta(seconds=30)).user is None  # fmt: skip
        assert accounts.get_user(s, user.user_id).failed_attempts == 2  # type: ignore[union-attr]
    with pytest.raises(AccountError, match="not right"), wh.session() as s:
        accounts.enroll_totp(s, new_user(wh), secret, "123456" if code != "123456" else "654321", now=NOW)


def test_recovery_codes_are_stored_hashed_and_work_once(wh: Warehouse) -> None:
    user, _, codes = enrolled(wh)
    assert len(codes) == accounts.RECOVERY_CODE_COUNT == len(set(codes))
    with wh.session() as s:
        stored = [r[0] for r in s.query("select code_hash from herald_ops.portal_recovery_codes where user_id = ?",
                                        [user.user_id])[1]]  # fmt: skip
        assert not set(codes) & set(stored) and len(stored) == len(codes)
        assert accounts.check_second_factor(s, user.user_id, codes[3].upper(), recovery=True, now=NOW).user is not None
        assert accounts.check_second_factor(s, user.user_id, codes[3], recovery=True, now=NOW).user is None
        assert accounts.recovery_codes_left(s, user.user_id) == len(codes) - 1


def test_a_reset_token_expires_works_once_and_refuses_forgeries(wh: Warehouse) -> None:
    user = new_user(wh)
    with wh.session() as s:
        token = accounts.create_reset_token(s, SECRET, user, now=NOW)
        expired = accounts.create_reset_token(s, SECRET, user, now=NOW - timedelta(minutes=31))
        session_id = accounts.start_session(s, user.user_id, accounts.STAGE_FULL, now=NOW)
    invalid = "this reset link is not valid any more"
    for bad, secret in ((expired, SECRET), (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), SECRET),
                        (token, "another-key")):  # fmt: skip
        with pytest.raises(AccountError, match=invalid), wh.session() as s:
            accounts.reset_password(s, secret, bad, "a brand new password", now=NOW)
    with wh.session() as s:
        accounts.reset_password(s, SECRET, token, "a brand new password", now=NOW + timedelta(minutes=29))
        assert accounts.check_password(s, user.email, "a brand new password", now=NOW).user is not None
        assert accounts.session_user(s, session_id, now=NOW) is None  # the old sessions are ended
    with pytest.raises(AccountError, match=invalid), wh.session() as s:
        accounts.reset_password(s, SECRET, token, "yet another password", now=NOW + timedelta(minutes=29))


def test_sessions_expire_and_end_when_the_user_is_disabled(wh: Warehouse) -> None:
    user = new_user(wh)
    with wh.session() as s:
        session_id = accounts.start_session(s, user.user_id, accounts.STAGE_FULL, now=NOW)
        found = accounts.session_user(s, session_id, now=NOW + timedelta(hours=1))
        assert found is not None and found[0].user_id == user.user_id and found[1] == "full"
        assert accounts.session_user(s, session_id, now=NOW + accounts.SESSION_TTL) is None
        stored = s.scalar("select session_hash from herald_ops.portal_sessions where user_id = ?", [user.user_id])
        assert stored != session_id
        accounts.disable_user(s, user.user_id, now=NOW)
        assert accounts.session_user(s, session_id, now=NOW) is None
        assert accounts.check_password(s, user.email, PASSWORD, now=NOW).user is None


def test_resetting_2fa_forgets_the_secret_and_the_codes(wh: Warehouse) -> None:
    user, _, _ = enrolled(wh)
    with wh.session() as s:
        accounts.reset_2fa(s, user.user_id, now=NOW)
        after = accounts.get_user(s, user.user_id)
        assert after is not None and not after.has_2fa and after.totp_secret is None
        assert accounts.recovery_codes_left(s, user.user_id) == 0
