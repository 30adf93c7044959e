"""`herald config check`: validate the configuration-as-code directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from herald.cli.common import console, err, load_settings

app = typer.Typer(help="Work with the configuration-as-code directory.", no_args_is_help=True)


@app.command("check")
def config_check(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Config directory (default: HERALD_CONFIG_DIR, or config/ in the repository)."),
    ] = None,
) -> None:
    """Validate herald.yaml, every client.yaml and every load map; list each problem as
    `<file>: <field>: <message>`."""
    from herald.config import check_config
    from herald.config.summary import deployment_summary

    settings = load_settings(config_dir_needed=directory is None)
    directory = directory or settings.config_dir
    deployment, problems = check_config(directory)
    if problems:
        for problem in problems:
            console.print(str(problem), markup=False, highlight=False)
        err.print(f"[red]{len(problems)} problem{'s' if len(problems) != 1 else ''}[/red] in {directory}")
        raise typer.Exit(1)
    assert deployment is not None
    from herald.config.loader import config_warnings

    for warning in config_warnings(directory, deployment):
        console.print(f"warning: {warning}", markup=False, highlight=False)
    maps = sum(len(c.load_maps) for c in deployment.clients.values())
    console.print(
        f"config OK: {len(deployment.clients)} clients ({', '.join(deployment.clients)}), {maps} load maps in {directory}",
        highlight=False,
    )
    for line in deployment_summary(deployment):
        console.print(f"  {line}", highlight=False, markup=False)
