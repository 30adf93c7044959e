"""Send calendars: per-campaign send windows with send days, and closed days (client-listed dates and public holidays).

``herald_ops.campaign_send_windows`` holds each campaign's own hours per ISO day of week (its
``send_window`` over the client's; a day that is not a send day has no hours and says so in
``closed_reason``); ``herald_ops.closed_days`` each date a campaign sends nothing on, with why.
Both are configuration tables, rewritten by every configuration load. New tables, no rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.campaign_send_windows (
            client_id varchar not null,
            campaign varchar not null,
            iso_day_of_week bigint not null,
            start_minute bigint not null,
            end_minute bigint not null,
            closed_reason varchar,
            primary key (client_id, campaign, iso_day_of_week)
        )"""
    )
    s.execute(
        """
        create table herald_ops.closed_days (
            client_id varchar not null,
            campaign varchar not null,
            closed_on date not null,
            reason varchar not null,
            primary key (client_id, campaign, closed_on)
        )"""
    )
