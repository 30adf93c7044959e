"""The ``herald`` command line: one module per command group, sharing :mod:`herald.cli.common`.

This package never imports Dagster. The commands that start it (``tick``, ``dev``, ``demo``)
live in :mod:`orchestration.cli`, whose ``main()`` — the ``herald`` entry point — adds them to
:data:`app`. ``python -m herald.cli`` runs every other command without Dagster.
"""

from __future__ import annotations

import os

import typer

from herald.cli import (
    alerts,
    api_key,
    appointments,
    backup,
    campaign,
    catalog,
    config,
    conversations,
    credits,
    db,
    dropzone,
    privacy,
    report,
    segment,
    serve,
    sql,
    users,
    webhooks,
)
from herald.cli.common import add_command

app = typer.Typer(
    help="Herald: packets in, consented messages out, analytics back. Settings come from HERALD_* variables "
    "(see .env.example).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config.app, name="config")
app.add_typer(dropzone.app, name="dropzone")
add_command(app, dropzone.drop)
add_command(app, sql.sql)
add_command(app, catalog.tables)
add_command(app, catalog.describe)
add_command(app, catalog.docs)
app.add_typer(segment.app, name="segment")
app.add_typer(campaign.app, name="campaign")
add_command(app, conversations.inbound)
add_command(app, conversations.reply_command, "reply")
add_command(app, conversations.block_command, "block")
add_command(app, conversations.unblock_command, "unblock")
add_command(app, serve.serve)
add_command(app, api_key.api_key, "api-key")
add_command(app, report.report_command, "report")
app.add_typer(credits.app, name="credits")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(alerts.app, name="alerts")
app.add_typer(appointments.app, name="appointments")
app.add_typer(db.app, name="db")
add_command(app, backup.backup, "backup")
add_command(app, backup.restore, "restore")
app.add_typer(users.app, name="users")
add_command(app, users.audit_command, "audit")
app.add_typer(privacy.app, name="privacy")


def main() -> None:
    """Every command but the Dagster ones (the ``herald`` entry point is orchestration.cli.main)."""
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    app()


__all__ = ["app", "main"]
