"""Low-credit alerts: one email to a client when its balance falls below its threshold.

The threshold is ``credit_alert_threshold_pct`` (client.yaml, default 20) percent of the
client's **last purchase** (the most recent ``purchase`` row of its ledger): a client that bought
1,000 credits hears at < 200 left. A crossing is keyed by that purchase, so it alerts once; the
next purchase re-arms it (the balance is then above the new threshold, and a new crossing gets
a new key). Each crossing is one ``herald_ops.credit_alerts`` row; its email goes to the client's
``contact.email`` through the email provider, from the client's own ``senders.email_from``, with a
deterministic key (a provider with idempotency keys drops a repeat). An email that could not be
sent is tried again by the next check; a client without ``contact.email`` is recorded as
``no_contact`` (the Dagster asset fails the run for both, so an operator sees it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from herald.billing.credits import Balance, balances, credits, show
from herald.config.models import Deployment
from herald.providers.base import OutboundMessage, Provider, ProviderError
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

CREDIT_ALERTS = f"{OPS_SCHEMA}.credit_alerts"
ALERT_COLUMNS = column_names(CREDIT_ALERTS)
SENT, FAILED, NO_CONTACT = "sent", "failed", "no_contact"


@dataclass(frozen=True)
class CreditAlert:
    """One low-credit crossing and what became of its email."""

    client_id: str
    crossed_at: datetime
    balance: Decimal
    threshold: Decimal
    purchase_entry_id: str
    message_key: str
    email_status: str  # sent | failed | no_contact
    email_error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.email_status == SENT


def threshold(balance: Balance, pct: int) -> Decimal | None:
    """The balance under which a client is alerted: ``pct`` % of its last purchase (None: it
    never bought credits, so there is nothing to be low against)."""
    if balance.last_purchase_amount is None:
        return None
    return credits(balance.last_purchase_amount * Decimal(pct) / 100)


def is_low(balance: Balance, pct: int) -> bool:
    limit = threshold(balance, pct)
    return limit is not None and balance.balance < limit


def alert_key(client_id: str, purchase_entry_id: str) -> str:
    """The alert email's deterministic message key (one per crossing)."""
    digest = hashlib.sha256(f"credit_alert|{client_id}|{purchase_entry_id}".encode()).hexdigest()[:32]
    return f"credit-alert-{digest}"


def alert_email(deployment: Deployment, alert: CreditAlert, balance: Balance) -> OutboundMessage:
    client = deployment.clients[alert.client_id].config
    text = (
        f"Hello {client.name},\n\n"
        f"Your Herald credit balance is {show(alert.balance)} credits, below your alert threshold of "
        f"{show(alert.threshold)} ({client.credit_alert_threshold_pct}% of your last purchase of "
        f"{show(balance.last_purchase_amount or Decimal(0))} credits).\n\n"
        "Messages that do not fit in the balance are held, not sent, until credits are added.\n"
    )
    return OutboundMessage(
        alert.message_key,
        "email",
        client.contact.email or "",
        sender=client.senders.email_from,
        subject=f"{client.name}: credit balance low ({show(alert.balance)} credits left)",
        text=text,
    )


def _send(provider: Provider | None, message: OutboundMessage) -> tuple[str, str | None]:
    if provider is None:
        return FAILED, "no email provider is configured"
    try:
        provider.send(message)
    except (ProviderError, ValueError) as exc:
        return FAILED, str(exc)
    return SENT, None


def check_low_credit(
    session: Session, deployment: Deployment, providers: Mapping[str, Provider], now: datetime
) -> list[CreditAlert]:
    """Alerts every configured, metered client whose balance is below its threshold and that was
    not alerted for its last purchase yet (or whose alert email failed); returns those alerts."""
    if not deployment.herald.billing_enabled:
        return []
    _, rows = session.query(f"select {', '.join(ALERT_COLUMNS)} from {CREDIT_ALERTS}")
    known = {
        (r["client_id"], r["purchase_entry_id"]): r
        for r in (dict(zip(ALERT_COLUMNS, row, strict=False)) for row in rows)
    }
    fired: list[CreditAlert] = []
    for client_id, balance in balances(session).items():
        client = deployment.clients.get(client_id)
        if client is None or balance.last_purchase_entry_id is None:
            continue
        pct = client.config.credit_alert_threshold_pct
        if not is_low(balance, pct):
            continue
        previous = known.get((client_id, balance.last_purchase_entry_id))
        if previous is not None and previous["email_status"] != FAILED:
            continue  # this crossing was alerted
        alert = CreditAlert(client_id, now, balance.balance, threshold(balance, pct) or Decimal(0),
                            balance.last_purchase_entry_id, alert_key(client_id, balance.last_purchase_entry_id),
                            NO_CONTACT)  # fmt: skip
        if client.config.contact.email:
            status, error = _send(providers.get("email"), alert_email(deployment, alert, balance))
        else:
            status, error = NO_CONTACT, f"{client_id} has no contact.email in its client.yaml"
        alert = CreditAlert(**{**alert.__dict__, "email_status": status, "email_error": error})
        if previous is not None:
            session.execute(
                f"delete from {CREDIT_ALERTS} where client_id = ? and purchase_entry_id = ?",
                [client_id, alert.purchase_entry_id],
            )
        session.insert_rows(CREDIT_ALERTS, ALERT_COLUMNS, [tuple(getattr(alert, c) for c in ALERT_COLUMNS)])
        fired.append(alert)
    return fired
