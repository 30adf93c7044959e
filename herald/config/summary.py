"""Human-readable lines describing a validated deployment, for ``herald config check``.

One line per campaign, e.g.::

    bright_smiles_dental/appointment_reminder | active | appointment_reminder (transactional)
    | audience upcoming_appointments | When a packet of type appointments arrives | limit 125/day
    | steps: 1) reminder: sms, 24h before appointment_at, variants friendly 50% / brief 50%

(on one line). Pure: takes the deployment, returns strings; the CLI prints them.
"""

from __future__ import annotations

from typing import Any

from herald.config.calendars import DAY_NAMES
from herald.config.campaigns import CampaignConfig, Step
from herald.config.models import Deployment


def _percent(weight: float, total: float) -> str:
    return f"{round(100 * weight / total):d}%"


def describe_step(number: int, step: Any) -> str:
    if not isinstance(step, Step):
        return f"{number}) {step.name}: {step.timing()}"
    channels = f'"{step.rule}"' if step.rule is not None else step.channel
    total = sum(v.weight for v in step.variants)
    variants = " / ".join(f"{v.name} {_percent(v.weight, total)}" for v in step.variants)
    timing = step.timing()
    if number > 1 and timing == "when triggered":
        timing = "when reached"
    return f"{number}) {step.name}: {channels}, {timing}, variants {variants}"


def describe_calendar(client_window: Any, campaign: CampaignConfig) -> str | None:
    """'sends mon, tue, wed, thu, fri; holidays US-TX; 2 closed days' — the calendar the campaign
    keeps (its own send_window's keys over the client's), or None when it sends every day."""
    own = campaign.send_window

    def pick(key: str) -> Any:
        value = getattr(own, key) if own is not None else None
        return value if value is not None else getattr(client_window, key)

    parts = []
    if (days := pick("send_days")) and len(days) < 7:
        parts.append("sends " + ", ".join(DAY_NAMES[d - 1] for d in days))
    if (holidays := pick("holidays")) is not None:
        parts.append(f"holidays {holidays.label}")
    if closed := pick("closed_days"):
        parts.append(f"{len(closed)} closed day{'s' if len(closed) != 1 else ''}")
    return "; ".join(parts) or None


def campaign_line(client_id: str, time_zone: str, campaign: CampaignConfig, client_window: Any = None) -> str:
    parts = [
        f"{client_id}/{campaign.name}",
        campaign.status,
        f"{campaign.message_type} ({campaign.category})",
        f"audience {campaign.audience}",
        campaign.describe_trigger(time_zone),
    ]
    if campaign.daily_limit is not None:
        parts.append(f"limit {campaign.daily_limit}/day")
    if client_window is not None and (calendar := describe_calendar(client_window, campaign)):
        parts.append(calendar)
    parts.append(f"enrolls {campaign.enrollment}")
    parts.append(f"exits on {campaign.exit_on.describe()}")
    steps = "; ".join(describe_step(i, s) for i, s in enumerate(campaign.steps, start=1))
    parts.append(f"steps: {steps}")
    return " | ".join(parts)


def deployment_summary(deployment: Deployment) -> list[str]:
    """One line per campaign, clients and campaigns in name order."""
    return [
        campaign_line(client_id, client.time_zone, client.campaigns[name], client.config.send_window)
        for client_id, client in sorted(deployment.clients.items())
        for name in sorted(client.campaigns)
    ]
