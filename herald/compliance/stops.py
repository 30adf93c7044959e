"""Opt-outs that have reached Herald but are not applied yet: the delivery engine's last look.

A STOP lands first (a JSON-lines file under ``$HERALD_HOME/landing/inbound/``, or a
``herald_raw.inbound_messages`` row on PostgreSQL) and is applied later by the inbound
processing job (a ``herald_ops.suppressions`` row). Between the two, :class:`StopWatch` sees it:
the delivery engine asks it at every claim and before every SMS it hands to a provider, and
leaves a message to that address queued (not sent) until the opt-out is applied — which then
cancels it, or lets a later run send it when the opt-out's scope does not cover it.

What counts as "reached Herald", read in this order so that a message moving from one place to
the next is never missed (a file is moved to ``loaded/`` only after its rows committed; a row
gets its ``inbound_processing`` row in the transaction that writes the suppression):

1. every file waiting in ``landing/inbound/``, and every file in ``landing/inbound/loaded/``
   that was not there when the watch started (loaded, perhaps applied, during this run);
2. every ``herald_raw.inbound_messages`` row without an ``inbound_processing`` row.

The classifier is the one inbound processing uses (:func:`classify_reply`); a probable opt-out
counts too. The watch is per address, whatever the client: holding a message back until the
reply is applied costs a short delay, never a lost message. Addresses found stay stopped for the
watch's life (one delivery run); the next run starts afresh.

An unsubscribe from the web page or an email's one-click header lands the same way, as a
provider event (a file under ``$HERALD_HOME/landing/events/``, or a ``herald_raw.provider_events``
row) that names the client, the contact and the channel: until it is applied, every message of
that channel to that contact of that client waits too, whatever its type (the applied
unsubscribe's scope then decides).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from herald.compliance.inbound import INBOUND_MESSAGES, INBOUND_PROCESSING, to_e164
from herald.compliance.keywords import ReplyKind, classify_reply
from herald.compliance.landing import SUFFIX, inbound_dir
from herald.events.landing import EVENTS_TABLE, events_dir
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA

EVENT_PROCESSING = f"{OPS_SCHEMA}.provider_event_processing"

STOP_KINDS = (ReplyKind.OPT_OUT, ReplyKind.PROBABLE_OPT_OUT)


def is_stop(body: object) -> bool:
    """True when a reply's text is an opt-out (or a probable one) for Herald's classifier."""
    return classify_reply(str(body or "")).kind in STOP_KINDS


def address_key(address: object) -> str:
    """The form addresses are compared in: E.164 when it parses as a phone number."""
    text = str(address or "").strip()
    return to_e164(text) or text


def _names(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if e.name.endswith(SUFFIX) and not e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


class StopWatch:
    """The addresses with an opt-out that reached Herald and was not applied when this watch
    started (or arrived since); ``home`` None: no landing folder to read (files not checked)."""

    def __init__(self, home: Path | None) -> None:
        self.folder = inbound_dir(home) if home is not None else None
        self.events = events_dir(home) if home is not None else None
        self.stopped: set[str] = set()
        self.unsubscribed: set[tuple[str, str, str]] = set()  # (client_id, contact_id, channel)
        self._checked: set[str] = set()  # inbound and event ids already read in the warehouse
        # files loaded before the run: already in the warehouse (processed or not), read there
        self._seen: set[str] = set(_names(self.folder / "loaded")) if self.folder is not None else set()
        self._seen_events: set[str] = set(_names(self.events / "loaded")) if self.events is not None else set()

    def scan_files(self) -> None:
        if self.folder is not None:
            _scan_folder(self.folder, self._seen, self._take_line)
        if self.events is not None:
            _scan_folder(self.events, self._seen_events, self._take_event)

    def _take_line(self, line: str) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return  # a bad line is rejected by the loader and never applied
        if isinstance(data, dict) and str(data.get("channel") or "sms") == "sms" and is_stop(data.get("body")):
            self.stopped.add(address_key(data.get("from_address")))

    def _take_event(self, line: str) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return
        if isinstance(data, dict) and data.get("kind") == "unsubscribe":
            self._take_unsubscribe(data.get("payload"))

    def _take_unsubscribe(self, payload: object) -> None:
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                return
        if isinstance(payload, dict) and payload.get("client_id") and payload.get("contact_id"):
            channel = str(payload.get("channel") or "email")
            self.unsubscribed.add((str(payload["client_id"]), str(payload["contact_id"]), channel))

    def scan_warehouse(self, session: Session) -> None:
        """Unapplied SMS replies and unsubscribe events, in one statement (one round trip: the
        delivery engine runs it before provider calls)."""
        _, rows = session.query(
            f"""select 'reply', m.inbound_id, m.from_address, m.body from {INBOUND_MESSAGES} as m
                where m.channel = 'sms'
                  and not exists (select 1 from {INBOUND_PROCESSING} as p where p.inbound_id = m.inbound_id)
                union all
                select 'unsubscribe', e.event_id, null, cast(e.payload as varchar) from {EVENTS_TABLE} as e
                where e.kind = 'unsubscribe'
                  and not exists (select 1 from {EVENT_PROCESSING} as p where p.event_id = e.event_id)"""
        )
        for kind, row_id, from_address, text in rows:
            if row_id in self._checked:
                continue
            self._checked.add(row_id)
            if kind == "unsubscribe":
                self._take_unsubscribe(text)
            elif is_stop(text):
                self.stopped.add(address_key(from_address))

    def scan(self, session: Session | None) -> set[str]:
        """Files first, then (when given) the warehouse; returns the stopped addresses."""
        self.scan_files()
        if session is not None:
            self.scan_warehouse(session)
        return self.stopped

    def covers(self, addresses: Iterable[str]) -> set[str]:
        """Which of ``addresses`` are stopped (as given)."""
        if not self.stopped:  # the usual case: no address needs parsing
            return set()
        return {a for a in addresses if address_key(a) in self.stopped}

    def unsubscribe_waiting(self, client_id: str, contact_id: str | None, channel: str) -> bool:
        """True when an unsubscribe of this contact from this channel reached Herald, not applied."""
        return contact_id is not None and (client_id, contact_id, channel) in self.unsubscribed


def _scan_folder(folder: Path, seen: set[str], take: Callable[[str], None]) -> None:
    """Every line of the files waiting in ``folder``, and of those in ``folder/loaded`` that were
    not there when the watch started, once per file."""
    for name in [*_names(folder), *_names(folder / "loaded")]:
        if name in seen:
            continue
        text = None
        for path in (folder / name, folder / "loaded" / name):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
                break
            except FileNotFoundError:
                continue  # moved to loaded/ meanwhile: read it there
        if text is None:
            continue  # rejected meanwhile: never applied, nothing to honour
        seen.add(name)
        for line in text.splitlines():
            take(line)
