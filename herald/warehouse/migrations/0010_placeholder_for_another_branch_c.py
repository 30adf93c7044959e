"""Placeholder on the consent-proof branch (the number belongs to another helper's migration; drop this file at merge).

Changes nothing: it keeps the sequence without gaps so that 0011 (consent with proof) applies.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    return None
