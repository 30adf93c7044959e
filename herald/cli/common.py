"""What every command shares: the consoles, the settings checked at start, the configuration,
a client resolved by id (or a clear error listing the configured ones)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from herald.settings import Settings, SettingsError, check_environment

# Bound to the real terminal: `herald tick` sends Dagster's and dbt's own output to a log file.
# soft_wrap: a line is never broken at the terminal width, so scripts can read the output.
# Piped output (scripts, CI logs) gets a wide page instead of rich's 80-column default.
PIPE_WIDTH = 160
console = Console(file=sys.__stdout__, soft_wrap=True, width=None if sys.__stdout__.isatty() else PIPE_WIDTH)
err = Console(file=sys.__stderr__, soft_wrap=True, width=None if sys.__stderr__.isatty() else PIPE_WIDTH)

SETTINGS_EXIT = 2  # a HERALD_* variable is wrong: nothing was attempted
USAGE_EXIT = 2  # a bad argument or option
FAILED_EXIT = 1  # the command ran and could not do what was asked


def fail(message: str, code: int = FAILED_EXIT, *, label: str = "error") -> NoReturn:
    """Print ``error: message`` (markup in ``message`` is shown as typed) and exit ``code``."""
    err.print(f"[red]{label}:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def load_settings(*, config_dir_needed: bool = True) -> Settings:
    """Every ``HERALD_*`` setting, checked before the command does anything; a wrong one prints
    the variable and what it accepts, and exits 2 (no traceback)."""
    try:
        return check_environment(config_dir_needed=config_dir_needed)
    except SettingsError as exc:
        fail(str(exc), SETTINGS_EXIT)


def load_deployment(settings: Settings) -> Any:
    """The validated configuration, or its problems and exit 1."""
    from herald.config import ConfigError, load_deployment

    try:
        return load_deployment(settings.config_dir)
    except ConfigError as exc:
        fail(f"the configuration has problems (run `herald config check`):\n{exc}")


def known_client(deployment: Any, client: str) -> Any:
    """The client's configuration, or an error naming the configured clients and exit 1."""
    configured = deployment.clients.get(client)
    if configured is None:
        fail(f"unknown client {client!r}; configured: {', '.join(sorted(deployment.clients)) or 'none'}")
    return configured


def resolve_client(settings: Settings, client: str) -> tuple[Any, Any]:
    """(deployment, the client's configuration), or a clear error and exit 1."""
    deployment = load_deployment(settings)
    return deployment, known_client(deployment, client)


def client_item(settings: Settings, client: str, kind: str, name: str) -> tuple[Any, Any, Any]:
    """(deployment, client, its segment or campaign ``name``), or a clear error and exit 1."""
    deployment, configured = resolve_client(settings, client)
    items = configured.segments if kind == "segment" else configured.campaigns
    if name not in items:
        fail(f"client {client!r} has no {kind} {name!r}; it has: {', '.join(items) or 'none'}")
    return deployment, configured, items[name]


@contextmanager
def warehouse_errors() -> Iterator[None]:
    """A warehouse that cannot be reached (or is not built yet) is an error line, not a traceback."""
    from herald.warehouse.connection import WarehouseError

    try:
        yield
    except WarehouseError as exc:
        fail(str(exc))


def short_help(command: Callable[..., Any]) -> str:
    """The first sentence of a command's docstring, for the command list in ``herald --help``
    (the whole docstring stays for ``herald <command> --help``)."""
    import inspect

    paragraph = (inspect.getdoc(command) or "").split("\n\n")[0].replace("\n", " ") + " "
    depth = 0
    for i, char in enumerate(paragraph[:-1]):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if (
            depth == 0
            and char in ".:;"
            and paragraph[i + 1] == " "
            and paragraph[i - 1].isalpha() | (paragraph[i - 1] == ")")
        ):
            return paragraph[:i]
    return paragraph.strip().rstrip(".")


def add_command(app: typer.Typer, command: Callable[..., Any], name: str | None = None) -> None:
    app.command(name, short_help=short_help(command))(command)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- running the pipeline from a command ---------------------------------------------------
# `herald campaign send` waits for its run. Running one needs Dagster, which herald/ never
# imports: the `herald` entry point (orchestration.cli.main) installs the runner below.
TickRunner = Callable[[Settings], bool]
"""Runs one forced tick, printing a line per run; True when every run succeeded."""

_tick_runner: TickRunner | None = None


def set_tick_runner(runner: TickRunner) -> None:
    global _tick_runner
    _tick_runner = runner


def tick_runner() -> TickRunner | None:
    return _tick_runner
