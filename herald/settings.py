"""Herald's settings, resolved once from the ``HERALD_*`` environment variables.

Every part of a deployment is picked by one variable. An unknown value is an error that
names the variable and what it accepts — never a silent fallback to the embedded default.
Secrets (passwords inside URLs) are kept only in memory and masked by :func:`redact_url`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping
from urllib.parse import unquote, urlsplit

WarehouseEngine = Literal["duckdb", "postgres"]
DropZoneKind = Literal["local", "s3", "sftp"]

ENV_HOME = "HERALD_HOME"
ENV_WAREHOUSE_URL = "HERALD_WAREHOUSE_URL"
ENV_CONFIG_DIR = "HERALD_CONFIG_DIR"
ENV_DROPZONE_URL = "HERALD_DROPZONE_URL"

DEFAULT_HOME = ".herald"
DEFAULT_CONFIG_DIR = "config"
DUCKDB_FILE_NAME = "warehouse.duckdb"

WAREHOUSE_ACCEPTS = (
    "a DuckDB file (duckdb:///abs/path.duckdb, duckdb:relative/path.duckdb or a path ending in .duckdb) "
    "or a PostgreSQL URL (postgresql://user[:password]@host[:port]/database)"
)
DROPZONE_ACCEPTS = "a local folder (file:///abs/path or a plain path)"


class SettingsError(ValueError):
    """A HERALD_* variable holds a value Herald cannot use."""


@dataclass(frozen=True)
class WarehouseTarget:
    """Where the warehouse lives: one DuckDB file or one PostgreSQL database."""

    engine: WarehouseEngine
    url: str
    duckdb_path: Path | None = None
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = ""
    pg_database: str = "postgres"

    @property
    def dbt_target(self) -> str:
        return self.engine

    def dbt_env(self) -> dict[str, str]:
        """Environment for dbt's ``profiles.yml`` (read there with ``env_var()``)."""
        env = {"HERALD_DBT_TARGET": self.dbt_target}
        if self.engine == "duckdb":
            assert self.duckdb_path is not None
            env["HERALD_DUCKDB_PATH"] = str(self.duckdb_path)
        else:
            env.update(
                HERALD_PG_HOST=self.pg_host,
                HERALD_PG_PORT=str(self.pg_port),
                HERALD_PG_USER=self.pg_user,
                HERALD_PG_PASSWORD=self.pg_password,
                HERALD_PG_DATABASE=self.pg_database,
            )
        return env


@dataclass(frozen=True)
class DropZoneTarget:
    kind: DropZoneKind
    url: str
    local_root: Path | None = None


@dataclass(frozen=True)
class Settings:
    home: Path
    config_dir: Path
    warehouse: WarehouseTarget
    dropzone: DropZoneTarget

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        home = Path(env.get(ENV_HOME) or DEFAULT_HOME).expanduser().resolve()
        config_dir = Path(env.get(ENV_CONFIG_DIR) or DEFAULT_CONFIG_DIR).expanduser().resolve()
        return cls(
            home=home,
            config_dir=config_dir,
            warehouse=parse_warehouse_url(env.get(ENV_WAREHOUSE_URL) or "", home),
            dropzone=parse_dropzone_url(env.get(ENV_DROPZONE_URL) or "", home),
        )


def parse_warehouse_url(value: str, home: Path) -> WarehouseTarget:
    """``HERALD_WAREHOUSE_URL`` → a :class:`WarehouseTarget` (empty → DuckDB under home)."""
    value = value.strip()
    if not value:
        path = home / DUCKDB_FILE_NAME
        return WarehouseTarget(engine="duckdb", url=f"duckdb:///{path}", duckdb_path=path)
    if value.startswith("duckdb:"):
        raw = value[len("duckdb:") :]
        raw = raw[2:] if raw.startswith("//") else raw
        if not raw:
            raise SettingsError(f"{ENV_WAREHOUSE_URL}={value!r} names no file; it accepts {WAREHOUSE_ACCEPTS}")
        path = Path(raw).expanduser().resolve()
        return WarehouseTarget(engine="duckdb", url=f"duckdb:///{path}", duckdb_path=path)
    if value.endswith(".duckdb") and "://" not in value:
        path = Path(value).expanduser().resolve()
        return WarehouseTarget(engine="duckdb", url=f"duckdb:///{path}", duckdb_path=path)
    parts = urlsplit(value)
    if parts.scheme in ("postgresql", "postgres"):
        database = parts.path.lstrip("/")
        if not database:
            raise SettingsError(
                f"{ENV_WAREHOUSE_URL}={redact_url(value)!r} names no database; it accepts {WAREHOUSE_ACCEPTS}"
            )
        try:
            port = parts.port or 5432
        except ValueError as exc:  # urllib's message is safe (no password); the raw URL is not
            raise SettingsError(
                f"{ENV_WAREHOUSE_URL}={redact_url(value)!r} has a bad port ({exc}); it accepts {WAREHOUSE_ACCEPTS}"
            ) from None
        return WarehouseTarget(
            engine="postgres",
            url=value,
            pg_host=parts.hostname or "127.0.0.1",
            pg_port=port,
            pg_user=unquote(parts.username or "postgres"),
            pg_password=unquote(parts.password or ""),
            pg_database=database,
        )
    raise SettingsError(
        f"{ENV_WAREHOUSE_URL}={redact_url(value)!r} is not a warehouse Herald knows; it accepts {WAREHOUSE_ACCEPTS}"
    )


def parse_dropzone_url(value: str, home: Path) -> DropZoneTarget:
    """``HERALD_DROPZONE_URL`` → a :class:`DropZoneTarget` (empty → ``<home>/dropzone``)."""
    value = value.strip()
    if not value:
        root = home / "dropzone"
        return DropZoneTarget(kind="local", url=root.as_uri(), local_root=root)
    parts = urlsplit(value)
    if parts.scheme == "file":
        root = Path(unquote(parts.path)).resolve()
        return DropZoneTarget(kind="local", url=root.as_uri(), local_root=root)
    if parts.scheme in ("s3", "sftp"):
        raise SettingsError(
            f"{ENV_DROPZONE_URL}={redact_url(value)!r}: {parts.scheme} drop zones are not available in this "
            f"version yet; it accepts {DROPZONE_ACCEPTS}"
        )
    if "://" in value:
        raise SettingsError(
            f"{ENV_DROPZONE_URL}={redact_url(value)!r} is not a drop zone Herald knows; it accepts {DROPZONE_ACCEPTS}"
        )
    root = Path(value).expanduser().resolve()
    return DropZoneTarget(kind="local", url=root.as_uri(), local_root=root)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
