"""Where unsubscribe links point and the key that signs them.

``HERALD_PUBLIC_URL`` is the address the web service (``herald serve``) is reachable at;
``HERALD_SECRET_KEY`` signs unsubscribe tokens. Embedded default: a random key is created once
in ``$HERALD_HOME/secret_key`` (mode 0600), so links keep working across runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from herald.settings import SettingsError

ENV_PUBLIC_URL = "HERALD_PUBLIC_URL"
ENV_SECRET_KEY = "HERALD_SECRET_KEY"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Links:
    public_url: str
    secret: str

    def __repr__(self) -> str:  # never print the key
        return f"Links(public_url={self.public_url!r}, secret=***)"


def links_from_env(home: Path, environ: Mapping[str, str] | None = None) -> Links:
    env = os.environ if environ is None else environ
    public_url = (env.get(ENV_PUBLIC_URL) or DEFAULT_PUBLIC_URL).rstrip("/")
    if not public_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise SettingsError(
            f"{ENV_PUBLIC_URL}={public_url!r}: unsubscribe links must use https "
            "(plain http is accepted only for 127.0.0.1 / localhost)"
        )
    secret = env.get(ENV_SECRET_KEY)
    if not secret:
        path = home / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        secret = path.read_text().strip()
    return Links(public_url, secret)
