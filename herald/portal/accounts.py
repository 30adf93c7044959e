"""Portal accounts: users and roles, argon2 passwords, TOTP two-factor with recovery codes,
lockout, password-reset links and server-side sessions, over ``herald_ops.portal_*``.

Every function takes a :class:`~herald.warehouse.connection.Session` on the portal's store
(:mod:`herald.portal.store`: the warehouse on PostgreSQL, the portal's own SQLite file beside the
embedded DuckDB), so a change and its audit row (:mod:`herald.portal.audit`) commit together or
not at all. Secrets never leave this module in clear except once, to the person they belong to:
the TOTP secret at enrollment, the recovery codes when they are made, the reset link in its
email, the session id in its cookie. The store keeps only hashes of the codes, tokens and
session ids.

Roles: ``operator`` sees every client (``client_id`` is null); ``client_admin`` manages the users
of its client; ``staff`` works the inbox, contacts and campaigns of its client (optionally with
contact details hidden); ``viewer`` reads only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from herald.clock import realnow
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

USERS = f"{OPS_SCHEMA}.portal_users"
RECOVERY_CODES = f"{OPS_SCHEMA}.portal_recovery_codes"
RESET_TOKENS = f"{OPS_SCHEMA}.portal_reset_tokens"
SESSIONS = f"{OPS_SCHEMA}.portal_sessions"
_USER_COLUMNS = column_names(USERS)

OPERATOR, CLIENT_ADMIN, STAFF, VIEWER = "operator", "client_admin", "staff", "viewer"
ROLES = (OPERATOR, CLIENT_ADMIN, STAFF, VIEWER)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but a megabyte password is an attack
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
RESET_TTL = timedelta(minutes=30)
SESSION_TTL = timedelta(hours=12)
PENDING_SESSION_TTL = timedelta(minutes=10)  # after the password, before the second factor
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "Herald"
STAGE_PASSWORD, STAGE_FULL = "password", "full"
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_hasher = PasswordHasher()
# verified against when the email is unknown, so a wrong email costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A request about an account that cannot be done; the message is safe to show its user."""


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    display_name: str | None
    role: str
    client_id: str | None
    hide_contact_details: bool
    password_hash: str
    totp_secret: str | None
    totp_enabled_at: datetime | None
    totp_last_step: int | None
    failed_attempts: int
    locked_until: datetime | None
    disabled_at: datetime | None
    password_changed_at: datetime
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def has_2fa(self) -> bool:
        return self.totp_secret is not None and self.totp_enabled_at is not None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def can_see(self, client_id: str) -> bool:
        """Whether this user may see anything of ``client_id`` (the server-side client scope)."""
        return self.role == OPERATOR or self.client_id == client_id

    @property
    def can_act(self) -> bool:
        """A viewer only reads."""
        return self.role != VIEWER


def _now(now: datetime | None) -> datetime:
    # real time, never the business clock ``herald demo`` shifts: an authenticator app, a
    # lockout, a session's and a reset link's expiry all live in real time
    return now or realnow()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- passwords -------------------------------------------------------------------------------


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- users -----------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    if not EMAIL_PATTERN.match(value) or len(value) > 254:
        raise AccountError("the email address is not valid")
    return value


def _user(row: tuple[Any, ...]) -> User:
    values = dict(zip(_USER_COLUMNS, row, strict=True))
    values["hide_contact_details"] = bool(values["hide_contact_details"])
    values["failed_attempts"] = int(values["failed_attempts"] or 0)
    return User(**values)


def _select(where: str) -> str:
    return f"select {', '.join(_USER_COLUMNS)} from {USERS} where {where}"


def get_user(session: Session, user_id: str) -> User | None:
    _, rows = session.query(_select("user_id = ?"), [user_id])
    return _user(rows[0]) if rows else None


def find_user(session: Session, email: str) -> User | None:
    _, rows = session.query(_select("email = ?"), [email.strip().lower()])
    return _user(rows[0]) if rows else None


def list_users(session: Session, client_id: str | None = None) -> list[User]:
    if client_id is None:
        _, rows = session.query(_select("true") + " order by client_id nulls first, email")
    else:
        _, rows = session.query(_select("client_id = ?") + " order by email", [client_id])
    return [_user(r) for r in rows]


def add_user(
    session: Session,
    email: str,
    password: str,
    role: str,
    client_id: str | None,
    *,
    display_name: str | None = None,
    hide_contact_details: bool = False,
    now: datetime | None = None,
) -> User:
    """Adds a user (2FA is enrolled at the first sign-in). Raises :class:`AccountError` for a
    bad role, a missing or needless client, a taken email or a weak password."""
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == OPERATOR and client_id:
        raise AccountError("an operator sees every client: give no client")
    if role != OPERATOR and not client_id:
        raise AccountError(f"a {role} belongs to one client: give the client")
    if hide_contact_details and role != STAFF:
        raise AccountError("hiding contact details applies to staff only")
    address = normalise_email(email)
    if find_user(session, address) is not None:
        raise AccountError(f"a portal user with the email {address} already exists")
    at = _now(now)
    values = {
        "user_id": uuid.uuid4().hex, "email": address, "display_name": display_name, "role": role,
        "client_id": client_id or None, "hide_contact_details": hide_contact_details,
        "password_hash": hash_password(password), "totp_secret": None, "totp_enabled_at": None,
        "totp_last_step": None, "failed_attempts": 0, "locked_until": None, "disabled_at": None,
        "password_changed_at": at, "last_login_at": None, "created_at": at, "updated_at": at,
    }  # fmt: skip
    session.execute(
        f"insert into {USERS} ({', '.join(_USER_COLUMNS)}) values ({', '.join('?' * len(_USER_COLUMNS))})",
        [values[c] for c in _USER_COLUMNS],
    )
    return User(**values)


def disable_user(session: Session, user_id: str, now: datetime | None = None) -> None:
    """Disables the user and ends every session of theirs."""
    at = _now(now)
    session.execute(f"update {USERS} set disabled_at = ?, updated_at = ? where user_id = ?", [at, at, user_id])
    end_sessions(session, user_id)


def reset_2fa(session: Session, user_id: str, now: datetime | None = None) -> None:
    """Forgets the user's TOTP secret and recovery codes (they enroll again at the next sign-in)
    and ends their sessions."""
    at = _now(now)
    session.execute(
        f"update {USERS} set totp_secret = null, totp_enabled_at = null, totp_last_step = null, updated_at = ? "
        "where user_id = ?",
        [at, user_id],
    )
    session.execute(f"delete from {RECOVERY_CODES} where user_id = ?", [user_id])
    end_sessions(session, user_id)


# --- signing in: password, lockout -----------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What a sign-in step found. ``user`` is set when it succeeded; ``locked`` when this
    attempt (or an earlier one) locked the account; ``known`` whether the email exists."""

    user: User | None
    known: bool
    locked: bool = False
    just_locked: bool = False
    user_id: str | None = None


def _fail(session: Session, user: User, at: datetime) -> Attempt:
    failed = user.failed_attempts + 1
    lock = failed >= MAX_FAILED_ATTEMPTS
    session.execute(
        f"update {USERS} set failed_attempts = ?, locked_until = ?, updated_at = ? where user_id = ?",
        [0 if lock else failed, at + LOCKOUT if lock else user.locked_until, at, user.user_id],
    )
    return Attempt(None, True, locked=lock, just_locked=lock, user_id=user.user_id)


def check_password(session: Session, email: str, password: str, now: datetime | None = None) -> Attempt:
    """The first factor. A wrong password counts towards the lockout; a locked or disabled
    account is refused whatever the password (the same answer as a wrong one)."""
    at = _now(now)
    user = find_user(session, email)
    if user is None:
        password_matches(_DUMMY_HASH, password)
        return Attempt(None, False)
    if user.is_disabled:
        password_matches(_DUMMY_HASH, password)
        return Attempt(None, True, user_id=user.user_id)
    if user.is_locked(at):
        return Attempt(None, True, locked=True, user_id=user.user_id)
    if not password_matches(user.password_hash, password):
        return _fail(session, user, at)
    if _hasher.check_needs_rehash(user.password_hash):
        session.execute(
            f"update {USERS} set password_hash = ? where user_id = ?", [_hasher.hash(password), user.user_id]
        )
    return Attempt(user, True, user_id=user.user_id)


def _succeeded(session: Session, user: User, at: datetime, step: int | None = None) -> User:
    session.execute(
        f"update {USERS} set failed_attempts = 0, locked_until = null, last_login_at = ?, updated_at = ?, "
        "totp_last_step = coalesce(?, totp_last_step) where user_id = ?",
        [at, at, step, user.user_id],
    )
    return get_user(session, user.user_id) or user


# --- TOTP and recovery codes -----------------------------------------------------------------


def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (no network, no image file)."""
    import io

    import segno

    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False, svgns=True,
                                     title="Scan with your authenticator app")  # fmt: skip
    return buffer.getvalue().decode()


def totp_step(secret: str, code: str, at: datetime, last_step: int | None) -> int | None:
    """The 30-second step ``code`` is valid for (this one or either neighbour, for clock drift),
    or None; a step at or before ``last_step`` is refused, so a code works once."""
    import pyotp

    code = re.sub(r"\s", "", code or "")
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    timestamp = int(at.timestamp()) if at.tzinfo else int((at - datetime(1970, 1, 1)).total_seconds())
    current = timestamp // totp.interval
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            return step
    return None


def _normalise_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def new_recovery_codes(session: Session, user_id: str, now: datetime | None = None) -> list[str]:
    """Replaces the user's recovery codes; returns the new ones (shown once, stored hashed)."""
    at = _now(now)
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODE_COUNT)]
    session.execute(f"delete from {RECOVERY_CODES} where user_id = ?", [user_id])
    for code in codes:
        session.execute(
            f"insert into {RECOVERY_CODES} (user_id, code_hash, created_at, used_at) values (?, ?, ?, null)",
            [user_id, sha256(_normalise_code(code)), at],
        )
    return codes


def enroll_totp(session: Session, user: User, secret: str, code: str, now: datetime | None = None) -> list[str]:
    """Turns 2FA on when ``code`` proves the app holds ``secret``; returns fresh recovery codes."""
    at = _now(now)
    if user.has_2fa:
        raise AccountError("two-factor authentication is already set up")
    step = totp_step(secret, code, at, None)
    if step is None:
        raise AccountError("that code is not right: enter the 6 digits your app shows now")
    session.execute(
        f"update {USERS} set totp_secret = ?, totp_enabled_at = ?, totp_last_step = ?, updated_at = ? where user_id = ?",
        [secret, at, step, at, user.user_id],
    )
    return new_recovery_codes(session, user.user_id, at)


def check_second_factor(
    session: Session, user_id: str, code: str, *, recovery: bool = False, now: datetime | None = None
) -> Attempt:
    """The second factor: a TOTP code, or (``recovery``) an unused recovery code, which is then
    spent. A wrong one counts towards the lockout like a wrong password."""
    at = _now(now)
    user = get_user(session, user_id)
    if user is None or user.is_disabled or not user.has_2fa:
        return Attempt(None, user is not None, user_id=user_id)
    if user.is_locked(at):
        return Attempt(None, True, locked=True, user_id=user_id)
    if recovery:
        code_hash = sha256(_normalise_code(code))
        found = session.scalar(
            f"select count(*) from {RECOVERY_CODES} where user_id = ? and code_hash = ? and used_at is null",
            [user_id, code_hash],
        )
        if not found:
            return _fail(session, user, at)
        session.execute(
            f"update {RECOVERY_CODES} set used_at = ? where user_id = ? and code_hash = ?", [at, user_id, code_hash]
        )
        return Attempt(_succeeded(session, user, at), True, user_id=user_id)
    assert user.totp_secret is not None
    step = totp_step(user.totp_secret, code, at, user.totp_last_step)
    if step is None:
        return _fail(session, user, at)
    return Attempt(_succeeded(session, user, at, step), True, user_id=user_id)


def recovery_codes_left(session: Session, user_id: str) -> int:
    return int(
        session.scalar(f"select count(*) from {RECOVERY_CODES} where user_id = ? and used_at is null", [user_id]) or 0
    )


# --- sessions --------------------------------------------------------------------------------


def start_session(session: Session, user_id: str, stage: str, now: datetime | None = None) -> str:
    """A new session id (for the cookie; only its hash is stored). Each stage of a sign-in gets
    a new id, so an id planted before it (session fixation) is worth nothing after."""
    at = _now(now)
    session_id = secrets.token_urlsafe(32)
    ttl = SESSION_TTL if stage == STAGE_FULL else PENDING_SESSION_TTL
    session.execute(
        f"insert into {SESSIONS} (session_hash, user_id, stage, created_at, expires_at) values (?, ?, ?, ?, ?)",
        [sha256(session_id), user_id, stage, at, at + ttl],
    )
    return session_id


def end_session(session: Session, session_id: str) -> None:
    session.execute(f"delete from {SESSIONS} where session_hash = ?", [sha256(session_id)])


def end_sessions(session: Session, user_id: str) -> None:
    session.execute(f"delete from {SESSIONS} where user_id = ?", [user_id])


def session_user(session: Session, session_id: str, now: datetime | None = None) -> tuple[User, str] | None:
    """The user and stage of a live session; None when it is unknown, expired, or its user is
    disabled."""
    at = _now(now)
    _, rows = session.query(
        f"select user_id, stage from {SESSIONS} where session_hash = ? and expires_at > ?", [sha256(session_id), at]
    )
    if not rows:
        return None
    user = get_user(session, rows[0][0])
    if user is None or user.is_disabled:
        return None
    return user, rows[0][1]


# --- password reset --------------------------------------------------------------------------


def _serializer(secret: str) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(secret, salt="herald-portal-password-reset")


def create_reset_token(session: Session, secret: str, user: User, now: datetime | None = None) -> str:
    """A signed token for the reset link; its id is recorded, so it works once and expires."""
    at = _now(now)
    token_id = secrets.token_urlsafe(16)
    session.execute(
        f"insert into {RESET_TOKENS} (token_id, user_id, created_at, expires_at, used_at) values (?, ?, ?, ?, null)",
        [token_id, user.user_id, at, at + RESET_TTL],
    )
    return _serializer(secret).dumps({"t": token_id})


def reset_token_user(session: Session, secret: str, token: str, now: datetime | None = None) -> tuple[str, User]:
    """The token id and user of an untouched, unexpired, unused reset token; raises
    :class:`AccountError` otherwise (one message for forged, expired and used: none tells more)."""
    from itsdangerous import BadSignature

    at = _now(now)
    invalid = AccountError("this reset link is not valid any more: ask for a new one")
    try:
        data = _serializer(secret).loads(token)
    except BadSignature as exc:
        raise invalid from exc
    token_id = data.get("t") if isinstance(data, dict) else None
    if not isinstance(token_id, str):
        raise invalid
    _, rows = session.query(f"select user_id, expires_at, used_at from {RESET_TOKENS} where token_id = ?", [token_id])
    if not rows or rows[0][2] is not None or rows[0][1] <= at:
        raise invalid
    user = get_user(session, rows[0][0])
    if user is None or user.is_disabled:
        raise invalid
    return token_id, user


def reset_password(session: Session, secret: str, token: str, new_password: str, now: datetime | None = None) -> User:
    """Sets the new password through a reset token, spends it (and every other open token of the
    user), clears the lockout and ends the user's sessions. 2FA stays as it was."""
    at = _now(now)
    _, user = reset_token_user(session, secret, token, at)
    password_hash = hash_password(new_password)
    session.execute(
        f"update {USERS} set password_hash = ?, password_changed_at = ?, failed_attempts = 0, locked_until = null, "
        "updated_at = ? where user_id = ?",
        [password_hash, at, at, user.user_id],
    )
    session.execute(f"update {RESET_TOKENS} set used_at = ? where user_id = ? and used_at is null", [at, user.user_id])
    end_sessions(session, user.user_id)
    return get_user(session, user.user_id) or user
