"""Preferences: each campaign's topic, each contact's current preferences and their append-only history.

``herald_ops.campaign_topics`` is a configuration table (a campaign's ``topic:``);
``herald_ops.contact_preferences`` holds a contact's topics off, channels off, marketing
frequency and pause; ``herald_ops.preference_events`` one row per change with its source.
New tables, no rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.campaign_topics (
            client_id varchar not null,
            campaign varchar not null,
            topic varchar not null,
            primary key (client_id, campaign)
        )"""
    )
    s.execute(
        """
        create table herald_ops.contact_preferences (
            client_id varchar not null,
            contact_id varchar not null,
            topics_off varchar not null,
            email_off boolean not null,
            sms_off boolean not null,
            frequency varchar not null,
            paused_until date,
            source varchar not null,
            updated_at timestamp not null,
            primary key (client_id, contact_id)
        )"""
    )
    s.execute(
        """
        create table herald_ops.preference_events (
            event_id varchar not null,
            client_id varchar not null,
            contact_id varchar not null,
            field varchar not null,
            old_value varchar,
            new_value varchar,
            source varchar not null,
            evidence varchar,
            occurred_at timestamp not null,
            recorded_at timestamp not null,
            primary key (event_id)
        )"""
    )
