"""`herald inbound`, `herald reply`, `herald block` and `herald unblock`: one person's side of
the conversation, as support and the provider webhooks see it."""

from __future__ import annotations

import datetime
import getpass
from typing import Annotated

import typer

from herald.cli.common import USAGE_EXIT, console, fail, load_settings, plural, resolve_client
from herald.clock import utcnow as _clock_now

CONTACTS_EXIST_SQL = (
    "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'contacts'"
)


def _utc_now() -> datetime.datetime:
    return _clock_now()


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def inbound(
    from_number: Annotated[str, typer.Argument(metavar="FROM", help="The recipient's phone number (who replies).")],
    to_number: Annotated[
        str, typer.Argument(metavar="TO", help="The client's SMS sender number (who receives the reply).")
    ],
    text: Annotated[str, typer.Argument(metavar="TEXT", help='The reply, e.g. "STOP", "HELP", "C".')],
    inbound_id: Annotated[
        str | None,
        typer.Option(
            "--id", help="The message id (as a Twilio MessageSid); default: a new one. The same id is applied once."
        ),
    ] = None,
) -> None:
    """Simulate an SMS reply arriving (what the Twilio webhook does): it is landed under
    $HERALD_HOME/landing/inbound, never written to the warehouse here; `herald tick` applies it
    (opt-out, opt-in, HELP, C to confirm, R to reschedule)."""
    import uuid

    from herald.compliance.inbound import to_e164
    from herald.compliance.landing import InboundMessage, append_inbound
    from herald.contacts.phones import mask_phone

    settings = load_settings()
    numbers = {}
    for label, value in (("FROM", from_number), ("TO", to_number)):
        numbers[label] = to_e164(value)
        if numbers[label] is None:
            fail(f"{label} {value!r} is not a phone number (write it as +15125550142)", USAGE_EXIT)
    message = InboundMessage(
        inbound_id=inbound_id or f"SIM{uuid.uuid4().hex}",
        from_address=numbers["FROM"],
        to_address=numbers["TO"],
        body=text,
        received_at=_utc_now(),
        provider="cli",
    )
    path = append_inbound(settings.home, message)
    console.print(
        f"landed reply {message.inbound_id} from {mask_phone(message.from_address)} to {message.to_address} "
        f"in {path.parent}: `herald tick` applies it (inbound_events_sensor → apply_replies_job)",
        highlight=False,
    )


def _block_change(client: str, address: str, reason: str, lift: bool) -> None:
    from herald.compliance.manual import BlockError, block, read_address, unblock
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    _, configured = resolve_client(settings, client)
    try:
        parsed = read_address(address, configured.default_region)
        warehouse = Warehouse(settings.warehouse)
        warehouse.ensure_schema()
        with warehouse.session() as s:
            count = (unblock if lift else block)(s, client, parsed, reason, _actor(), _utc_now())
    except BlockError as exc:
        fail(str(exc))
    if lift:
        console.print(f"unblocked {parsed.masked} for {client} ({plural(count, 'block')} lifted)", highlight=False)
    else:
        console.print(f"blocked {parsed.masked} for {client} ({parsed.channel}): {plural(count, 'queued message')} "
                      "cancelled; reason kept for support", highlight=False)  # fmt: skip


def block_command(
    client: Annotated[str, typer.Argument(help="Client id.")],
    address: Annotated[str, typer.Argument(help="Phone number (any format) or email address.")],
    reason: Annotated[str, typer.Option(help="Why, for whoever follows up (kept with the block and audited).")],
) -> None:
    """Block every message of a client to a phone number or email address (a customer's request
    to support); cancels what is queued. Audited with your user name."""
    _block_change(client, address, reason, lift=False)


def unblock_command(
    client: Annotated[str, typer.Argument(help="Client id.")],
    address: Annotated[str, typer.Argument(help="Phone number or email address.")],
    reason: Annotated[str, typer.Option(help="Why the block is lifted (audited).")],
) -> None:
    """Lift a manual block (an opt-out stays: only the person lifts it, by texting START)."""
    _block_change(client, address, reason, lift=True)


def reply_command(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="Client id.")],
    contact: Annotated[
        str, typer.Argument(metavar="CONTACT", help="The contact's contact_id, or its phone number (any format).")
    ],
    text: Annotated[str, typer.Argument(metavar="TEXT", help='The message, e.g. "See you at 3pm!".')],
) -> None:
    """Send a manual SMS to a contact, through the same outbox, rules and logging as every
    message: refused when the contact has no valid phone, is suppressed, or the text holds PHI;
    queued for the next moment inside the recipient's send window; no opt-out line is added (it
    is a conversation). The same text to the same contact within a minute is sent once. Audited
    with your user name; `herald tick` (the delivery sensor) sends it once it is due."""
    from zoneinfo import ZoneInfo

    from herald.contacts.phones import mask_phone
    from herald.conversations.reply import ReplyError, queue_reply
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    deployment, configured = resolve_client(settings, client)
    now = _utc_now()
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    try:
        with warehouse.session() as s:
            if not s.scalar(CONTACTS_EXIST_SQL):
                raise ReplyError("there are no contacts yet (marts.contacts): land a packet first")
            message, is_new = queue_reply(s, deployment, client, contact, text, _actor(), now)
    except ReplyError as exc:
        fail(str(exc), label="refused")
    zone = configured.time_zone
    local = message.send_after.replace(tzinfo=datetime.UTC).astimezone(ZoneInfo(zone))
    when = (
        "now" if message.send_after <= now else f"at {local:%a %Y-%m-%d %H:%M} {zone} ({message.send_after:%H:%M} UTC)"
    )
    verb = "queued" if is_new else "already queued (the same text this minute: not sent twice)"
    console.print(
        f"{verb}: reply {message.message_key} to {mask_phone(message.to_address)} (contact {message.contact_id}), "
        f"goes out {when}; `herald tick` (the delivery sensor) sends it once it is due",
        highlight=False,
    )
