"""Configuration as warehouse tables, so dbt can join the load maps it applies."""

from __future__ import annotations

import itertools
from typing import Any

from herald.compliance.audit import audit
from herald.compliance.calendars import SendCalendar, calendar_for, not_a_send_day
from herald.compliance.windows import legal_window_rows
from herald.config.campaigns import (
    BranchStep,
    ExitStep,
    Step,
    WaitForStep,
    WaitStep,
    parse_duration,
    parse_time_of_day,
)
from herald.config.expressions import compile_condition
from herald.config.fields import CANONICAL_FIELDS, FIELDS_BY_NAME
from herald.config.models import AttributeColumn, Deployment
from herald.packets.landing import utcnow
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

CONFIG_TABLES = (
    "clients",
    "load_maps",
    "load_map_columns",
    "canonical_fields",
    "campaigns",
    "campaign_steps",
    "campaign_variants",
    "campaign_branches",
    "send_windows",
    "campaign_send_windows",
    "closed_days",
    "legal_windows",
    "frequency_caps",
    "sender_quotas",
    "confirmation_settings",
    "campaign_topics",
)
VARIANT_BUCKETS = 10_000  # a contact's A/B bucket is md5(contact|campaign|step) mod this


def config_rows(
    deployment: Deployment, winners: dict[tuple[str, str, str], str] | None = None
) -> dict[str, list[tuple]]:
    """Rows for each ``herald_ops`` configuration table."""
    now = utcnow()
    clients, maps, columns = [], [], []
    for client in deployment.clients.values():
        c = client.config
        clients.append((c.client_id, c.name, c.industry, client.time_zone, client.default_region, now))
        for load_map in client.load_maps.values():
            maps.append(
                (c.client_id, load_map.packet_type, load_map.entity, load_map.description, load_map.keep_unmapped, now)
            )
            for position, (column, target) in enumerate(load_map.columns.items(), start=1):
                if isinstance(target, AttributeColumn):
                    kind, name, data_type, sep = "attribute", target.attribute, target.type, target.separator
                else:
                    kind, name = "field", target.field
                    data_type, sep = FIELDS_BY_NAME[name].data_type, None
                required = kind == "field" and name in load_map.required
                columns.append(
                    (c.client_id, load_map.packet_type, column, kind, name, data_type, sep, required, position)
                )
    fields = [(f.name, f.data_type, f.stored_in, f.description) for f in CANONICAL_FIELDS]
    windows = [
        (client_id, day, *client_window(deployment, client_id, day))
        for client_id in deployment.clients
        for day in range(1, 8)
    ]
    return {
        "clients": clients,
        "load_maps": maps,
        "load_map_columns": columns,
        "canonical_fields": fields,
        **campaign_rows(deployment, now, winners or {}),
        "send_windows": windows,
        **calendar_rows(deployment, now.year),
        "legal_windows": list(legal_window_rows()),
        "frequency_caps": frequency_cap_rows(deployment),
        "sender_quotas": sender_quota_rows(deployment),
        "confirmation_settings": confirmation_setting_rows(deployment),
        "campaign_topics": campaign_topic_rows(deployment),
    }


def campaign_topic_rows(deployment: Deployment) -> list[tuple]:
    """Each campaign's declared topic (preferences: a contact may turn the topic off)."""
    return [
        (client_id, name, campaign.topic)
        for client_id, client in deployment.clients.items()
        for name, campaign in client.campaigns.items()
        if campaign.topic is not None
    ]


def confirmation_setting_rows(deployment: Deployment) -> list[tuple]:
    """Each client's ``confirmations:`` (client.yaml) in minutes, for marts.appointment_confirmations."""
    rows = []
    for client_id, client in deployment.clients.items():
        c = client.config.confirmations
        minutes = [int(parse_duration(d).total_seconds() // 60) for d in (c.follow_up_after, c.high_risk_before)]
        rows.append((client_id, *minutes, c.digest.send_at, c.digest.enabled))
    return rows


def calendar_rows(deployment: Deployment, year: int) -> dict[str, list[tuple]]:
    """Each campaign's calendar (herald.compliance.calendars) as ``campaign_send_windows`` (hours
    per ISO day; a closed weekday as 0-0 with its reason) and ``closed_days`` (dated closures
    around ``year``)."""
    windows, closed = [], []
    for client_id, client in deployment.clients.items():
        for name in client.campaigns:
            own_windows, own_closed = calendar_table_rows(
                client_id, name, calendar_for(deployment, client_id, name, year=year)
            )
            windows += own_windows
            closed += own_closed
    return {"campaign_send_windows": windows, "closed_days": closed}


def calendar_table_rows(client_id: str, campaign: str, calendar: SendCalendar) -> tuple[list[tuple], list[tuple]]:
    """One campaign's ``campaign_send_windows`` and ``closed_days`` rows."""
    windows = [
        (client_id, campaign, iso_day, 0, 0, not_a_send_day(iso_day))
        if hours is None
        else (client_id, campaign, iso_day, *hours, None)
        for iso_day, hours in enumerate(calendar.hours, start=1)
    ]
    closed = [(client_id, campaign, day, reason) for day, reason in sorted(calendar.closed.items())]
    return windows, closed


def client_window(deployment: Deployment, client_id: str, iso_day: int) -> tuple[int, int]:
    """The client's own sending hours on a day: herald.yaml's safe window (or the whole day
    under ``legal_minimum``, leaving only the law), narrowed by its business hours."""
    own = deployment.clients[client_id].config.send_window
    start, end = (
        (0, 24 * 60) if own.policy == "legal_minimum" else deployment.herald.defaults.send_window.minutes(iso_day)
    )
    if own.business_hours is not None:
        hours_start, hours_end = own.business_hours.minutes(iso_day)
        start, end = max(start, hours_start), min(end, hours_end)
    return start, end


# FCC healthcare exemption (47 CFR 64.1200(a)(9)(iv)): at most one reminder a day, three a week
HEALTHCARE_CAPS = ((24, 1, "1 healthcare reminder per day"), (168, 3, "3 healthcare reminders per week"))


def frequency_cap_rows(deployment: Deployment) -> list[tuple]:
    marketing = deployment.herald.defaults.frequency_caps.marketing_per_24h
    rows = []
    for client_id, client in deployment.clients.items():
        rows.append((client_id, "marketing", 24, marketing, f"{marketing} marketing messages per 24 h"))
        compliance = getattr(client.config, "compliance", None)
        if compliance is not None and getattr(compliance, "healthcare_reminders", False):
            rows += [(client_id, "transactional", hours, n, label) for hours, n, label in HEALTHCARE_CAPS]
    return rows


def sender_quota_rows(deployment: Deployment) -> list[tuple]:
    """Each client's ``senders.daily_limit`` per channel, with the sender it limits."""
    rows = []
    for client_id, client in deployment.clients.items():
        senders = client.config.senders
        for channel, sender in (("sms", senders.sms_from), ("email", senders.email_from)):
            limit = getattr(senders.daily_limit, channel)
            if limit is not None and sender:
                rows.append((client_id, channel, sender, limit))
    return rows


def variant_buckets(weights: list[float]) -> list[tuple[int, int]]:
    """Split 0..VARIANT_BUCKETS among variants in proportion to their weights, in order."""
    total = sum(weights)
    edges, running = [0], 0.0
    for weight in weights:
        running += weight
        edges.append(round(VARIANT_BUCKETS * running / total))
    return list(itertools.pairwise(edges))


def campaign_rows(
    deployment: Deployment, now, winners: dict[tuple[str, str, str], str] | None = None
) -> dict[str, list[tuple]]:
    """Campaigns, their steps (the journey graph; a message's timing flattened to an anchor and
    minutes), branch paths and A/B variants. A step whose campaign applies its A/B winner (and has
    one) gives the winner every bucket."""
    winners = winners or {}
    campaigns, steps, variants, branches = [], [], [], []
    for client_id, client in deployment.clients.items():
        for name, campaign in client.campaigns.items():
            t = campaign.trigger
            enrollment, exits = campaign.enrollment, campaign.exit_on
            campaigns.append(
                (
                    client_id, name, campaign.message_type, campaign.category, campaign.status,
                    campaign.audience, t.type, getattr(t, "cron", None), getattr(t, "packet_type", None),
                    getattr(t, "to_stage", None), getattr(t, "funnel_type", None), campaign.daily_limit,
                    campaign.sms_consent, now,
                    enrollment.rule if enrollment else None, enrollment.cooldown_minutes if enrollment else None,
                    campaign.config_version, campaign.steps[0].name, bool(exits.replied), exits.opted_out,
                    exits.left_audience, exits.confirmed, exits.goal, exits.date_passed,
                )
            )  # fmt: skip
            version = campaign.config_version  # each step, branch and variant row is of this version
            for position, step in enumerate(campaign.steps, start=1):
                following = campaign.following(position - 1)
                steps.append((client_id, name, step.name, position, *_step_columns(step, following), version))
                if isinstance(step, BranchStep):
                    branches += [(*row, version) for row in _branch_rows(client_id, name, step)]
                if not isinstance(step, Step):
                    continue
                winner = winners.get((client_id, name, step.name)) if campaign.ab_test.apply_winner else None
                if winner in {v.name for v in step.variants}:
                    weights = [1.0 if v.name == winner else 0.0 for v in step.variants]
                else:
                    weights = [v.weight for v in step.variants]
                buckets = variant_buckets(weights)
                for variant, (low, high) in zip(step.variants, buckets, strict=False):
                    variants.append(
                        (
                            client_id, name, step.name, variant.name, variant.weight, low, high,
                            variant.template_for("sms") if "sms" in step.channels else None,
                            variant.template_for("email") if "email" in step.channels else None,
                            step.subject_for(variant), version,
                        )
                    )  # fmt: skip
    return {
        "campaigns": campaigns,
        "campaign_steps": steps,
        "campaign_variants": variants,
        "campaign_branches": branches,
    }


def _minutes(duration) -> int:
    return int(duration.total_seconds() // 60)


def _step_columns(step: Any, following: str | None) -> tuple:
    """The columns of ``campaign_steps`` after (client, campaign, step, position)."""
    channel = fallback = if_missing = anchor = event = detail = None
    anchor_minutes, wait_minutes, until_minute, until_day, timeout = 0, None, None, None, None
    next_step = yes = no = exit_reason = None
    if isinstance(step, Step):
        choices = step.channel_choices
        channel = choices[0].channel
        if len(choices) > 1:
            fallback, if_missing = choices[1].channel, choices[1].if_missing
        if step.offset is not None:
            anchor, anchor_minutes = step.offset.field, _minutes(step.offset.delta)
        elif step.delay_duration is not None:
            anchor_minutes = _minutes(step.delay_duration)
        next_step = step.next or following
    elif isinstance(step, WaitStep):
        wait = step.wait
        if wait.duration is not None:
            wait_minutes = _minutes(parse_duration(wait.duration))
        elif wait.until is not None:
            until_day, until_minute = parse_time_of_day(wait.until)
        elif wait.offset is not None:
            anchor, anchor_minutes = wait.offset.field, _minutes(wait.offset.delta)
        next_step = step.next or following
    elif isinstance(step, WaitForStep):
        event = step.wait_for.event
        detail = step.wait_for.stage or step.wait_for.segment
        timeout = _minutes(step.wait_for.timeout_duration)
        yes, no = step.yes or following, step.no or following
    elif isinstance(step, ExitStep):
        exit_reason = step.exit
    return (
        channel, fallback, if_missing, anchor, anchor_minutes, step.kind, next_step, wait_minutes, until_minute,
        until_day, event, detail, timeout, yes, no, exit_reason,
    )  # fmt: skip


def _branch_rows(client_id: str, campaign: str, step: BranchStep) -> list[tuple]:
    buckets = variant_buckets([p.weight or 0.0 for p in step.branch]) if step.is_split else []
    rows = []
    for position, path in enumerate(step.branch, start=1):
        low, high = buckets[position - 1] if buckets else (None, None)
        condition = compile_condition(path.condition) if path.condition is not None else None
        rows.append(
            (
                client_id, campaign, step.name, position, path.name, path.test,
                condition.sql if condition else None, path.condition, path.segment, low, high, path.goto,
            )
        )  # fmt: skip
    return rows


# The journey's own rows, one set per campaign version: a version's rows stay while enrollments
# that entered under it are still going (they walk the version they started with).
VERSIONED_TABLES = ("campaign_steps", "campaign_variants", "campaign_branches")
LIVE_STATUSES = ("active", "waiting")


def load_config_tables(session: Session, deployment: Deployment, actor: str = "config_load") -> dict[str, int]:
    """Replace the configuration tables with ``deployment`` (in the session's transaction),
    with the A/B winners campaigns apply (``herald_ops.ab_winners``). The steps, branches and
    variants of a campaign's older versions stay while enrollments that entered under them are
    active or waiting; a campaign whose version changed is audited and listed in
    ``herald_ops.campaign_versions``."""
    _, found = session.query(f"select client_id, campaign, step, variant from {OPS_SCHEMA}.ab_winners")
    winners = {(c, name, step): variant for c, name, step, variant in found}
    _, found = session.query(f"select client_id, campaign, config_version, loaded_at from {OPS_SCHEMA}.campaigns")
    stored = {(c, name): (version, loaded_at) for c, name, version, loaded_at in found}
    counts: dict[str, int] = {}
    live = (
        f"exists (select 1 from {OPS_SCHEMA}.enrollments as e where e.client_id = t.client_id "
        "and e.campaign = t.campaign and e.config_version = t.config_version "
        f"and e.status in ({', '.join(repr(s) for s in LIVE_STATUSES)}))"
    )
    current = (
        f"exists (select 1 from {OPS_SCHEMA}.campaigns as c where c.client_id = t.client_id "
        "and c.campaign = t.campaign and c.config_version = t.config_version)"
    )
    rows_by_table = config_rows(deployment, winners)
    for table, rows in rows_by_table.items():  # campaigns first: `current` reads the new versions
        qualified = f"{OPS_SCHEMA}.{table}"
        if table in VERSIONED_TABLES:
            session.execute(f"delete from {qualified} as t where {current} or not {live}")
        else:
            session.execute(f"delete from {qualified}")
        counts[table] = session.insert_rows(qualified, column_names(qualified), rows)
    _record_versions(session, stored, rows_by_table["campaigns"], actor)
    return counts


def _record_versions(
    session: Session, stored: dict[tuple[str, str], tuple], campaigns: list[tuple], actor: str
) -> None:
    """``herald_ops.campaign_versions`` after a load, and an audit entry per campaign whose
    version changed (with how many running enrollments keep the old one)."""
    table = f"{OPS_SCHEMA}.campaign_versions"
    columns = column_names(f"{OPS_SCHEMA}.campaigns")
    version_at, loaded_at = columns.index("config_version"), columns.index("loaded_at")
    _, found = session.query(f"select client_id, campaign, config_version from {table}")
    known = set(found)
    for row in campaigns:
        client_id, name, version, now = row[0], row[1], row[version_at], row[loaded_at]
        before, before_loaded_at = stored.get((client_id, name), (None, None))
        if before is not None and (client_id, name, before) not in known:
            # a version loaded before Herald listed versions: its last load is the earliest it knows
            session.insert_rows(table, column_names(table), [(client_id, name, before, before_loaded_at, None)])
            known.add((client_id, name, before))
        if (client_id, name, version) in known:
            session.execute(
                f"update {table} set retired_at = null where client_id = ? and campaign = ? and config_version = ?",
                [client_id, name, version],
            )
        else:
            session.insert_rows(table, column_names(table), [(client_id, name, version, now, None)])
        session.execute(
            f"update {table} set retired_at = ? "
            "where client_id = ? and campaign = ? and config_version <> ? and retired_at is null",
            [now, client_id, name, version],
        )
        if before is None or before == version:
            continue
        keeping = session.scalar(
            f"select count(*) from {OPS_SCHEMA}.enrollments where client_id = ? and campaign = ? "
            f"and config_version = ? and status in ({', '.join('?' * len(LIVE_STATUSES))})",
            [client_id, name, before, *LIVE_STATUSES],
        )
        audit(
            session, actor, "config_change", client_id, None, f"campaign {name}",
            f"campaign {name} changed from version {before} to {version}; "
            f"{keeping} running enrollment{' keeps' if keeping == 1 else 's keep'} {before}",
            {"campaign": name, "from_version": before, "to_version": version, "enrollments_keeping": keeping},
            now=now,
        )  # fmt: skip
    # a campaign no longer in the configuration: none of its versions is current
    loaded = {(row[0], row[1]) for row in campaigns}
    for client_id, name in set(stored) - loaded:
        session.execute(
            f"update {table} set retired_at = ? where client_id = ? and campaign = ? and retired_at is null",
            [utcnow(), client_id, name],
        )
