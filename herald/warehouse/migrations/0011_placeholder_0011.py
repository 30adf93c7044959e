"""Placeholder: this number is reserved for another helper's branch (preferences uses 0012); drop it at merge.

It changes nothing, so the numbers stay without gaps on this branch.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    return None
