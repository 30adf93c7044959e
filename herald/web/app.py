"""The ASGI app behind ``herald serve``: provider webhooks, pages and ``/healthz``.

Other parts of the service (such as the ingest API) plug in as FastAPI routers: add them to
``ROUTERS`` below, or pass them to :func:`create_app` (``routers=``). Every router reaches the
deployment through :func:`web_context` (``request.app.state.herald``).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from herald.campaigns.links import Links, links_from_env
from herald.config import Deployment, load_deployment
from herald.events.landing import EventSink, events_dir, open_sink
from herald.settings import Settings

log = logging.getLogger("herald.web")


@dataclass
class WebContext:
    """What every request handler needs; built once per app. Secrets of the providers are read
    from ``environ`` at request time (never at import, never logged)."""

    settings: Settings
    deployment: Deployment
    links: Links
    environ: Mapping[str, str]
    _sink: EventSink | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sink(self) -> EventSink:
        """The landing sink, opened on first use (PostgreSQL mode connects and creates the
        landing tables if missing; embedded mode only writes files under HERALD_HOME)."""
        with self._lock:
            if self._sink is None:
                self._sink = open_sink(self.settings)
            return self._sink


def web_context(request: Request) -> WebContext:
    return request.app.state.herald


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


health_router = APIRouter()


@health_router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> JSONResponse:
    context = web_context(request)
    engine = context.settings.warehouse.engine
    try:
        await run_in_threadpool(_landing_writable, context)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", said without details
        log.error("healthz: the landing area is not writable (%s)", type(exc).__name__)
        return JSONResponse({"status": "degraded", "warehouse": engine, "landing": "not writable"}, status_code=503)
    return JSONResponse({"status": "ok", "warehouse": engine, "landing": "writable"})


def _builtin_routers() -> list[APIRouter]:
    from herald.web import ingest, pages, resend, twilio

    return [health_router, twilio.router, resend.router, pages.router, ingest.router]


# Routers of other features (e.g. the ingest API) are mounted here, after the built-in ones.
ROUTERS: list[APIRouter] = []


def create_app(
    settings: Settings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    deployment: Deployment | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The web service for ``settings`` (default: from the HERALD_* variables)."""
    env = os.environ if environ is None else environ
    settings = settings or Settings.from_env(env)
    context = WebContext(
        settings=settings,
        deployment=deployment or load_deployment(settings.config_dir),
        links=links_from_env(settings.home, env),
        environ=env,
    )
    app = FastAPI(title="Herald", summary="Webhooks, unsubscribe and confirmation pages, and the ingest API")
    app.state.herald = context
    for router in [*_builtin_routers(), *ROUTERS, *routers]:
        app.include_router(router)
    return app


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory herald.web.app:app_from_env``."""
    return create_app()
