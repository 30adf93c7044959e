"""The portal's Inbox: conversation state, read marks, notes and replies, quick replies, the auto-reply override.

``herald_ops.inbox_threads`` (one row per client conversation staff touched: open/closed as
staff set it, and who it is assigned to), ``inbox_reads`` (when each user last read each
conversation), ``inbox_entries`` (internal notes, and the replies sent from the Inbox with their
outbox key), ``inbox_quick_replies`` (a client's reply templates) and ``auto_reply_settings``
(a client admin's override of client.yaml's ``auto_reply``). New tables, no rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.inbox_threads (
            client_id varchar not null,
            conversation_id varchar not null,
            status varchar,
            status_changed_at timestamp,
            status_changed_by varchar,
            assigned_user_id varchar,
            assigned_at timestamp,
            assigned_by varchar,
            updated_at timestamp not null,
            primary key (client_id, conversation_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.inbox_reads (
            client_id varchar not null,
            conversation_id varchar not null,
            user_id varchar not null,
            read_at timestamp not null,
            primary key (client_id, conversation_id, user_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.inbox_entries (
            entry_id varchar not null,
            client_id varchar not null,
            conversation_id varchar not null,
            kind varchar not null,
            author_user_id varchar not null,
            author_email varchar not null,
            body varchar not null,
            message_key varchar,
            created_at timestamp not null,
            primary key (entry_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.inbox_quick_replies (
            reply_id varchar not null,
            client_id varchar not null,
            title varchar not null,
            body varchar not null,
            created_by varchar not null,
            created_at timestamp not null,
            primary key (reply_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.auto_reply_settings (
            client_id varchar not null,
            enabled boolean not null,
            text varchar,
            updated_by varchar not null,
            updated_at timestamp not null,
            primary key (client_id)
        )"""
    )
