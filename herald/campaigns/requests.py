"""Send requests from `herald campaign send`: small JSON files a sensor turns into runs.

The CLI never writes the warehouse itself (in embedded mode a running Dagster may hold DuckDB's
write lock); it leaves a request under ``$HERALD_HOME/requests/send/`` and the
``manual_send_sensor`` starts the run, keyed by the occurrence, so it shows in the Dagster UI
like any scheduled send and a repeated request for the same occurrence starts nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def requests_dir(home: Path) -> Path:
    return home / "requests" / "send"


def write_send_request(home: Path, client_id: str, campaign: str, occurrence: str) -> Path:
    folder = requests_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{client_id}__{campaign}__{occurrence}")
    path = folder / f"{safe}.json"
    body = {"client_id": client_id, "campaign": campaign, "occurrence": occurrence, "trigger_type": "manual"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)
    return path


def pending_send_requests(home: Path) -> list[dict[str, str]]:
    folder = requests_dir(home)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if {"client_id", "campaign", "occurrence"} <= body.keys():
            found.append(
                {k: str(body[k]) for k in ("client_id", "campaign", "occurrence", "trigger_type") if k in body}
            )
    return found


def clear_send_request(path: Path) -> None:
    path.unlink(missing_ok=True)
