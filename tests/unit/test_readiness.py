"""The ready_when policies, table-driven."""

from __future__ import annotations

import pytest

from herald.dropzone import PendingPacket
from herald.dropzone.readiness import is_ready, sort_pending


def packet(sidecar: bool = False, manifest: bool = False, size: int = 10, client: str = "acme") -> PendingPacket:
    return PendingPacket(
        client_id=client,
        packet_type="leads",
        file_name="f.csv",
        zone_path=f"{client}/incoming/leads/f.csv",
        size_bytes=size,
        mtime_us=1,
        sha256="ab" * 32,
        checksum_source="sidecar-sha256" if sidecar else "computed",
        manifest_rows=5 if manifest else None,
    )


@pytest.mark.parametrize(
    ("policy", "sidecar", "manifest", "stable", "ready"),
    [
        ("sidecar_or_stable", True, False, False, True),
        ("sidecar_or_stable", False, True, False, True),
        ("sidecar_or_stable", False, False, True, True),
        ("sidecar_or_stable", False, False, False, False),
        ("sidecar", False, False, True, False),
        ("sidecar", True, False, False, True),
        ("stable", True, False, False, False),
        ("stable", False, False, True, True),
    ],
)
def test_ready_when(policy: str, sidecar: bool, manifest: bool, stable: bool, ready: bool) -> None:
    p = packet(sidecar, manifest)
    assert is_ready(p, policy, p.fingerprint if stable else None) is ready


def test_sort_pending_never_requests_twice_and_uses_each_clients_policy() -> None:
    done, waiting_stable = packet(client="acme"), packet(client="beta")
    result = sort_pending(
        [done, waiting_stable, packet(client="gamma", sidecar=True)],
        requested={done.zone_path: done.fingerprint},
        seen={waiting_stable.zone_path: waiting_stable.fingerprint},
        policies={"beta": "sidecar", "gamma": "stable"},
    )
    assert result.already_requested == 1
    assert result.ready == []  # beta wants a sidecar; gamma wants two unchanged ticks
    assert [p.client_id for p in result.waiting] == ["beta", "gamma"]
