"""`herald serve`: the web service (webhooks, unsubscribe and confirmation pages)."""

from __future__ import annotations

from typing import Annotated

import typer

from herald.cli.common import SETTINGS_EXIT, fail, load_settings


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (behind a proxy, keep 127.0.0.1).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the web service: Twilio and Resend webhooks, the unsubscribe (/u/...) and confirmation
    (/c/...) pages, /healthz, the API docs (/docs) and the portal (/app; add users with `herald
    users add`). It lands what it hears under $HERALD_HOME/landing (a table on PostgreSQL) for
    `herald tick`; of an embedded warehouse it writes only the portal's accounts, sessions and
    audit rows, each in a short transaction. Set HERALD_PUBLIC_URL
    to the https address providers and recipients reach, TWILIO_AUTH_TOKEN (and
    TWILIO_SECONDARY_AUTH_TOKEN for a second Twilio account) and RESEND_WEBHOOK_SECRET for the
    webhooks."""
    from herald.config import ConfigError
    from herald.settings import SettingsError
    from herald.web.app import create_app
    from herald.web.server import serve as run_server

    settings = load_settings()
    try:
        web_app = create_app(settings)
    except ConfigError as exc:
        fail(f"the configuration has problems (run `herald config check`):\n{exc}")
    except SettingsError as exc:
        fail(str(exc), SETTINGS_EXIT)
    run_server(web_app, host, port)
