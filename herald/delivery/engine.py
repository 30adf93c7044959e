"""The delivery engine: sends due outbox messages exactly once through a provider per channel.

``deliver_due`` first reconciles messages a dead run left in ``sending`` (lease expired), then
loops over batches until nothing is due:

1. **claim** (one transaction): due ``queued`` rows — on PostgreSQL ``for update skip locked``,
   so concurrent runs never claim the same row; DuckDB has a single writer. Recipients
   suppressed by then become ``suppressed``, those of a campaign paused in the portal since
   (``herald_ops.campaign_pauses``) ``cancelled``; a metered client's messages are debited in claim
   order while they fit its credit balance, the rest ``held`` (:mod:`herald.billing.credits`);
   the others ``sending`` with the batch's claim token. An SMS to a number whose opt-out has
   reached Herald but is not applied yet stays ``queued`` (:mod:`herald.compliance.stops`).
2. **send** outside any transaction, each call after a last look for such an opt-out (and, on
   PostgreSQL, a suppression recorded since the claim), which puts its message back to
   ``queued`` without a call (:class:`_LastLook`: the landing files before every call, the
   warehouse at most ``last_look_seconds`` before it): per provider and sender at its rate
   (``limits``; the window kept in this process or, with ``HERALD_RATE_LIMIT_STORAGE``, in a
   Redis every worker shares, see :mod:`herald.delivery.ratelimit`), quick retries of
   transient errors (``tenacity``, see :mod:`herald.delivery.retry`), emails in batches where
   the provider has a batch API. The batch's sends are one group commit
   (:meth:`Provider.group_commit`: the sandbox journal is fsynced once, at its end).
3. **record** (one transaction, after the group commit): each row's outcome, only where the
   row still carries this claim token, and one ``delivery_attempts`` row per message per
   provider call — set-based, on the connection that then claims the next batch.

Every step is a fixed number of statements per batch, whatever its size (keys travel as one
array parameter); a DuckDB run checkpoints once, at its end, not at every batch's close.

A crash between 2 and 3 leaves rows in ``sending``; the next run past the lease asks the
provider (:meth:`Provider.lookup`) and never resends an SMS whose fate it cannot learn (it is
``held``); an email it cannot confirm is requeued, since the idempotency key makes the provider
drop a duplicate. A call that timed out (``outcome_unknown``) is looked up the same way before
any retry. Limit: an email batch's idempotency key covers its exact set of messages, so an email
requeued after a crash is deduplicated by Resend only if it is batched with the same messages
again (the claim order, by ``send_after`` and key, makes that likely, not certain).

``attempts`` counts provider calls: the claim counts the first call of a run, the record adds
the quick retries; ``attempt_number`` in ``delivery_attempts`` numbers the calls.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from herald.billing.credits import Claimed, release_failed, release_unsent, reserve_credits
from herald.clock import utcnow as _clock_now
from herald.compliance.stops import StopWatch
from herald.config.models import Pricing
from herald.delivery.circuit import CircuitBreakers
from herald.delivery.consent_check import consent_lapsed
from herald.delivery.outbox import ATTEMPTS, OUTBOX, SUPPRESSIONS
from herald.delivery.preference_check import preference_blocks
from herald.delivery.ratelimit import KEY_PREFIX, MEMORY_STORAGE, SendRateLimiter, rate_limit_storage
from herald.delivery.retry import (
    PERMANENT,
    after_transient_failure,
    classify,
    error_code,
    error_reason,
    quick_retrying,
    retry_after_of,
    wait_provider_backoff,
)
from herald.providers.base import (
    OutboundMessage,
    OutcomeUnknownError,
    Provider,
    ProviderError,
    SendResult,
    TransientProviderError,
)
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import OPS_SCHEMA, column_names

# Message types that answer a recipient's own reply: an opt-out does not stop them (47 CFR
# 64.1200(a)(12) allows one confirmation after an opt-out; CTIA: HELP is always answered).
OPT_OUT_EXEMPT_TYPES = ("opt_out_confirmation", "help_reply")

HELD_UNKNOWN_REASON = "outcome unknown after a crash; check the provider before resending"
HELD_TIMEOUT_REASON = "outcome unknown after a timeout; check the provider before resending"
EMAIL_UNKNOWN_REASON = "outcome unknown after a crash; requeued: the idempotency key stops a duplicate"
# An opt-out from the address reached Herald but is not applied yet: the message stays queued
# (never sent) until it is; applying it cancels the message, or a later run sends it when the
# opt-out's scope does not cover it (herald/compliance/stops.py).
STOP_PENDING_REASON = "an opt-out from this address arrived and is not applied yet: waiting"
UNSUBSCRIBE_PENDING_REASON = "an unsubscribe from this contact arrived and is not applied yet: waiting"
STOP_PENDING_SECONDS = 30.0
PRIVACY_SALT = f"{OPS_SCHEMA}.privacy_salt"
SUPPRESSED_SINCE_CLAIM_REASON = "recipient suppressed after the claim: decided at the next claim"
# A campaign paused in the portal (herald/portal/campaigns.py): its messages falling due while it
# is paused are cancelled at the claim, which re-checks the pause in its own transaction.
CAMPAIGN_PAUSES = f"{OPS_SCHEMA}.campaign_pauses"
PAUSED_REASON = "campaign paused by {} in the portal"

_ROW_COLUMNS = (
    "message_key",
    "client_id",
    "channel",
    "to_address",
    "sender",
    "subject",
    "body_text",
    "body_html",
    "headers",
    "attempts",
    "claim_token",
    "claimed_at",
    "message_type",
    "contact_id",
)
_SELECT = ", ".join(_ROW_COLUMNS)
ATTEMPT_COLUMNS = column_names(ATTEMPTS)


@dataclass(frozen=True)
class DeliveryOptions:
    """How a delivery run behaves; the defaults suit production, tests shrink the waits."""

    batch_size: int = 200
    max_attempts_per_run: int = 3  # provider calls per message (or email batch) in one run
    max_attempts: int = 6  # calls in all before a transiently failing message is failed
    initial_backoff_seconds: float = 0.5  # quick retries inside a run ...
    max_backoff_seconds: float = 30.0  # ... never wait longer than this
    requeue_backoff_seconds: float = 60.0  # next_attempt_at after a run gave up on a message
    max_requeue_backoff_seconds: float = 3600.0
    lease_seconds: float = 600.0  # a 'sending' row older than this belongs to a dead run
    rate_per_second: Mapping[str, float] | None = None  # channel → rate; None: each provider's
    # where the rate windows are counted (herald/delivery/ratelimit.py): this process, or a
    # server all concurrent delivery workers share (HERALD_RATE_LIMIT_STORAGE)
    rate_limit_storage: str = MEMORY_STORAGE
    rate_limit_key_prefix: str = KEY_PREFIX
    # the warehouse part of the last look before a provider call is shared by the calls of this
    # many seconds (0: a look before every call); the landing files are read before every call
    last_look_seconds: float = 0.005
    # credits per message for metered clients (herald/billing/credits.py); None: billing off
    pricing: Pricing | None = Pricing()

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_attempts_per_run < 1 or self.max_attempts < 1:
            raise ValueError("max_attempts_per_run and max_attempts must be at least 1")


@dataclass(frozen=True)
class Route:
    """Where one client's messages of one channel go: its primary provider and, optionally, the
    secondary it fails over to while the primary's circuit is open (:mod:`herald.delivery.circuit`),
    sending from ``secondary_sender`` there when set (another account owns other numbers)."""

    primary: Provider
    secondary: Provider | None = None
    secondary_sender: str | None = None

    def providers(self) -> list[Provider]:
        return [self.primary] if self.secondary is None else [self.primary, self.secondary]

    def batch_size(self) -> int:
        """Messages per call: what both providers take (an email batch never meets a provider
        that would have to split it)."""
        return max(1, min(p.max_batch_size for p in self.providers()))


@dataclass(frozen=True)
class Failover:
    """Clients' own provider routes, (client_id, channel) → :class:`Route`; a client and channel
    without one sends through the run's provider for the channel, as without failover.
    ``breakers`` is needed once a route has a secondary."""

    routes: Mapping[tuple[str, str], Route]
    breakers: CircuitBreakers | None = None

    def __post_init__(self) -> None:
        if self.breakers is None and any(r.secondary is not None for r in self.routes.values()):
            raise ValueError("a route with a secondary provider needs circuit breakers")


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` run did (counts of messages unless said otherwise)."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0  # quick retries (provider calls beyond the first) inside the run
    requeued: int = 0  # back to 'queued' for a later run
    suppressed: int = 0
    held: int = 0
    deferred: int = 0  # left queued: an opt-out from the address arrived, not applied yet
    paused: int = 0  # cancelled at the claim: their campaign is paused in the portal
    refunded: int = 0  # paid-for messages that ended unsent, their credits given back
    reconciled_sent: int = 0
    reconciled_not_sent: int = 0
    failed_over: int = 0  # messages sent through their client's secondary provider
    seconds: float = 0.0
    failure_reasons: Counter[str] = field(default_factory=Counter)
    sent_by_provider: Counter[str] = field(default_factory=Counter)
    circuit_events: list[str] = field(default_factory=list)  # breakers opened/closed by this run

    def summary(self) -> str:
        parts = [
            f"{self.sent} sent",
            f"{self.failed} failed",
            f"{self.requeued} requeued",
            f"{self.suppressed} suppressed",
            f"{self.held} held",
        ]
        if self.deferred:
            parts.append(f"{self.deferred} waiting for an opt-out to be applied")
        if self.paused:
            parts.append(f"{self.paused} cancelled: campaign paused in the portal")
        text = f"claimed {self.claimed}: " + ", ".join(parts)
        if self.retried:
            text += f"; {self.retried} quick retries"
        if self.failed_over:
            text += f"; {self.failed_over} sent through a secondary provider"
        if self.reconciled_sent or self.reconciled_not_sent:
            text += f"; after a crash: {self.reconciled_sent} confirmed sent, {self.reconciled_not_sent} not sent"
        text += f" in {self.seconds:.1f} s"
        if self.failure_reasons:
            reasons = self.failure_reasons.most_common()
            text += "\nfailures: " + "; ".join(f"{reason} × {n}" for reason, n in reasons)
        return text


@dataclass(frozen=True)
class _Row:
    message_key: str
    client_id: str
    channel: str
    to_address: str
    sender: str | None
    subject: str | None
    body_text: str | None
    body_html: str | None
    headers: Any
    attempts: int
    claim_token: str | None
    claimed_at: datetime | None
    message_type: str | None = None
    contact_id: str | None = None

    def outbound(self) -> OutboundMessage:
        """The provider's view of this row (``ValueError`` when it cannot be sent at all)."""
        headers = self.headers
        if isinstance(headers, str):
            headers = json.loads(headers)
        if self.channel == "sms":
            return OutboundMessage(self.message_key, "sms", self.to_address, sender=self.sender, body=self.body_text)
        return OutboundMessage(
            self.message_key,
            self.channel,  # type: ignore[arg-type]
            self.to_address,
            sender=self.sender,
            subject=self.subject,
            html=self.body_html,
            text=self.body_text,
            headers=dict(headers or {}),
        )


@dataclass(frozen=True)
class _Outcome:
    """A row's new state after this run touched it, and its attempt rows."""

    message_key: str
    status: str
    status_reason: str | None = None
    attempts: int | None = None  # None: unchanged
    next_attempt_at: datetime | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    sent_at: datetime | None = None
    attempt_rows: tuple[tuple, ...] = ()


def _utcnow() -> datetime:
    return _clock_now()


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


# Keys are passed as one array parameter (``message_key = any(?::varchar[])``), not as one
# placeholder each: a 1,000-key IN list cost DuckDB 12 ms to bind per statement, the array 3 ms.


def _rows(session: Session, sql: str, params: Sequence[Any]) -> list[_Row]:
    _, rows = session.query(sql, params)
    return [_Row(*r) for r in rows]


def _attempt_row(
    row: _Row,
    number: int,
    token: str | None,
    provider: str | None,
    outcome: str,
    started: datetime,
    finished: datetime,
    *,
    code: str | None = None,
    reason: str | None = None,
    provider_message_id: str | None = None,
) -> tuple:
    values = {
        "message_key": row.message_key,
        "attempt_number": number,
        "claim_token": token,
        "channel": row.channel,
        "provider": provider,
        "outcome": outcome,
        "error_code": code,
        "error_reason": reason,
        "provider_message_id": provider_message_id,
        "started_at": started,
        "finished_at": finished,
    }
    return tuple(values[c] for c in ATTEMPT_COLUMNS)


_OUTCOME_COLUMNS = (
    "message_key", "status", "status_reason", "attempts", "next_attempt_at", "provider",
    "provider_message_id", "sent_at",
)  # fmt: skip
_OUTCOME_TABLE = "_herald_outcomes"
_OUTCOME_DDL = f"""create temporary table {_OUTCOME_TABLE} (
    message_key varchar, status varchar, status_reason varchar, attempts bigint, next_attempt_at timestamp,
    provider varchar, provider_message_id varchar, sent_at timestamp)"""


def _record(warehouse: Warehouse, token: str, outcomes: Sequence[_Outcome], now: datetime) -> None:
    """:func:`_record_in` in a session of its own."""
    if not outcomes:
        return
    with warehouse.session() as s:
        _record_in(s, token, outcomes, now)


def _record_in(s: Session, token: str, outcomes: Sequence[_Outcome], now: datetime) -> None:
    """Writes outcomes where the row still carries ``token``, and every attempt row, in the
    session's transaction: the outcomes go to a temporary table and one set-based update applies
    them (one UPDATE per message made DuckDB the bottleneck of delivery)."""
    if not outcomes:
        return
    s.execute(f"drop table if exists {_OUTCOME_TABLE}")
    s.execute(_OUTCOME_DDL)
    s.insert_rows(_OUTCOME_TABLE, _OUTCOME_COLUMNS, [tuple(getattr(o, c) for c in _OUTCOME_COLUMNS) for o in outcomes])
    s.execute(
        f"""update {OUTBOX} as outbox set status = o.status, status_reason = o.status_reason,
               attempts = coalesce(o.attempts, outbox.attempts), next_attempt_at = o.next_attempt_at,
               provider = coalesce(o.provider, outbox.provider),
               provider_message_id = coalesce(o.provider_message_id, outbox.provider_message_id),
               sent_at = coalesce(o.sent_at, outbox.sent_at), updated_at = ?
            from {_OUTCOME_TABLE} as o
            where outbox.message_key = o.message_key and outbox.claim_token = ? and outbox.status = 'sending'""",
        [now, token],
    )
    s.execute(f"drop table {_OUTCOME_TABLE}")
    # a metered message that failed gets its credits back (never twice: herald/billing/credits.py)
    release_failed(s, [o.message_key for o in outcomes if o.status == "failed"], now)
    attempt_rows = [r for o in outcomes for r in o.attempt_rows]
    s.insert_rows(ATTEMPTS, ATTEMPT_COLUMNS, attempt_rows)


# -- claim -----------------------------------------------------------------------------------


def suppression_reason(row_client: str, row_channel: str, suppressions: Sequence[tuple[str, str, str]]) -> str | None:
    """The reason of the suppression that covers a message (client or '*', channel or '*'),
    the most specific first; ``suppressions`` are (client_id, channel, reason) for its address."""
    matching = [
        (client != row_client, channel != row_channel, reason)
        for client, channel, reason in suppressions
        if client in (row_client, "*") and channel in (row_channel, "*")
    ]
    return min(matching)[2] if matching else None


def _sha256_hex(expression: str, engine: str) -> str:
    """The lower-case hex sha256 of a text expression, as dbt's ``sha256_hex`` macro writes it."""
    if engine == "duckdb":
        return f"sha256({expression})"
    return f"encode(sha256(convert_to({expression}, 'UTF8')), 'hex')"


def _suppressions(s: Session, rows: Sequence[_Row]) -> dict[str, str]:
    """message key → the reason of the suppression covering it, for those of ``rows`` covered.
    A suppression covers a message when its scope is 'all' or the message's type; the answers
    to a reply (the one opt-out confirmation, a HELP answer) are exempt from opt-outs — never
    from bounces, complaints or manual blocks."""
    if not rows:
        return {}
    keys = [r.message_key for r in rows]
    exempt = list(OPT_OUT_EXEMPT_TYPES)
    # the second half: an erased person's address is kept only as its salted hash (herald/privacy)
    _, found = s.query(
        f"""select outbox.message_key, sup.client_id, sup.channel, sup.reason
            from {OUTBOX} as outbox
            join {SUPPRESSIONS} as sup
              on sup.address = outbox.to_address and sup.scope in ('all', outbox.message_type)
            where outbox.message_key = any(?::varchar[])
              and not (sup.reason = 'opt_out' and outbox.message_type in ({_placeholders(len(exempt))}))
            union all
            select hashed.message_key, sup.client_id, sup.channel, sup.reason
            from (
                select outbox.message_key, outbox.message_type,
                       'erased:' || {_sha256_hex("coalesce(salt.salt, '') || outbox.to_address", s.engine)} as address
                from {OUTBOX} as outbox
                cross join (select max(salt) as salt from {PRIVACY_SALT}) as salt
                where outbox.message_key = any(?::varchar[])
            ) as hashed
            join {SUPPRESSIONS} as sup
              on sup.address = hashed.address and sup.scope in ('all', hashed.message_type)""",
        [keys, *exempt, keys],
    )
    by_key: dict[str, list[tuple[str, str, str]]] = {}
    for key, client, channel, reason in found:
        by_key.setdefault(key, []).append((client, channel, reason))
    reasons = {r.message_key: suppression_reason(r.client_id, r.channel, by_key.get(r.message_key, [])) for r in rows}
    return {k: v for k, v in reasons.items() if v is not None}


def _paused(s: Session, rows: Sequence[_Row]) -> dict[str, str]:
    """message key → why it must not go, for those of ``rows`` whose campaign is paused in the
    portal (``herald_ops.campaign_pauses``): read in the claim's transaction, so a pause
    committed after the message was planned still stops it."""
    if not rows:
        return {}
    _, found = s.query(
        f"""select outbox.message_key, pause.paused_by
            from {OUTBOX} as outbox
            join {CAMPAIGN_PAUSES} as pause on pause.client_id = outbox.client_id and pause.campaign = outbox.campaign
            where outbox.message_key = any(?::varchar[])""",
        [[r.message_key for r in rows]],
    )
    return {key: PAUSED_REASON.format(by) for key, by in found}


def _stop_pending(watch: StopWatch, rows: Sequence[_Row]) -> list[tuple[_Row, str]]:
    """The rows that must wait, with why: an SMS to an address whose opt-out reached Herald, a
    message to a contact whose unsubscribe from its channel did, neither applied yet (the
    answers to a reply excepted, as for an applied opt-out)."""
    if not watch.stopped and not watch.unsubscribed:  # the usual case, before every call
        return []
    candidates = [r for r in rows if r.message_type not in OPT_OUT_EXEMPT_TYPES]
    texts = [r for r in candidates if r.channel == "sms"]
    stopped = watch.covers(r.to_address for r in texts)
    found = [(r, STOP_PENDING_REASON) for r in texts if r.to_address in stopped]
    taken = {r.message_key for r, _ in found}
    found += [
        (r, UNSUBSCRIBE_PENDING_REASON)
        for r in candidates
        if r.message_key not in taken and watch.unsubscribe_waiting(r.client_id, r.contact_id, r.channel)
    ]
    return found


def _claim(
    s: Session,
    *,
    cutoff: datetime,
    now: datetime,
    channels: Sequence[str],
    client_id: str | None,
    limit: int,
    pricing: Pricing | None = None,
    watch: StopWatch | None = None,
) -> tuple[str, list[_Row], list[_Row], list[_Row], list[_Row], list[_Row]]:
    """Claims up to ``limit`` due rows in the session's transaction; returns (claim token, rows
    to send, rows suppressed, rows held for insufficient credits, rows left queued for an opt-out
    not applied yet, rows cancelled because their campaign is paused in the portal). Set-based:
    a fixed number of statements per batch, whatever its size."""
    watch = watch or StopWatch(None)
    token = str(uuid.uuid4())
    where = (
        "status = 'queued' and send_after <= ? and (next_attempt_at is null or next_attempt_at <= ?)"
        f" and channel in ({_placeholders(len(channels))})"
    )
    params: list[Any] = [cutoff, cutoff, *channels]
    if client_id is not None:
        where += " and client_id = ?"
        params.append(client_id)
    lock = " for update skip locked" if s.engine == "postgres" else ""
    rows = _rows(
        s,
        f"select {_SELECT} from {OUTBOX} where {where} order by send_after, message_key limit ?{lock}",
        [*params, limit],
    )
    if not rows:
        return token, [], [], [], [], []
    # An opt-out that reached Herald (landed file or row) but is not applied yet: read
    # before the suppressions, so one applied in between is seen there.
    watch.scan(s)
    # Re-check suppressions inside the claim: an opt-out recorded after enqueue still wins.
    covered = _suppressions(s, rows)
    # ... and consent: a marketing text whose consent was revoked or expired since the plan
    covered.update({k: v for k, v in consent_lapsed(s, rows, now).items() if k not in covered})
    # ... and the contact's preferences: a topic or channel turned off, or a pause, since the plan
    covered.update({k: v for k, v in preference_blocks(s, rows, now).items() if k not in covered})
    to_send = [r for r in rows if r.message_key not in covered]
    suppressed = [r for r in rows if r.message_key in covered]
    by_reason: dict[str, list[str]] = {}
    for row in suppressed:
        by_reason.setdefault(covered[row.message_key], []).append(row.message_key)
    for reason, keys in sorted(by_reason.items()):  # one statement per distinct reason
        s.execute(
            f"update {OUTBOX} set status = 'suppressed', status_reason = ?, updated_at = ? "
            f"where message_key = any(?::varchar[])",
            [
                reason if reason.startswith(("no consent", "preference:")) else f"recipient suppressed ({reason})",
                now,
                keys,
            ],
        )
    attempt_rows = [
        _attempt_row(r, r.attempts + 1, token, None, "suppressed", now, now, reason=covered[r.message_key])
        for r in suppressed
    ]
    # A campaign paused in the portal since the message was planned: cancelled, never sent (a
    # resume lets the messages falling due after it go; those due meanwhile stay cancelled, so
    # a long pause never sends a late message outside the window it was planned for).
    paused = _paused(s, to_send)
    for reason in sorted(set(paused.values())):
        s.execute(
            f"update {OUTBOX} set status = 'cancelled', status_reason = ?, updated_at = ? "
            f"where message_key = any(?::varchar[]) and status = 'queued'",
            [reason, now, [k for k, why in paused.items() if why == reason]],
        )
    stopped_by_pause = [r for r in to_send if r.message_key in paused]
    to_send = [r for r in to_send if r.message_key not in paused]
    waiting = _stop_pending(watch, to_send)
    for reason in sorted({reason for _, reason in waiting}):
        keys = [r.message_key for r, why in waiting if why == reason]
        s.execute(
            f"update {OUTBOX} set status_reason = ?, next_attempt_at = ?, updated_at = ? "
            f"where message_key = any(?::varchar[]) and status = 'queued'",
            [reason, now + timedelta(seconds=STOP_PENDING_SECONDS), now, keys],
        )
    deferred = [r for r, _ in waiting]
    deferred_keys = {r.message_key for r in deferred}
    to_send = [r for r in to_send if r.message_key not in deferred_keys]
    held: list[_Row] = []
    if to_send and pricing is not None:
        # Never send past the balance: metered clients' messages are debited here, in the
        # claim's transaction, in claim order; what does not fit is held, not claimed.
        on_hold = reserve_credits(s, [Claimed(r.message_key, r.client_id, r.channel) for r in to_send], pricing, now)
        held = [r for r in to_send if r.message_key in on_hold]
        to_send = [r for r in to_send if r.message_key not in on_hold]
    if to_send:
        keys = [r.message_key for r in to_send]
        s.execute(
            f"""update {OUTBOX} set status = 'sending', claim_token = ?, claimed_at = ?,
                   attempts = attempts + 1, next_attempt_at = null, updated_at = ?
                where message_key = any(?::varchar[]) and status = 'queued'""",
            [token, now, now, keys],
        )
    s.insert_rows(ATTEMPTS, ATTEMPT_COLUMNS, attempt_rows)
    # attempts as they are now in the outbox (this claim's call is number attempts + 1)
    claimed = [_with(r, attempts=r.attempts + 1, claim_token=token, claimed_at=now) for r in to_send]
    return token, claimed, suppressed, held, deferred, stopped_by_pause


def _with(row: _Row, **changes: Any) -> _Row:
    return _Row(**{**row.__dict__, **changes})


# -- send ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One provider call (or the lookup after a call with an unknown outcome)."""

    started: datetime
    finished: datetime
    result: Any  # SendResult | list of per-message results | the error raised
    lookup: bool = False
    provider: Provider | None = None  # who was called (None: the unit's primary)


class _Confirmed(SendResult):
    """A send the provider's record confirmed after its call's outcome was unknown."""


class _OutcomeUnknown(Exception):
    """A call's outcome is unknown and the provider cannot tell: the message must be held."""


UNKNOWN_EMAIL_CODE = "timeout"  # delivery_attempts.error_code of an email call that timed out


def _unknown_outcomes(s: Session, keys: Sequence[str]) -> dict[str, str]:
    """message key → the provider an earlier call of it may have reached (an email call that
    timed out, or an email a crash left unknown): it is never sent anywhere else."""
    if not keys:
        return {}
    _, found = s.query(
        f"""select message_key, max(provider) from {ATTEMPTS}
            where message_key = any(?::varchar[]) and provider is not null
              and ((outcome = 'transient_error' and error_code = ?)
                   or (outcome = 'reconciled_not_sent' and error_code = 'outcome_unknown'))
            group by message_key""",
        [list(keys), UNKNOWN_EMAIL_CODE],
    )
    return dict(found)


class _Sender:
    """Sends claimed rows through their providers with rate limits and quick retries; a client
    with a secondary provider fails over to it while its primary's circuit is open."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        options: DeliveryOptions,
        clock: Callable[[], datetime],
        report: DeliveryReport,
        failover: Failover | None = None,
    ) -> None:
        self.providers, self.options, self.clock, self.report = providers, options, clock, report
        self.defaults = {channel: Route(provider) for channel, provider in providers.items()}
        self.routes = {k: r for k, r in (failover.routes if failover else {}).items() if k[1] in providers}
        self.breakers = failover.breakers if failover else None
        # any route with a secondary: its rows' earlier unknown outcomes are read at each claim
        self.watching = any(r.secondary is not None for r in self.routes.values())
        self.pins: dict[str, str] = {}  # message key → the only provider it may go to
        rates = {}
        for provider in self.all_providers():
            override = (options.rate_per_second or {}).get(provider.channel)
            rates[provider.name] = provider.rate_per_second if override is None else override
        storage = None
        if any(rate > 0 for rate in rates.values()):  # no storage to reach when nothing is limited
            storage = rate_limit_storage(options.rate_limit_storage, key_prefix=options.rate_limit_key_prefix)
        self.limiter = SendRateLimiter(rates, storage=storage)
        self.rng = random.Random()

    def all_providers(self) -> list[Provider]:
        """Every provider this run may call, each once."""
        seen: dict[int, Provider] = {}
        for route in [*self.defaults.values(), *self.routes.values()]:
            for provider in route.providers():
                seen.setdefault(id(provider), provider)
        return list(seen.values())

    def route_of(self, row: _Row) -> Route:
        return self.routes.get((row.client_id, row.channel)) or self.defaults[row.channel]

    def candidates(self, row: _Row) -> list[Provider]:
        """The providers a message of ``row``'s client and channel may have gone through."""
        return self.route_of(row).providers()

    def units(self, rows: Sequence[_Row]) -> list[tuple[Route, list[_Row]]]:
        """Rows grouped into provider calls: one per message, or email batches (per route and sender)."""
        units: list[tuple[Route, list[_Row]]] = []
        for channel in self.providers:
            by_route: dict[int, tuple[Route, list[_Row]]] = {}
            for r in rows:
                if r.channel == channel:
                    route = self.route_of(r)
                    by_route.setdefault(id(route), (route, []))[1].append(r)
            for route, mine in by_route.values():
                size = route.batch_size()
                if size == 1:
                    units.extend((route, [r]) for r in mine)
                    continue
                by_sender: dict[str | None, list[_Row]] = {}
                for r in mine:
                    by_sender.setdefault(r.sender, []).append(r)
                for group in by_sender.values():
                    units.extend((route, group[i : i + size]) for i in range(0, len(group), size))
        return units

    def send(self, token: str, route: Route, rows: list[_Row]) -> list[_Outcome]:
        provider = route.primary
        outcomes: list[_Outcome] = []
        messages: list[OutboundMessage] = []
        sendable: list[_Row] = []
        for row in rows:
            try:
                messages.append(row.outbound())
                sendable.append(row)
            except ValueError as exc:
                outcomes.append(self._final(token, provider, row, [], exc))
        if not sendable:
            return outcomes
        calls: list[_Call] = []
        batch = route.batch_size() > 1
        # A message an earlier call may have reached stays with that provider (never sent twice
        # by two of them); within this run, so does one whose call here timed out.
        named = {self.pins[r.message_key] for r in sendable if r.message_key in self.pins}
        pinned: list[Provider | None] = [next((p for p in route.providers() if p.name in named), None)]
        if named and pinned[0] is None:
            pinned[0] = route.primary

        def choose() -> tuple[Provider, str | None]:
            if route.secondary is None:
                return route.primary, None
            if pinned[0] is not None:
                return pinned[0], None
            assert self.breakers is not None
            decision, probe = self.breakers.route(route.primary.name)
            return (route.secondary, None) if decision == "secondary" else (route.primary, probe)

        def call() -> Any:
            target, probe = choose()
            outgoing = messages
            if target is route.secondary and route.secondary_sender:
                outgoing = [replace(m, sender=route.secondary_sender) for m in messages]
            watched = self.breakers is not None and route.secondary is not None and target is route.primary
            self.limiter.acquire(target.name, outgoing[0].sender)
            started = self.clock()
            try:
                result = target.send_batch(outgoing) if batch else target.send(outgoing[0])
            except (ProviderError, ValueError) as exc:
                calls.append(_Call(started, self.clock(), exc, provider=target))
                transient = isinstance(exc, TransientProviderError)
                if watched and isinstance(exc, ProviderError):
                    if transient:
                        self.breakers.failure(target.name, error_code(exc), probe)  # type: ignore[union-attr]
                    else:  # the provider answered: it is up
                        self.breakers.success(target.name, probe)  # type: ignore[union-attr]
                if isinstance(exc, TransientProviderError) and exc.outcome_unknown:
                    pinned[0] = target  # it may have the message: no other provider gets it
                    if not batch and target.channel == "sms":
                        try:
                            return self._look_up(target, outgoing[0], started, calls, exc)
                        except TransientProviderError:
                            pinned[0] = None  # certainly not received: free to fail over
                            raise
                raise
            calls.append(_Call(started, self.clock(), result, provider=target))
            if watched:
                self.breakers.success(target.name, probe)  # type: ignore[union-attr]
            return result

        # never more calls in all than max_attempts (the claim counted this run's first call)
        left = self.options.max_attempts - max(r.attempts for r in sendable) + 1
        max_calls = max(1, min(self.options.max_attempts_per_run, left))
        try:
            # The first call goes without tenacity's machinery (it cost more than the sandbox's
            # whole send); only a transient failure enters the retry loop, which goes on with
            # the same waits and limits as if it had made the first call itself.
            try:
                call()
            except TransientProviderError as exc:
                retry_after = retry_after_of(exc)
                if max_calls == 1 or (retry_after is not None and retry_after > self.options.max_backoff_seconds):
                    raise
                first_wait = wait_provider_backoff(
                    self.options.initial_backoff_seconds, self.options.max_backoff_seconds, self.rng
                )
                time.sleep(first_wait.seconds_after(1, exc))
                for attempt in quick_retrying(
                    max_calls=max_calls - 1,
                    initial=self.options.initial_backoff_seconds,
                    cap=self.options.max_backoff_seconds,
                    rng=self.rng,
                    calls_made=1,
                ):
                    with attempt:
                        call()
        except (ProviderError, ValueError, _OutcomeUnknown):
            pass  # the last call's error is in ``calls``
        sends = sum(1 for c in calls if not c.lookup)
        self.report.retried += len(sendable) * (sends - 1)
        last_provider = next((c.provider for c in reversed(calls) if c.provider is not None), provider)
        for i, row in enumerate(sendable):
            per_call = [
                _Call(
                    c.started,
                    c.finished,
                    c.result[i] if isinstance(c.result, list) else c.result,
                    c.lookup,
                    c.provider,
                )
                for c in calls
            ]
            outcome = self._final(token, last_provider, row, per_call, per_call[-1].result)
            if outcome.status == "sent":
                self.report.sent_by_provider[outcome.provider or last_provider.name] += 1
                if route.secondary is not None and outcome.provider == route.secondary.name:
                    self.report.failed_over += 1
            outcomes.append(outcome)
        return outcomes

    def _look_up(
        self,
        provider: Provider,
        message: OutboundMessage,
        since: datetime,
        calls: list[_Call],
        error: Exception,
    ) -> SendResult:
        """After a call whose outcome is unknown (a timeout): the provider's record decides.
        Found → sent; certainly not received → raise ``error`` (retried as usual); cannot tell
        → stop (never resend blindly)."""
        started = self.clock()
        try:
            found = provider.lookup(message, since=since)
        except (OutcomeUnknownError, ProviderError) as exc:
            unknown = _OutcomeUnknown(f"{error_reason(error)}; lookup: {exc}")
            calls.append(_Call(started, self.clock(), unknown, lookup=True))
            raise unknown from error
        if found is None:
            raise error
        confirmed = _Confirmed(found.provider, found.provider_message_id, found.status)
        calls.append(_Call(started, self.clock(), confirmed, lookup=True))
        return confirmed

    def _final(self, token: str, provider: Provider, row: _Row, calls: list[_Call], last: Any) -> _Outcome:
        """A row's outcome from its calls (each an attempt row) and the last call's result."""
        now = self.clock()
        attempt_rows = []
        number = row.attempts - 1
        for c in calls:
            number += 0 if c.lookup else 1
            if isinstance(c.result, SendResult):
                outcome = "reconciled_sent" if isinstance(c.result, _Confirmed) else "sent"
                attempt_rows.append(
                    _attempt_row(
                        row,
                        number,
                        token,
                        c.result.provider,
                        outcome,
                        c.started,
                        c.finished,
                        provider_message_id=c.result.provider_message_id,
                    )
                )
            elif isinstance(c.result, _OutcomeUnknown):
                attempt_rows.append(
                    _attempt_row(
                        row,
                        number,
                        token,
                        (c.provider or provider).name,
                        "held_unknown",
                        c.started,
                        c.finished,
                        code="outcome_unknown",
                        reason=str(c.result),
                    )
                )
            else:
                attempt_rows.append(
                    _attempt_row(
                        row,
                        number,
                        token,
                        (c.provider or provider).name,
                        classify(c.result),
                        c.started,
                        c.finished,
                        code=error_code(c.result),
                        reason=error_reason(c.result),
                    )
                )
        total = max(number, row.attempts)
        if isinstance(last, SendResult):
            self.report.sent += 1
            return _Outcome(
                row.message_key,
                "sent",
                None,
                total,
                None,
                last.provider,
                last.provider_message_id,
                calls[-1].finished,
                tuple(attempt_rows),
            )
        if isinstance(last, _OutcomeUnknown):
            self.report.held += 1
            return _Outcome(
                row.message_key,
                "held",
                HELD_TIMEOUT_REASON,
                total,
                None,
                provider.name,
                attempt_rows=tuple(attempt_rows),
            )
        if not calls:  # the message could not even be built: no provider call was made
            attempt_rows.append(
                _attempt_row(
                    row,
                    row.attempts,
                    token,
                    provider.name,
                    PERMANENT,
                    now,
                    now,
                    code="invalid_message",
                    reason=error_reason(last),
                )
            )
        if classify(last) == PERMANENT:
            reason = error_reason(last)
            self.report.failed += 1
            self.report.failure_reasons[reason] += 1
            return _Outcome(
                row.message_key, "failed", reason, total, None, provider.name, attempt_rows=tuple(attempt_rows)
            )
        verdict = after_transient_failure(
            last,
            total_attempts=total,
            max_attempts=self.options.max_attempts,
            now=now,
            initial=self.options.requeue_backoff_seconds,
            cap=self.options.max_requeue_backoff_seconds,
            rng=self.rng,
        )
        if verdict.status == "failed":
            self.report.failed += 1
            self.report.failure_reasons[error_reason(last)] += 1
        else:
            self.report.requeued += 1
        return _Outcome(
            row.message_key,
            verdict.status,
            verdict.reason,
            total,
            verdict.next_attempt_at,
            provider.name,
            attempt_rows=tuple(attempt_rows),
        )


# -- crash recovery --------------------------------------------------------------------------


def _reconcile(
    warehouse: Warehouse,
    providers: Mapping[str, Provider],
    *,
    candidates: Callable[[_Row], list[Provider]],
    stale_before: datetime,
    clock: Callable[[], datetime],
    client_id: str | None,
    limit: int,
    report: DeliveryReport,
) -> None:
    """Settles rows a dead run left in 'sending' by asking their provider what happened."""
    channels = list(providers)
    settled: set[str] = set()
    while True:
        token, now = str(uuid.uuid4()), clock()
        where = f"status = 'sending' and claimed_at <= ? and channel in ({_placeholders(len(channels))})"
        params: list[Any] = [stale_before, *channels]
        if client_id is not None:
            where += " and client_id = ?"
            params.append(client_id)
        with warehouse.session() as s:
            lock = " for update skip locked" if s.engine == "postgres" else ""
            stale = _rows(
                s,
                f"select {_SELECT} from {OUTBOX} where {where} order by claimed_at, message_key limit ?{lock}",
                [*params, limit],
            )
            if stale:
                # Take them over (a new token) so a concurrent run leaves them alone.
                keys = [r.message_key for r in stale]
                s.execute(
                    f"update {OUTBOX} set claim_token = ?, claimed_at = ?, updated_at = ? "
                    f"where message_key = any(?::varchar[]) and status = 'sending'",
                    [token, now, now, keys],
                )
        fresh = [r for r in stale if r.message_key not in settled]
        if not fresh:  # nothing new (another run holds what is left): done for this run
            return
        settled.update(r.message_key for r in fresh)
        outcomes = [_settle(row, candidates(row), token, clock, report) for row in fresh]
        _record(warehouse, token, outcomes, clock())


def _look_everywhere(row: _Row, providers: Sequence[Provider], since: datetime) -> tuple[SendResult | None, str | None]:
    """(what a provider confirms, why the outcome is unknown): asks each provider the row may
    have gone through (its primary, then its secondary) until one confirms it."""
    unknown: list[str] = []
    for provider in providers:
        try:
            found = provider.lookup(row.outbound(), since=since)
        except ValueError:
            return None, None  # an unbuildable message was never sent
        except (OutcomeUnknownError, ProviderError) as exc:
            unknown.append(str(exc))
            continue
        if found is not None:
            return found, None
    return None, ("; ".join(unknown) or None)


def _settle(
    row: _Row, providers: Sequence[Provider], token: str, clock: Callable[[], datetime], report: DeliveryReport
) -> _Outcome:
    """One stale row's fate from its providers' records (a client with a secondary: both, since
    the dead run may have sent through either): sent, not sent by any (→ queued), or unknown
    (SMS → held for a person; email → queued, the idempotency key drops a duplicate, unless it
    may be at either of two providers → held)."""
    provider = providers[0]
    started = clock()
    since = row.claimed_at or started
    found, unknown = _look_everywhere(row, providers, since)
    finished = clock()
    if found is not None:
        report.reconciled_sent += 1
        attempt = _attempt_row(
            row,
            row.attempts,
            token,
            found.provider,
            "reconciled_sent",
            started,
            finished,
            provider_message_id=found.provider_message_id,
        )
        return _Outcome(
            row.message_key, "sent", None, None, None, found.provider, found.provider_message_id, finished, (attempt,)
        )
    if unknown is None:
        report.reconciled_not_sent += 1
        attempt = _attempt_row(row, row.attempts, token, provider.name, "reconciled_not_sent", started, finished)
        return _Outcome(row.message_key, "queued", "not sent before a crash; requeued", attempt_rows=(attempt,))
    if row.channel == "sms" or len(providers) > 1:
        # Twilio has no idempotency key: resending blindly could text someone twice. An email
        # that may be at either of two providers is held too: an idempotency key holds at one.
        report.held += 1
        attempt = _attempt_row(
            row,
            row.attempts,
            token,
            provider.name,
            "held_unknown",
            started,
            finished,
            code="outcome_unknown",
            reason=unknown,
        )
        return _Outcome(row.message_key, "held", HELD_UNKNOWN_REASON, attempt_rows=(attempt,))
    report.requeued += 1
    attempt = _attempt_row(
        row,
        row.attempts,
        token,
        provider.name,
        "reconciled_not_sent",
        started,
        finished,
        code="outcome_unknown",
        reason=unknown,
    )
    return _Outcome(row.message_key, "queued", EMAIL_UNKNOWN_REASON, attempt_rows=(attempt,))


# -- the run ---------------------------------------------------------------------------------


LOOK_AHEAD_ROWS = 100  # rows one look in the warehouse covers before the next is due anyway


class _LastLook:
    """The last look before each provider call: is there a reason, since the claim, not to send?

    Before every call the landing files are read (an opt-out or unsubscribe that reached Herald
    as a file; a few directory listings). On PostgreSQL the warehouse is read too — unapplied
    replies and unsubscribes first, then suppressions, so one applied in between is seen — for
    the next ``LOOK_AHEAD_ROWS`` rows at once, again before any call once that look is
    ``max_age`` seconds old or no longer covers the call's rows. Three queries per call had been
    88% of a PostgreSQL run's time; at the default 5 ms a STOP or suppression committed 5 ms
    (plus the look's own few milliseconds) before a call is always honoured by it, and
    ``max_age`` 0 looks before every call.
    """

    def __init__(self, session: Session | None, watch: StopWatch, max_age: float) -> None:
        self.session, self.watch, self.max_age = session, watch, max_age
        self.covered: set[str] = set()  # keys the last warehouse look answered for
        self.suppressed: dict[str, str] = {}
        self.looked_at = float("-inf")

    def stopped(self, units: Sequence[tuple[Route, list[_Row]]], index: int) -> list[tuple[_Row, str]]:
        """The rows of ``units[index]`` that must not go out after all, with why."""
        unit = units[index][1]
        self.watch.scan_files()
        if self.session is not None and (
            time.monotonic() - self.looked_at >= self.max_age or any(r.message_key not in self.covered for r in unit)
        ):
            self.watch.scan_warehouse(self.session)
            ahead = list(islice((r for _, rows in units[index:] for r in rows), max(LOOK_AHEAD_ROWS, len(unit))))
            self.suppressed = _suppressions(self.session, ahead)
            self.covered = {r.message_key for r in ahead}
            self.looked_at = time.monotonic()
        found = _stop_pending(self.watch, unit)
        if self.suppressed:
            pending = {r.message_key for r, _ in found}
            found += [
                (r, SUPPRESSED_SINCE_CLAIM_REASON)
                for r in unit
                if r.message_key in self.suppressed and r.message_key not in pending
            ]
        return found


def _deferred(row: _Row, reason: str, now: datetime) -> _Outcome:
    """Back to 'queued' without a provider call (the claim's count of a call is undone)."""
    return _Outcome(
        row.message_key, "queued", reason, max(0, row.attempts - 1), now + timedelta(seconds=STOP_PENDING_SECONDS)
    )


def deliver_due(
    warehouse: Warehouse,
    providers: Mapping[str, Provider],
    *,
    now: datetime | None = None,
    client_id: str | None = None,
    options: DeliveryOptions = DeliveryOptions(),
    progress: Callable[[DeliveryReport], None] | None = None,
    inbound_home: Path | None = None,
    failover: Failover | None = None,
) -> DeliveryReport:
    """Sends every due outbox message (optionally of one client) through ``providers``
    (channel → provider); messages of a channel without a provider are left alone.

    ``now`` (naive UTC) freezes the clock: due-ness, claims and timestamps all use it. Without
    it, a message is due if it was due when the run started (so a requeued message waits for
    the next run), and timestamps are the real time.

    ``inbound_home`` (``HERALD_HOME``) is where inbound replies land as files: an opt-out found
    there, or unapplied in ``herald_raw.inbound_messages``, keeps messages to its address
    queued until it is applied — checked at every claim and before every provider call
    (:mod:`herald.compliance.stops`). Without it only the warehouse is read.

    ``failover`` gives clients their own providers (:class:`Failover`): a client with a
    secondary sends through it while its primary's circuit is open, under the same message key
    and exactly-once rules (a message whose outcome at one provider is unknown never goes to the
    other). Without it every message goes through ``providers``.
    """
    started = time.monotonic()
    report = DeliveryReport()
    cutoff = now or _utcnow()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else _utcnow
    channels = [c for c in ("sms", "email") if c in providers]
    if not channels:
        return report
    sender = _Sender({c: providers[c] for c in channels}, options, clock, report, failover)
    _reconcile(
        warehouse,
        {c: providers[c] for c in channels},
        candidates=sender.candidates,
        stale_before=cutoff - timedelta(seconds=options.lease_seconds),
        clock=clock,
        client_id=client_id,
        limit=options.batch_size,
        report=report,
    )
    watch = StopWatch(inbound_home)
    # (token, outcomes) of the batch sent last, recorded on the connection the next claim opens
    settled: tuple[str, list[_Outcome]] | None = None
    while True:
        # One connection per batch: the last batch's outcomes are committed first (they never
        # depend on the claim that follows), then the next batch is claimed; when nothing is
        # left, the refunds of paid-for messages that ended unsent by any path (an opt-out after
        # the claim, an exit) are written on the same connection.
        with warehouse.session() as s:
            if s.engine == "duckdb":
                # DuckDB checkpoints when its last connection closes, rewriting the outbox's
                # touched row groups: 40 ms a batch. Mid-run the write-ahead log keeps the
                # commits (durable; replayed by whoever opens the file next); the last session
                # of the run, which claims nothing, checkpoints as usual.
                s.execute("pragma disable_checkpoint_on_shutdown")
            if settled is not None:
                _record_in(s, *settled, clock())
                s.commit()
                settled = None
            token, to_send, suppressed, held, deferred, paused = _claim(
                s,
                cutoff=cutoff,
                now=clock(),
                channels=channels,
                client_id=client_id,
                limit=options.batch_size,
                pricing=options.pricing,
                watch=watch,
            )
            if sender.watching and to_send:
                sender.pins = _unknown_outcomes(s, [r.message_key for r in to_send])
            done = not to_send and not suppressed and not held and not deferred and not paused
            if done:
                report.refunded = release_unsent(s, clock())
                if s.engine == "duckdb":
                    s.execute("pragma enable_checkpoint_on_shutdown")
        if done:
            break
        report.claimed += len(to_send) + len(suppressed) + len(held)
        report.suppressed += len(suppressed)
        report.held += len(held)
        report.deferred += len(deferred)
        report.paused += len(paused)
        outcomes: list[_Outcome] = []
        try:
            # PostgreSQL: a read-only session for the last look before each call (an inbound
            # row or a suppression can be written there by the web service at any moment);
            # DuckDB: only the landing files (nothing reaches it mid-batch but through them).
            look = warehouse.session(read_only=True) if warehouse.engine == "postgres" else nullcontext(None)
            # group commit: a journaling provider makes the batch's sends durable once, at the
            # end of this block, before any of its outcomes is recorded
            with look as session, ExitStack() as durable:
                for provider in sender.all_providers():
                    durable.enter_context(provider.group_commit())
                units = sender.units(to_send)
                last_look = _LastLook(session, watch, options.last_look_seconds)
                for index, (route, unit) in enumerate(units):
                    stopped = last_look.stopped(units, index)
                    if stopped:
                        outcomes.extend(_deferred(row, reason, clock()) for row, reason in stopped)
                        report.deferred += len(stopped)
                        report.claimed -= len(stopped)
                        held_back = {row.message_key for row, _ in stopped}
                        unit = [r for r in unit if r.message_key not in held_back]
                    if unit:
                        outcomes.extend(sender.send(token, route, unit))
        except BaseException:
            # Record what is settled even when something unexpected stops the batch; the rest
            # stays 'sending' for the next run's reconciliation.
            _record(warehouse, token, outcomes, clock())
            raise
        settled = (token, outcomes)
        report.seconds = time.monotonic() - started
        if progress is not None:
            progress(report)
    report.seconds = time.monotonic() - started
    if sender.breakers is not None:
        report.circuit_events = list(sender.breakers.events)
    return report
