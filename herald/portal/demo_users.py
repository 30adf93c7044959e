"""The demo's portal sign-ins: one client admin per example client and one operator, made once
per demo home with a generated password kept in the home (owner-only), so `herald demo` can
print a sign-in for each and a newcomer sees the portal without bootstrapping users by hand.
Two-factor sign-in is set up at the first sign-in, as for any user."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from herald.portal import audit as portal_audit
from herald.portal.accounts import CLIENT_ADMIN, OPERATOR, add_user, find_user
from herald.portal.store import PortalStore
from herald.warehouse.connection import WarehouseTarget

PASSWORD_FILE = "portal_demo_password"
OPERATOR_EMAIL = "operator@example.com"
ACTOR = "demo"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    client_id: str | None
    added: bool  # made by this call (False: it was there already)


def demo_email(client_id: str) -> str:
    return f"admin@{re.sub(r'[^a-z0-9]+', '-', client_id.lower()).strip('-')}.example.com"


def demo_password(home: Path) -> str:
    """The home's demo password: made once (24 random URL-safe characters), then read back."""
    path = home / PASSWORD_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    path.touch(mode=0o600)
    path.write_text(password + "\n", encoding="utf-8")
    return password


def ensure_demo_logins(target: WarehouseTarget, home: Path, client_ids: Iterable[str]) -> list[DemoLogin]:
    """The operator and one client admin per client, each added if missing (idempotent: a second
    demo leaves them, and any password a user changed, alone); every addition audited."""
    password = demo_password(home)
    wanted = [(OPERATOR_EMAIL, OPERATOR, None)] + [(demo_email(c), CLIENT_ADMIN, c) for c in sorted(client_ids)]
    logins = []
    with PortalStore(target).session() as s:
        for email, role, client_id in wanted:
            existing = find_user(s, email)
            if existing is None:
                user = add_user(s, email, password, role, client_id, display_name="Demo " + role.replace("_", " "))
                portal_audit.record(s, ACTOR, portal_audit.USER_ADDED, client_id, user.email, {"role": role})
            logins.append(DemoLogin(email, role, client_id, existing is None))
    return logins
