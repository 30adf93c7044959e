"""Placeholder for migration 0005, which another branch owns (this branch was given 0006).

It changes nothing; it exists only so the sequence 0001..0006 has no gap on this branch. Drop this
file when merging the branch that brings the real 0005.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    del s  # nothing to do
