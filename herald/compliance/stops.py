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
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from herald.compliance.inbound import INBOUND_MESSAGES, INBOUND_PROCESSING, to_e164
from herald.compliance.keywords import ReplyKind, classify_reply
from herald.compliance.landing import SUFFIX, inbound_dir
from herald.warehouse.connection import Session

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
        self.stopped: set[str] = set()
        self._checked: set[str] = set()  # inbound ids already classified
        # files loaded before the run: already in the warehouse (processed or not), read there
        self._seen: set[str] = set(_names(self.folder / "loaded")) if self.folder is not None else set()

    def scan_files(self) -> None:
        if self.folder is None:
            return
        waiting = _names(self.folder)
        loaded = _names(self.folder / "loaded")
        for name in [*waiting, *loaded]:
            if name in self._seen:
                continue
            text = None
            for path in (self.folder / name, self.folder / "loaded" / name):
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                    break
                except FileNotFoundError:
                    continue  # moved to loaded/ meanwhile: read it there
            if text is None:
                continue  # rejected meanwhile: never applied, nothing to honour
            self._seen.add(name)
            for line in text.splitlines():
                self._take_line(line)

    def _take_line(self, line: str) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return  # a bad line is rejected by the loader and never applied
        if isinstance(data, dict) and str(data.get("channel") or "sms") == "sms" and is_stop(data.get("body")):
            self.stopped.add(address_key(data.get("from_address")))

    def scan_warehouse(self, session: Session) -> None:
        _, rows = session.query(
            f"""select m.inbound_id, m.from_address, m.body from {INBOUND_MESSAGES} as m
                where m.channel = 'sms'
                  and not exists (select 1 from {INBOUND_PROCESSING} as p where p.inbound_id = m.inbound_id)"""
        )
        for inbound_id, from_address, body in rows:
            if inbound_id in self._checked:
                continue
            self._checked.add(inbound_id)
            if is_stop(body):
                self.stopped.add(address_key(from_address))

    def scan(self, session: Session | None) -> set[str]:
        """Files first, then (when given) the warehouse; returns the stopped addresses."""
        self.scan_files()
        if session is not None:
            self.scan_warehouse(session)
        return self.stopped

    def covers(self, addresses: Iterable[str]) -> set[str]:
        """Which of ``addresses`` are stopped (as given)."""
        return {a for a in addresses if address_key(a) in self.stopped}
