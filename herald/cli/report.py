"""`herald report`: a client's report over the analytics marts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from herald.cli.common import USAGE_EXIT, console, fail, load_settings, resolve_client


def report_command(
    client: Annotated[str, typer.Argument(help="Client id.")],
    period: Annotated[
        str, typer.Option(help="The last N days (30d) or weeks (4w), counting today in the client's time zone.")
    ] = "30d",
    fmt: Annotated[
        str, typer.Option("--format", help="html, pdf, xlsx or csv (a folder with one CSV per table).")
    ] = "html",
    output: Annotated[
        Path | None,
        typer.Option(
            help="Where to write (default: ./<client>-report-<date>.<ext>; csv: ./<client>-report-<date>-csv/)."
        ),
    ] = None,
) -> None:
    """Write a client's report over the analytics marts: headline numbers, charts (delivered over
    time, response rate by campaign, A/B results, attribution by channel) and tables."""
    from herald.reports.client_report import (
        FORMATS,
        ReportError,
        build_report,
        default_output,
        fmt_int,
        parse_period,
        write_report,
    )
    from herald.warehouse.connection import Warehouse, WarehouseError

    try:
        period_days = parse_period(period)
    except ReportError as exc:
        fail(str(exc), USAGE_EXIT)
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}", USAGE_EXIT)
    settings = load_settings()
    deployment, _ = resolve_client(settings, client)
    try:
        report = build_report(Warehouse(settings.warehouse), deployment, client, period_days)
        path = write_report(report, fmt, output or default_output(client, fmt, report.end_date))
    except (ReportError, WarehouseError) as exc:
        fail(str(exc))
    console.print(
        f"wrote {path} ({fmt}): {client}, {report.start_date} to {report.end_date}, "
        f"delivered {fmt_int(report.headline.delivered)}",
        highlight=False,
        markup=False,
    )
