"""`herald stack up` and `herald stack down --purge` for the production-stack test modules: each
module starts a stack of its own (its own folder, ports and PostgreSQL databases) and this is
the one way they start and stop it, so teardown always proves nothing is left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

from orchestration.stack import StackState, alive, processes_carrying

REPO_ROOT = Path(__file__).resolve().parents[2]
HERALD = str(REPO_ROOT / ".venv" / "bin" / "herald")


@contextmanager
def stack_up(
    tmp_path_factory: pytest.TempPathFactory, folder: Path, prefix: str, env: dict[str, str]
) -> Iterator[tuple[StackState, str]]:
    """Starts a stack in ``folder`` (env's HERALD_STACK_DIR) with databases named ``prefix…``;
    yields its state and `stack up`'s output. Afterwards: the logs copied to a folder pytest
    keeps (for a failure's investigation), `down --purge`, then no process of the stack alive
    and no database of the prefix left."""
    up = subprocess.run(
        [HERALD, "stack", "up", "--free-ports", "--database-prefix", prefix],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    state = StackState.load(folder)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert state is not None
        yield state, up.stdout
    finally:
        logs = Path(folder, "logs")
        if logs.exists():
            kept = tmp_path_factory.mktemp(f"{folder.name}-logs")
            for log in logs.iterdir():
                kept.joinpath(log.name).write_bytes(log.read_bytes())
        down = subprocess.run(
            [HERALD, "stack", "down", "--purge"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert "nothing left running" in down.stdout
        if state is not None:
            assert processes_carrying(state.stack_id) == []
            assert not any(alive(p.pid) for p in state.processes)
        conn = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("select count(*) from pg_database where datname like %s", (f"{prefix}%",))
                assert cur.fetchone() == (0,)
        finally:
            conn.close()
