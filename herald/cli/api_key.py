"""`herald api-key`: a new ingest API key for a client."""

from __future__ import annotations

from typing import Annotated

import typer

from herald.cli.common import console, load_settings, resolve_client


def api_key(client: Annotated[str, typer.Argument(help="Client id.")]) -> None:
    """Make a new ingest API key for a client: prints the key (give it to the client's system,
    once) and the hash to add to its client.yaml under ingest_api.key_sha256."""
    from herald.packets.api import new_api_key

    resolve_client(load_settings(), client)
    key, digest = new_api_key()
    console.print(f"API key for {client} (shown once): {key}", highlight=False)
    console.print(f'add to clients/{client}/client.yaml:\n  ingest_api:\n    key_sha256: ["{digest}"]', highlight=False)
