"""The image's HEALTHCHECK: probes whichever Herald service this container runs.

One image runs every service (deploy/Dockerfile), so the check reads the command of the
container's main process (PID 1) and probes that service on its own port:

- the Dagster code server: its gRPC port accepts connections;
- dagster-webserver: GET /server_info answers 200;
- `herald serve`: GET /healthz answers 200 (events can be landed right now);
- anything else (dagster-daemon, the one-shot migrations): nothing to probe, healthy while running.

Standard library only: it runs every 30 seconds, and importing Dagster would cost seconds each time.
Exit status 0 healthy, 1 unhealthy (what Docker expects), with one line saying what was checked.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Probe:
    kind: str  # "tcp" or "http"
    host: str
    port: int
    path: str = ""

    def describe(self) -> str:
        return (
            f"tcp {self.host}:{self.port}" if self.kind == "tcp" else f"GET http://{self.host}:{self.port}{self.path}"
        )


def _option(argv: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _local(host: str | None) -> str:
    # a server bound to every address is reached on loopback
    return "127.0.0.1" if host in (None, "", "0.0.0.0", "::") else host


def probe_for(argv: list[str]) -> Probe | None:
    """What to probe for a service started with ``argv`` (PID 1's command line: an interpreter
    and a script path may come first). None when the command has nothing to probe."""
    names = [os.path.basename(a) for a in argv]
    host = _local(_option(argv, ("--host", "-h")))
    port = _option(argv, ("--port", "-p"))
    if "dagster" in names and ("code-server" in names or "grpc" in names):
        return Probe("tcp", host, int(port or 4000))
    if "dagster-webserver" in names:
        return Probe("http", host, int(port or 3000), "/server_info")
    if "herald" in names and "serve" in names:
        return Probe("http", host, int(port or 8000), "/healthz")
    return None


def check(probe: Probe) -> tuple[bool, str]:
    try:
        if probe.kind == "tcp":
            with socket.create_connection((probe.host, probe.port), timeout=TIMEOUT_SECONDS):
                return True, f"{probe.describe()}: accepting connections"
        url = f"http://{probe.host}:{probe.port}{probe.path}"
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.status == 200, f"{probe.describe()}: {response.status}"
    except OSError as exc:  # refused, timed out, or an HTTP error status (HTTPError is an OSError)
        return False, f"{probe.describe()}: {exc}"


def main_argv() -> list[str]:
    raw = Path("/proc/1/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def main() -> int:
    argv = main_argv()
    probe = probe_for(argv)
    if probe is None:
        print(f"healthy: nothing to probe for {' '.join(argv[:3])!r}")
        return 0
    healthy, detail = check(probe)
    print(("healthy: " if healthy else "unhealthy: ") + detail)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
