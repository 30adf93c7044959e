"""The low-credit alert asset's metadata: the alerts as a Markdown table an operator reads."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from assets.billing.credits import alerts_table
from herald.billing.alerts import CreditAlert


def test_the_alerts_table_names_clients_and_email_outcomes() -> None:
    alert = CreditAlert("acme", datetime(2026, 1, 1), Decimal("15"), Decimal("20"), "purchase:1", "k", "failed", "boom")
    assert alerts_table([alert]).splitlines()[-1] == "| acme | 15 | 20 | failed: boom |"
    assert alerts_table([]) == "no client crossed its low-credit threshold"
