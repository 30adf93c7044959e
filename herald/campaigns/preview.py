"""``herald campaign preview``: the send's own pass for one campaign, as if it fired at a chosen
moment, on a scratch copy of the warehouse — so the preview and the send cannot disagree: the
same dbt plan picks the recipients, channels, variants and times and gives the same reasons for
everyone left out, and the same renderer writes the messages. Nothing real is written or sent.
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from herald.campaigns.links import Links
from herald.campaigns.occurrences import Occurrence
from herald.campaigns.simulate import plan_pass
from herald.config.campaigns import CampaignConfig
from herald.config.models import Deployment
from herald.settings import WarehouseTarget
from herald.warehouse.config_tables import VARIANT_BUCKETS
from herald.warehouse.connection import Warehouse
from herald.warehouse.scratch import scratch_copy


def variant_bucket(contact_id: str, campaign: str, step: str) -> int:
    """The contact's A/B bucket; the same formula as dbt's ``hash_bucket`` macro."""
    digest = hashlib.md5(f"{contact_id}|{campaign}|{step}".encode()).hexdigest()
    return int(digest[:8], 16) % VARIANT_BUCKETS


@dataclass(frozen=True)
class PreviewRow:
    """One contact at one step of the preview: a message (when, how, what) or why not."""

    contact_id: str
    step: str | None
    outcome: str  # planned | held | excluded | waiting | not enrolled | exited | completed
    reason: str | None = None
    send_after: datetime | None = None  # naive UTC
    deferred: bool = False  # moved to the recipient's send window
    channel: str | None = None
    to_address: str | None = None
    variant: str | None = None
    template: str | None = None
    subject: str | None = None
    body_text: str | None = None
    sms_segments: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    occurrence: str | None = None  # the campaign occurrence a planned or excluded message is for
    deferral_reason: str | None = None  # 'deferred: 2026-12-25 is a holiday (Christmas Day, US)'


@dataclass
class Preview:
    client_id: str
    campaign: str
    at: datetime
    audience: int
    rows: list[PreviewRow]


PREVIEW_PLAN_SQL = """
select plan.message_key, plan.occurrence, plan.contact_id, plan.step, plan.status, plan.reason, plan.send_after,
    plan.is_deferred, plan.deferral_reason, plan.channel,
    coalesce(outbox.to_address, plan.to_address), plan.variant, outbox.template, outbox.subject, outbox.body_text,
    outbox.sms_segments, outbox.headers, outbox.status, outbox.status_reason
from marts.message_plan as plan
left join herald_ops.outbox as outbox on outbox.message_key = plan.message_key
where plan.client_id = ? and plan.campaign = ?
order by plan.contact_id, plan.step_position, plan.send_after
"""
# what became of each enrollment this pass moved (the pass's transitions), from the ledger
PREVIEW_LEDGER_SQL = """
select contact_id, step, status, coalesce(exit_reason, wait_reason), next_at
from herald_ops.enrollments
where client_id = ? and campaign = ?
    and enrollment_id in (select enrollment_id from marts.journey_transitions)
"""
PREVIEW_LEFT_OUT_SQL = """
select contact_id, enrollment_reason from intermediate.int_journey__new_enrollments
where client_id = ? and campaign = ? and enrollment_reason is not null
"""


def _planned_keys(warehouse: Warehouse, key: list[str]) -> set[str]:
    with warehouse.session(read_only=True) as s:
        exists = s.scalar(
            "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'message_plan'"
        )
        if not exists:
            return set()
        _, rows = s.query("select message_key from marts.message_plan where client_id = ? and campaign = ?", key)
    return {row[0] for row in rows}


def _headers(value: Any) -> dict[str, str]:
    import json

    if value is None:
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


def preview_plan(
    target: WarehouseTarget,
    deployment: Deployment,
    config_dir: Path,
    links: Links,
    client_id: str,
    campaign: CampaignConfig,
    at: datetime,
    *,
    occurrence: str | None = None,
    fired_at: datetime | None = None,
    copy_guard: AbstractContextManager[Any] | None = None,
) -> Preview:
    """The next send pass, at ``at``, as if the campaign fired then (an occurrence named
    ``occurrence``, fired at ``fired_at``), on a scratch copy of the warehouse as it is: per
    contact of this campaign, each message the pass plans (rendered, with its time, channel and
    variant) or why not (the plan's own reasons: already enrolled, consent, cap, limit, …), and
    where the journey leaves them. The pass does everything a real one would (other campaigns'
    pending work too, which can matter for frequency caps); only this campaign is shown.
    ``copy_guard`` is held while the copy is made (the portal's lock on the live DuckDB file)."""
    key = [client_id, campaign.name]
    with tempfile.TemporaryDirectory(prefix="herald-preview-") as tmp, ExitStack() as stack:
        with copy_guard or nullcontext():
            scratch = stack.enter_context(scratch_copy(target))
        work = Path(tmp)
        warehouse = Warehouse(scratch)
        with warehouse.session() as s:
            audience = int(
                s.scalar(
                    "select count(*) from marts.segment_members where client_id = ? and segment_name = ?",
                    [client_id, campaign.audience],
                )
                or 0
            )
        before = _planned_keys(warehouse, key)
        name = occurrence or f"manual:preview-{at:%Y%m%dT%H%M}"
        fired = [Occurrence(client_id, campaign.name, name, "manual", fired_at or at)]
        plan_pass(warehouse, deployment, config_dir, links, at, fired, work, run_id="preview")
        rows: list[PreviewRow] = []
        with warehouse.session(read_only=True) as s:
            _, planned = s.query(PREVIEW_PLAN_SQL, key)
            _, ledger = s.query(PREVIEW_LEDGER_SQL, key)
            _, left_out = s.query(PREVIEW_LEFT_OUT_SQL, key)
    for (message_key, planned_for, contact, step, status, reason, send_after, deferred, deferral, channel, to,
         variant, template, subject, body, segments, headers, outbox_status, outbox_reason) in planned:  # fmt: skip
        if message_key in before:
            continue  # planned by an earlier pass
        outcome = "held" if outbox_status == "held" else status
        rows.append(
            PreviewRow(
                contact, step, outcome, outbox_reason if outcome == "held" else reason, send_after, bool(deferred),
                channel, to, variant, template, subject, body, segments, _headers(headers), planned_for, deferral,
            )
        )  # fmt: skip
    for contact, step, status, reason, next_at in ledger:
        if status in ("waiting", "exited", "completed"):
            rows.append(PreviewRow(contact, step, status, reason, next_at if status == "waiting" else None))
    for contact, reason in left_out:
        rows.append(PreviewRow(contact, None, "not enrolled", reason))
    rows.sort(key=lambda r: (r.contact_id, r.send_after or at, r.step or ""))
    return Preview(client_id, campaign.name, at, audience, rows)
