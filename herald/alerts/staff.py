"""Staff alerts: what went wrong for a client recently, told once per crossing.

Each check looks at every configured client over its recent window (``alerts.window_hours`` in
``client.yaml``, default the last 24 h) and finds three kinds of crossing:

- ``failed_or_held`` — messages whose status became ``failed`` or ``held`` in the window (held
  for insufficient credits, a missing template variable, the PHI guard, ...) reach
  ``alerts.failed_or_held_count`` (default 10), or ``alerts.failed_or_held_share`` of the
  messages that changed in the window when that is set;
- ``low_delivery_rate`` — delivered receipts / (delivered + failed + undelivered + bounced)
  receipts in the window is below ``alerts.delivery_rate_min`` (default 0.95), judged only once
  ``alerts.delivery_min_outcomes`` (default 20) messages reached one of those final outcomes;
- ``provider_outage`` — the client's last ``alerts.outage_attempts`` (default 5) provider calls
  to one provider in the window all failed with transient errors (a timeout whose outcome stayed
  unknown, or an attempt refused because a circuit is open, counts as one); the subject is the
  provider.

A crossing is one ``herald_ops.staff_alerts`` row, ``open`` while the condition holds: the next
checks find it open and stay quiet. When the condition no longer holds the row becomes
``recovered``; a later crossing is a new row with a new ``alert_id`` and a new email. Each new
row sends an email to the client's ``contact.email`` (counts, masked reasons, what to do) through
the email provider with a deterministic key, logs a WARNING for the operator and, when
``herald.yaml`` has ``operator_email``, emails the operator too. A client email that could not be
sent is tried again by the next check while the alert is open; a client without
``contact.email`` is recorded as ``no_contact``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from herald.config.models import Deployment, StaffAlerts
from herald.contacts.phones import mask_email, mask_phone
from herald.providers.base import OutboundMessage, Provider, ProviderError
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

log = logging.getLogger("herald.alerts")

STAFF_ALERTS = f"{OPS_SCHEMA}.staff_alerts"
ALERT_COLUMNS = column_names(STAFF_ALERTS)
_OUTBOX = f"{OPS_SCHEMA}.outbox"
_ATTEMPTS = f"{OPS_SCHEMA}.delivery_attempts"

FAILED_OR_HELD, LOW_DELIVERY_RATE, PROVIDER_OUTAGE = "failed_or_held", "low_delivery_rate", "provider_outage"
KINDS = (FAILED_OR_HELD, LOW_DELIVERY_RATE, PROVIDER_OUTAGE)
OPEN, RECOVERED = "open", "recovered"
SENT, FAILED, NO_CONTACT, NOT_CONFIGURED = "sent", "failed", "no_contact", "not_configured"
FINAL_FAILURES = ("failed", "undelivered", "bounced")
# provider-call outcomes that say the provider is not answering (delivery_attempts.outcome)
OUTAGE_OUTCOMES = ("transient_error", "held_unknown")
CIRCUIT_OPEN = "circuit_open"  # an attempt's error_code when a circuit breaker refused the call

_PHONE_RE = re.compile(r"\+\d[\d\s().-]{6,}\d|\b\d{10,15}\b")  # E.164-like, or 10+ bare digits
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_text(text: str | None) -> str:
    """A reason with every phone number and email address in it masked."""
    if not text:
        return ""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: mask_phone(re.sub(r"[^\d+]", "", m.group(0))), text)


def held_category(reason: str | None) -> str:
    """Why a message is held, in one word an email can count."""
    text = reason or ""
    if text.startswith("insufficient credits"):
        return "insufficient_credits"
    if text.startswith("PHI guard"):
        return "phi"
    if " is undefined for contact " in text:
        return "missing_variable"
    return "other_held"


@dataclass(frozen=True)
class Breach:
    """A condition over its threshold right now."""

    client_id: str
    kind: str
    subject: str
    observed: int
    total: int
    threshold: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class StaffAlert:
    """One crossing (a ``herald_ops.staff_alerts`` row)."""

    alert_id: str
    client_id: str
    kind: str
    subject: str
    crossed_at: datetime
    window_start: datetime
    observed: int
    total: int
    threshold: str
    detail: str | None
    status: str
    recovered_at: datetime | None
    message_key: str
    email_status: str
    email_error: str | None
    operator_email_status: str

    @property
    def details(self) -> dict[str, Any]:
        return json.loads(self.detail) if self.detail else {}

    def summary(self) -> str:
        """One line for logs, metadata and the CLI (counts only; no addresses)."""
        where = f" ({self.subject})" if self.subject else ""
        return f"{self.client_id}: {self.kind}{where}: {self.observed} of {self.total}, threshold {self.threshold}"


@dataclass
class CheckResult:
    fired: list[StaffAlert] = field(default_factory=list)  # new crossings (and open ones whose email was retried)
    recovered: list[StaffAlert] = field(default_factory=list)
    open: list[StaffAlert] = field(default_factory=list)  # every alert open after the check

    @property
    def unsent(self) -> list[StaffAlert]:
        return [a for a in self.fired if a.email_status != SENT]


def alert_id(client_id: str, kind: str, subject: str, crossed_at: datetime) -> str:
    digest = hashlib.sha256(f"staff_alert|{client_id}|{kind}|{subject}|{crossed_at.isoformat()}".encode())
    return digest.hexdigest()[:32]


def _window(cfg: StaffAlerts, now: datetime) -> datetime:
    return now - timedelta(hours=cfg.window_hours)


# -- the three checks --------------------------------------------------------------------------


def failed_or_held(session: Session, client_id: str, cfg: StaffAlerts, now: datetime) -> Breach | None:
    start = _window(cfg, now)
    _, rows = session.query(
        f"""select status, status_reason, count(*) from {_OUTBOX}
            where client_id = ? and updated_at > ? and updated_at <= ? group by status, status_reason""",
        [client_id, start, now],
    )
    total = sum(int(n) for _, _, n in rows)
    counts = {"failed": 0, "insufficient_credits": 0, "missing_variable": 0, "phi": 0, "other_held": 0}
    reasons: dict[str, int] = {}
    for status, reason, n in rows:
        if status not in ("failed", "held"):
            continue
        counts["failed" if status == "failed" else held_category(reason)] += int(n)
        masked = f"{status}: {mask_text(reason) or 'no reason given'}"
        reasons[masked] = reasons.get(masked, 0) + int(n)
    observed = sum(counts.values())
    share = observed / total if total else 0.0
    over_count = observed >= cfg.failed_or_held_count
    over_share = cfg.failed_or_held_share is not None and observed > 0 and share >= cfg.failed_or_held_share
    if not (over_count or over_share):
        return None
    threshold = f">= {cfg.failed_or_held_count}"
    if cfg.failed_or_held_share is not None:
        threshold += f" or >= {cfg.failed_or_held_share:.0%} of {total}"
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    detail = {**counts, "top_reasons": [{"reason": r, "count": n} for r, n in top], "window_hours": cfg.window_hours}
    return Breach(client_id, FAILED_OR_HELD, "", observed, total, threshold, detail)


def low_delivery_rate(session: Session, client_id: str, cfg: StaffAlerts, now: datetime) -> Breach | None:
    start = _window(cfg, now)
    finals = ("delivered", *FINAL_FAILURES)
    _, rows = session.query(
        f"""select provider_status, count(*) from {_OUTBOX}
            where client_id = ? and provider_status in ({", ".join("?" * len(finals))})
              and coalesce(provider_status_at, updated_at) > ? and coalesce(provider_status_at, updated_at) <= ?
            group by provider_status""",
        [client_id, *finals, start, now],
    )
    counts = dict.fromkeys(finals, 0) | {status: int(n) for status, n in rows}
    total = sum(counts.values())
    if total < cfg.delivery_min_outcomes:
        return None
    rate = counts["delivered"] / total
    if rate >= cfg.delivery_rate_min:
        return None
    detail = {**counts, "rate": round(rate, 4), "window_hours": cfg.window_hours}
    return Breach(client_id, LOW_DELIVERY_RATE, "", counts["delivered"], total,
                  f">= {cfg.delivery_rate_min:.1%} over >= {cfg.delivery_min_outcomes} outcomes", detail)  # fmt: skip


def provider_outages(session: Session, client_id: str, cfg: StaffAlerts, now: datetime) -> list[Breach]:
    start = _window(cfg, now)
    k = cfg.outage_attempts
    _, rows = session.query(
        f"""select provider, outcome, error_code, error_reason from (
                select a.provider, a.outcome, a.error_code, a.error_reason,
                       row_number() over (partition by a.provider
                                          order by a.finished_at desc, a.started_at desc, a.attempt_number desc) as n
                from {_ATTEMPTS} as a join {_OUTBOX} as o on o.message_key = a.message_key
                where o.client_id = ? and a.provider is not null and a.outcome <> 'suppressed'
                  and a.finished_at > ? and a.finished_at <= ?
            ) as recent where n <= ? order by provider, n""",
        [client_id, start, now, k],
    )
    by_provider: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for provider, outcome, code, reason in rows:
        by_provider.setdefault(provider, []).append((outcome, code, reason))
    breaches = []
    for provider, attempts in sorted(by_provider.items()):
        failing = [a for a in attempts if a[0] in OUTAGE_OUTCOMES or a[1] == CIRCUIT_OPEN]
        if len(attempts) < k or len(failing) < k:
            continue
        latest = attempts[0]
        detail = {
            "latest_error": mask_text(latest[2]) or None,
            "latest_code": latest[1],
            "circuit_open": any(a[1] == CIRCUIT_OPEN for a in attempts),
            "window_hours": cfg.window_hours,
        }
        breaches.append(Breach(client_id, PROVIDER_OUTAGE, provider, len(failing), len(attempts),
                               f"last {k} attempts all failed", detail))  # fmt: skip
    return breaches


def breaches(session: Session, deployment: Deployment, now: datetime) -> list[Breach]:
    found: list[Breach] = []
    for client_id, client in sorted(deployment.clients.items()):
        cfg = client.config.alerts
        for check in (failed_or_held, low_delivery_rate):
            if (b := check(session, client_id, cfg, now)) is not None:
                found.append(b)
        found.extend(provider_outages(session, client_id, cfg, now))
    return found


# -- emails ------------------------------------------------------------------------------------

WHAT_TO_DO = {
    FAILED_OR_HELD: (
        "What to do: messages held for insufficient credits go out again by themselves once you buy credits; "
        "a missing template variable means a column your packets do not fill for those contacts (send the data "
        "or change the template); the PHI guard held messages whose text names protected health information "
        "(change the template). Failed messages were refused by the carrier or mail provider: check the "
        "addresses in your data."
    ),
    LOW_DELIVERY_RATE: (
        "What to do: check the phone numbers and email addresses in your latest packets (disconnected numbers, "
        "landlines and mistyped emails do not receive messages); bounced addresses are suppressed automatically."
    ),
    PROVIDER_OUTAGE: (
        "Nothing to do on your side: the messaging provider is not answering. Herald retries the messages "
        "automatically and our staff are looking into it."
    ),
}


def _body(client_name: str, alert: StaffAlert) -> tuple[str, str]:
    d = alert.details
    hours = d.get("window_hours")
    if alert.kind == FAILED_OR_HELD:
        subject = f"{client_name}: {alert.observed} messages failed or held"
        lines = [
            f"In the last {hours} hours, {alert.observed} of your {alert.total} messages failed or were held "
            f"(alert threshold {alert.threshold}):",
            f"- failed: {d.get('failed', 0)}",
            f"- held for insufficient credits: {d.get('insufficient_credits', 0)}",
            f"- held for a missing template variable: {d.get('missing_variable', 0)}",
            f"- held by the PHI guard: {d.get('phi', 0)}",
            f"- held for another reason: {d.get('other_held', 0)}",
            "",
            "Most common reasons:",
            *[f"- {r['count']} x {r['reason']}" for r in d.get("top_reasons", [])],
        ]
    elif alert.kind == LOW_DELIVERY_RATE:
        subject = f"{client_name}: delivery rate {d.get('rate', 0):.1%}"
        lines = [
            f"In the last {hours} hours, {alert.observed} of {alert.total} messages that reached a final outcome "
            f"were delivered ({d.get('rate', 0):.1%}; alert threshold {alert.threshold}):",
            f"- delivered: {d.get('delivered', 0)}",
            *[f"- {status}: {d.get(status, 0)}" for status in FINAL_FAILURES],
        ]
    else:
        subject = f"{client_name}: {alert.subject} is not accepting messages"
        lines = [
            f"The last {alert.observed} attempts to send your messages through {alert.subject} all failed with "
            "temporary errors" + (" (the circuit is open)" if d.get("circuit_open") else "") + ".",
            f"Latest error: {d.get('latest_error') or 'none given'}",
        ]
    text = f"Hello {client_name},\n\n" + "\n".join(lines) + f"\n\n{WHAT_TO_DO[alert.kind]}\n"
    return subject, text


def _send(provider: Provider | None, message: OutboundMessage) -> tuple[str, str | None]:
    if provider is None:
        return FAILED, "no email provider is configured"
    try:
        provider.send(message)
    except (ProviderError, ValueError) as exc:
        return FAILED, str(exc)
    return SENT, None


def _notify_client(deployment: Deployment, providers: Mapping[str, Provider], alert: StaffAlert) -> StaffAlert:
    client = deployment.clients[alert.client_id].config
    if not client.contact.email:
        return replace(alert, email_status=NO_CONTACT,
                       email_error=f"{alert.client_id} has no contact.email in its client.yaml")  # fmt: skip
    subject, text = _body(client.name, alert)
    message = OutboundMessage(alert.message_key, "email", client.contact.email, sender=client.senders.email_from,
                              subject=subject, text=text)  # fmt: skip
    status, error = _send(providers.get("email"), message)
    return replace(alert, email_status=status, email_error=error)


def _notify_operator(deployment: Deployment, providers: Mapping[str, Provider], alert: StaffAlert) -> StaffAlert:
    log.warning("staff alert: %s (client email: %s)", alert.summary(), alert.email_status)
    operator = deployment.herald.operator_email
    if not operator:
        return replace(alert, operator_email_status=NOT_CONFIGURED)
    client = deployment.clients[alert.client_id].config
    subject, text = _body(client.name, alert)
    text = f"Staff alert {alert.alert_id}: {alert.summary()}\nClient email: {alert.email_status}\n\n{text}"
    message = OutboundMessage(f"{alert.message_key}-operator", "email", operator,
                              sender=client.senders.email_from or operator, subject=f"[herald] {subject}",
                              text=text)  # fmt: skip
    status, _ = _send(providers.get("email"), message)
    return replace(alert, operator_email_status=status)


# -- the check ---------------------------------------------------------------------------------


def _row(alert: StaffAlert) -> tuple:
    return tuple(getattr(alert, c) for c in ALERT_COLUMNS)


def list_alerts(session: Session, client_id: str | None = None, *, status: str | None = None) -> list[StaffAlert]:
    """Staff alerts, newest first (one client's, or only ``open`` / ``recovered`` ones)."""
    where, params = [], []
    if client_id:
        where.append("client_id = ?")
        params.append(client_id)
    if status:
        where.append("status = ?")
        params.append(status)
    clause = f"where {' and '.join(where)}" if where else ""
    _, rows = session.query(
        f"select {', '.join(ALERT_COLUMNS)} from {STAFF_ALERTS} {clause} order by crossed_at desc, alert_id", params
    )
    return [StaffAlert(**dict(zip(ALERT_COLUMNS, r, strict=True))) for r in rows]


def check_staff_alerts(
    session: Session, deployment: Deployment, providers: Mapping[str, Provider], now: datetime
) -> CheckResult:
    """Alerts each new crossing once, retries an open alert's failed client email, and marks
    alerts whose condition no longer holds ``recovered`` (all in ``session``'s transaction)."""
    result = CheckResult()
    current = {(b.client_id, b.kind, b.subject): b for b in breaches(session, deployment, now)}
    open_alerts = {(a.client_id, a.kind, a.subject): a for a in list_alerts(session, status=OPEN)}
    for key, alert in sorted(open_alerts.items()):
        if key in current:
            continue
        recovered = replace(alert, status=RECOVERED, recovered_at=now)
        session.execute(f"update {STAFF_ALERTS} set status = ?, recovered_at = ? where alert_id = ?",
                        [RECOVERED, now, alert.alert_id])  # fmt: skip
        log.info("staff alert recovered: %s", alert.summary())
        result.recovered.append(recovered)
    for key, breach in sorted(current.items()):
        previous = open_alerts.get(key)
        if previous is not None:
            if previous.email_status == FAILED:  # the email could not be sent: try again
                retried = _notify_client(deployment, {**providers}, previous)
                session.execute(f"update {STAFF_ALERTS} set email_status = ?, email_error = ? where alert_id = ?",
                                [retried.email_status, retried.email_error, retried.alert_id])  # fmt: skip
                result.fired.append(retried)
                previous = retried
            result.open.append(previous)
            continue
        aid = alert_id(breach.client_id, breach.kind, breach.subject, now)
        cfg = deployment.clients[breach.client_id].config.alerts
        alert = StaffAlert(
            alert_id=aid, client_id=breach.client_id, kind=breach.kind, subject=breach.subject, crossed_at=now,
            window_start=_window(cfg, now), observed=breach.observed, total=breach.total, threshold=breach.threshold,
            detail=json.dumps(breach.detail, sort_keys=True), status=OPEN, recovered_at=None,
            message_key=f"staff-alert-{aid}", email_status=NO_CONTACT, email_error=None,
            operator_email_status=NOT_CONFIGURED,
        )  # fmt: skip
        alert = _notify_operator(deployment, providers, _notify_client(deployment, providers, alert))
        session.insert_rows(STAFF_ALERTS, ALERT_COLUMNS, [_row(alert)])
        result.fired.append(alert)
        result.open.append(alert)
    return result
