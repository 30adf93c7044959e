"""What `herald demo` prints after its runs, and the sample replies it lands: the SQL over the
warehouse and the lines it makes (the command itself, which runs Dagster, is orchestration.cli)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from herald.warehouse.connection import Warehouse

DEMO_REPLIES = ("Stop texting me pls", "C", "HELP")
"""Three reminder recipients answer: an opt-out in free text, a confirmation, a HELP request."""

REPLY_RECIPIENTS_SQL = (
    "select distinct client_id, to_address, sender from herald_ops.outbox "
    "where channel = 'sms' and campaign <> '_replies' and sender is not null order by to_address limit 3"
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
SEGMENT_SIZES_SQL = "select client_id, segment_name, count(*) from marts.segment_members group by 1, 2 order by 1, 2"


def land_demo_replies(warehouse: Warehouse, home: Path) -> list[str]:
    """Land :data:`DEMO_REPLIES` from the first SMS recipients, as the provider webhook lands
    replies; returns the texts landed (fewer when fewer people got an SMS)."""
    from herald.compliance.landing import InboundMessage, append_inbound

    with warehouse.session(read_only=True) as s:
        _, rows = s.query(REPLY_RECIPIENTS_SQL)
    now = datetime.now(UTC).replace(tzinfo=None)
    for (client_id, to_address, sender), text in zip(rows, DEMO_REPLIES, strict=False):
        append_inbound(home, InboundMessage(f"demo-{client_id}-{to_address}-{text}", to_address, sender, text, now))
    return list(DEMO_REPLIES[: len(rows)])


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
