"""Circuit breakers for provider failover: one per provider account, shared through the warehouse.

A client whose ``client.yaml`` names a secondary provider for a channel
(``providers.sms.secondary``) sends through its primary while the primary's circuit is
**closed**. After ``failure_threshold`` consecutive transient errors at the primary (429, 5xx,
timeouts, refused connections: what :func:`herald.delivery.retry.classify` calls transient) the
circuit **opens**: for ``cooldown_seconds`` those clients' messages go to the secondary. Then the
first worker to ask takes the **probe** (the circuit is **half open**): that one call goes to the
primary — success closes the circuit, a transient error opens it for another cool-down — while
every other call keeps going to the secondary. A probe whose worker died is taken over once it is
a cool-down old. A permanent error (an invalid number) means the provider answered: it counts as a
success. Clients without a secondary never consult a circuit (their delivery is unchanged).

The state machine is pure (:func:`decide`, :func:`after_success`, :func:`after_failure`,
:func:`take_probe`; table-tested). :class:`CircuitBreakers` keeps each circuit as one row of
``herald_ops.provider_circuits`` so every delivery worker sees the same circuit: a transition is
read and written in one transaction (``select ... for update`` on PostgreSQL, so two workers
cannot both take the probe or lose a failure). On PostgreSQL routing reads a copy at most a
second old (``refresh_seconds``); on DuckDB, which has one writing process, once per run. A success
writes only when the circuit was not already closed with no failures, so a healthy primary costs
one small read a second and no writes.

Why not pybreaker or aiobreaker: they wrap one callable and raise when the circuit is open
(Herald routes the call elsewhere instead), keep their state in memory or Redis only (the
warehouse is the one store every deployment has; Redis is optional), and let every caller through
while half open — across workers that is many probes, not one.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from herald.clock import utcnow
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import OPS_SCHEMA, column_names

log = logging.getLogger("herald.delivery.circuit")

CIRCUITS = f"{OPS_SCHEMA}.provider_circuits"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
POSTGRES_REFRESH_SECONDS = 1.0
Decision = Literal["primary", "probe", "secondary"]


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5  # consecutive transient errors that open a circuit
    cooldown_seconds: float = 60.0  # how long an open circuit sends everything to the secondary

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.cooldown_seconds < 0:
            raise ValueError("cooldown_seconds must not be negative")


@dataclass(frozen=True)
class Circuit:
    state: str = CLOSED
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    probe_token: str | None = None
    probe_started_at: datetime | None = None
    last_error_code: str | None = None


def decide(circuit: Circuit, policy: BreakerPolicy, now: datetime) -> Decision:
    """Where the next call of a client with a secondary goes: the primary (closed), a probe of
    the primary (open for a cool-down, or half open with a probe a cool-down old), or the secondary."""
    cooldown = timedelta(seconds=policy.cooldown_seconds)
    if circuit.state == CLOSED:
        return "primary"
    if circuit.state == OPEN and circuit.opened_at is not None and now >= circuit.opened_at + cooldown:
        return "probe"
    if circuit.state == HALF_OPEN and (circuit.probe_started_at is None or now >= circuit.probe_started_at + cooldown):
        return "probe"
    return "secondary"


def take_probe(circuit: Circuit, policy: BreakerPolicy, now: datetime, token: str) -> Circuit | None:
    """The circuit with ``token``'s probe under way, or None when no probe is due."""
    if decide(circuit, policy, now) != "probe":
        return None
    return replace(circuit, state=HALF_OPEN, probe_token=token, probe_started_at=now)


def after_success(circuit: Circuit, probe_token: str | None = None) -> Circuit:
    """A call to the primary was answered. Closed: the count starts again. Half open and this
    was the probe: closed. Open (a call that started before it opened): no change."""
    if circuit.state == CLOSED:
        return replace(circuit, consecutive_failures=0)
    if circuit.state == HALF_OPEN and probe_token is not None and probe_token == circuit.probe_token:
        return Circuit()
    return circuit


def after_failure(
    circuit: Circuit, policy: BreakerPolicy, now: datetime, code: str | None, probe_token: str | None = None
) -> Circuit:
    """A call to the primary failed transiently: counted; the threshold reached opens a closed
    circuit, a failed probe opens a half-open one again for a new cool-down."""
    failures = circuit.consecutive_failures + 1
    if circuit.state == CLOSED and failures >= policy.failure_threshold:
        return Circuit(OPEN, failures, now, None, None, code)
    if circuit.state == HALF_OPEN and probe_token is not None and probe_token == circuit.probe_token:
        return Circuit(OPEN, failures, now, None, None, code)
    return replace(circuit, consecutive_failures=failures, last_error_code=code)


_COLUMNS = column_names(CIRCUITS)
_STATE_COLUMNS = [c for c in _COLUMNS if c not in ("provider", "updated_at")]


def _describe(provider: str, before: Circuit, after: Circuit, policy: BreakerPolicy) -> str | None:
    """The log line of a transition (no address is ever in it: only the provider and a code)."""
    if before.state == after.state and not (after.state == HALF_OPEN and before.probe_token != after.probe_token):
        return None
    code = f" (last error code {after.last_error_code})" if after.last_error_code else ""
    if after.state == OPEN and before.state == HALF_OPEN:
        return (
            f"circuit of provider {provider} reopened: the probe failed{code}; "
            f"clients with a secondary send through it for {policy.cooldown_seconds:g} s more"
        )
    if after.state == OPEN:
        return (
            f"circuit of provider {provider} opened after {after.consecutive_failures} consecutive transient errors"
            f"{code}: clients with a secondary send through it for {policy.cooldown_seconds:g} s"
        )
    if after.state == HALF_OPEN:
        return f"circuit of provider {provider} half open: one probe message goes to it"
    return f"circuit of provider {provider} closed: the probe succeeded"


class CircuitBreakers:
    """The circuits of ``herald_ops.provider_circuits`` as one delivery run sees and moves them.

    ``events`` collects the transitions this run made (the delivery asset reports them)."""

    def __init__(
        self,
        warehouse: Warehouse,
        policy: BreakerPolicy = BreakerPolicy(),
        *,
        clock: Callable[[], datetime] = utcnow,
        refresh_seconds: float | None = None,
    ) -> None:
        self.warehouse, self.policy, self.clock = warehouse, policy, clock
        if refresh_seconds is None:
            # PostgreSQL: other workers move the circuits, so read them again each second. DuckDB
            # has one writing process (one delivery run at a time): what this run read at its
            # start and wrote since is the truth, and a DuckDB connection costs ~0.2 s to open.
            refresh_seconds = POSTGRES_REFRESH_SECONDS if warehouse.engine == "postgres" else float("inf")
        self.refresh_seconds = refresh_seconds
        self._circuits: dict[str, Circuit] = {}
        self._read_at = float("-inf")
        self.events: list[str] = []

    # -- reading ---------------------------------------------------------------------------------
    def circuit(self, provider: str) -> Circuit:
        """The provider's circuit as last read (read again once ``refresh_seconds`` old)."""
        if time.monotonic() - self._read_at >= self.refresh_seconds:
            self._refresh()
        return self._circuits.get(provider, Circuit())

    def _refresh(self) -> None:
        # DuckDB: a write session, like the rest of the run (a read-only connection beside a
        # read-write one of the same process is refused)
        with self.warehouse.session(read_only=self.warehouse.engine == "postgres") as s:
            _, rows = s.query(f"select {', '.join(_COLUMNS)} from {CIRCUITS}")
        self._circuits = {r[0]: Circuit(*r[1:-1]) for r in rows}
        self._read_at = time.monotonic()

    # -- routing and results ---------------------------------------------------------------------
    def route(self, provider: str) -> tuple[Decision, str | None]:
        """("primary", None), ("probe", token) when this caller won the probe, or ("secondary", None)."""
        decision = decide(self.circuit(provider), self.policy, self.clock())
        if decision != "probe":
            return decision, None
        token = str(uuid.uuid4())
        moved = self._transition(provider, lambda c: take_probe(c, self.policy, self.clock(), token))
        if moved is not None and moved.probe_token == token:
            return "probe", token
        return "secondary", None  # another worker took the probe (or the circuit moved on)

    def success(self, provider: str, probe_token: str | None = None) -> None:
        cached = self._circuits.get(provider, Circuit())
        if probe_token is None and cached.state != HALF_OPEN and cached.consecutive_failures == 0:
            return  # nothing to reset: no write on the healthy path
        self._transition(provider, lambda c: after_success(c, probe_token))

    def failure(self, provider: str, code: str | None, probe_token: str | None = None) -> None:
        self._transition(provider, lambda c: after_failure(c, self.policy, self.clock(), code, probe_token))

    def _transition(self, provider: str, move: Callable[[Circuit], Circuit | None]) -> Circuit | None:
        """Reads the provider's circuit under a row lock, applies ``move`` (None: no change),
        writes and logs the result; returns the circuit as it now is."""
        with self.warehouse.session() as s:
            if s.engine == "duckdb":  # the run's last session checkpoints; this small write need not
                s.execute("pragma disable_checkpoint_on_shutdown")
            before = self._locked(s, provider)
            after = move(before)
            if after is not None and after != before:
                values = [getattr(after, c) for c in _STATE_COLUMNS]
                s.execute(
                    f"update {CIRCUITS} set {', '.join(f'{c} = ?' for c in _STATE_COLUMNS)}, updated_at = ? "
                    "where provider = ?",
                    [*values, self.clock(), provider],
                )
        current = after if after is not None else before
        self._circuits[provider] = current
        if after is not None:
            line = _describe(provider, before, after, self.policy)
            if line:
                log.warning(line) if after.state == OPEN else log.info(line)
                self.events.append(line)
        return current

    def _locked(self, s: Session, provider: str) -> Circuit:
        s.execute(
            f"insert into {CIRCUITS} (provider, state, consecutive_failures, updated_at) values (?, ?, 0, ?) "
            "on conflict do nothing",
            [provider, CLOSED, self.clock()],
        )
        lock = " for update" if s.engine == "postgres" else ""
        _, rows = s.query(f"select {', '.join(_STATE_COLUMNS)} from {CIRCUITS} where provider = ?{lock}", [provider])
        return Circuit(*rows[0])
