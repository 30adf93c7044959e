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
DROPZONE_ACCEPTS = (
    "a local folder (file:///abs/path or a plain path), an S3 bucket (s3://bucket/prefix) "
    "or an SFTP server (sftp://user@host:port/path)"
)
ENV_S3_ENDPOINT_URL = "HERALD_S3_ENDPOINT_URL"


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
    """Where the drop zone is. Secrets (S3 keys, SFTP password or key, the pinned host key) are
    not here: the zone reads them from the environment when it connects."""

    kind: DropZoneKind
    url: str
    local_root: Path | None = None
    bucket: str = ""  # s3
    prefix: str = ""  # s3: key prefix without trailing slash; sftp: the root folder on the server
    endpoint_url: str | None = None  # s3-compatible stores (HERALD_S3_ENDPOINT_URL)
    host: str = ""  # sftp
    port: int = 22
    user: str = ""


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
    if parts.scheme == "s3":
        if not parts.netloc:
            raise SettingsError(f"{ENV_DROPZONE_URL}={value!r} names no bucket; it accepts {DROPZONE_ACCEPTS}")
        return DropZoneTarget(
            kind="s3",
            url=value.rstrip("/"),
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=os.environ.get(ENV_S3_ENDPOINT_URL) or None,
        )
    if parts.scheme == "sftp":
        if parts.password is not None:
            raise SettingsError(
                f"{ENV_DROPZONE_URL}={redact_url(value)!r} carries a password; put it in HERALD_SFTP_PASSWORD "
                "(or a key in HERALD_SFTP_KEY_FILE) instead"
            )
        if not parts.hostname or not parts.username:
            raise SettingsError(
                f"{ENV_DROPZONE_URL}={value!r} needs a user and a host; it accepts {DROPZONE_ACCEPTS}"
            )
        try:
            port = parts.port or 22
        except ValueError as exc:
            raise SettingsError(f"{ENV_DROPZONE_URL}={value!r} has a bad port ({exc})") from None
        return DropZoneTarget(
            kind="sftp",
            url=value.rstrip("/"),
            prefix="/" + parts.path.strip("/") if parts.path.strip("/") else "",
            host=parts.hostname,
            port=port,
            user=unquote(parts.username),
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
