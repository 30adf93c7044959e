"""The production stack on one machine: ``herald stack up`` / ``down`` / ``status`` (``make prod-up``).

The process layout is ``deploy/compose.yaml``'s: this module starts **exactly the ``command:``
of each Herald service there** (migrate, code-server, daemon, webserver, web) as local
processes, with compose's ``${VAR:-default}`` interpolation, so what is tested here is what the
containers and the Helm chart run. What compose gets from other containers, this machine
provides instead:

- PostgreSQL on 127.0.0.1:5432 (an admin URL reaches it): the stack creates a login role that is
  not a superuser and two databases it owns, one for Dagster's storage (run queue, event log,
  schedules — ``deploy/dagster.yaml``) and one for the warehouse;
- a moto S3 server on 127.0.0.1 with a bucket, as the drop zone (or a folder, or the caller's
  ``HERALD_DROPZONE_URL``);
- Redis on 127.0.0.1:6379, when it answers, as the rate limiter's storage shared by every
  delivery run (otherwise each run keeps its own window, and ``up`` says so).

Everything the stack writes is under one folder (``HERALD_STACK_DIR``, default ``.prod/`` in the
repository): Dagster's home, Herald's home, a log per process, ``stack.json`` (what runs, where)
and ``stack.env`` (source it to point ``herald`` commands at the stack). Every process started
carries ``HERALD_STACK_ID`` in its environment; ``down`` stops the process groups and then any
process still carrying the id (the run workers the code server launched), and checks that
nothing is left.

This module starts processes; it imports neither Dagster nor Herald's domain.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from herald.paths import DEPLOY_DIR, PROJECT_ROOT

COMPOSE_YAML = DEPLOY_DIR / "compose.yaml"
DAGSTER_YAML = DEPLOY_DIR / "dagster.yaml"
DEFAULT_STACK_DIR = PROJECT_ROOT / ".prod"
ENV_STACK_DIR = "HERALD_STACK_DIR"
ENV_STACK_ID = "HERALD_STACK_ID"
ENV_ADMIN_URL = "HERALD_STACK_PG_ADMIN_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_ROLE = "herald_stack"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
BUCKET = "herald-drop"
# moto accepts any credentials; these are not secrets, so stack.env keeps them
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "herald-stack",
    "AWS_SECRET_ACCESS_KEY": "herald-stack",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Started in this order, stopped in the reverse; `migrate` runs to completion first.
ONE_SHOT = "migrate"
SERVICES = ("code-server", "daemon", "webserver", "web")
# The ports a service listens on, by the variable compose's command reads.
PORT_VARIABLES = {
    "code-server": "DAGSTER_CODE_SERVER_PORT",
    "webserver": "DAGSTER_WEBSERVER_PORT",
    "web": "HERALD_WEB_PORT",
}
DEFAULT_PORTS = {"DAGSTER_CODE_SERVER_PORT": 4000, "DAGSTER_WEBSERVER_PORT": 3000, "HERALD_WEB_PORT": 8000}
# The caller may choose these; the stack sets every other variable it passes.
CALLER_CHOOSES = ("HERALD_DROPZONE_URL", "HERALD_CONFIG_DIR", "HERALD_RATE_LIMIT_STORAGE", "HERALD_PUBLIC_URL")
START_TIMEOUT_SECONDS = 240
STOP_GRACE_SECONDS = 20


class StackError(Exception):
    """The stack could not be started or stopped; the message says what and where."""


# -- compose ----------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}``
    (unset), ``${VAR:?error}`` / ``${VAR?error}``, and ``$$`` for a literal ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if missing else str(current)
        if op in (":?", "?"):
            if missing:
                raise StackError(f"deploy/compose.yaml: {name} must be set ({arg or 'required'})")
            return str(current)
        return "" if current is None else str(current)

    return _INTERPOLATION.sub(replace, value)


def compose_commands(env: Mapping[str, str], compose_path: Path = COMPOSE_YAML) -> dict[str, list[str]]:
    """Each Herald service's ``command:`` from compose.yaml, interpolated with ``env``."""
    try:
        document = yaml.safe_load(compose_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StackError(f"cannot read {compose_path}: {exc}") from None
    services = (document or {}).get("services") or {}
    commands = {}
    for name in (ONE_SHOT, *SERVICES):
        command = (services.get(name) or {}).get("command")
        if not isinstance(command, list) or not command:
            raise StackError(f"{compose_path}: service {name!r} has no command list")
        commands[name] = [interpolate(str(part), env) for part in command]
    return commands


# -- state ------------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    pid: int
    argv: list[str]
    log: str
    url: str = ""


@dataclass
class StackState:
    stack_id: str
    folder: str
    started_at: float
    databases: dict[str, str]
    role: str
    admin_url: str
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(self.folder) / "stack.json"

    def save(self) -> None:
        self.path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> StackState | None:
        path = folder / "stack.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        data["processes"] = [Process(**p) for p in data.get("processes", [])]
        return cls(**data)

    def url(self, name: str) -> str:
        return next((p.url for p in self.processes if p.name == name), "")


def stack_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_STACK_DIR) or DEFAULT_STACK_DIR).expanduser().resolve()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own child not yet reaped) is not running
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def processes_carrying(stack_id: str) -> list[int]:
    """Every process of this user whose environment holds ``HERALD_STACK_ID=<stack_id>``."""
    wanted = f"{ENV_STACK_ID}={stack_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), os.getppid()):
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# -- infrastructure ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pg_connect(url: str):
    import psycopg2

    try:
        conn = psycopg2.connect(url, connect_timeout=5)
    except psycopg2.Error as exc:
        raise StackError(f"cannot reach PostgreSQL at {_safe_url(url)} ({ENV_ADMIN_URL}): {str(exc).strip()}") from None
    conn.autocommit = True
    return conn


def _safe_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def create_databases(admin_url: str, role: str, names: list[str]) -> None:
    """A login role that is not a superuser (it may create databases and roles, as the warehouse's
    scratch copies and segment roles need) and ``names`` owned by it; existing ones are kept."""
    from psycopg2 import sql

    conn = _pg_connect(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(hashtext('herald stack roles'))")
            cur.execute("select 1 from pg_roles where rolname = %s", (role,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("create role {} login createdb createrole nosuperuser").format(sql.Identifier(role))
                )
            for name in names:
                cur.execute("select 1 from pg_database where datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(role))
                    )
            cur.execute("select pg_advisory_unlock(hashtext('herald stack roles'))")
    finally:
        conn.close()


def drop_databases(admin_url: str, names: list[str]) -> None:
    from psycopg2 import sql

    conn = _pg_connect(admin_url)
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    finally:
        conn.close()


def redis_answers(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def _wait(what: str, check: Callable[[], bool], timeout: float, process: subprocess.Popen | None, log: Path | None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with status {process.returncode}{_log_tail(log)}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise StackError(f"{what} was not ready after {timeout:.0f}s{_log_tail(log)}")


def _log_tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"; the end of {log}:\n" + "\n".join("    " + line for line in tail)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
  loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def code_location_loaded(webserver_url: str) -> bool:
    """The webserver reached the code server and loaded the ``herald`` location without error."""
    request = urllib.request.Request(
        f"{webserver_url}/graphql",
        data=json.dumps({"query": WORKSPACE_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    for entry in entries:
        if entry["name"] == "herald" and entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "PythonError":
                raise StackError(f"the code server failed to load Herald's definitions: {loaded.get('message')}")
            return loaded.get("__typename") == "RepositoryLocation"
    return False


# -- up / down --------------------------------------------------------------------------------


@dataclass
class UpOptions:
    folder: Path
    admin_url: str = DEFAULT_ADMIN_URL
    role: str = DEFAULT_ROLE
    database_prefix: str = "herald_prod"
    free_ports: bool = False
    dropzone: str = "s3"  # s3 (a moto server) | folder
    extra_env: dict[str, str] = field(default_factory=dict)


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> tuple[subprocess.Popen, Path]:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        try:
            process = subprocess.Popen(
                argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise StackError(f"cannot start {name} ({argv[0]}): {exc}") from None
    return process, log


def _pg_url(role: str, admin_url: str, database: str) -> str:
    """A URL for ``role`` on the admin URL's server (trust or the caller's PGPASSWORD)."""
    from urllib.parse import urlsplit

    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    return f"postgresql://{role}@{host}:{port}/{database}"


def up(options: UpOptions, say: Callable[[str], None] = print) -> StackState:
    """Start the stack (see the module's docstring); on any failure, stop what was started."""
    folder = options.folder
    existing = StackState.load(folder)
    if existing is not None and any(alive(p.pid) for p in existing.processes):
        raise StackError(f"a stack is already running from {folder} (stop it with `herald stack down`)")
    for sub in ("logs", "dagster", "home"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    stack_id = uuid.uuid4().hex[:12]
    databases = {"dagster": f"{options.database_prefix}_dagster", "warehouse": f"{options.database_prefix}_warehouse"}
    state = StackState(stack_id=stack_id, folder=str(folder), started_at=time.time(), databases=databases,
                       role=options.role, admin_url=options.admin_url, env={})  # fmt: skip
    started: list[subprocess.Popen] = []
    try:
        say(f"PostgreSQL: role {options.role}, databases {databases['dagster']} and {databases['warehouse']}")
        create_databases(options.admin_url, options.role, list(databases.values()))
        env = _stack_env(options, state, say)
        if options.dropzone == "s3" and "HERALD_DROPZONE_URL" not in options.extra_env:
            started.append(_start_moto(env, folder / "logs", state, say))
        shutil.copyfile(DAGSTER_YAML, folder / "dagster" / "dagster.yaml")
        state.env = {k: v for k, v in env.items() if _kept(k)}
        state.save()
        commands = compose_commands(env)

        say(f"migrate: {' '.join(commands[ONE_SHOT])}")
        migrate, log = _start(ONE_SHOT, commands[ONE_SHOT], env, folder / "logs")
        if migrate.wait(timeout=START_TIMEOUT_SECONDS) != 0:
            raise StackError(f"migrate failed with status {migrate.returncode}{_log_tail(log)}")

        host = env["HERALD_BIND_HOST"]
        for name in SERVICES:
            process, log = _start(name, commands[name], env, folder / "logs")
            started.append(process)
            url = ""
            if name in PORT_VARIABLES:
                port = env[PORT_VARIABLES[name]]
                url = f"http://{host}:{port}" if name != "code-server" else f"grpc://{host}:{port}"
            state.processes.append(Process(name, process.pid, commands[name], str(log), url))
            state.save()
            say(f"{name}: pid {process.pid} {url}".rstrip())
            _wait_ready(name, process, log, env, state)
        return state
    except BaseException:
        for process in reversed(started):
            _stop_group(process.pid)
        for pid in processes_carrying(stack_id):
            _stop_group(pid, grace=0)
        state.processes = []
        state.save()
        raise


def _kept(name: str) -> bool:
    """Whether stack.json / stack.env record a variable: the stack's own, never a secret."""
    if name in MOTO_CREDENTIALS:
        return True
    secret = any(word in name for word in ("TOKEN", "SECRET", "PASSWORD", "API_KEY"))
    return name.startswith(("HERALD_", "DAGSTER_", "AWS_", "TWILIO_", "RESEND_")) and not secret


def _stack_env(options: UpOptions, state: StackState, say: Callable[[str], None]) -> dict[str, str]:
    """The caller's environment (provider settings, HERALD_CLOCK_OFFSET, ... pass through), with the
    stack's own locations, databases and ports set over it."""
    folder = options.folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    chosen = {k: os.environ[k] for k in CALLER_CHOOSES if os.environ.get(k)}
    ports = {}
    for variable, default in DEFAULT_PORTS.items():
        port = free_port() if options.free_ports else int(os.environ.get(variable) or default)
        if not options.free_ports and port_in_use(port):
            raise StackError(f"port {port} on 127.0.0.1 is in use: set {variable} to another, or use --free-ports")
        ports[variable] = str(port)
    warehouse = _pg_url(options.role, options.admin_url, state.databases["warehouse"])
    dagster_pg = _pg_url(options.role, options.admin_url, state.databases["dagster"])
    from urllib.parse import urlsplit

    pg = urlsplit(dagster_pg)
    env.update(
        {
            ENV_STACK_ID: state.stack_id,
            "PATH": f"{_venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
            "DAGSTER_HOME": str(folder / "dagster"),
            "DAGSTER_PG_HOST": pg.hostname or "127.0.0.1",
            "DAGSTER_PG_PORT": str(pg.port or 5432),
            "DAGSTER_PG_USER": options.role,
            "DAGSTER_PG_PASSWORD": os.environ.get("PGPASSWORD", ""),
            "DAGSTER_PG_DB": state.databases["dagster"],
            "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
            "HERALD_BIND_HOST": "127.0.0.1",
            "HERALD_HOME": str(folder / "home"),
            "HERALD_WAREHOUSE_URL": warehouse,
            "HERALD_CONFIG_DIR": str(PROJECT_ROOT / "config"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **ports,
        }
    )
    env["HERALD_PUBLIC_URL"] = f"http://127.0.0.1:{ports['HERALD_WEB_PORT']}"
    if options.dropzone == "folder":
        env["HERALD_DROPZONE_URL"] = str(folder / "dropzone")
    if "HERALD_RATE_LIMIT_STORAGE" not in chosen:
        if redis_answers(DEFAULT_REDIS):
            env["HERALD_RATE_LIMIT_STORAGE"] = DEFAULT_REDIS
            say(f"rate limits: shared by every delivery run in {DEFAULT_REDIS}")
        else:
            say("rate limits: Redis does not answer on 127.0.0.1:6379, so each delivery run keeps its own window")
    env.update(chosen)
    env.update(options.extra_env)
    return env


def _start_moto(env: dict[str, str], logs: Path, state: StackState, say: Callable[[str], None]) -> subprocess.Popen:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process, log = _start("s3", [str(_venv_bin() / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env, logs)
    state.processes.append(Process("s3", process.pid, ["moto_server"], str(log), endpoint))
    _wait("the moto S3 server", lambda: http_ok(f"{endpoint}/moto-api/"), 60, process, log)
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=MOTO_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=BUCKET)
    env.update(MOTO_CREDENTIALS)
    env["HERALD_DROPZONE_URL"] = f"s3://{BUCKET}/clients"
    env["HERALD_S3_ENDPOINT_URL"] = endpoint
    say(f"s3: moto server pid {process.pid} {endpoint}, drop zone s3://{BUCKET}/clients")
    return process


def _wait_ready(name: str, process: subprocess.Popen, log: Path, env: dict[str, str], state: StackState) -> None:
    host = env["HERALD_BIND_HOST"]
    if name == "code-server":
        port = env["DAGSTER_CODE_SERVER_PORT"]
        health = [str(_venv_bin() / "dagster"), "api", "grpc-health-check", "--host", host, "--port", port]

        def serving() -> bool:
            return subprocess.run(health, env=env, capture_output=True, timeout=30).returncode == 0

        _wait("the code server", serving, START_TIMEOUT_SECONDS, process, log)
    elif name == "webserver":
        url = state.url("webserver")
        _wait("the Dagster webserver", lambda: http_ok(f"{url}/server_info"), START_TIMEOUT_SECONDS, process, log)
        _wait("the webserver's view of the code server", lambda: code_location_loaded(url),
              START_TIMEOUT_SECONDS, process, log)  # fmt: skip
    elif name == "daemon":
        check = [str(_venv_bin() / "dagster-daemon"), "liveness-check"]

        def beating() -> bool:
            return subprocess.run(check, env=env, cwd=PROJECT_ROOT, capture_output=True, timeout=60).returncode == 0

        _wait("the Dagster daemon", beating, START_TIMEOUT_SECONDS, process, log)
    elif name == "web":
        url = state.url("web")
        _wait("herald serve", lambda: http_ok(f"{url}/healthz"), START_TIMEOUT_SECONDS, process, log)


def _stop_group(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group led by ``pid`` (a process started with its own session), SIGKILL
    after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not alive(pid):
                return
            time.sleep(0.1)


def down(folder: Path, *, purge: bool = False, say: Callable[[str], None] = print) -> list[int]:
    """Stop every process of the stack in ``folder``; return the pids still alive (none, normally).
    ``purge`` also drops its databases and deletes the folder."""
    state = StackState.load(folder)
    if state is None:
        say(f"no stack in {folder}")
        return []
    for process in reversed(state.processes):
        if alive(process.pid):
            say(f"stopping {process.name} (pid {process.pid})")
            _stop_group(process.pid)
    for pid in processes_carrying(state.stack_id):
        say(f"stopping a process the stack left (pid {pid})")
        _stop_group(pid, grace=5.0)
    left = processes_carrying(state.stack_id) + [p.pid for p in state.processes if alive(p.pid)]
    if not left:
        state.processes = []
        state.save()
        if purge:
            drop_databases(state.admin_url, list(state.databases.values()))
            shutil.rmtree(folder, ignore_errors=True)
            say(f"dropped {', '.join(state.databases.values())} and deleted {folder}")
    return left


def restart(folder: Path, name: str, *, kill: bool = False, say: Callable[[str], None] = print) -> Process:
    """Stop one process of the stack (SIGTERM, or SIGKILL with ``kill``: a crash) and start it
    again with the same command, in the caller's environment plus the stack's; wait until it
    answers. Only the process itself is signalled, not its group: the runs a code server
    launched keep running, as they would in their own containers."""
    state = StackState.load(folder)
    if state is None or not state.processes:
        raise StackError(f"no stack running from {folder}")
    process = next((p for p in state.processes if p.name == name), None)
    if process is None or name not in SERVICES:
        raise StackError(f"no process {name!r} in the stack (it has {', '.join(SERVICES)})")
    if alive(process.pid):
        say(f"{'killing' if kill else 'stopping'} {name} (pid {process.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while alive(process.pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(process.pid, os.WNOHANG)
            time.sleep(0.1)
        if alive(process.pid):
            os.kill(process.pid, signal.SIGKILL)
    env = {**os.environ, **state.env, ENV_STACK_ID: state.stack_id}
    env["PATH"] = f"{_venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
    started, log = _start(name, process.argv, env, Path(folder) / "logs")
    process.pid = started.pid
    state.save()
    say(f"{name}: pid {started.pid} {process.url}".rstrip())
    _wait_ready(name, started, log, env, state)
    return process


def env_file(state: StackState) -> Path:
    """``stack.env``: ``export`` lines that point ``herald`` and ``dagster`` commands at the stack."""
    import shlex

    path = Path(state.folder) / "stack.env"
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(state.env.items()) if k not in ("PATH", ENV_STACK_ID)]
    path.write_text("# source this file to run herald / dagster commands against the stack\n" + "\n".join(lines) + "\n")
    return path
