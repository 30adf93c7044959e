"""What every request handler of ``herald serve`` reaches the deployment through.

The app (:mod:`herald.web.app`) builds one :class:`WebContext` and keeps it on
``app.state.herald``; routers get it with :func:`web_context`. Routers import this module, never
the app, so the app can import every router at the top.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import Request

from herald.campaigns.links import Links
from herald.config import Deployment
from herald.events.landing import EventSink, open_sink
from herald.settings import Settings


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
