"""Campaign config: the examples load and render; each mistake is one problem naming file and field."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from herald.config import check_config, load_deployment
from herald.config.campaigns import (
    CampaignConfig,
    ChannelChoice,
    FunnelEventTrigger,
    PacketArrivalTrigger,
    ScheduleTrigger,
    SegmentEntryTrigger,
    describe_trigger,
    next_occurrences,
    parse_channel_rule,
    parse_duration,
)
from herald.config.segments import SegmentConfig
from herald.config.summary import deployment_summary
from herald.messages.render import render_email, render_sms

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO_ROOT / "config"
DENTAL = "config/clients/bright_smiles_dental/campaigns/appointment_reminder.yaml"
REALTY = "config/clients/lakeside_realty/campaigns/new_listings.yaml"
COLLEGE = "config/clients/northfield_college/campaigns/admitted_nurture.yaml"

SAMPLE_VARIABLES = {
    "first_name": "Ana",
    "client_name": "Bright Smiles Dental",
    "appointment_at": datetime(2026, 11, 24, 14, 30, tzinfo=ZoneInfo("America/Chicago")),
    "property_address": "12 Lakeview Dr",
    "property_city": "Denver",
    "list_price": 545000,
    "program": "Nursing (BSN)",
}


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, target)
    return target


def test_example_campaigns_load() -> None:
    deployment = load_deployment(EXAMPLE_CONFIG)

    assert {cid: sorted(c.campaigns) for cid, c in deployment.clients.items()} == {
        "bright_smiles_dental": ["appointment_reminder"],
        "lakeside_realty": ["new_listings"],
        "northfield_college": ["admitted_nurture"],
        "summit_roofing": ["roof_check_offer"],
    }
    dental = deployment.clients["bright_smiles_dental"].campaigns["appointment_reminder"]
    assert (dental.message_type, dental.category, dental.status, dental.daily_limit) == (
        "appointment_reminder",
        "transactional",
        "active",
        125,
    )
    assert dental.trigger == PacketArrivalTrigger(type="packet_arrival", packet_type="appointments")
    # one enrollment per appointment: reminder 48h before, a day to confirm, else one follow-up
    assert dental.enrollment is not None and dental.enrollment.rule == "per_appointment"
    assert [s.kind for s in dental.steps] == ["message", "wait_for", "exit", "message"]
    reminder, wait, _, follow_up = dental.steps
    assert reminder.channels == ("sms",)
    assert reminder.offset is not None and reminder.offset.delta == -timedelta(hours=48)
    assert [(v.name, v.weight) for v in reminder.variants] == [("friendly", 50), ("brief", 50)]
    assert (wait.wait_for.event, wait.yes, wait.no) == ("confirmed", "confirmed", "follow_up")
    assert follow_up.channels == ("sms",) and follow_up.name == dental.steps[-1].name

    realty = deployment.clients["lakeside_realty"].campaigns["new_listings"]
    assert realty.category == "marketing"
    assert realty.trigger == ScheduleTrigger(type="schedule", cron="30 9 * * 1-5")
    assert realty.steps[0].channel_choices == (ChannelChoice("sms"), ChannelChoice("email", "phone"))

    college = deployment.clients["northfield_college"].campaigns["admitted_nurture"]
    assert [(s.name, s.channels, s.delay_duration) for s in college.message_steps] == [
        ("welcome", ("email",), None),
        ("follow_up", ("email",), None),
        ("application_link", ("email",), None),
        ("nursing_note", ("email",), timedelta(days=1)),
    ]
    assert [s.kind for s in college.steps] == ["message", "wait_for", "message", "message", "branch", "message"]
    assert college.enrollment is not None and college.enrollment.rule == "once"
    assert college.exit_on.goal == "enrolled" and college.exit_on.replied

    # the contractor: seed-style, one marketing text per homeowner of an import, 125 a day, A/B 50/50
    roofing = deployment.clients["summit_roofing"]
    offer = roofing.campaigns["roof_check_offer"]
    assert (offer.category, offer.sms_consent, offer.daily_limit) == ("marketing", "express_written", 125)
    assert offer.trigger == PacketArrivalTrigger(type="packet_arrival", packet_type="homeowners")
    assert offer.enrollment is not None and offer.enrollment.rule == "once"
    [text] = offer.steps
    assert text.channels == ("sms",) and [(v.name, v.weight) for v in text.variants] == [
        ("free_inspection", 50),
        ("storm_season", 50),
    ]
    # the sender's quota, shared by every campaign texting from the number
    assert (roofing.config.senders.daily_limit.sms, roofing.config.senders.daily_limit.email) == (250, None)
    assert roofing.load_maps["homeowners"].column_for("sms_consent") == "SMS Opt-In"


def test_every_example_template_renders_with_sample_variables() -> None:
    deployment = load_deployment(EXAMPLE_CONFIG)
    rendered = 0
    for client_id, client in deployment.clients.items():
        templates = EXAMPLE_CONFIG / "clients" / client_id / "templates"
        for campaign in client.campaigns.values():
            for step in campaign.message_steps:
                for variant in step.variants:
                    for channel in step.channels:
                        name = variant.template_for(channel)
                        assert name is not None
                        source = (templates / name).read_text(encoding="utf-8")
                        if channel == "sms":
                            sms = render_sms(name, source, SAMPLE_VARIABLES, "c-1")
                            assert "{{" not in sms.body and "STOP" in sms.body
                            if campaign.category == "transactional":  # FCC healthcare exemption
                                assert sms.characters <= 160 and sms.segments == 1, sms.body
                        else:
                            subject = step.subject_for(variant)
                            assert subject is not None
                            email = render_email(
                                name,
                                subject,
                                source,
                                SAMPLE_VARIABLES,
                                "c-1",
                                unsubscribe_url="https://herald.example/u/t",
                                one_click_url="https://herald.example/u/t/one-click",
                            )
                            assert "Ana" in email.text and "https://herald.example/u/t" in email.text
                            assert "{{" not in email.subject
                        rendered += 1
    # 3 dental SMS (2 reminders, the follow-up) + realty SMS and email + 5 college emails + 2 contractor SMS
    assert rendered == 12


def test_dental_sms_keeps_phi_out() -> None:
    for path in (EXAMPLE_CONFIG / "clients" / "bright_smiles_dental" / "templates").glob("*.sms.j2"):
        text = path.read_text(encoding="utf-8")
        for phi in ("appointment_type", "provider_name", "balance_due", "insurance"):
            assert phi not in text, path.name


# (name, file, old text, new text, field, message fragment)
BREAKS = [
    (
        "bad cron",
        REALTY,
        'cron: "30 9 * * 1-5"',
        'cron: "30 25 * * 1-5"',
        "trigger.cron",
        "is not a valid cron expression",
    ),
    (
        "unknown segment",
        DENTAL,
        "audience: upcoming_appointments",
        "audience: upcoming",
        "audience",
        "no segment 'upcoming'",
    ),
    (
        "unknown packet type",
        DENTAL,
        "packet_type: appointments",
        "packet_type: appointment",
        "trigger.packet_type",
        "no load map 'appointment' for this client (load maps: appointments)",
    ),
    (
        "missing template file",
        DENTAL,
        "template: appointment_reminder_brief.sms.j2",
        "template: appointment_reminder_short.sms.j2",
        "steps.0.variants.1.template",
        "template file templates/appointment_reminder_short.sms.j2 does not exist",
    ),
    (
        "missing template for one channel",
        REALTY,
        "email: new_listing.mjml.j2",
        "email: new_listings.mjml.j2",
        "steps.0.variants.0.template.email",
        "does not exist",
    ),
    (
        "sms template with an email suffix",
        DENTAL,
        "template: appointment_reminder_brief.sms.j2",
        "template: appointment_reminder_brief.mjml.j2",
        "steps.0.variants.1.template",
        "must end in .sms.j2 or .txt.j2",
    ),
    (
        "bad rule text",
        REALTY,
        'rule: "sms; email if phone is missing"',
        'rule: "sms; email when phone is absent"',
        "steps.0.rule",
        "cannot read 'email when phone is absent'",
    ),
    ("bad duration", COLLEGE, "delay: 1d", "delay: 1 day", "steps.5.delay", "'1 day' is not a duration"),
    (
        "offset on a non-date field",
        DENTAL,
        "field: appointment_at",
        "field: first_name",
        "steps.0.offset.field",
        "'first_name' is a string field; an offset needs a date or timestamp",
    ),
    (
        "offset on an unknown attribute",
        REALTY,
        "  - name: announcement\n",
        "  - name: announcement\n    offset: {field: recall_due_on, before: 1d}\n",
        "steps.0.offset.field",
        "'recall_due_on' is neither a date/timestamp field nor a date/timestamp attribute",
    ),
    ("zero weight", DENTAL, "weight: 50}\n", "weight: 0}\n", "steps.0.variants.0.weight", "weight must be positive"),
    (
        "unknown message type",
        COLLEGE,
        "message_type: lead_nurture",
        "message_type: nurture",
        "message_type",
        "Input should be 'appointment_reminder'",
    ),
    ("extra key", DENTAL, "daily_limit: 125", "daily_limt: 125", "daily_limt", "unknown key (check its spelling)"),
    (
        "extra key in a trigger",
        REALTY,
        "  type: schedule\n",
        "  type: schedule\n  packet_type: x\n",
        "trigger.packet_type",
        "unknown key",
    ),
    ("zero daily limit", DENTAL, "daily_limit: 125", "daily_limit: 0", "daily_limit", "greater than 0"),
    (
        "unknown trigger type",
        REALTY,
        "type: schedule",
        "type: cron",
        "trigger",
        "set `type` to schedule, segment_entry, packet_arrival or funnel_event",
    ),
    ("unknown status", REALTY, "status: active", "status: live", "status", "Input should be 'active' or 'paused'"),
    (
        "wait_for without a timeout",
        COLLEGE,
        "wait_for: {event: clicked, timeout: 3d}",
        "wait_for: {event: clicked}",
        "steps.1.wait_for.timeout",
        "a wait_for needs a timeout",
    ),
    (
        "first step with a delay",
        DENTAL,
        "offset: {field: appointment_at, before: 48h}",
        "delay: 1h",
        "steps.0.delay",
        "first step",
    ),
    (
        "per appointment, timed from another date",
        DENTAL,
        "offset: {field: appointment_at, before: 48h}",
        "offset: {field: date_of_birth, before: 48h}",
        "steps.0.offset.field",
        "enrollment: per_appointment times its steps from the appointment; use field appointment_at",
    ),
    (
        "email step without subject",
        COLLEGE,
        '    subject: "Any questions before you enroll, {{ first_name }}?"\n',
        "",
        "steps.2.variants.0.subject",
        "an email step needs a subject",
    ),
    (
        "marketing sent as transactional",
        REALTY,
        "message_type: home_for_sale",
        "message_type: home_for_sale\ncategory: transactional",
        "category",
        "cannot be sent as transactional",
    ),
]


@pytest.mark.parametrize("name, file, old, new, field, message", BREAKS, ids=[b[0] for b in BREAKS])
def test_each_broken_campaign_is_one_problem(
    config_copy: Path, name: str, file: str, old: str, new: str, field: str, message: str
) -> None:
    path = config_copy.parent / file
    text = path.read_text(encoding="utf-8")
    assert old in text, name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")

    deployment, problems = check_config(config_copy)

    assert deployment is None
    assert [(p.file, p.field) for p in problems] == [(file, field)], [str(p) for p in problems]
    assert message in problems[0].message
    assert str(problems[0]).startswith(f"{file}: {field}: ")


def test_an_sms_step_needs_the_clients_sms_sender(config_copy: Path) -> None:
    path = config_copy / "clients" / "lakeside_realty" / "client.yaml"
    path.write_text(path.read_text().replace('  sms_from: "+17205550142"\n', ""))

    _, problems = check_config(config_copy)

    assert [str(p) for p in problems] == [f"{REALTY}: steps.0: sends sms but client.yaml has no senders.sms_from"]


def test_a_broken_load_map_is_not_reported_again_by_its_campaign(config_copy: Path) -> None:
    path = config_copy / "clients" / "bright_smiles_dental" / "load_maps" / "appointments.yaml"
    path.write_text(path.read_text().replace("entity: contacts", "entity: people"))

    _, problems = check_config(config_copy)

    assert [p.file for p in problems] == ["config/clients/bright_smiles_dental/load_maps/appointments.yaml"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("24h", timedelta(hours=24)),
        ("2d", timedelta(days=2)),
        ("30m", timedelta(minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 3H ", timedelta(hours=3)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("3 days", "is not a duration"),
        ("24", "is not a duration"),
        ("-2h", "is not a duration"),
        ("1w", "is not a duration"),
        ("", "is not a duration"),
        ("0h", "is zero"),
    ],
)
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sms", (ChannelChoice("sms"),)),
        ("email", (ChannelChoice("email"),)),
        ("sms; email if phone is missing", (ChannelChoice("sms"), ChannelChoice("email", "phone"))),
        ("Email ;  SMS if email is missing", (ChannelChoice("email"), ChannelChoice("sms", "email"))),
    ],
)
def test_parse_channel_rule(text: str, expected: tuple[ChannelChoice, ...]) -> None:
    assert parse_channel_rule(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty channel rule"),
        ("fax", "unknown channel 'fax'"),
        ("sms; email when phone is absent", "cannot read 'email when phone is absent'"),
        ("sms; email if address is missing", "unknown condition 'address is missing'"),
        ("sms if email is missing", "must start with a channel to try first"),
        ("sms; email", "needs a condition"),
        ("sms; email if email is missing", "can never send"),
        ("email; sms if phone is missing", "can never send"),
        ("sms; sms if email is missing", "no earlier channel uses the email"),
        ("sms; sms if phone is missing", "can never send"),
    ],
)
def test_parse_channel_rule_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_channel_rule(text)


@pytest.mark.parametrize(
    "trigger, expected",
    [
        (ScheduleTrigger(type="schedule", cron="30 9 * * 1-5"), "At 09:30 AM, Monday through Friday (America/Chicago)"),
        (ScheduleTrigger(type="schedule", cron="0 10 * * *"), "At 10:00 AM (America/Chicago)"),
        (
            PacketArrivalTrigger(type="packet_arrival", packet_type="appointments"),
            "When a packet of type appointments arrives",
        ),
    ],
)
def test_describe_trigger(trigger: ScheduleTrigger | PacketArrivalTrigger, expected: str) -> None:
    assert describe_trigger(trigger, "America/Chicago") == expected


def test_next_occurrences_fire_once_per_local_day_across_fall_back() -> None:
    tz = ZoneInfo("America/Chicago")  # 1 Nov 2026: 02:00 CDT → 01:00 CST, 01:30 happens twice

    runs = next_occurrences("30 1 * * *", "America/Chicago", datetime(2026, 10, 30, 12, 0, tzinfo=tz), 4)

    assert [r.replace(tzinfo=None) for r in runs] == [
        datetime(2026, 10, 31, 1, 30),
        datetime(2026, 11, 1, 1, 30),
        datetime(2026, 11, 2, 1, 30),
        datetime(2026, 11, 3, 1, 30),
    ]
    assert [r.utcoffset() for r in runs] == [
        timedelta(hours=-5),
        timedelta(hours=-5),
        timedelta(hours=-6),
        timedelta(hours=-6),
    ]


def test_next_occurrences_reads_a_naive_start_as_local_time() -> None:
    runs = next_occurrences("30 9 * * 1-5", "America/Denver", datetime(2026, 11, 20, 10, 0), 2)  # a Friday

    assert [r.isoformat() for r in runs] == ["2026-11-23T09:30:00-07:00", "2026-11-24T09:30:00-07:00"]


def test_summary_has_one_line_per_campaign() -> None:
    lines = deployment_summary(load_deployment(EXAMPLE_CONFIG))

    assert lines == [
        "bright_smiles_dental/appointment_reminder | active | appointment_reminder (transactional)"
        " | audience upcoming_appointments | When a packet of type appointments arrives | limit 125/day"
        " | enrolls per appointment | exits on opted out, confirmed"
        " | steps: 1) reminder: sms, 48h before appointment_at, variants friendly 50% / brief 50%;"
        " 2) wait_for_confirmation: wait up to 24h for confirmed; 3) confirmed: exit: confirmed;"
        " 4) follow_up: sms, when reached, variants only 100%",
        "lakeside_realty/new_listings | active | home_for_sale (marketing) | audience vip_buyers"
        " | At 09:30 AM, Monday through Friday (America/Denver) | enrolls every occurrence"
        " | exits on replied, opted out"
        ' | steps: 1) announcement: "sms; email if phone is missing", when triggered, variants standard 100%',
        "northfield_college/admitted_nurture | active | lead_nurture (marketing) | audience admitted_not_enrolled"
        " | At 10:00 AM (America/New_York) | enrolls once | exits on replied, opted out, goal stage enrolled"
        " | steps: 1) welcome: email, when triggered, variants program_focus 50% / campus_focus 50%;"
        " 2) wait_for_click: wait up to 3d for clicked;"
        " 3) follow_up: email, when reached, variants standard 100%;"
        " 4) application_link: email, when reached, variants standard 100%;"
        " 5) by_program: branch nursing / other_programs;"
        " 6) nursing_note: email, 1d after the previous step, variants standard 100%",
        "summit_roofing/roof_check_offer | active | announcement (marketing) | audience homeowners"
        " | When a packet of type homeowners arrives | limit 125/day | enrolls once | exits on replied, opted out"
        " | steps: 1) offer: sms, when triggered, variants free_inspection 50% / storm_season 50%",
    ]


def test_a_funnel_event_trigger_needs_a_funnel_events_load_map(config_copy: Path) -> None:
    funnel = "trigger:\n  type: funnel_event\n  to_stage: admitted\n  funnel_type: sales\n"
    for path in (config_copy.parent / COLLEGE, config_copy.parent / DENTAL):
        text = path.read_text(encoding="utf-8")
        start, end = text.index("trigger:"), text.index("steps:")
        path.write_text(text[:start] + funnel + text[end:], encoding="utf-8")

    _, problems = check_config(config_copy)

    assert [str(p) for p in problems] == [
        f"{DENTAL}: trigger.type: this client has no funnel_events load map, so no funnel events arrive"
    ]


def test_segment_entry_and_funnel_triggers_in_words() -> None:
    assert describe_trigger(SegmentEntryTrigger(type="segment_entry"), "UTC") == "When a contact enters the audience"
    assert (
        describe_trigger(FunnelEventTrigger(type="funnel_event", to_stage="admitted", funnel_type="sales"), "UTC")
        == "When a contact reaches stage 'admitted' of the sales funnel"
    )


def test_a_manual_list_packet_type_must_be_a_load_map_of_the_client(config_copy: Path) -> None:
    segment = config_copy / "clients" / "lakeside_realty" / "segments" / "vip_buyers.yaml"
    segment.write_text(segment.read_text() + "packet_type: segment_list\n")
    _, problems = check_config(config_copy)
    assert [str(p) for p in problems] == [
        "config/clients/lakeside_realty/segments/vip_buyers.yaml: packet_type: no load map 'segment_list' for this "
        "client (load maps: buyer_leads); add load_maps/segment_list.yaml"
    ]


def test_only_a_manual_segment_takes_a_packet_type() -> None:
    with pytest.raises(ValueError, match="a sql segment takes no `packet_type`"):
        SegmentConfig(name="vip", type="sql", sql="select 1", packet_type="segment_list")
    with pytest.raises(ValueError, match="a manual segment needs `members`, a list `packet_type`, or both"):
        SegmentConfig(name="vip", type="manual")
    assert SegmentConfig(name="vip", type="manual", packet_type="segment_list").members == []


# -- journeys: the graph and its steps, each mistake one problem naming the step and the fix ---------

JOURNEY_BREAKS = [
    # name, old, new, field, message
    (
        "unknown step kind",
        "    wait_for: {event: clicked, timeout: 3d}",
        "    pause: 3d",
        "steps.1",
        "a step has exactly one of `variants` (a message), `wait`, `wait_for`, `branch` or `exit`",
    ),
    (
        "unknown target",
        "    yes: application_link",
        "    yes: apply_now",
        "steps.1.yes",
        "no step 'apply_now' in this campaign",
    ),
    (
        "unreachable step",
        "    yes: application_link",
        "    yes: follow_up",
        "steps.3",
        "step 'application_link' is never reached",
    ),
    (
        "a cycle",
        "    next: by_program\n  - name: application_link",
        "    next: wait_for_click\n  - name: application_link",
        "steps.2",
        "the journey loops (wait_for_click -> follow_up -> wait_for_click)",
    ),
    (
        "not an expression",
        "if: 'program == \"B.S. Nursing\"'",
        "if: 'import os'",
        "steps.4.branch.0.if",
        "not an expression",
    ),
    (
        "a call in a condition",
        "if: 'program == \"B.S. Nursing\"'",
        "if: 'program.upper() == \"NURSING\"'",
        "steps.4.branch.0.if",
        "the left side of a comparison must be a field or attribute name",
    ),
    ("bad enrollment", "enrollment: once ", "enrollment: {once_per: soon} ", "enrollment", "'soon' is not a duration"),
]


@pytest.mark.parametrize("name, old, new, field, message", JOURNEY_BREAKS, ids=[b[0] for b in JOURNEY_BREAKS])
def test_each_broken_journey_is_one_problem(
    config_copy: Path, name: str, old: str, new: str, field: str, message: str
) -> None:
    path = config_copy.parent / COLLEGE
    text = path.read_text(encoding="utf-8")
    assert old in text, name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")

    deployment, problems = check_config(config_copy)

    assert deployment is None
    assert [(p.file, p.field) for p in problems] == [(COLLEGE, field)], [str(p) for p in problems]
    assert message in problems[0].message


def test_a_message_right_after_a_message_needs_its_own_timing() -> None:
    steps = [
        {"name": "first", "channel": "email", "subject": "Hi", "variants": [{"name": "only", "template": "a.mjml.j2"}]},
        {
            "name": "second",
            "channel": "email",
            "subject": "Hi",
            "variants": [{"name": "only", "template": "b.mjml.j2"}],
        },
    ]
    campaign = {"name": "drip", "message_type": "lead_nurture", "audience": "everyone",
                "trigger": {"type": "schedule", "cron": "0 9 * * *"}}  # fmt: skip
    with pytest.raises(ValueError, match="give exactly one of `delay`"):
        CampaignConfig.model_validate({**campaign, "steps": steps})
    # after a wait_for the contact arrives when the event or the timeout says: no delay needed
    waited = [steps[0], {"name": "wait", "wait_for": {"event": "opened", "timeout": "1d"}}, steps[1]]
    journey = CampaignConfig.model_validate({**campaign, "steps": waited})
    assert journey.enrollment is not None and journey.enrollment.rule == "once"
    assert journey.edges() == [("first", "next", "wait"), ("wait", "yes", "second"), ("wait", "no", "second"),
                               ("second", "next", None)]  # fmt: skip
