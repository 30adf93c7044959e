"""Operator alerts: what the person running Herald must hear about, once per incident.

Two kinds of incident, each a row of ``herald_ops.operator_incidents``:

- ``run_failure`` — a Dagster run failed. The incident key is ``run_failure:<run id>``: however
  many times the failure is looked at (a sensor evaluated again, a cursor lost), the operator is
  told once; another run's failure is another incident. The row is ``closed`` at once (the run
  is its own event).
- ``failed_or_held`` — across every client, messages whose status became ``failed`` or ``held``
  in the last ``HERALD_OPERATOR_ALERT_WINDOW_HOURS`` (default 24) reach
  ``HERALD_OPERATOR_FAILED_OR_HELD_COUNT`` (default 50). The incident stays ``open`` while the
  count holds and is told once; it is ``recovered`` when the count falls below, and only a later
  crossing opens (and tells) a new one. The per-client staff alerts (:mod:`herald.alerts.staff`)
  sit beside it and tell each client's staff about their own messages.

Each new incident goes to the operator by email through the configured email provider (the
sandbox in the embedded default records it in its journal) to ``HERALD_OPERATOR_EMAIL`` (else
herald.yaml's ``operator_email``), and/or as a JSON POST to ``HERALD_ALERT_WEBHOOK_URL``: a short
timeout, retried with backoff on a refused connection, a timeout, 408, 429 and 5xx (tenacity),
signed the Standard Webhooks way (the scheme Svix uses, as Herald's client webhooks are) when
``HERALD_ALERT_WEBHOOK_SECRET`` is set. Both carry the link to the run,
``{HERALD_DAGSTER_URL}/runs/{run_id}``. What became of each (sent, failed with why, not
configured) is recorded on the row; a failed notification is not tried again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from tenacity import RetryError, retry, retry_if_exception, stop_after_attempt, wait_exponential

from herald.contacts.phones import mask_email
from herald.providers.base import OutboundMessage, Provider, ProviderError
from herald.settings import OperatorAlertSettings
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import OPS_SCHEMA, column_names

log = logging.getLogger("herald.alerts.operator")

INCIDENTS = f"{OPS_SCHEMA}.operator_incidents"
INCIDENT_COLUMNS = column_names(INCIDENTS)
_OUTBOX = f"{OPS_SCHEMA}.outbox"

RUN_FAILURE, FAILED_OR_HELD = "run_failure", "failed_or_held"
OPEN, RECOVERED, CLOSED = "open", "recovered", "closed"
SENT, FAILED, NOT_CONFIGURED = "sent", "failed", "not_configured"
WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_ATTEMPTS = 3
EVENT_TYPE = "herald.operator_incident"


@dataclass(frozen=True)
class Incident:
    """One ``herald_ops.operator_incidents`` row."""

    incident_id: str
    incident_key: str
    kind: str
    subject: str
    opened_at: datetime
    status: str
    recovered_at: datetime | None
    run_id: str | None
    link: str | None
    summary: str
    detail: str | None
    email_status: str
    email_error: str | None
    webhook_status: str
    webhook_error: str | None

    @property
    def details(self) -> dict[str, Any]:
        return json.loads(self.detail) if self.detail else {}

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body."""
        return {
            "type": EVENT_TYPE,
            "incident_id": self.incident_id,
            "incident_key": self.incident_key,
            "kind": self.kind,
            "subject": self.subject,
            "opened_at": self.opened_at.isoformat(timespec="seconds") + "Z",
            "summary": self.summary,
            "run_id": self.run_id,
            "link": self.link,
            "detail": self.details,
        }


def incident_id(incident_key: str, opened_at: datetime) -> str:
    return hashlib.sha256(f"operator_incident|{incident_key}|{opened_at.isoformat()}".encode()).hexdigest()[:32]


def _row(incident: Incident) -> tuple:
    return tuple(getattr(incident, c) for c in INCIDENT_COLUMNS)


def list_incidents(session: Session, *, status: str | None = None, incident_key: str | None = None) -> list[Incident]:
    """Incidents, newest first (optionally only one status, or one incident key)."""
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if incident_key:
        where.append("incident_key = ?")
        params.append(incident_key)
    clause = f"where {' and '.join(where)}" if where else ""
    _, rows = session.query(
        f"select {', '.join(INCIDENT_COLUMNS)} from {INCIDENTS} {clause} order by opened_at desc, incident_id", params
    )
    return [Incident(**dict(zip(INCIDENT_COLUMNS, r, strict=True))) for r in rows]


# -- notifications -----------------------------------------------------------------------------


def _email_text(incident: Incident) -> tuple[str, str]:
    subject = f"[herald] {incident.summary}"
    lines = [incident.summary, "", f"Incident: {incident.incident_key} ({incident.incident_id})"]
    lines.append(f"Opened at: {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC")
    if incident.link:
        lines.append(f"Run: {incident.link}")
    details = incident.details
    if incident.kind == RUN_FAILURE and details.get("error"):
        lines += ["", "Error:", str(details["error"])]
    if incident.kind == FAILED_OR_HELD:
        lines += ["", "Failed or held messages per client:"]
        lines += [f"- {client}: {n}" for client, n in sorted(details.get("by_client", {}).items())]
        lines += ["", "Each client's staff alerts: herald alerts list --open"]
    return subject, "\n".join(lines) + "\n"


def send_email(incident: Incident, to: str | None, provider: Provider | None) -> tuple[str, str | None]:
    """The incident to the operator's address through the email provider: (status, error)."""
    if not to:
        return NOT_CONFIGURED, None
    if provider is None:
        return FAILED, "no email provider is configured"
    subject, text = _email_text(incident)
    message = OutboundMessage(f"operator-{incident.incident_id}", "email", to, sender=to, subject=subject, text=text)
    try:
        provider.send(message)
    except (ProviderError, ValueError) as exc:
        return FAILED, str(exc)
    return SENT, None


class _Retryable(Exception):
    """An answer worth asking again (408, 429, 5xx)."""


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TransportError)


def post_webhook(
    incident: Incident,
    settings: OperatorAlertSettings,
    *,
    timeout: float = WEBHOOK_TIMEOUT_SECONDS,
    attempts: int = WEBHOOK_ATTEMPTS,
    wait_seconds: float = 0.5,
    now: Callable[[], datetime] | None = None,
) -> tuple[str, str | None]:
    """The incident as a JSON POST to ``settings.webhook_url``: (status, error). Retried with
    exponential backoff on a transport error (refused, timed out) and on 408, 429 and 5xx; any
    other non-2xx fails at once. Every attempt carries the same ``webhook-id`` (the incident id)
    and is signed afresh when a secret is set."""
    if not settings.webhook_url:
        return NOT_CONFIGURED, None
    body = json.dumps(incident.payload(), sort_keys=True)
    signer = None
    if settings.webhook_secret:
        from standardwebhooks.webhooks import Webhook

        signer = Webhook(settings.webhook_secret)

    def headers() -> dict[str, str]:
        if signer is None:
            return {
                "content-type": "application/json",
                "user-agent": "Herald-Alerts/1",
                "webhook-id": incident.incident_id,
            }
        from herald.webhooks.signing import signed_headers

        signed = signed_headers(signer, incident.incident_id, body, now() if now else None)
        return {**signed, "user-agent": "Herald-Alerts/1"}

    @retry(
        retry=retry_if_exception(_worth_retrying),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=wait_seconds, max=wait_seconds * 8),
        reraise=False,
    )
    def attempt(http: httpx.Client) -> httpx.Response:
        response = http.post(settings.webhook_url or "", content=body.encode(), headers=headers(), timeout=timeout)
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        return response

    try:
        with httpx.Client(follow_redirects=False) as http:
            response = attempt(http)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        why = f"timed out after {timeout:g} s" if isinstance(last, httpx.TimeoutException) else str(last)
        return FAILED, f"{why} ({attempts} attempts)"
    if not 200 <= response.status_code < 300:
        return FAILED, f"HTTP {response.status_code}"
    return SENT, None


def notify(
    incident: Incident, settings: OperatorAlertSettings, providers: Mapping[str, Provider], operator_email: str | None
) -> Incident:
    """Tells the operator about ``incident`` by email and webhook; returns it with what became of each."""
    log.warning("operator incident: %s (%s)", incident.summary, incident.link or "no run")
    email_status, email_error = send_email(incident, operator_email, providers.get("email"))
    webhook_status, webhook_error = post_webhook(incident, settings)
    if email_status == NOT_CONFIGURED and webhook_status == NOT_CONFIGURED:
        log.warning(
            "operator incident %s: no HERALD_OPERATOR_EMAIL nor HERALD_ALERT_WEBHOOK_URL set", incident.incident_id
        )
    return replace(incident, email_status=email_status, email_error=email_error,
                   webhook_status=webhook_status, webhook_error=webhook_error)  # fmt: skip


def operator_address(settings: OperatorAlertSettings, configured: str | None) -> str | None:
    """HERALD_OPERATOR_EMAIL, else herald.yaml's operator_email."""
    return settings.email or configured or None


# -- run failures ------------------------------------------------------------------------------


def run_failure_incident(run_id: str, job_name: str, error: str | None, settings: OperatorAlertSettings,
                         now: datetime) -> Incident:  # fmt: skip
    key = f"{RUN_FAILURE}:{run_id}"
    # an error text may quote a recipient: addresses are masked before they leave
    from herald.alerts.staff import mask_text

    detail = {"job": job_name, "error": mask_text((error or "")[:2000]) or None}
    return Incident(
        incident_id=incident_id(key, now), incident_key=key, kind=RUN_FAILURE, subject=job_name, opened_at=now,
        status=CLOSED, recovered_at=None, run_id=run_id, link=settings.run_link(run_id),
        summary=f"run of {job_name} failed ({run_id[:8]})", detail=json.dumps(detail, sort_keys=True),
        email_status=NOT_CONFIGURED, email_error=None, webhook_status=NOT_CONFIGURED, webhook_error=None,
    )  # fmt: skip


def already_reported(session: Session, incident_key: str) -> bool:
    return bool(session.scalar(f"select count(*) from {INCIDENTS} where incident_key = ?", [incident_key]))


# -- the failed/held threshold -----------------------------------------------------------------


def failed_or_held(session: Session, settings: OperatorAlertSettings, now: datetime) -> tuple[int, dict[str, int]]:
    """Messages across the deployment whose status became failed or held in the window: (count, per client)."""
    start = now - timedelta(hours=settings.window_hours)
    _, rows = session.query(
        f"""select client_id, count(*) from {_OUTBOX}
            where status in ('failed', 'held') and updated_at > ? and updated_at <= ?
            group by client_id order by client_id""",
        [start, now],
    )
    by_client = {client: int(n) for client, n in rows}
    return sum(by_client.values()), by_client


@dataclass
class ThresholdResult:
    opened: Incident | None = None
    recovered: Incident | None = None
    open: Incident | None = None  # the incident open after the check
    observed: int = 0


def check_failed_or_held(
    session: Session,
    settings: OperatorAlertSettings,
    providers: Mapping[str, Provider],
    operator_email: str | None,
    now: datetime,
    run_id: str | None = None,
) -> ThresholdResult:
    """Opens (and tells, once) an incident when the deployment's failed and held messages reach
    the threshold and none is open; recovers the open one when they fall below."""
    observed, by_client = failed_or_held(session, settings, now)
    crossed = observed >= settings.failed_or_held_count
    current = next(iter(list_incidents(session, status=OPEN, incident_key=FAILED_OR_HELD)), None)
    result = ThresholdResult(open=current, observed=observed)
    if current is not None and not crossed:
        session.execute(f"update {INCIDENTS} set status = ?, recovered_at = ? where incident_id = ?",
                        [RECOVERED, now, current.incident_id])  # fmt: skip
        log.info("operator incident recovered: %s", current.summary)
        result.recovered, result.open = replace(current, status=RECOVERED, recovered_at=now), None
    if current is None and crossed:
        hours = f"{settings.window_hours:g}"
        detail = {"by_client": by_client, "threshold": settings.failed_or_held_count, "window_hours": hours}
        incident = Incident(
            incident_id=incident_id(FAILED_OR_HELD, now), incident_key=FAILED_OR_HELD, kind=FAILED_OR_HELD,
            subject="", opened_at=now, status=OPEN, recovered_at=None, run_id=run_id,
            link=settings.run_link(run_id) if run_id else None,
            summary=f"{observed} messages failed or held in the last {hours} h across {len(by_client)} clients "
            f"(threshold {settings.failed_or_held_count})",
            detail=json.dumps(detail, sort_keys=True), email_status=NOT_CONFIGURED, email_error=None,
            webhook_status=NOT_CONFIGURED, webhook_error=None,
        )  # fmt: skip
        incident = notify(incident, settings, providers, operator_email)
        session.insert_rows(INCIDENTS, INCIDENT_COLUMNS, [_row(incident)])
        result.opened = result.open = incident
    return result


def record(session: Session, incident: Incident) -> bool:
    """Stores ``incident`` unless its key is there already; returns whether it was new."""
    if already_reported(session, incident.incident_key):
        return False
    session.insert_rows(INCIDENTS, INCIDENT_COLUMNS, [_row(incident)])
    return True


def report_run_failure(
    warehouse: Warehouse,
    settings: OperatorAlertSettings,
    providers: Mapping[str, Provider],
    operator_email: str | None,
    *,
    run_id: str,
    job_name: str,
    error: str | None,
    now: datetime,
) -> Incident | None:
    """Tells the operator about a failed run once: None when its incident is already recorded.
    The warehouse is not held while the email and webhook go out (DuckDB has one writer)."""
    incident = run_failure_incident(run_id, job_name, error, settings, now)
    with warehouse.session() as s:
        if already_reported(s, incident.incident_key):
            return None
    incident = notify(incident, settings, providers, operator_email)
    with warehouse.session() as s:
        return incident if record(s, incident) else None


def masked_operator(address: str | None) -> str:
    return mask_email(address) if address else "-"
