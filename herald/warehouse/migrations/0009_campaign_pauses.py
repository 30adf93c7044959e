"""Portal campaign pauses and the staff's own phone for test texts.

``herald_ops.campaign_pauses`` holds one row per campaign paused in the portal (who paused it and
when); the message plan leaves the campaign's messages out while the row is there, and the
delivery claim cancels its messages falling due. Resuming deletes the row (the audit log keeps
the history). ``herald_ops.portal_user_phones`` holds a portal user's own phone number (E.164),
the only number a test text from the Campaigns page may go to. New tables, no rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.campaign_pauses (
            client_id varchar not null,
            campaign varchar not null,
            paused_by varchar not null,
            paused_at timestamp not null,
            primary key (client_id, campaign)
        )"""
    )
    s.execute(
        """
        create table herald_ops.portal_user_phones (
            user_id varchar not null,
            phone varchar not null,
            updated_at timestamp not null,
            primary key (user_id)
        )"""
    )
