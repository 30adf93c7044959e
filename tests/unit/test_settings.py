"""herald.settings: every HERALD_* value resolves to the right target, or fails naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from herald.paths import PROJECT_ROOT
from herald.settings import (
    ENV_DROPZONE_URL,
    ENV_WAREHOUSE_URL,
    Settings,
    SettingsError,
    check_environment,
    parse_dropzone_url,
    parse_warehouse_url,
    redact_url,
)

SECRET = "s3cr3t-pw"


def traceback_text(exc: BaseException | None) -> str:
    """Every message a traceback of ``exc`` would print (its chained exceptions included)."""
    texts = []
    while exc is not None:
        texts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return "\n".join(texts)


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory (relative settings resolve against it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()


def test_defaults_put_everything_under_dot_herald(cwd: Path) -> None:
    settings = Settings.from_env({})

    assert settings.home == cwd / ".herald"
    assert settings.config_dir == PROJECT_ROOT / "config"  # the repository's, wherever the command runs
    assert settings.dagster_home == cwd / ".herald" / "dagster"
    assert settings.warehouse.engine == "duckdb"
    assert settings.warehouse.duckdb_path == cwd / ".herald" / "warehouse.duckdb"
    assert settings.warehouse.url == f"duckdb:///{cwd}/.herald/warehouse.duckdb"
    assert settings.warehouse.dbt_env() == {
        "HERALD_DBT_TARGET": "duckdb",
        "HERALD_DUCKDB_PATH": str(cwd / ".herald" / "warehouse.duckdb"),
    }
    assert settings.dropzone.kind == "local"
    assert settings.dropzone.local_root == cwd / ".herald" / "dropzone"
    assert settings.dropzone.url == (cwd / ".herald" / "dropzone").as_uri()


def test_empty_values_mean_the_default(cwd: Path) -> None:
    blank = {"HERALD_HOME": "", "HERALD_CONFIG_DIR": "", ENV_WAREHOUSE_URL: "  ", ENV_DROPZONE_URL: ""}
    assert Settings.from_env(blank) == Settings.from_env({})


def test_home_and_config_dir_are_resolved(cwd: Path) -> None:
    settings = Settings.from_env({"HERALD_HOME": "deploy/../state", "HERALD_CONFIG_DIR": "conf"})

    assert settings.home == cwd / "state"
    assert settings.config_dir == PROJECT_ROOT / "conf"
    assert settings.warehouse.duckdb_path == cwd / "state" / "warehouse.duckdb"
    assert settings.dropzone.local_root == cwd / "state" / "dropzone"


@pytest.mark.parametrize(
    ("value", "relative_path"),
    [
        ("duckdb:///{cwd}/abs/wh.duckdb", "abs/wh.duckdb"),
        ("duckdb:rel/wh.duckdb", "rel/wh.duckdb"),
        ("duckdb:rel/wh.db", "rel/wh.db"),
        ("x.duckdb", "x.duckdb"),
        ("sub/dir/x.duckdb", "sub/dir/x.duckdb"),
    ],
)
def test_duckdb_warehouse_urls(cwd: Path, value: str, relative_path: str) -> None:
    target = parse_warehouse_url(value.format(cwd=cwd), cwd / ".herald")

    expected = cwd / relative_path
    assert target.engine == "duckdb"
    assert target.duckdb_path == expected
    assert target.url == f"duckdb:///{expected}"
    assert target.dbt_target == "duckdb"
    assert target.dbt_env() == {"HERALD_DBT_TARGET": "duckdb", "HERALD_DUCKDB_PATH": str(expected)}


@pytest.mark.parametrize(
    ("value", "host", "port", "user", "password", "database"),
    [
        (f"postgresql://user:{SECRET}@host:5433/db", "host", 5433, "user", SECRET, "db"),
        ("postgres://herald@db.internal/warehouse", "db.internal", 5432, "herald", "", "warehouse"),
        ("postgresql://user:p%40ss%2Fword@10.0.0.5/db", "10.0.0.5", 5432, "user", "p@ss/word", "db"),
    ],
)
def test_postgres_warehouse_url(value: str, host: str, port: int, user: str, password: str, database: str) -> None:
    target = parse_warehouse_url(value, Path("/unused"))

    assert (target.engine, target.pg_host, target.pg_port, target.pg_user, target.pg_password, target.pg_database) == (
        "postgres",
        host,
        port,
        user,
        password,
        database,
    )
    assert target.duckdb_path is None
    assert target.dbt_env() == {
        "HERALD_DBT_TARGET": "postgres",
        "HERALD_PG_HOST": host,
        "HERALD_PG_PORT": str(port),
        "HERALD_PG_USER": user,
        "HERALD_PG_PASSWORD": password,
        "HERALD_PG_DATABASE": database,
    }


def test_settings_read_the_warehouse_from_the_environment(cwd: Path) -> None:
    settings = Settings.from_env({ENV_WAREHOUSE_URL: f"postgresql://user:{SECRET}@host:5433/db"})

    assert settings.warehouse.engine == "postgres"
    assert settings.warehouse.pg_port == 5433
    assert settings.dropzone.local_root == cwd / ".herald" / "dropzone"  # the drop zone keeps its default


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (f"postgresql://user:{SECRET}@host:5433/db", "postgresql://user:***@host:5433/db"),
        ("postgresql://pw:pw@host/db", "postgresql://pw:***@host/db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("duckdb:///tmp/x.duckdb", "duckdb:///tmp/x.duckdb"),
        (f"sftp://client:{SECRET}@files.example/in", "sftp://client:***@files.example/in"),
    ],
)
def test_redact_url_masks_only_the_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (f"mysql://user:{SECRET}@host/db", "is not a warehouse Herald knows"),
        ("sqlite:///tmp/x.db", "is not a warehouse Herald knows"),
        ("warehouse.db", "is not a warehouse Herald knows"),
        ("duckdb:", "names no file"),
        ("duckdb://", "names no file"),
        (f"postgresql://user:{SECRET}@host:5433/", "names no database"),
        (f"postgresql://user:{SECRET}@host:port/db", "port"),
        (f"postgresql://user:{SECRET}@host:99999/db", "port"),
    ],
)
def test_unknown_warehouse_names_the_variable_and_hides_the_password(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({ENV_WAREHOUSE_URL: value})

    message = str(raised.value)
    assert message.startswith(f"{ENV_WAREHOUSE_URL}=")
    assert says in message
    assert "it accepts a DuckDB file" in message and "or a PostgreSQL URL" in message
    assert SECRET not in traceback_text(raised.value)


@pytest.mark.parametrize(
    ("value", "root"),
    [
        ("file:///{cwd}/zone", "zone"),
        ("file:///{cwd}/with%20space", "with space"),
        ("zone", "zone"),
        ("{cwd}/a/../zone", "zone"),
    ],
)
def test_local_drop_zone_urls(cwd: Path, value: str, root: str) -> None:
    target = parse_dropzone_url(value.format(cwd=cwd), cwd / ".herald")

    assert target.kind == "local"
    assert target.local_root == cwd / root
    assert target.url == (cwd / root).as_uri()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("s3://", "names no bucket"),
        (f"sftp://client:{SECRET}@files.example/in", "carries a password; put it in HERALD_SFTP_PASSWORD"),
        ("sftp://files.example/in", "needs a user and a host"),
        ("ftp://files.example/in", "is not a drop zone Herald knows"),
        (f"https://user:{SECRET}@example.com/zone", "is not a drop zone Herald knows"),
    ],
)
def test_unknown_drop_zone_names_the_variable(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({ENV_DROPZONE_URL: value})

    message = str(raised.value)
    assert message.startswith(f"{ENV_DROPZONE_URL}=")
    assert says in message
    assert SECRET not in traceback_text(raised.value)


def test_s3_and_sftp_drop_zone_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    s3 = Settings.from_env({ENV_DROPZONE_URL: "s3://herald-drops/clients/"}).dropzone
    assert (s3.kind, s3.bucket, s3.prefix, s3.endpoint_url) == (
        "s3",
        "herald-drops",
        "clients",
        "http://127.0.0.1:9000",
    )
    sftp = Settings.from_env({ENV_DROPZONE_URL: "sftp://herald@files.example:2222/srv/drops"}).dropzone
    assert (sftp.kind, sftp.user, sftp.host, sftp.port, sftp.prefix) == (
        "sftp",
        "herald",
        "files.example",
        2222,
        "/srv/drops",
    )


def test_config_dir_resolves_against_the_repository_or_as_given(cwd: Path) -> None:
    assert Settings.from_env({"HERALD_CONFIG_DIR": "config"}).config_dir == PROJECT_ROOT / "config"
    assert Settings.from_env({"HERALD_CONFIG_DIR": str(cwd / "mine")}).config_dir == cwd / "mine"


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [("HERALD_SMS_PROVIDER", "twillio", "sandbox, twilio"), ("HERALD_EMAIL_PROVIDER", "sendgrid", "sandbox, resend")],
)
def test_unknown_provider_fails_every_settings_read(cwd: Path, variable: str, value: str, accepted: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert str(info.value) == f"{variable}={value!r} is not one Herald knows; it accepts {accepted}"


def test_provider_names_are_case_insensitive(cwd: Path) -> None:
    settings = Settings.from_env({"HERALD_SMS_PROVIDER": " Twilio ", "HERALD_EMAIL_PROVIDER": "RESEND"})
    assert (settings.sms_provider, settings.email_provider) == ("twilio", "resend")
    assert (Settings.from_env({}).sms_provider, Settings.from_env({}).email_provider) == ("sandbox", "sandbox")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"HERALD_CONFIG_DIR": "/nonexistent/conf"}, "HERALD_CONFIG_DIR: /nonexistent/conf is not a folder"),
        ({"HERALD_SMS_RATE_PER_SECOND": "fast"}, "HERALD_SMS_RATE_PER_SECOND='fast' is not a number"),
        ({"HERALD_SANDBOX_SEND_DELAY_SECONDS": "-1"}, "HERALD_SANDBOX_SEND_DELAY_SECONDS='-1' must not be negative"),
        ({"HERALD_DELIVERY_BATCH_SIZE": "0"}, "HERALD_DELIVERY_BATCH_SIZE must be at least 1"),
        (
            {"HERALD_SMS_PROVIDER": "twilio"},
            "HERALD_SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        ),
        (
            {"HERALD_EMAIL_PROVIDER": "resend", "RESEND_API_KEY": " "},
            "HERALD_EMAIL_PROVIDER=resend needs RESEND_API_KEY",
        ),
    ],
)
def test_check_environment_names_the_variable(cwd: Path, env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(says)):
        check_environment(env)


def test_check_environment_refuses_a_home_that_is_a_file(cwd: Path) -> None:
    (cwd / "home").write_text("not a folder")
    with pytest.raises(SettingsError, match=r"HERALD_HOME=.* is a file"):
        check_environment({"HERALD_HOME": str(cwd / "home")})


def test_check_environment_accepts_a_complete_deployment(cwd: Path) -> None:
    env = {"HERALD_SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t",
           "HERALD_DELIVERY_BATCH_SIZE": "50", "HERALD_SMS_RATE_PER_SECOND": "2.5"}  # fmt: skip
    assert check_environment(env).sms_provider == "twilio"
    assert check_environment({"HERALD_CONFIG_DIR": "/nowhere"}, config_dir_needed=False).config_dir == Path("/nowhere")
