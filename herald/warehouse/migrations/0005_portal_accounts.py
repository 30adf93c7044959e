"""Portal accounts: users with roles and 2FA, their recovery codes, reset links and sessions.

``herald_ops.portal_users`` (one row per person who signs in to the portal under /app),
``portal_recovery_codes`` (hashed one-time codes), ``portal_reset_tokens`` (one row per emailed
password-reset link: when it expires, when it was used) and ``portal_sessions`` (one row per
signed-in browser, keyed by a hash of its cookie). New tables, no existing rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.portal_users (
            user_id varchar not null,
            email varchar not null,
            display_name varchar,
            role varchar not null,
            client_id varchar,
            hide_contact_details boolean not null,
            password_hash varchar not null,
            totp_secret varchar,
            totp_enabled_at timestamp,
            totp_last_step bigint,
            failed_attempts bigint not null,
            locked_until timestamp,
            disabled_at timestamp,
            password_changed_at timestamp not null,
            last_login_at timestamp,
            created_at timestamp not null,
            updated_at timestamp not null,
            primary key (user_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.portal_recovery_codes (
            user_id varchar not null,
            code_hash varchar not null,
            created_at timestamp not null,
            used_at timestamp,
            primary key (user_id, code_hash)
        )"""
    )
    s.execute(
        """
        create table herald_ops.portal_reset_tokens (
            token_id varchar not null,
            user_id varchar not null,
            created_at timestamp not null,
            expires_at timestamp not null,
            used_at timestamp,
            primary key (token_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.portal_sessions (
            session_hash varchar not null,
            user_id varchar not null,
            stage varchar not null,
            created_at timestamp not null,
            expires_at timestamp not null,
            primary key (session_hash)
        )"""
    )
