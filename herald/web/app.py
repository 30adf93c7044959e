"""The ASGI app behind ``herald serve``: provider webhooks, pages and ``/healthz``.

Other parts of the service (such as the ingest API) plug in as FastAPI routers: add them to
``ROUTERS`` below, or pass them to :func:`create_app` (``routers=``). Every router reaches the
deployment through :func:`herald.web.context.web_context` (``request.app.state.herald``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from herald.campaigns.links import links_from_env
from herald.config import Deployment, load_deployment
from herald.settings import Settings
from herald.web import health, ingest, links, optin, pages, portal, resend, twilio
from herald.web.context import WebContext, web_context
from herald.web.guard import BodyLimit

__all__ = ["ROUTERS", "WebContext", "app_from_env", "create_app", "web_context"]

BUILTIN_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    twilio.router,
    resend.router,
    pages.router,
    ingest.router,
    links.router,
    optin.router,
)
# Routers of other features are mounted here, after the built-in ones.
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
    # /docs is served by the portal from the vendored Swagger UI (no CDN); no ReDoc (it has no local copy)
    app = FastAPI(
        title="Herald",
        summary="Webhooks, unsubscribe and confirmation pages, the ingest API and the portal (/app)",
        docs_url=None,
        redoc_url=None,
    )
    app.state.herald = context
    for router in [*BUILTIN_ROUTERS, *ROUTERS, *routers]:
        app.include_router(router)
    portal.install(app)  # /app, /static and /docs
    from herald.web.portal_pages import upload_body_limit

    # a body over the limit is a 413 before any route reads it; the portal's upload has its own
    app.add_middleware(BodyLimit, larger=lambda scope: upload_body_limit(context, scope))
    return app


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory herald.web.app:app_from_env``."""
    return create_app()
