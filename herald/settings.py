"""Herald's settings, resolved once from the ``HERALD_*`` environment variables.

Every part of a deployment is picked by one variable. An unknown value is an error that
names the variable and what it accepts — never a silent fallback to the embedded default.
Secrets (passwords inside URLs) are kept only in memory and masked by :func:`redact_url`.

:meth:`Settings.from_env` resolves what every process needs (home, config directory,
warehouse, drop zone, provider names). :func:`check_environment` also checks the rest
(the config directory exists, delivery numbers parse, the chosen providers have their
credentials), so a command fails at its start instead of inside a run. The provider factory
parses its variables with the helpers here, so both say the same thing.

Relative paths: ``HERALD_HOME`` and warehouse/drop-zone paths resolve against the working
directory; ``HERALD_CONFIG_DIR`` (default ``config``) resolves against the repository, so
commands read the same configuration wherever they are run from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from herald.clock import ClockError, offset_seconds
from herald.paths import PROJECT_ROOT

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

ENV_SMS_PROVIDER = "HERALD_SMS_PROVIDER"
ENV_EMAIL_PROVIDER = "HERALD_EMAIL_PROVIDER"
SMS_PROVIDERS = ("sandbox", "twilio")  # the first is the default
EMAIL_PROVIDERS = ("sandbox", "resend")
ENV_TWILIO_SID = "TWILIO_ACCOUNT_SID"
ENV_TWILIO_TOKEN = "TWILIO_AUTH_TOKEN"
ENV_RESEND_KEY = "RESEND_API_KEY"
# a second account of each provider, for clients that fail over to it (client.yaml providers:)
ENV_TWILIO_SECONDARY_SID = "TWILIO_SECONDARY_ACCOUNT_SID"
ENV_TWILIO_SECONDARY_TOKEN = "TWILIO_SECONDARY_AUTH_TOKEN"
ENV_RESEND_SECONDARY_KEY = "RESEND_SECONDARY_API_KEY"
PROVIDER_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "twilio": (ENV_TWILIO_SID, ENV_TWILIO_TOKEN),
    "resend": (ENV_RESEND_KEY,),
    "twilio_secondary": (ENV_TWILIO_SECONDARY_SID, ENV_TWILIO_SECONDARY_TOKEN),
    "resend_secondary": (ENV_RESEND_SECONDARY_KEY,),
}
# Delivery tuning: each must be a number >= 0 (counts: a whole number >= 1) when set.
NUMBER_VARIABLES = (
    "HERALD_SMS_RATE_PER_SECOND",
    "HERALD_EMAIL_RATE_PER_SECOND",
    "HERALD_SANDBOX_SEND_DELAY_SECONDS",
    "HERALD_SANDBOX_RECEIPT_DELAY_SECONDS",
    "HERALD_DELIVERY_LEASE_SECONDS",
    "HERALD_SMS_SECONDARY_RATE_PER_SECOND",
    "HERALD_EMAIL_SECONDARY_RATE_PER_SECOND",
    "HERALD_FAILOVER_COOLDOWN_SECONDS",
)
COUNT_VARIABLES = ("HERALD_DELIVERY_BATCH_SIZE", "HERALD_DELIVERY_MAX_ATTEMPTS", "HERALD_FAILOVER_FAILURE_THRESHOLD")
# The sandbox's simulated world: each a share between 0 and 1 when set.
RATE_VARIABLES = (
    "HERALD_SANDBOX_DELIVERY_RATE",
    "HERALD_SANDBOX_FAILURE_RATE",
    "HERALD_SANDBOX_BOUNCE_RATE",
    "HERALD_SANDBOX_REPLY_RATE",
    "HERALD_SANDBOX_OPEN_RATE",
    "HERALD_SANDBOX_CLICK_RATE",
)
# Switches: on or off.
SWITCH_VARIABLES = ("HERALD_SANDBOX_RECEIPTS", "HERALD_SANDBOX_STOP_REPLIES")
SWITCH_VALUES = ("on", "off")


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
    sms_provider: str = SMS_PROVIDERS[0]
    email_provider: str = EMAIL_PROVIDERS[0]

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get(ENV_HOME) or DEFAULT_HOME).expanduser().resolve()
        return cls(
            home=home,
            config_dir=resolve_config_dir(env.get(ENV_CONFIG_DIR) or ""),
            warehouse=parse_warehouse_url(env.get(ENV_WAREHOUSE_URL) or "", home),
            dropzone=parse_dropzone_url(env.get(ENV_DROPZONE_URL) or "", home),
            sms_provider=parse_choice(env, ENV_SMS_PROVIDER, SMS_PROVIDERS),
            email_provider=parse_choice(env, ENV_EMAIL_PROVIDER, EMAIL_PROVIDERS),
        )


def check_environment(environ: Mapping[str, str] | None = None, *, config_dir_needed: bool = True) -> Settings:
    """The settings, after checking every ``HERALD_*`` value a command or a run will use.

    Raises :class:`SettingsError` for the first problem, naming the variable and what it
    accepts (never a secret's value). ``config_dir_needed=False`` skips the config directory
    check (``herald config check DIR`` names its own)."""
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    if settings.home.exists() and not settings.home.is_dir():
        raise SettingsError(f"{ENV_HOME}={str(settings.home)!r} is a file; it accepts a folder (created if missing)")
    if config_dir_needed and not settings.config_dir.is_dir():
        raise SettingsError(
            f"{ENV_CONFIG_DIR}: {settings.config_dir} is not a folder; it accepts the configuration folder "
            f"(absolute, or relative to the repository {PROJECT_ROOT})"
        )
    for name in NUMBER_VARIABLES:
        parse_number(env, name, 0.0)
    for name in COUNT_VARIABLES:
        parse_count(env, name, 1)
    for name in RATE_VARIABLES:
        parse_rate(env, name, 0.0)
    for name in SWITCH_VARIABLES:
        parse_choice(env, name, SWITCH_VALUES)
    parse_rate_limit_storage(env)
    operator_alert_settings(env)
    for variable, kind in ((ENV_SMS_PROVIDER, settings.sms_provider), (ENV_EMAIL_PROVIDER, settings.email_provider)):
        require(env, PROVIDER_CREDENTIALS.get(kind, ()), f"{variable}={kind}")
    try:  # a simulated clock (herald demo) only with the sandbox: it would move real quiet hours
        offset_seconds({**env, ENV_HOME: str(settings.home)})
    except ClockError as exc:
        raise SettingsError(str(exc)) from None
    return settings


ENV_OPERATOR_EMAIL = "HERALD_OPERATOR_EMAIL"
ENV_ALERT_WEBHOOK_URL = "HERALD_ALERT_WEBHOOK_URL"
ENV_ALERT_WEBHOOK_SECRET = "HERALD_ALERT_WEBHOOK_SECRET"
ENV_DAGSTER_URL = "HERALD_DAGSTER_URL"
ENV_OPERATOR_FAILED_OR_HELD = "HERALD_OPERATOR_FAILED_OR_HELD_COUNT"
ENV_OPERATOR_WINDOW_HOURS = "HERALD_OPERATOR_ALERT_WINDOW_HOURS"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # `herald dev` / `make dev`


@dataclass(frozen=True)
class OperatorAlertSettings:
    """Where operator alerts go (herald/alerts/operator.py) and when the deployment-wide
    failed/held threshold is crossed."""

    email: str | None = None  # HERALD_OPERATOR_EMAIL (else herald.yaml's operator_email)
    webhook_url: str | None = None  # HERALD_ALERT_WEBHOOK_URL: a JSON POST per incident
    webhook_secret: str | None = None  # HERALD_ALERT_WEBHOOK_SECRET (whsec_...): signs the POST
    dagster_url: str = DEFAULT_DAGSTER_URL  # HERALD_DAGSTER_URL: the runs linked to
    failed_or_held_count: int = 50  # HERALD_OPERATOR_FAILED_OR_HELD_COUNT
    window_hours: float = 24.0  # HERALD_OPERATOR_ALERT_WINDOW_HOURS

    def run_link(self, run_id: str) -> str:
        return f"{self.dagster_url}/runs/{run_id}"


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"{name}={redact_url(value)!r} is not a URL Herald can use; it accepts http(s)://host[:port]/path"
        )
    return value.rstrip("/")


def operator_alert_settings(environ: Mapping[str, str] | None = None) -> OperatorAlertSettings:
    """The operator alert settings from the environment, or an error naming the variable."""
    env = os.environ if environ is None else environ
    email = (env.get(ENV_OPERATOR_EMAIL) or "").strip() or None
    if email is not None and "@" not in email:
        raise SettingsError(f"{ENV_OPERATOR_EMAIL}={email!r} is not an email address; it accepts one address")
    secret = (env.get(ENV_ALERT_WEBHOOK_SECRET) or "").strip() or None
    if secret is not None and not secret.startswith("whsec_"):
        raise SettingsError(f"{ENV_ALERT_WEBHOOK_SECRET} must hold a secret of the form whsec_<base64>")
    return OperatorAlertSettings(
        email=email,
        webhook_url=_http_url(env, ENV_ALERT_WEBHOOK_URL),
        webhook_secret=secret,
        dagster_url=_http_url(env, ENV_DAGSTER_URL) or DEFAULT_DAGSTER_URL,
        failed_or_held_count=parse_count(env, ENV_OPERATOR_FAILED_OR_HELD, 50),
        window_hours=parse_number(env, ENV_OPERATOR_WINDOW_HOURS, 24.0) or 24.0,
    )


def resolve_config_dir(value: str) -> Path:
    """``HERALD_CONFIG_DIR`` → an absolute folder: absolute as given, relative (and the default
    ``config``) against the repository root, never the working directory."""
    path = Path(value.strip() or DEFAULT_CONFIG_DIR).expanduser()
    return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()


def parse_choice(env: Mapping[str, str], name: str, accepted: tuple[str, ...]) -> str:
    """One of ``accepted`` (case-insensitive; unset or blank → the first), or an error."""
    value = (env.get(name) or accepted[0]).strip().lower()
    if value not in accepted:
        raise SettingsError(f"{name}={value!r} is not one Herald knows; it accepts {', '.join(accepted)}")
    return value


ENV_RATE_LIMIT_STORAGE = "HERALD_RATE_LIMIT_STORAGE"
# where the provider rate windows live: this process, or a server every delivery worker shares
RATE_LIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss", "valkey", "valkeys")


def parse_rate_limit_storage(env: Mapping[str, str]) -> str:
    """``HERALD_RATE_LIMIT_STORAGE``: ``memory://`` (unset or blank) or a Redis/Valkey URI such
    as ``redis://127.0.0.1:6379/0``, or an error naming the variable."""
    value = (env.get(ENV_RATE_LIMIT_STORAGE) or "").strip() or "memory://"
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.lower() not in RATE_LIMIT_STORAGE_SCHEMES:
        raise SettingsError(
            f"{ENV_RATE_LIMIT_STORAGE}={value!r} is not a storage Herald knows; it accepts memory:// (one process) "
            "or a URI every delivery worker shares: redis://host:port/db (also rediss://, valkey://)"
        )
    return value


def parse_number(env: Mapping[str, str], name: str, default: float) -> float:
    """A number >= 0 (unset or blank → ``default``), or an error naming ``name``."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; it accepts a number >= 0") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative; it accepts a number >= 0")
    return value


def parse_rate(env: Mapping[str, str], name: str, default: float) -> float:
    """A share between 0 and 1 (unset or blank → ``default``), or an error naming ``name``."""
    value = parse_number(env, name, default)
    if value > 1:
        raise SettingsError(f"{name}={value!r} is above 1; it accepts a share between 0 and 1 (0.03 = 3%)")
    return value


def parse_count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number >= 1 (unset or blank → ``default``), or an error naming ``name``."""
    value = parse_number(env, name, default)
    if value < 1 or value != int(value):
        raise SettingsError(f"{name} must be at least 1; it accepts a whole number >= 1")
    return int(value)


def require(env: Mapping[str, str], names: tuple[str, ...], why: str) -> list[str]:
    """The values of ``names`` (all set), or an error naming the missing ones (never values)."""
    missing = [n for n in names if not (env.get(n) or "").strip()]
    if missing:
        raise SettingsError(f"{why} needs {' and '.join(missing)} to be set")
    return [env[n].strip() for n in names]


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
            raise SettingsError(f"{ENV_DROPZONE_URL}={value!r} needs a user and a host; it accepts {DROPZONE_ACCEPTS}")
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
