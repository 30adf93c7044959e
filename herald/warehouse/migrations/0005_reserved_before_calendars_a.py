"""Placeholder for migration 0005, reserved for another branch (calendars uses 0008); drop this file at merge.

It changes nothing: it only keeps the numbering without a gap on the calendars branch.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    return None
