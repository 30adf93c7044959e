"""Providers that send nothing: deterministic provider-like ids and Twilio-style magic failures.

SMS ids are ``SM`` + 32 hex digits, email ids a UUID, both derived from the message key, so a
retried message gets the same id. Magic recipients fail permanently:

- ``+15005550001`` → 21211, invalid 'To' number
- ``+15005550002`` → 21612, cannot route to this number
- ``+15005550009`` → 21610, recipient blocked / cannot receive
- ``bounce@<any domain>`` and ``<anyone>@invalid.example`` → code ``bounce``, hard bounce

Everything "sent" is kept in ``sent`` (in order) for tests. Given a ``journal_dir``, each
accepted message is also appended as one JSON line to ``<journal_dir>/<channel>.jsonl``
(written before ``send`` returns, so :meth:`lookup` is exact across processes and a crashed or
killed delivery run can be reconciled; tests count sends per message key there). The line is
fsynced before ``send`` returns, or, inside :meth:`group_commit` (the delivery engine's batch),
once for the whole block when it ends (group commit): the engine records a batch's outcomes
only after that, so a kill loses nothing and only a machine crash could lose the lines of a
batch whose outcomes were never recorded (those rows stay ``sending`` and are reconciled).
``send_delay_seconds`` makes each send slow (crash tests). A journal entry carries the rendered
text (SMS body; email subject and text) and the recipient masked (``mask_phone`` /
``mask_email``): nothing reads the raw address back, :meth:`lookup` goes by message key.

Given ``receipts`` (:class:`~herald.providers.sandbox_events.SandboxReceipts`), every accepted
message then lands the status events a real provider would send (delivered, failed, bounced,
opened, clicked) and, at a rate, an SMS reply: see :mod:`herald.providers.sandbox_events`.
Without it (the default when built directly) the sandbox sends no events.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from herald.clock import offset_seconds, realnow
from herald.clock import utcnow as _clock_now
from herald.contacts.phones import mask_email, mask_phone
from herald.providers.base import (
    OutboundMessage,
    OutcomeUnknownError,
    PermanentProviderError,
    Provider,
    SendResult,
)
from herald.providers.sandbox_events import SandboxReceipts

log = logging.getLogger("herald.providers.sandbox")
MAGIC_SMS_FAILURES: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "invalid 'To' phone number"),
    "+15005550002": (21612, "cannot route to this number"),
    "+15005550009": (21610, "recipient is blocked or cannot receive messages"),
}
_EMAIL_NAMESPACE = uuid.UUID("6f1c1d2e-8f0b-4a52-9a53-1f3f6d1c0e11")


def sandbox_sms_id(message_key: str) -> str:
    return "SM" + hashlib.sha256(f"sms:{message_key}".encode()).hexdigest()[:32]


def sandbox_email_id(message_key: str) -> str:
    return str(uuid.uuid5(_EMAIL_NAMESPACE, message_key))


def _email_bounces(address: str) -> bool:
    local, _, domain = address.strip().lower().rpartition("@")
    return local == "bounce" or domain == "invalid.example"


def read_journal(path: Path) -> list[dict]:
    """The entries of a sandbox journal file, in order (empty when it does not exist)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash mid-write was never acknowledged
    return entries


class _SandboxProvider(Provider):
    def __init__(
        self,
        *,
        journal_dir: Path | str | None = None,
        send_delay_seconds: float = 0.0,
        receipts: SandboxReceipts | None = None,
    ) -> None:
        self.sent: list[OutboundMessage] = []
        self.receipts = receipts
        self._lock = threading.Lock()
        self.journal_path = Path(journal_dir) / f"{self.channel}.jsonl" if journal_dir else None
        self.send_delay_seconds = send_delay_seconds
        self._group_fd: int | None = None  # the journal, open for one group commit
        self._group_depth = 0
        self._group_offset = timedelta(0)  # the clock's shift, read once per group commit

    def __repr__(self) -> str:
        return f"{type(self).__name__}(journal_path={self.journal_path!r}, receipts={self.receipts!r})"

    @abstractmethod
    def _id(self, message_key: str) -> str:
        """The provider-like id of a message (SMS: SM + hex; email: a UUID)."""

    @abstractmethod
    def _status(self) -> str:
        """The status a real provider would first answer with."""

    def _record(self, message: OutboundMessage) -> None:
        if self.send_delay_seconds:
            time.sleep(self.send_delay_seconds)
        with self._lock:
            if self.journal_path is not None:
                self._append_journal(message)
            self.sent.append(message)
        if self.receipts is not None:
            try:
                self.receipts.emit(message, self._id(message.message_key), _clock_now())
            except Exception as exc:  # a lost webhook never undoes an accepted send
                log.warning("sandbox receipts for %s not landed: %s", message.message_key, type(exc).__name__)

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """Journal lines written inside the block are fsynced once, when it ends (see the module)."""
        if self.journal_path is None:
            yield
            return
        with self._lock:
            self._group_depth += 1
            if self._group_fd is None:
                self.journal_path.parent.mkdir(parents=True, exist_ok=True)
                self._group_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._group_offset = timedelta(seconds=offset_seconds())
        try:
            yield
        finally:
            with self._lock:
                self._group_depth -= 1
                if self._group_depth == 0 and self._group_fd is not None:
                    fd, self._group_fd = self._group_fd, None
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)

    def _append_journal(self, message: OutboundMessage) -> None:
        """One JSON line per accepted message; called with ``self._lock`` held."""
        assert self.journal_path is not None
        accepted_at = realnow() + self._group_offset if self._group_fd is not None else _clock_now()
        entry = {
            "message_key": message.message_key,
            "channel": message.channel,
            "to": mask_email(message.to) if message.channel == "email" else mask_phone(message.to),
            "sender": message.sender,
            "subject": message.subject,
            "text": message.body if message.channel == "sms" else (message.text or message.html),
            "provider_message_id": self._id(message.message_key),
            "accepted_at": accepted_at.isoformat(),
        }
        line = (json.dumps(entry) + "\n").encode()
        if self._group_fd is not None:
            # one write(2) per line in O_APPEND mode: other processes' lines never interleave
            # with it, and it is visible to their lookups at once; fsynced when the group ends
            fcntl.flock(self._group_fd, fcntl.LOCK_EX)
            try:
                os.write(self._group_fd, line)
            finally:
                fcntl.flock(self._group_fd, fcntl.LOCK_UN)
            return
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # other processes append to the same journal
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def journal(self) -> list[dict]:
        """Every journaled send (all processes), in order."""
        return read_journal(self.journal_path) if self.journal_path else []

    def journal_counts(self) -> Counter[str]:
        """Sends per message key, from the journal."""
        return Counter(entry["message_key"] for entry in self.journal())

    def lookup(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        self._check_channel(message)
        if self.journal_path is None:
            with self._lock:
                if any(m.message_key == message.message_key for m in self.sent):
                    return SendResult(self.name, self._id(message.message_key), self._status())
            # another process may have sent it: only a journal knows
            raise OutcomeUnknownError("no journal to look the message up in", provider=self.name)
        if any(e["message_key"] == message.message_key for e in self.journal()):
            return SendResult(self.name, self._id(message.message_key), self._status())
        return None


class SandboxSmsProvider(_SandboxProvider):
    name = "sandbox_sms"
    channel = "sms"

    def _id(self, message_key: str) -> str:
        return sandbox_sms_id(message_key)

    def _status(self) -> str:
        return "queued"

    def send(self, message: OutboundMessage) -> SendResult:
        self._check_channel(message)
        failure = MAGIC_SMS_FAILURES.get(message.to.strip())
        if failure:
            code, reason = failure
            raise PermanentProviderError(reason, provider=self.name, code=code)
        self._record(message)
        return SendResult(self.name, sandbox_sms_id(message.message_key), "queued")


class SandboxEmailProvider(_SandboxProvider):
    name = "sandbox_email"
    channel = "email"

    def _id(self, message_key: str) -> str:
        return sandbox_email_id(message_key)

    def _status(self) -> str:
        return "sent"

    def send(self, message: OutboundMessage) -> SendResult:
        self._check_channel(message)
        if _email_bounces(message.to):
            raise PermanentProviderError("hard bounce", provider=self.name, code="bounce")
        self._record(message)
        return SendResult(self.name, sandbox_email_id(message.message_key), "sent")
