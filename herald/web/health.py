"""``/healthz``: ready when events can be landed right now (the landing area is writable)."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from herald.events.landing import events_dir
from herald.web.context import WebContext, web_context

log = logging.getLogger("herald.web")

router = APIRouter()


def _landing_writable(context: WebContext) -> None:
    """Raises when events could not be landed right now."""
    if context.settings.warehouse.engine == "postgres":
        from herald.events.landing import EVENTS_TABLE
        from herald.warehouse.connection import Warehouse

        context.sink()
        with Warehouse(context.settings.warehouse).session(read_only=True) as s:
            if not s.scalar(f"select has_table_privilege('{EVENTS_TABLE}', 'INSERT')"):
                raise PermissionError(f"no INSERT privilege on {EVENTS_TABLE}")
        return
    folder = events_dir(context.settings.home)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".healthz-{uuid.uuid4().hex}.tmp"  # dot-prefixed: never read as an event file
    probe.write_text("ok")
    probe.unlink()


@router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> JSONResponse:
    context = web_context(request)
    engine = context.settings.warehouse.engine
    try:
        await run_in_threadpool(_landing_writable, context)
    except Exception as exc:  # any failure means "not ready", said without details
        log.error("healthz: the landing area is not writable (%s)", type(exc).__name__)
        return JSONResponse({"status": "degraded", "warehouse": engine, "landing": "not writable"}, status_code=503)
    return JSONResponse({"status": "ok", "warehouse": engine, "landing": "writable"})
