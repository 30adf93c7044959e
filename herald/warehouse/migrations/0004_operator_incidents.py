"""Operator alerts: one row per operator incident (a failed run, the deployment's failed/held threshold).

``herald_ops.operator_incidents`` records each incident the operator was told about, once per
incident key (herald/alerts/operator.py): open until it recovers, with what became of its email
and webhook. New table, no existing rows to move.
"""

from __future__ import annotations

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute(
        """
        create table herald_ops.operator_incidents (
            incident_id varchar not null,
            incident_key varchar not null,
            kind varchar not null,
            subject varchar not null,
            opened_at timestamp not null,
            status varchar not null,
            recovered_at timestamp,
            run_id varchar,
            link varchar,
            summary varchar not null,
            detail varchar,
            email_status varchar not null,
            email_error varchar,
            webhook_status varchar not null,
            webhook_error varchar,
            primary key (incident_id)
        )"""
    )
