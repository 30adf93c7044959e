"""Provider failover: one circuit breaker row per provider account a client fails over from.

``herald_ops.provider_circuits`` is shared by every delivery run (on PostgreSQL, several workers
at once): state closed | open | half_open, the consecutive transient errors, when it opened, and
the one probe call allowed through while half open. New table, no existing rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.provider_circuits (
            provider varchar not null,
            state varchar not null,
            consecutive_failures bigint not null,
            opened_at timestamp,
            probe_token varchar,
            probe_started_at timestamp,
            last_error_code varchar,
            updated_at timestamp not null,
            primary key (provider)
        )"""
    )
