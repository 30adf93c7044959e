"""Placeholder: number 0008 is reserved for another branch (the portal's inbox); drop this file at the merge.

The runner refuses a gap in the numbers, so this branch's 0009 needs an 0008 to run. It changes nothing.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    return None
