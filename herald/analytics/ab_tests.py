"""A/B test results per campaign step and variant : ``analytics.ab_test_results``.

The statistics are pure functions (:func:`wilson_interval`, :func:`two_proportion_test`,
:func:`compare_arms`); :func:`compute_ab_results` reads the counts from the warehouse and
replaces the table in one transaction.

What is counted, per campaign step and variant (one message = one outbox row that was sent):
- ``sent``, ``delivered``, ``replied``: summed from ``analytics.campaign_performance_daily``, so
  they are the numbers the performance mart shows (a reply is credited to the latest message
  the client sent that address within the 7 days before it).
- ``opened``, ``clicked``: sent messages opened / clicked at least once (``marts.engagement_events``:
  Resend's opened and clicked webhooks, clicks on Herald's tracked links, bots left out), each
  message once; read only when a campaign judges by one of them.
- ``converted``: sent messages whose contact reached a conversion stage
  (:data:`CONVERSION_STAGES`) in ``marts.funnel_events`` within :data:`CONVERSION_WINDOW_DAYS`
  days after the message was sent. A conversion counts for every step that preceded it in the
  window: steps are tested separately, each against its own control.

How a step is judged: each variant against the step's control on the campaign's
``ab_test.metric`` over ``sent``, with a pooled two-sided two-proportion z-test. With more than
one challenger the level is split between them (Bonferroni), so a step with k challengers
needs p < significance / k; with the usual two arms it is the level as configured. Either arm
below ``min_sample`` messages sent gives "not enough data" and no z or p.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist
from typing import Any

from herald.config.campaigns import CampaignConfig
from herald.config.models import Deployment
from herald.warehouse.connection import Session
from herald.warehouse.schema import ANALYTICS_SCHEMA, column_names

WINNERS_TABLE = "herald_ops.ab_winners"
RESULTS_TABLE = f"{ANALYTICS_SCHEMA}.ab_test_results"
CONVERSION_STAGES: tuple[str, ...] = ("enrolled", "won", "closed", "booked")
CONVERSION_WINDOW_DAYS = 30
METRICS: tuple[str, ...] = ("replied", "converted", "delivered", "clicked", "opened")
ENGAGEMENT_METRICS: tuple[str, ...] = ("clicked", "opened")
ENGAGEMENT_EVENTS = "marts.engagement_events"

CONTROL = "control"
WINNER = "winner"
LOSER = "loser"
NO_DIFFERENCE = "no significant difference"
NOT_ENOUGH_DATA = "not enough data"
VERDICTS: tuple[str, ...] = (CONTROL, WINNER, LOSER, NO_DIFFERENCE, NOT_ENOUGH_DATA)


# -- statistics -----------------------------------------------------------------------------


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / trials`` at ``confidence`` (two-sided)."""
    if trials <= 0:
        raise ValueError(f"trials must be positive (got {trials})")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and trials ({trials}); got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # clamp the rounding at the ends: 0 successes gives exactly 0, all successes exactly 1
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_test(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float]:
    """Pooled two-sided z-test of ``s1/n1`` against ``s2/n2``: (z, p-value).

    z > 0 when the first proportion is the higher. When both arms are all successes or all
    failures the proportions cannot differ: z = 0, p = 1.
    """
    for s, n in ((s1, n1), (s2, n2)):
        if n <= 0:
            raise ValueError(f"trials must be positive (got {n})")
        if not 0 <= s <= n:
            raise ValueError(f"successes must be between 0 and trials ({n}); got {s}")
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (s1 / n1 - s2 / n2) / se
    # erfc keeps the precision of tiny p-values, where 2 * (1 - cdf(|z|)) would round to 0
    return z, math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True)
class ArmCounts:
    """What one variant of a step did: messages sent and how many were delivered, replied to,
    followed by a conversion, opened and clicked."""

    step: str
    variant: str
    sent: int
    delivered: int = 0
    replied: int = 0
    converted: int = 0
    opened: int = 0
    clicked: int = 0

    def successes(self, metric: str) -> int:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        return int(getattr(self, metric))


@dataclass(frozen=True)
class ArmResult:
    """One variant of a step judged against the step's control."""

    step: str
    variant: str
    is_control: bool
    sent: int
    delivered: int
    replied: int
    converted: int
    metric: str
    rate: float | None  # metric / sent; None when nothing was sent
    ci_low: float | None
    ci_high: float | None
    z: float | None  # against the control, > 0 when this variant does better; None: not tested
    p_value: float | None
    verdict: str  # one of VERDICTS
    winner: str | None  # the step's winning variant when significant, else None


def _step_winner(
    control: ArmCounts, tested: dict[str, tuple[float, float, str]], rates: dict[str, float | None]
) -> str | None:
    """The best variant significantly better than the control; else the control when it
    beat every challenger significantly; else None (``tested``: variant → (z, p, verdict))."""
    if not tested:
        return None
    better = [v for v, (_, _, verdict) in tested.items() if verdict == WINNER]
    if better:
        return max(better, key=lambda v: (rates[v] or 0.0, v))
    if all(verdict == LOSER for _, _, verdict in tested.values()):
        return control.variant
    return None


def compare_arms(
    rows: Iterable[ArmCounts],
    control: str | None,
    significance: float,
    min_sample: int,
    metric: str = "replied",
    confidence: float = 0.95,
) -> list[ArmResult]:
    """Judge every variant of every step against its control, in the order given.

    ``control`` names the control variant; when None, or when a step has no such variant,
    the step's first row is its control. A step where any arm is below ``min_sample`` sent
    has no winner (its arms above the minimum may still be compared with the control).
    """
    steps: dict[str, list[ArmCounts]] = {}
    for row in rows:
        steps.setdefault(row.step, []).append(row)
    results: list[ArmResult] = []
    for step, arms in steps.items():
        names = [a.variant for a in arms]
        if len(set(names)) != len(names):
            raise ValueError(f"step {step!r} lists a variant twice: {', '.join(names)}")
        control_arm = next((a for a in arms if a.variant == control), arms[0])
        challengers = [a for a in arms if a is not control_arm]
        level = significance / max(len(challengers), 1)  # Bonferroni over the challengers
        rates = {a.variant: (a.successes(metric) / a.sent if a.sent > 0 else None) for a in arms}
        tested: dict[str, tuple[float, float, str]] = {}
        for arm in challengers:
            if arm.sent < min_sample or control_arm.sent < min_sample:
                continue
            z, p = two_proportion_test(arm.successes(metric), arm.sent, control_arm.successes(metric), control_arm.sent)
            verdict = NO_DIFFERENCE if p >= level else (WINNER if z > 0 else LOSER)
            tested[arm.variant] = (z, p, verdict)
        enough = len(tested) == len(challengers)
        winner = _step_winner(control_arm, tested, rates) if enough else None
        for arm in arms:
            z, p, verdict = tested.get(arm.variant, (None, None, NOT_ENOUGH_DATA))
            if arm is control_arm:
                verdict = CONTROL
            low, high = wilson_interval(arm.successes(metric), arm.sent, confidence) if arm.sent > 0 else (None, None)
            results.append(
                ArmResult(
                    step=step,
                    variant=arm.variant,
                    is_control=arm is control_arm,
                    sent=arm.sent,
                    delivered=arm.delivered,
                    replied=arm.replied,
                    converted=arm.converted,
                    metric=metric,
                    rate=rates[arm.variant],
                    ci_low=low,
                    ci_high=high,
                    z=z,
                    p_value=p,
                    verdict=verdict,
                    winner=winner,
                )
            )
    return results


# -- the warehouse --------------------------------------------------------------------------

_COUNTS_SQL = """
select client_id, campaign, step, variant,
       cast(sum(sent) as bigint), cast(sum(delivered) as bigint), cast(sum(replied) as bigint)
from analytics.campaign_performance_daily
where variant <> 'none'
group by client_id, campaign, step, variant
"""

_CONVERTED_SQL = f"""
select m.client_id, m.campaign, m.step, m.variant, count(*)
from marts.messages m
where m.status = 'sent'
  and m.sent_at is not null
  and exists (
    select 1 from marts.funnel_events f
    where f.client_id = m.client_id
      and f.contact_id = m.contact_id
      and f.to_stage in ({", ".join(f"'{s}'" for s in CONVERSION_STAGES)})
      and f.occurred_at >= m.sent_at
      and f.occurred_at < m.sent_at + interval '{CONVERSION_WINDOW_DAYS} days'
  )
group by m.client_id, m.campaign, m.step, m.variant
"""

_ENGAGED_SQL = f"""
select client_id, campaign, step, variant,
       count(distinct case when event = 'opened' then message_key end),
       count(distinct case when event = 'clicked' then message_key end)
from {ENGAGEMENT_EVENTS}
group by client_id, campaign, step, variant
"""

Key = tuple[str, str, str, str]  # client_id, campaign, step, variant
COUNTED: tuple[str, ...] = ("sent", "delivered", "replied", "converted", "opened", "clicked")


def campaign_arms(campaign: CampaignConfig, counts: dict[tuple[str, str], dict[str, int]]) -> list[ArmCounts]:
    """The arms of every A/B step of ``campaign`` (steps with two or more variants), in the
    config's order; a variant sent earlier but since removed from the config comes last.
    ``counts``: (step, variant) → {"sent", "delivered", "replied", "converted", "opened", "clicked"}."""
    arms: list[ArmCounts] = []
    for step in campaign.message_steps:
        if len(step.variants) < 2:
            continue
        configured = [v.name for v in step.variants]
        retired = sorted(v for s, v in counts if s == step.name and v not in configured)
        for variant in configured + retired:
            found = counts.get((step.name, variant), {})
            numbers = {k: int(found.get(k, 0)) for k in COUNTED}
            arms.append(ArmCounts(step.name, variant, **numbers))
    return arms


def read_counts(session: Session, *, engagement: bool = False) -> dict[Key, dict[str, int]]:
    """Sent, delivered, replied and converted per client, campaign, step and variant; with
    ``engagement``, opened and clicked too (from ``marts.engagement_events``)."""
    counts: dict[Key, dict[str, int]] = {}
    _, rows = session.query(_COUNTS_SQL)
    for client_id, campaign, step, variant, sent, delivered, replied in rows:
        counts[(client_id, campaign, step, variant)] = {
            "sent": int(sent or 0),
            "delivered": int(delivered or 0),
            "replied": int(replied or 0),
            "converted": 0,
            "opened": 0,
            "clicked": 0,
        }
    _, rows = session.query(_CONVERTED_SQL)
    for client_id, campaign, step, variant, converted in rows:
        entry = counts.setdefault((client_id, campaign, step, variant), {"sent": 0, "delivered": 0, "replied": 0})
        entry["converted"] = int(converted)
    if engagement:
        _, rows = session.query(_ENGAGED_SQL)
        for client_id, campaign, step, variant, opened, clicked in rows:
            entry = counts.setdefault((client_id, campaign, step, variant), {"sent": 0, "delivered": 0, "replied": 0})
            entry["opened"], entry["clicked"] = int(opened), int(clicked)
    return counts


def judges_engagement(deployment: Deployment) -> bool:
    """True when some campaign's A/B test judges by opens or clicks."""
    return any(
        campaign.ab_test.metric in ENGAGEMENT_METRICS
        for client in deployment.clients.values()
        for campaign in client.campaigns.values()
    )


def ab_results(deployment: Deployment, counts: dict[Key, dict[str, int]]) -> list[tuple[str, str, ArmResult]]:
    """(client_id, campaign, result) for every A/B step of every configured campaign."""
    found: list[tuple[str, str, ArmResult]] = []
    for client_id in sorted(deployment.clients):
        for name, campaign in sorted(deployment.clients[client_id].campaigns.items()):
            mine = {(s, v): c for (cl, ca, s, v), c in counts.items() if cl == client_id and ca == name}
            arms = campaign_arms(campaign, mine)
            ab = campaign.ab_test
            for step in campaign.message_steps:
                step_arms = [a for a in arms if a.step == step.name]
                if step_arms:
                    found += [
                        (client_id, name, r)
                        for r in compare_arms(
                            step_arms, ab.control_for(step), ab.significance, ab.min_sample, ab.metric
                        )
                    ]
    return found


def compute_ab_results(session: Session, deployment: Deployment, now: datetime) -> int:
    """Replace ``analytics.ab_test_results`` with the current results; the number of rows.

    Reads ``analytics.campaign_performance_daily``, ``marts.messages`` and
    ``marts.funnel_events`` (and ``marts.engagement_events`` when a campaign judges by opens or
    clicks; dbt builds them); call it inside one session so the table is replaced in one
    transaction.
    """
    results = ab_results(deployment, read_counts(session, engagement=judges_engagement(deployment)))
    rows: list[Sequence[Any]] = [
        (
            client_id,
            campaign,
            r.step,
            r.variant,
            r.is_control,
            r.sent,
            r.delivered,
            r.replied,
            r.converted,
            r.metric,
            r.rate,
            r.ci_low,
            r.ci_high,
            r.z,
            r.p_value,
            r.verdict,
            r.winner,
            now,
        )
        for client_id, campaign, r in results
    ]
    session.execute(f"delete from {RESULTS_TABLE}")
    session.insert_rows(RESULTS_TABLE, column_names(RESULTS_TABLE), rows)
    record_winners(session, deployment, results, now)
    return len(rows)


def record_winners(session: Session, deployment: Deployment, results: Sequence[tuple[str, str, ArmResult]],
                   now: datetime) -> int:  # fmt: skip
    """For campaigns with ``ab_test.apply_winner``, remember each step's winner (the first one
    stays: "from then on"); the config load turns it into the only variant the plan uses."""
    winners = []
    for client_id, campaign_name, r in results:
        client = deployment.clients.get(client_id)
        campaign = client.campaigns.get(campaign_name) if client else None
        if campaign is None or not campaign.ab_test.apply_winner or r.winner is None or r.variant != r.winner:
            continue
        winners.append((client_id, campaign_name, r.step, r.winner, r.p_value, now))
    session.insert_rows(WINNERS_TABLE, column_names(WINNERS_TABLE), winners, ignore_existing=True)
    return len(winners)
