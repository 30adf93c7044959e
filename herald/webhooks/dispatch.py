"""Webhook dispatch: client events become deliveries, deliveries become signed POSTs.

One run (:func:`dispatch`):

1. **Subscriptions** — each configured subscription gets a row in
   ``herald_ops.webhook_subscriptions`` the first time a run sees it; events that occurred before
   that are never sent (no backfill of history).
2. **Enqueue** — new rows of ``marts.client_events`` for the subscription's client and event
   types, since its creation, become ``herald_ops.webhook_deliveries`` (one per subscription and
   event id: an event seen twice is enqueued once). The JSON body is fixed here.
3. **Send** — due pending deliveries are POSTed (httpx, short timeout), round-robin over the
   subscriptions, at most ``max_attempts`` per run. Each attempt is recorded in
   ``herald_ops.webhook_attempts`` in its own short transaction (no warehouse session is open
   during an HTTP call). A 2xx delivers; 408, 429, 5xx, a timeout or a refused connection is
   retried on :data:`RETRY_DELAYS`; 410 Gone fails the delivery and disables the subscription
   (audited); any other status fails it at once. After a retryable failure the subscription's
   other deliveries wait for the next run, so a dead endpoint costs one timeout per run and never
   holds back another subscription.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from herald.clock import utcnow
from herald.compliance.audit import audit
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import OPS_SCHEMA, column_names
from herald.webhooks.config import EVENT_TYPES, WebhookSubscription, subscription_id
from herald.webhooks.signing import WebhookSecretError, load_secret, signed_headers

SUBSCRIPTIONS = f"{OPS_SCHEMA}.webhook_subscriptions"
DELIVERIES = f"{OPS_SCHEMA}.webhook_deliveries"
ATTEMPTS = f"{OPS_SCHEMA}.webhook_attempts"
CLIENT_EVENTS = "marts.client_events"

# Wait after the attempt that failed, by attempt number (the Standard Webhooks / Svix schedule):
# attempt 1 at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later: 8 attempts over
# 27 h 35 min. After the 8th failure the delivery fails for good.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT_SECONDS = 5.0
RETRYABLE_STATUS = frozenset({408, 429})

# what the payload's "type" says for each event type
PAYLOAD_TYPES = {
    "enrolled": "journey.enrolled",
    "exited": "journey.exited",
    "sent": "message.sent",
    "delivered": "message.delivered",
    "failed": "message.failed",
    "replied": "message.replied",
    "clicked": "message.clicked",
    "opted_out": "contact.opted_out",
    "converted": "contact.converted",
}
EVENT_COLUMNS = (
    "event_id", "event_type", "occurred_at", "contact_id", "external_id", "campaign", "step", "message_key",
    "channel", "detail",
)  # fmt: skip


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after failed attempt number ``attempts`` (1-based); None when it was the last."""
    return RETRY_DELAYS[attempts - 1] if attempts <= len(RETRY_DELAYS) else None


def iso(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def build_payload(client_id: str, event: Mapping[str, Any]) -> str:
    """The JSON body of one event: its type, when it occurred and ids only (never an address)."""
    body = {
        "type": PAYLOAD_TYPES[event["event_type"]],
        "timestamp": iso(event["occurred_at"]),
        "data": {
            "event_id": event["event_id"],
            "event_type": event["event_type"],
            "client_id": client_id,
            "contact_id": event.get("contact_id"),
            "external_id": event.get("external_id"),
            "campaign": event.get("campaign"),
            "step": event.get("step"),
            "message_key": event.get("message_key"),
            "channel": event.get("channel"),
            "detail": event.get("detail"),
        },
    }
    return json.dumps(body, separators=(",", ":"))


@dataclass
class Target:
    """A configured subscription with its state in the warehouse."""

    client_id: str
    subscription: WebhookSubscription
    subscription_id: str
    created_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


@dataclass
class AttemptResult:
    status_code: int | None
    error: str | None
    duration_ms: int
    outcome: str  # delivered | retry | failed | gone


@dataclass
class DispatchResult:
    """What one run did (counts of this run) and where things stand (totals)."""

    enqueued: int = 0
    delivered: int = 0
    failed: int = 0
    retrying: int = 0
    disabled: int = 0  # subscriptions disabled by this run (410)
    deferred: int = 0  # due deliveries left for the next run (budget, or their endpoint just failed)
    problems: list[str] = field(default_factory=list)  # e.g. a missing secret: that subscription waits
    totals: dict[str, int] = field(default_factory=dict)  # pending/delivered/failed deliveries, disabled subscriptions


def configured_subscriptions(deployment: Any) -> list[tuple[str, WebhookSubscription]]:
    """(client id, subscription) for every subscription of every client."""
    return [(cid, sub) for cid, client in sorted(deployment.clients.items()) for sub in client.config.webhooks]


def sync_subscriptions(
    session: Session, configured: Sequence[tuple[str, WebhookSubscription]], now: datetime
) -> list[Target]:
    """Records each configured subscription the first time it is seen (its start), keeps its URL and
    events current, and returns them with their state."""
    targets = []
    for client_id, sub in configured:
        sid = subscription_id(client_id, sub.url)
        events = ",".join(sub.events)
        _, found = session.query(
            f"select created_at, disabled_at, disabled_reason, events from {SUBSCRIPTIONS} where subscription_id = ?",
            [sid],
        )
        if not found:
            session.execute(
                f"insert into {SUBSCRIPTIONS} (subscription_id, client_id, url, events, created_at, updated_at) "
                "values (?, ?, ?, ?, ?, ?)",
                [sid, client_id, sub.url, events, now, now],
            )
            targets.append(Target(client_id, sub, sid, now))
            continue
        created_at, disabled_at, disabled_reason, stored_events = found[0]
        if stored_events != events:
            session.execute(
                f"update {SUBSCRIPTIONS} set events = ?, updated_at = ? where subscription_id = ?", [events, now, sid]
            )
        targets.append(Target(client_id, sub, sid, created_at, disabled_at, disabled_reason))
    return targets


def events_table_exists(session: Session, table: str = CLIENT_EVENTS) -> bool:
    schema, name = table.split(".")
    return bool(
        session.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        )
    )


def enqueue(session: Session, target: Target, now: datetime, limit: int, table: str = CLIENT_EVENTS) -> int:
    """New events of the target's client and types since its start become pending deliveries."""
    types = list(target.subscription.events)
    _, found = session.query(
        f"select {', '.join(EVENT_COLUMNS)} from {table} e "
        f"where e.client_id = ? and e.event_type in ({', '.join('?' * len(types))}) and e.occurred_at >= ? "
        f"and not exists (select 1 from {DELIVERIES} d where d.subscription_id = ? and d.event_id = e.event_id) "
        "order by e.occurred_at, e.event_id limit ?",
        [target.client_id, *types, target.created_at, target.subscription_id, limit],
    )
    rows: dict[str, tuple[Any, ...]] = {}
    for values in found:
        event = dict(zip(EVENT_COLUMNS, values, strict=True))
        if event["event_id"] in rows or event["event_type"] not in EVENT_TYPES:
            continue
        rows[event["event_id"]] = (
            target.subscription_id, event["event_id"], target.client_id, event["event_type"], event["occurred_at"],
            build_payload(target.client_id, event), "pending", 0, now, now, now,
        )  # fmt: skip
    if not rows:
        return 0
    session.insert_rows(
        DELIVERIES,
        ["subscription_id", "event_id", "client_id", "event_type", "occurred_at", "payload", "status", "attempts",
         "next_attempt_at", "enqueued_at", "updated_at"],
        list(rows.values()),
        ignore_existing=True,
    )  # fmt: skip
    latest = max(r[4] for r in rows.values())
    session.execute(
        f"update {SUBSCRIPTIONS} set cursor_at = ?, updated_at = ? "
        "where subscription_id = ? and (cursor_at is null or cursor_at < ?)",
        [latest, now, target.subscription_id, latest],
    )
    return len(rows)


def due_deliveries(session: Session, target: Target, now: datetime, limit: int) -> list[tuple[str, str, int]]:
    """(event_id, payload, attempts so far) of the target's pending deliveries that are due, oldest first."""
    _, found = session.query(
        f"select event_id, payload, attempts from {DELIVERIES} "
        "where subscription_id = ? and status = 'pending' and next_attempt_at <= ? "
        "order by next_attempt_at, occurred_at, event_id limit ?",
        [target.subscription_id, now, limit],
    )
    return [(r[0], r[1], int(r[2])) for r in found]


def classify(status_code: int | None) -> str:
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    if status_code in RETRYABLE_STATUS or status_code >= 500:
        return "retry"
    if 400 <= status_code < 500:
        return "failed"
    return "retry"  # 1xx/3xx: redirects are not followed; tried again later


def post(
    http: httpx.Client, url: str, body: str, headers: Mapping[str, str], timeout: float
) -> tuple[int | None, str | None, int]:
    """(status code, error, duration in ms) of one POST; never raises for a network problem."""
    started = time.monotonic()
    try:
        response = http.post(url, content=body.encode(), headers=dict(headers), timeout=timeout)
        code, error = response.status_code, None
        if not 200 <= code < 300:
            error = f"HTTP {code}: {response.text[:200]}".strip()
    except httpx.TimeoutException:
        code, error = None, f"timed out after {timeout:g} s"
    except httpx.HTTPError as exc:
        code, error = None, f"{type(exc).__name__}: {exc}"[:300]
    return code, error, int((time.monotonic() - started) * 1000)


def record_attempt(
    session: Session, target: Target, event_id: str, attempt: int, result: AttemptResult, now: datetime
) -> None:
    """The attempt row, the delivery's new state and, on 410, the subscription disabled (audited)."""
    session.execute(
        f"insert into {ATTEMPTS} ({', '.join(column_names(ATTEMPTS))}) values ({', '.join('?' * 9)})",
        [target.subscription_id, event_id, attempt, target.subscription.url, result.status_code, result.error,
         result.duration_ms, result.outcome, now],
    )  # fmt: skip
    status, next_at, delivered_at, error = "pending", None, None, result.error
    if result.outcome == "delivered":
        status, delivered_at = "delivered", now
    elif result.outcome == "retry":
        delay = retry_delay(attempt)
        if delay is None:
            status, error = "failed", f"gave up after {attempt} attempts; last: {result.error}"
        else:
            next_at = now + delay
    else:
        status = "failed"
        if result.outcome == "gone":
            error = "410 Gone: the endpoint asked to stop; subscription disabled"
    session.execute(
        f"update {DELIVERIES} set status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?, "
        "last_error = ?, delivered_at = coalesce(delivered_at, ?), updated_at = ? "
        "where subscription_id = ? and event_id = ?",
        [status, attempt, next_at, result.status_code, error, delivered_at, now, target.subscription_id, event_id],
    )
    if result.outcome == "gone":
        reason = f"410 Gone at {iso(now)} (event {event_id})"
        session.execute(
            f"update {SUBSCRIPTIONS} set disabled_at = ?, disabled_reason = ?, updated_at = ? where subscription_id = ?",
            [now, reason, now, target.subscription_id],
        )
        audit(session, "webhooks", "webhook_disabled", target.client_id, None, target.subscription.url, reason,
              {"subscription_id": target.subscription_id}, now=now)  # fmt: skip
        target.disabled_at, target.disabled_reason = now, reason


def totals(session: Session) -> dict[str, int]:
    _, found = session.query(f"select status, count(*) from {DELIVERIES} group by status")
    counts = {"pending": 0, "delivered": 0, "failed": 0, **{s: int(n) for s, n in found}}
    counts["retrying"] = int(
        session.scalar(f"select count(*) from {DELIVERIES} where status = 'pending' and attempts > 0") or 0
    )
    counts["disabled_subscriptions"] = int(
        session.scalar(f"select count(*) from {SUBSCRIPTIONS} where disabled_at is not null") or 0
    )
    return counts


def dispatch(
    warehouse: Warehouse,
    configured: Sequence[tuple[str, WebhookSubscription]],
    *,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
    http: httpx.Client | None = None,
    timeout: float = TIMEOUT_SECONDS,
    max_attempts: int = 100,
    max_enqueue: int = 1000,
    clock: Callable[[], datetime] | None = None,
    events_table: str = CLIENT_EVENTS,
    time_budget: float | None = None,
) -> DispatchResult:
    """One dispatch run over ``configured`` (see the module docstring). ``now`` schedules retries
    (tests advance it); ``clock`` stamps the signatures (default: the real time, as receivers
    check it against theirs). ``time_budget`` (seconds): no POST starts after it is spent, so a run
    of slow endpoints ends in bounded time."""
    now = now or utcnow()
    environ = os.environ if environ is None else environ
    result = DispatchResult()
    with warehouse.session() as s:
        targets = sync_subscriptions(s, configured, now)
        active = [t for t in targets if t.disabled_at is None]
        if events_table_exists(s, events_table):
            for target in active:
                result.enqueued += enqueue(s, target, now, max_enqueue, events_table)
        else:
            result.problems.append(f"{events_table} does not exist yet: nothing enqueued (the dbt build makes it)")
        queues: dict[str, list[tuple[str, str, int]]] = {t.subscription_id: due_deliveries(s, t, now, max_attempts)
                                                         for t in active}  # fmt: skip
    signers = {}
    for target in list(active):
        try:
            signers[target.subscription_id] = load_secret(
                target.subscription.secret_env, environ, target.subscription.url
            )
        except WebhookSecretError as exc:
            result.problems.append(f"{target.client_id}: {exc}; its deliveries wait")
            result.deferred += len(queues[target.subscription_id])
            active.remove(target)
    own_http = http is None
    http = http or httpx.Client(follow_redirects=False)
    budget = max_attempts
    deadline = None if time_budget is None else time.monotonic() + time_budget
    try:
        # round-robin: one delivery per subscription per turn, so no endpoint takes the whole budget
        while budget > 0 and active and (deadline is None or time.monotonic() < deadline):
            for target in list(active):
                queue = queues[target.subscription_id]
                if not queue or budget <= 0 or (deadline is not None and time.monotonic() >= deadline):
                    result.deferred += len(queue)
                    active.remove(target)
                    continue
                event_id, body, attempts = queue.pop(0)
                budget -= 1
                headers = signed_headers(signers[target.subscription_id], event_id, body, clock() if clock else None)
                code, error, duration = post(http, target.subscription.url, body, headers, timeout)
                attempt = AttemptResult(code, error, duration, classify(code))
                with warehouse.session() as s:
                    record_attempt(s, target, event_id, attempts + 1, attempt, now)
                if attempt.outcome == "delivered":
                    result.delivered += 1
                elif attempt.outcome == "retry" and retry_delay(attempts + 1) is not None:
                    result.retrying += 1
                else:
                    result.failed += 1
                if attempt.outcome in ("retry", "gone"):
                    # a failing or gone endpoint: its other deliveries wait for the next run
                    result.disabled += attempt.outcome == "gone"
                    result.deferred += len(queue) if attempt.outcome == "retry" else 0
                    active.remove(target)
        result.deferred += sum(len(queues[t.subscription_id]) for t in active)
    finally:
        if own_http:
            http.close()
    with warehouse.session(read_only=True) as s:
        result.totals = totals(s)
    return result


def ping(
    client_id: str, sub: WebhookSubscription, environ: Mapping[str, str] | None = None, timeout: float = TIMEOUT_SECONDS
) -> tuple[int | None, str | None, int, str]:
    """Sends a signed ``webhook.ping`` to one subscription: (status code, error, duration ms, response text)."""
    import uuid

    environ = os.environ if environ is None else environ
    signer = load_secret(sub.secret_env, environ, sub.url)
    msg_id = f"ping_{uuid.uuid4().hex}"
    body = json.dumps(
        {"type": "webhook.ping", "timestamp": iso(utcnow()),
         "data": {"client_id": client_id, "subscription_id": subscription_id(client_id, sub.url)}},
        separators=(",", ":"),
    )  # fmt: skip
    started = time.monotonic()
    try:
        with httpx.Client(follow_redirects=False) as http:
            response = http.post(sub.url, content=body.encode(), headers=signed_headers(signer, msg_id, body),
                                 timeout=timeout)  # fmt: skip
        return response.status_code, None, int((time.monotonic() - started) * 1000), response.text[:500]
    except httpx.TimeoutException:
        return None, f"timed out after {timeout:g} s", int((time.monotonic() - started) * 1000), ""
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", int((time.monotonic() - started) * 1000), ""


def subscription_status(session: Session, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per subscription id: its start, cursor, disabled state and delivery counts (empty when
    the webhook tables are not there yet)."""
    if not ids or not events_table_exists(session, SUBSCRIPTIONS):
        return {}
    marks = ", ".join("?" * len(ids))
    names, found = session.query(
        f"select subscription_id, created_at, cursor_at, disabled_at, disabled_reason from {SUBSCRIPTIONS} "
        f"where subscription_id in ({marks})",
        list(ids),
    )
    status = {r[0]: {**dict(zip(names, r, strict=True)), "pending": 0, "delivered": 0, "failed": 0} for r in found}
    _, counts = session.query(
        f"select subscription_id, status, count(*) from {DELIVERIES} where subscription_id in ({marks}) "
        "group by subscription_id, status",
        list(ids),
    )
    for sid, state, n in counts:
        status[sid][state] = int(n)
    _, last = session.query(
        f"select subscription_id, max(attempted_at) from {ATTEMPTS} where subscription_id in ({marks}) "
        "group by subscription_id",
        list(ids),
    )
    for sid, at in last:
        status[sid]["last_attempt_at"] = at
    return status


def enable_subscription(session: Session, client_id: str, url: str, actor: str, now: datetime) -> bool:
    """Lifts a 410 disable (the endpoint is back): its pending deliveries resume. False when it was not disabled."""
    sid = subscription_id(client_id, url)
    reason = session.scalar(f"select disabled_reason from {SUBSCRIPTIONS} where subscription_id = ?", [sid])
    if reason is None:
        return False
    session.execute(
        f"update {SUBSCRIPTIONS} set disabled_at = null, disabled_reason = null, updated_at = ? where subscription_id = ?",
        [now, sid],
    )
    audit(session, actor, "webhook_enabled", client_id, None, url, f"was: {reason}", {"subscription_id": sid}, now=now)
    return True
