"""Consent with proof: consent events gain their expiry and the wording's hash; double opt-ins wait in consent_requests.

``herald_ops.consent_events`` gets ``expires_at`` (when a grant stops counting, from the client's
``consent.expires_after``; existing events never expire, so they stay null) and
``wording_sha256`` (the hash of the disclosure wording agreed to; unknown for existing events).
``herald_ops.consent_requests`` is new: one row per opt-in form submission, pending until the
person confirms by SMS reply or by the email's link.
"""

from __future__ import annotations

from herald.warehouse.connection import Session
from herald.warehouse.migrations.ops import add_column


def upgrade(s: Session) -> None:
    add_column(s, "herald_ops.consent_events", "expires_at", "timestamp")
    add_column(s, "herald_ops.consent_events", "wording_sha256", "varchar")
    s.execute(
        """
        create table herald_ops.consent_requests (
            request_id varchar not null,
            client_id varchar not null,
            channel varchar not null,
            address varchar not null,
            topics varchar not null,
            wording varchar not null,
            wording_sha256 varchar not null,
            ip varchar,
            user_agent varchar,
            page_url varchar,
            requested_at timestamp not null,
            status varchar not null,
            confirm_message_key varchar,
            confirmed_at timestamp,
            confirmation varchar,
            recorded_at timestamp not null,
            primary key (request_id)
        )"""
    )
