"""Running the app: ``herald serve`` in the foreground, or a server in a background thread
(tests, embedding) on an OS-chosen port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def serve(app: Any, host: str, port: int) -> None:
    # proxy_headers off: nothing here trusts X-Forwarded-*; public addresses come from HERALD_PUBLIC_URL
    uvicorn.run(app, host=host, port=port, proxy_headers=False, server_header=False, log_level="info")


@contextmanager
def running_server(app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 15.0) -> Iterator[str]:
    """Serves ``app`` in a thread; yields its base URL (``http://host:port``, the bound port)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="herald-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
