"""``herald campaign preview``: render a campaign for its first recipients, exactly as the send
would (same channel rule, same A/B bucket, same variables, same renderer), writing nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from herald.campaigns.enqueue import MessageBuilder
from herald.campaigns.links import Links
from herald.config.campaigns import CampaignConfig, Step
from herald.config.models import Deployment
from herald.delivery.outbox import OutboxMessage
from herald.warehouse.config_tables import VARIANT_BUCKETS, variant_buckets
from herald.warehouse.connection import Warehouse


def variant_bucket(contact_id: str, campaign: str, step: str) -> int:
    """The contact's A/B bucket; the same formula as dbt's ``hash_bucket`` macro."""
    digest = hashlib.md5(f"{contact_id}|{campaign}|{step}".encode()).hexdigest()
    return int(digest[:8], 16) % VARIANT_BUCKETS


def pick_variant(step: Step, bucket: int, winner: str | None = None) -> str:
    """The variant whose bucket range holds ``bucket`` — or the applied A/B winner."""
    if winner is not None and winner in {v.name for v in step.variants}:
        return winner
    for variant, (low, high) in zip(step.variants, variant_buckets([v.weight for v in step.variants]), strict=False):
        if low <= bucket < high:
            return variant.name
    return step.variants[-1].name


def route(step: Step, phone: str | None, email: str | None) -> tuple[str | None, str | None]:
    """(channel, address) the step's channel rule picks, or (None, None)."""
    addresses = {"sms": phone, "email": email, "phone": phone}
    for choice in step.channel_choices:
        if choice.if_missing is not None and addresses.get(choice.if_missing):
            continue
        if addresses[choice.channel]:
            return choice.channel, addresses[choice.channel]
    return None, None


@dataclass(frozen=True)
class PreviewMessage:
    contact_id: str
    step: str
    message: OutboxMessage | None  # None: the contact is left out of this step
    reason: str | None = None


def preview_campaign(
    warehouse: Warehouse,
    deployment: Deployment,
    config_dir: Path,
    links: Links,
    client_id: str,
    campaign: CampaignConfig,
    limit: int,
    now: datetime,
) -> tuple[int, list[PreviewMessage]]:
    """(audience size, the first ``limit`` recipients' messages for every step)."""
    with warehouse.session(read_only=True) as s:
        size = s.scalar(
            "select count(*) from marts.segment_members where client_id = ? and segment_name = ?",
            [client_id, campaign.audience],
        )
        _, rows = s.query(
            """
            select m.contact_id,
                case when c.is_phone_valid then c.phone_e164 end,
                case when c.is_email_valid then c.email end,
                v.variables
            from marts.segment_members m
            join marts.contacts c on c.contact_id = m.contact_id
            left join marts.contact_template_variables v on v.contact_id = m.contact_id
            where m.client_id = ? and m.segment_name = ?
            order by m.contact_id
            limit ?
            """,
            [client_id, campaign.audience, limit],
        )
        winners: dict[str, str] = {}
        if campaign.ab_test.apply_winner:
            _, found = s.query(
                "select step, variant from herald_ops.ab_winners where client_id = ? and campaign = ?",
                [client_id, campaign.name],
            )
            winners = dict(found)
    builder = MessageBuilder(deployment, config_dir, links)
    previews: list[PreviewMessage] = []
    for contact_id, phone, email, variables in rows:
        for step in campaign.message_steps:
            channel, address = route(step, phone, email)
            if channel is None:
                previews.append(
                    PreviewMessage(contact_id, step.name, None, "no address for " + " or ".join(step.channels))
                )
                continue
            variant_name = pick_variant(
                step, variant_bucket(contact_id, campaign.name, step.name), winners.get(step.name)
            )
            variant = next(v for v in step.variants if v.name == variant_name)
            row = {
                "message_key": "preview", "client_id": client_id, "campaign": campaign.name, "step": step.name,
                "occurrence": "preview", "contact_id": contact_id, "message_type": campaign.message_type,
                "category": campaign.category, "channel": channel, "to_address": address, "variant": variant_name,
                "template": variant.template_for(channel), "subject_template": step.subject_for(variant),
                "send_after": now, "variables": variables,
            }  # fmt: skip
            previews.append(PreviewMessage(contact_id, step.name, builder.build(row)))
    return int(size or 0), previews
