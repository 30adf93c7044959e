"""Privacy rights: one row per access-export or erasure request, and the deployment's erasure salt.

``herald_ops.privacy_requests`` records each request (from the CLI or the ingest API) with who
asked, when, its outcome and the row counts per table, never the person's data: the contact is
named by a salted hash. ``herald_ops.privacy_salt`` holds the one random salt the hashed
suppressions of erased addresses are made with (written by the first erasure, herald/privacy).
New tables, no existing rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.privacy_requests (
            request_id varchar not null,
            client_id varchar not null,
            kind varchar not null,
            subject_hash varchar not null,
            requested_by varchar not null,
            source varchar not null,
            status varchar not null,
            requested_at timestamp not null,
            completed_at timestamp,
            counts varchar,
            message varchar,
            primary key (request_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.privacy_salt (
            salt varchar not null,
            created_at timestamp not null,
            primary key (salt)
        )"""
    )
