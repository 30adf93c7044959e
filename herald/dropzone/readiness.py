"""Which waiting files are complete uploads, ready to ingest.

A file still being written must never be ingested half. The client's ``dropzone.ready_when``
says what proves an upload finished: a sidecar (checksum or manifest) written after the file,
or the file's size and modification time unchanged between two sensor ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from herald.dropzone.base import PendingPacket

DEFAULT_POLICY = "sidecar_or_stable"


@dataclass
class Readiness:
    ready: list[PendingPacket] = field(default_factory=list)  # request these now
    waiting: list[PendingPacket] = field(default_factory=list)  # look again next tick
    already_requested: int = 0


def is_ready(packet: PendingPacket, policy: str, previous_fingerprint: str | None) -> bool:
    if packet.problem:  # refused for its name, sidecar or content: waiting will not mend it
        return True
    stable = previous_fingerprint == packet.fingerprint
    if policy == "sidecar":
        return packet.has_sidecar
    if policy == "stable":
        return stable
    return packet.has_sidecar or stable


def sort_pending(
    pending: list[PendingPacket],
    requested: dict[str, str],
    seen: dict[str, str],
    policies: dict[str, str],
) -> Readiness:
    """Split what the zone lists into ready and still-uploading files.

    ``requested`` maps zone paths to the fingerprint already requested (never request twice);
    ``seen`` maps zone paths to the fingerprint seen last tick while not ready yet.
    """
    result = Readiness()
    for packet in pending:
        if requested.get(packet.zone_path) == packet.fingerprint:
            result.already_requested += 1
        elif is_ready(packet, policies.get(packet.client_id, DEFAULT_POLICY), seen.get(packet.zone_path)):
            result.ready.append(packet)
        else:
            result.waiting.append(packet)
    return result
