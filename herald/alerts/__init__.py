"""Staff alerts: per client, over a recent window, too many failed or held messages, a low
delivery rate, or a provider outage; each crossing is one ``herald_ops.staff_alerts`` row, an
email to the client's contact and an operator alert (see :mod:`herald.alerts.staff`)."""

from herald.alerts.staff import (
    FAILED_OR_HELD,
    KINDS,
    LOW_DELIVERY_RATE,
    PROVIDER_OUTAGE,
    STAFF_ALERTS,
    CheckResult,
    StaffAlert,
    check_staff_alerts,
    list_alerts,
)

__all__ = [
    "FAILED_OR_HELD",
    "KINDS",
    "LOW_DELIVERY_RATE",
    "PROVIDER_OUTAGE",
    "STAFF_ALERTS",
    "CheckResult",
    "StaffAlert",
    "check_staff_alerts",
    "list_alerts",
]
