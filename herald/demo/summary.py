"""What `herald demo` prints after its runs, and the sample replies it lands: the SQL over the
warehouse and the lines it makes (the command itself, which runs Dagster, is orchestration.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from herald.clock import utcnow as _clock_now
from herald.warehouse.connection import Warehouse

DEMO_REPLIES = ("Stop texting me pls", "C", "HELP")
"""Three reminder recipients answer: an opt-out in free text, a confirmation, a HELP request."""

# patients whose reminder went out (the demo's clock puts it in their send window)
REPLY_RECIPIENTS_SQL = (
    "select distinct client_id, to_address, sender from herald_ops.outbox "
    "where channel = 'sms' and campaign = 'appointment_reminder' and status = 'sent' and sender is not null "
    "order by to_address limit 3"
)
REPLIES_APPLIED_SQL = (
    "select p.kind, coalesce(p.keyword_class, ''), p.action, p.messages_cancelled, o.step, o.status "
    "from herald_ops.inbound_processing p left join herald_ops.outbox o on o.message_key = p.reply_message_key "
    "order by p.processed_at, p.inbound_id"
)
HELD_BACK_SQL = (
    "select case when status = 'planned' then 'deferred to the recipient''s send window' else reason end, "
    "count(*) from marts.message_plan where (status = 'planned' and is_deferred) or reason like 'frequency cap%' "
    "or reason like 'no consent%' or reason like 'suppressed%' group by 1 order by 2 desc"
)
# One definition of delivered (docs/analysts.md), the same as the client report's.
DELIVERED = "(delivered_at is not null or final_status in ('delivered', 'read'))"
FAILED = f"(not {DELIVERED} and final_status in ('failed', 'undelivered', 'bounced'))"
STORY_STEPS_SQL = (
    f"select client_id, campaign, step, count(*), count(case when {DELIVERED} then 1 end), "
    f"count(case when {FAILED} then 1 end), count(case when clicked_at is not null then 1 end), min(sent_at) "
    "from marts.deliveries where substr(campaign, 1, 1) <> '_' group by 1, 2, 3 order by 1, 2, 8, 3"
)
STORY_RATE_SQL = (
    f"select client_id, count(case when {DELIVERED} then 1 end), count(case when {FAILED} then 1 end) "
    "from marts.deliveries where substr(campaign, 1, 1) <> '_' group by 1 order by 1"
)
STORY_ENROLLED_SQL = "select client_id, campaign, count(*) from marts.enrollments group by 1, 2 order by 1, 2"
STORY_FUNNEL_SQL = (
    "select client_id, campaign, step, took_yes, took_no, paths_taken, carried_over from analytics.journey_funnel "
    "where moved_on > 0 or carried_over > 0 order by 1, 2, 3"
)
STORY_LEFT_OUT_SQL = (
    "select client_id, campaign, reason, count(*) from marts.message_plan where status = 'excluded' "
    "group by 1, 2, 3 order by 1, 2, 4 desc, 3"
)
STORY_EXITS_SQL = (
    "select client_id, campaign, exit_reason, count(*) from marts.enrollments where status = 'exited' "
    "group by 1, 2, 3 order by 1, 2, 4 desc, 3"
)
SEGMENT_SIZES_SQL = "select client_id, segment_name, count(*) from marts.segment_members group by 1, 2 order by 1, 2"


def land_demo_replies(warehouse: Warehouse, home: Path) -> list[str]:
    """Land :data:`DEMO_REPLIES` from the first SMS recipients, as the provider webhook lands
    replies; returns the texts landed (fewer when fewer people got an SMS)."""
    from herald.compliance.landing import InboundMessage, append_inbound

    with warehouse.session(read_only=True) as s:
        _, rows = s.query(REPLY_RECIPIENTS_SQL)
    now = _clock_now()
    for (client_id, to_address, sender), text in zip(rows, DEMO_REPLIES, strict=False):
        append_inbound(home, InboundMessage(f"demo-{client_id}-{to_address}-{text}", to_address, sender, text, now))
    return list(DEMO_REPLIES[: len(rows)])


def _rate(delivered: int, failed: int) -> str:
    return f"{100 * delivered / (delivered + failed):.1f}%" if delivered + failed else "no receipt yet"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _client_name(clients: dict[str, Any], client_id: str) -> str:
    return getattr(getattr(clients.get(client_id), "config", None), "name", None) or client_id


def demo_story(warehouse: Warehouse, deployment: Any) -> list[str]:
    """What the demo did, per client and campaign, in plain words; every number is a query of
    the marts (marts.deliveries with the report's definition of delivered, marts.enrollments,
    analytics.journey_funnel)."""
    with warehouse.session(read_only=True) as s:
        _, steps = s.query(STORY_STEPS_SQL)
        _, rates = s.query(STORY_RATE_SQL)
        _, enrolled = s.query(STORY_ENROLLED_SQL)
        _, funnel = s.query(STORY_FUNNEL_SQL)
        _, exits = s.query(STORY_EXITS_SQL)
        _, left_out = s.query(STORY_LEFT_OUT_SQL)
    clients = deployment.clients
    campaigns = sorted({(c, n) for c, n, *_ in steps} | {(c, n) for c, n, _ in enrolled})
    lines: list[str] = []
    for client_id, name in campaigns:
        client = clients.get(client_id)
        campaign = client.campaigns.get(name) if client is not None else None
        parts = [f"{n} enrolled" for c, k, n in enrolled if (c, k) == (client_id, name)]
        for c, k, step, sent, delivered, failed, clicked, _ in steps:
            if (c, k) != (client_id, name):
                continue
            text = f"{_words(step)}: {sent} sent, {delivered} delivered ({_rate(int(delivered), int(failed))})"
            text += f", {failed} not delivered" if failed else ""
            text += f", {clicked} clicked" if clicked else ""
            parts.append(text)
        for c, k, step, took_yes, took_no, paths_taken, carried_over in funnel:
            if (c, k) != (client_id, name):
                continue
            if carried_over:
                parts.append(f"{_words(step)}: {carried_over} carried over to the next days by the daily limit")
            waits = {st.name: st for st in getattr(campaign, "steps", [])}
            wait_for = getattr(waits.get(step), "wait_for", None)
            if wait_for is not None and (took_yes or took_no):
                event = getattr(wait_for, "event", "the event")
                timeout = getattr(wait_for, "timeout", "")
                yes, no = getattr(waits[step], "yes", None), getattr(waits[step], "no", None)
                if took_yes:
                    parts.append(f"{took_yes} {event} → {_words(yes or 'next step')}")
                if took_no:
                    parts.append(f"{took_no} not {event} within {timeout} → {_words(no or 'next step')}")
            elif paths_taken and not (took_yes or took_no):
                parts.append(f"{_words(step)}: {_words(str(paths_taken))}")
        for c, k, reason, n in left_out:
            if (c, k) == (client_id, name):
                parts.append(f"{n} left out ({reason})")
        for c, k, reason, n in exits:
            if (c, k) == (client_id, name):
                parts.append(f"{n} exited ({reason})")
        label = _client_name(clients, client_id)
        lines.append(f"{label} — {name}: " + " · ".join(parts))
    for client_id, delivered, failed in rates:
        label = _client_name(clients, client_id)
        lines.append(f"{label}: delivery rate {_rate(int(delivered), int(failed))} "
                     f"({delivered} delivered of {int(delivered) + int(failed)} with a receipt)")  # fmt: skip
    return lines


def print_packet_report(console: Console, warehouse: Warehouse, packet_ids: list[str]) -> None:
    """One row per packet (rows, landed, rejected, contacts, time), then each packet's steps
    and first rejected lines."""
    from herald.reports.packets import packet_reports

    reports = packet_reports(warehouse, packet_ids or None)
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("client/packet type", no_wrap=True)
    for name in ("status", "rows", "landed", "rejected", "contacts new/upd", "ms"):
        table.add_column(name, justify="left" if name == "status" else "right")
    for r in reports:
        contacts = "—" if r.contacts_created is None else f"{r.contacts_created}/{r.contacts_updated}"
        table.add_row(
            f"{r.client_id}/{r.packet_type}", r.status, str(r.rows_in_file), str(r.rows_landed),
            str(r.rows_rejected), contacts, str(sum(r.step_ms.values())),
        )  # fmt: skip
    console.print(table)
    for r in reports:
        console.print(f"[bold]{r.packet_id}[/bold] ({r.file_name})", highlight=False)
        if r.status_reason and r.status != "landed":
            console.print(f"  {r.status}: {r.status_reason}", highlight=False)
        console.print("  time per step (ms): " + " · ".join(f"{k} {v}" for k, v in r.step_ms.items()), highlight=False)
        for line, reason in r.first_rejects:
            console.print(f"  line {line} rejected: {reason}", highlight=False)
        shown = len(r.first_rejects)
        if r.rows_rejected > shown:
            top = "; ".join(f"{n}× {reason}" for reason, n in r.top_reject_reasons[:3])
            console.print(f"  … {r.rows_rejected - shown} more rejected rows; most common: {top}", highlight=False)


def print_segments(console: Console, warehouse: Warehouse) -> None:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(SEGMENT_SIZES_SQL)
    if rows:
        console.print("segments: " + ", ".join(f"{c}/{name} {n}" for c, name, n in rows), highlight=False)


def print_compliance(console: Console, warehouse: Warehouse) -> None:
    """Replies applied, and who the rules held back: deferrals, caps, consent, suppressions."""
    with warehouse.session(read_only=True) as s:
        _, replies = s.query(REPLIES_APPLIED_SQL)
        _, held_back = s.query(HELD_BACK_SQL)
    for kind, keyword_class, action, cancelled, reply_step, reply_status in replies:
        detail = f" ({keyword_class})" if keyword_class else ""
        extra = f", {cancelled} queued message{'s' if cancelled != 1 else ''} cancelled" if cancelled else ""
        answer = f", {reply_step.replace('_', ' ')} {reply_status}" if reply_step else ""
        console.print(f"reply {kind}{detail}: {action}{extra}{answer}", highlight=False)
    for reason, n in held_back:
        console.print(f"compliance: {reason} ({n})", highlight=False)
