"""Render the planned messages and enqueue them in the outbox (idempotently).

Reads ``marts.message_plan`` rows with status ``planned`` whose message key is not in the
outbox yet, renders each with the step variant's template (SMS: sandboxed Jinja, opt-out
wording, segment count; email: MJML, subject, plain text, signed unsubscribe link and RFC 8058
headers), and inserts them in one transaction. A message whose template fails for its contact
(a missing variable, a template file that is gone) is enqueued as ``held`` with the error, which
names the template, the variable and the contact; the rest of the campaign goes out.

Opt-out and unsubscribe wording follow herald.compliance.wording (contact, then client, then
herald.yaml). A rendered message in which the PHI guard finds an identifier, or clinical wording
the client has not allowed, is held with the masked finding as its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from herald.appointments.occurrences import parse_appointment_occurrence
from herald.campaigns.links import Links
from herald.campaigns.tracking import TRACK_FUNCTION, LinkTracker
from herald.campaigns.variables import typed_variables, variable_types
from herald.compliance.phi import find_phi, phi_reason
from herald.compliance.wording import client_wording
from herald.config.models import Client, Deployment
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue
from herald.messages.render import Renderer, TemplateError, default_renderer
from herald.messages.unsubscribe import make_token, unsubscribe_urls
from herald.warehouse.connection import Session

PLAN = "marts.message_plan"
CONFIRM_URL_VAR = "confirm_url"
CONFIRM_SCOPE = "confirm"
PLAN_COLUMNS = (
    "message_key", "client_id", "campaign", "step", "occurrence", "contact_id", "message_type", "category",
    "channel", "to_address", "variant", "template", "subject_template", "send_after", "variables",
)  # fmt: skip


def confirm_url(public_url: str, token: str) -> str:
    """The confirmation page ``<public>/c/<token>`` (served by ``herald serve``)."""
    return f"{public_url.rstrip('/')}/c/{token}"


@dataclass
class EnqueueReport:
    considered: int = 0
    enqueued: int = 0
    held: int = 0
    held_reasons: Counter = field(default_factory=Counter)
    by_campaign: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = f"{self.enqueued} messages enqueued ({self.held} held) of {self.considered} planned"
        return text + "".join(f"\n  held: {reason} ({n})" for reason, n in self.held_reasons.most_common(5))


class TemplateSources:
    """Template files per client, read once per run."""

    def __init__(self, config_dir: Path):
        self.config_dir = config_dir
        self._cache: dict[tuple[str, str], str] = {}

    def get(self, client_id: str, name: str) -> str:
        key = (client_id, name)
        if key not in self._cache:
            path = self.config_dir / "clients" / client_id / "templates" / name
            if not path.is_file():
                raise FileNotFoundError(f"template file clients/{client_id}/templates/{name} does not exist")
            self._cache[key] = path.read_text(encoding="utf-8")
        return self._cache[key]


@dataclass
class MessageBuilder:
    """Turns one plan row into an :class:`OutboxMessage` (rendered, or held with the reason)."""

    deployment: Deployment
    config_dir: Path
    links: Links
    renderer: Renderer = field(default_factory=default_renderer)

    def __post_init__(self) -> None:
        self.sources = TemplateSources(self.config_dir)
        self._types: dict[str, dict[str, str]] = {}

    def _client(self, client_id: str) -> Client:
        return self.deployment.clients[client_id]

    def variables(self, client_id: str, raw: Any) -> dict[str, Any]:
        client = self._client(client_id)
        if client_id not in self._types:
            self._types[client_id] = variable_types(client)
        return typed_variables(raw, self._types[client_id], client.time_zone)

    def build(self, row: dict[str, Any]) -> OutboxMessage:
        client = self._client(row["client_id"])
        channel = row["channel"]
        senders = client.config.senders
        base = {
            "message_key": row["message_key"], "client_id": row["client_id"], "campaign": row["campaign"],
            "step": row["step"], "variant": row["variant"] or "", "occurrence": row["occurrence"],
            "contact_id": row["contact_id"], "message_type": row["message_type"], "category": row["category"],
            "channel": channel, "to_address": row["to_address"], "send_after": row["send_after"],
            "sender": senders.sms_from if channel == "sms" else senders.email_from, "template": row["template"],
        }  # fmt: skip
        template = row["template"]
        contact_id = row["contact_id"]
        try:
            if not template:
                raise TemplateError("?", contact_id, f"variant {row['variant']!r} has no {channel} template")
            try:
                source = self.sources.get(client.config.client_id, template)
            except FileNotFoundError as exc:
                raise TemplateError(template, contact_id, str(exc)) from exc
            variables = self.variables(row["client_id"], row["variables"])
            # a per-appointment reminder shows its own appointment's time (the contact's
            # appointment_at is only their latest packet's)
            if appointment := parse_appointment_occurrence(row["occurrence"]):
                variables.update(self.variables(row["client_id"], {"appointment_at": str(appointment[1])}))
            # the confirmation page, e.g. "confirm here: {{ confirm_url }}" in a reminder
            confirm_token = make_token(self.links.secret, client.config.client_id, contact_id, channel, CONFIRM_SCOPE)
            variables[CONFIRM_URL_VAR] = confirm_url(self.links.public_url, confirm_token)
            tracker = self._tracker(client, row)
            variables[TRACK_FUNCTION] = tracker.track
            if channel == "sms":
                opt_out = client_wording("opt_out", client, self.deployment.herald, variables)
                sms = self.renderer.render_sms(template, source, variables, contact_id, opt_out_text=opt_out)
                if held := self._phi_hold(client, base, sms.body):
                    return held
                return OutboxMessage(**base, body_text=sms.body, sms_segments=sms.segments, sms_encoding=sms.encoding)
            token = make_token(self.links.secret, client.config.client_id, contact_id, "email", "all")
            page_url, one_click_url = unsubscribe_urls(self.links.public_url, token)
            email = self.renderer.render_email(
                template, row["subject_template"] or "", source, variables, contact_id,
                unsubscribe_url=page_url, one_click_url=one_click_url,
                unsubscribe_text=client_wording("unsubscribe_link", client, self.deployment.herald, variables),
                sender_name=client.config.name, postal_address=client.config.postal_address,
            )  # fmt: skip
            if held := self._phi_hold(client, base, f"{email.subject}\n{email.text}"):
                return held
            html = tracker.rewrite_html(email.html, keep=(page_url, one_click_url))
            return OutboxMessage(
                **base, subject=email.subject, body_text=email.text, body_html=html, headers=email.headers
            )
        except TemplateError as exc:
            return OutboxMessage(**base, status="held", status_reason=str(exc))

    def _tracker(self, client: Client, row: dict[str, Any]) -> LinkTracker:
        """Signed /l/ links for this message, unless its campaign says ``track_links: false``."""
        campaign = client.campaigns.get(row["campaign"])
        enabled = campaign.track_links if campaign is not None else True
        return LinkTracker(self.links.secret, self.links.public_url, row["message_key"], enabled=enabled)

    @staticmethod
    def _phi_hold(client: Client, base: dict[str, Any], text: str) -> OutboxMessage | None:
        """The message held (without its body, which carries the PHI) when the guard finds any."""
        allowed = client.config.compliance.phi_clinical_terms_allowed
        findings = find_phi(text, block_clinical_terms=not allowed)
        return OutboxMessage(**base, status="held", status_reason=phi_reason(findings)) if findings else None


def pending_plan_rows(session: Session, batch_size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
    """Planned messages not in the outbox yet, in batches, in send order.

    The pending message keys are read first, then each batch's rows: a plan of a million
    messages is never held in memory whole (its variables are a JSON object per message)."""
    import polars as pl

    columns = ", ".join(f"plan.{c}" for c in PLAN_COLUMNS)
    _, pending = session.query(
        f"""
        select plan.message_key from {PLAN} as plan
        where plan.status = 'planned'
            and not exists (select 1 from {OUTBOX} as outbox where outbox.message_key = plan.message_key)
        order by plan.send_after, plan.message_key
        """
    )
    keys = [key for (key,) in pending]
    del pending
    for start in range(0, len(keys), batch_size):
        batch = pl.DataFrame({"message_key": keys[start : start + batch_size]}, schema={"message_key": pl.String})
        with session.frame_as_table("_herald_pending_keys", batch) as table:
            names, rows = session.query(
                f"select {columns} from {PLAN} as plan join {table} as pending "
                "on pending.message_key = plan.message_key order by plan.send_after, plan.message_key"
            )
        yield [dict(zip(names, row, strict=False)) for row in rows]


def enqueue_planned(
    session: Session,
    deployment: Deployment,
    config_dir: Path,
    links: Links,
    now: datetime,
    *,
    renderer: Renderer | None = None,
    progress: Callable[[EnqueueReport], None] | None = None,
) -> EnqueueReport:
    """Render and enqueue every planned message not in the outbox yet (in ``session``'s transaction)."""
    builder = MessageBuilder(deployment, config_dir, links, renderer or default_renderer())
    report = EnqueueReport()
    for batch in pending_plan_rows(session):
        messages = [builder.build(row) for row in batch]
        report.considered += len(messages)
        report.enqueued += enqueue(session, messages, now)
        for m in messages:
            report.by_campaign[f"{m.client_id}/{m.campaign}"] += 1
            if m.status == "held":
                report.held += 1
                report.held_reasons[m.status_reason or "held"] += 1
        if progress is not None:
            progress(report)
    return report
