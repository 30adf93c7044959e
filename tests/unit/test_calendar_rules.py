"""CAN-SPAM footers and send calendars in configuration: the postal address a marketing email
client must give, the warning on a marketing template without an unsubscribe link, send_days,
closed days and holiday calendars (each bad value an error naming file, key and value), what a
campaign's own window replaces, and the Python twin of the plan's window deferring past them."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from herald.compliance.calendars import calendar_for
from herald.compliance.send_window import next_allowed_moment
from herald.config import check_config
from herald.config.loader import config_warnings
from herald.messages.render import Renderer
from tests.unit.test_config import EXAMPLE_CONFIG, run_config_check

REALTY = "config/clients/lakeside_realty"
COLLEGE = "config/clients/northfield_college"
DENTAL = "config/clients/bright_smiles_dental"
ADDRESS_LINE = 'postal_address: "455 Sherman St, Suite 200, Denver, CO 80203"'


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, target)
    return target


def edit(config: Path, relative: str, old: str, new: str) -> None:
    path = config.parent / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems_of(config: Path) -> list[str]:
    deployment, problems = check_config(config)
    assert deployment is None
    return [str(p) for p in problems]


def test_a_marketing_email_client_without_a_postal_address_fails_config_check(config_copy: Path) -> None:
    edit(config_copy, f"{REALTY}/client.yaml", ADDRESS_LINE, "")

    assert problems_of(config_copy) == [
        f"{REALTY}/client.yaml: postal_address: client 'lakeside_realty' sends marketing email (new_listings) "
        "but has no postal address: CAN-SPAM requires the sender's physical postal address in every marketing "
        "email; add postal_address: '<street, city, state ZIP>'"
    ]
    result = run_config_check(config_copy, None)
    assert result.returncode == 1
    assert (
        "lakeside_realty/client.yaml: postal_address: client 'lakeside_realty' sends marketing email" in result.stdout
    )


def test_a_client_sending_only_texts_or_transactional_mail_needs_no_address(config_copy: Path) -> None:
    # the clinic sends transactional reminders, the roofer marketing texts: neither sends marketing email
    edit(config_copy, f"{DENTAL}/client.yaml", 'postal_address: "1200 Congress Ave, Suite 300, Austin, TX 78701"', "")
    edit(
        config_copy,
        "config/clients/summit_roofing/client.yaml",
        'postal_address: "8800 W Colfax Ave, Lakewood, CO 80215"',
        "",
    )

    deployment, problems = check_config(config_copy)

    assert problems == [] and deployment is not None


def test_a_marketing_email_template_without_an_unsubscribe_link_warns(config_copy: Path) -> None:
    edit(
        config_copy,
        f"{REALTY}/templates/new_listing.mjml.j2",
        '<a href="{{ unsubscribe_url }}">{{ unsubscribe_text }}</a>',
        "Questions? Just reply.",
    )
    deployment, problems = check_config(config_copy)
    assert problems == [] and deployment is not None

    warnings = [str(w) for w in config_warnings(config_copy, deployment)]

    assert warnings == [
        f"{REALTY}/templates/new_listing.mjml.j2: (template): marketing email template of campaign 'new_listings' "
        "has no unsubscribe link ({{ unsubscribe_url }}); Herald adds one to the footer, put it where readers look"
    ]
    result = run_config_check(config_copy, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"warning: {warnings[0]}" in result.stdout.splitlines()
    assert config_warnings(EXAMPLE_CONFIG, check_config(EXAMPLE_CONFIG)[0]) == []  # the examples link it


def test_the_footer_names_the_sender_and_its_address_escaped_after_the_unsubscribe_link() -> None:
    mjml = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ first_name }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )

    email = Renderer().render_email(
        "t.mjml.j2", "Hello", mjml, {"first_name": "Ana"}, "c1",
        unsubscribe_url="https://h.example/u/tok", one_click_url="https://h.example/u/tok/one-click",
        sender_name="Smith & Sons", postal_address="1 Main St, Springfield, IL 62701",
    )  # fmt: skip

    assert "Smith &amp; Sons · 1 Main St, Springfield, IL 62701" in email.html
    assert email.html.index("https://h.example/u/tok") < email.html.index("1 Main St")
    assert "Smith & Sons · 1 Main St, Springfield, IL 62701" in email.text


CALENDAR_BREAKS = [
    # (what is written under send_window: in client.yaml, field, message)
    (
        "  send_days: [mon, funday]\n",
        "send_window.send_days",
        "'funday' is not a day of the week; use mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri",
    ),
    ("  send_days: mon-fry\n", "send_window.send_days", "'fry' (in 'mon-fry') is not a day of the week"),
    (
        "  closed_days: [2026-12-24, 2026-02-30]\n",
        "send_window.closed_days.1.date",
        "'2026-02-30' is not a date; write YYYY-MM-DD",
    ),
    (
        "  closed_days: [{date: 24/12/2026, reason: inventory}]\n",
        "send_window.closed_days.0.date",
        "'24/12/2026' is not a date; write YYYY-MM-DD",
    ),
    ("  holidays: {country: XX}\n", "send_window.holidays.country", "unknown holiday country 'XX'"),
    (
        "  holidays: {country: US, subdivision: ZZ}\n",
        "send_window.holidays.subdivision",
        "unknown subdivision 'ZZ' of US",
    ),
]


@pytest.mark.parametrize(
    ("written", "field", "message"), CALENDAR_BREAKS, ids=[b[1] + ":" + b[0].strip() for b in CALENDAR_BREAKS]
)
def test_an_invalid_calendar_is_an_error_naming_file_key_and_value(
    config_copy: Path, written: str, field: str, message: str
) -> None:
    edit(config_copy, f"{COLLEGE}/client.yaml", "contact:\n", f"send_window:\n{written}contact:\n")

    problems = problems_of(config_copy)

    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{COLLEGE}/client.yaml: {field}: {message}"), problems[0]


def test_a_campaign_calendar_error_names_the_campaign_file(config_copy: Path) -> None:
    edit(
        config_copy,
        f"{COLLEGE}/campaigns/admitted_nurture.yaml",
        "message_type: lead_nurture",
        "send_window: {send_days: weekdays}\nmessage_type: lead_nurture",
    )

    assert problems_of(config_copy) == [
        f"{COLLEGE}/campaigns/admitted_nurture.yaml: send_window.send_days: 'weekdays' is not a day of the week; "
        "use mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri"
    ]


def calendar_config(config_copy: Path) -> None:
    """The college: Monday to Friday, US-NY holidays, closed 2026-12-31; its nurture campaign
    also sends on Saturdays, keeps no holidays but its own closed day."""
    edit(
        config_copy,
        f"{COLLEGE}/client.yaml",
        "contact:\n",
        "send_window:\n  send_days: mon-fri\n  holidays: {country: US, subdivision: NY}\n"
        "  closed_days: [{date: 2026-12-31, reason: year-end closing}]\ncontact:\n",
    )
    edit(
        config_copy,
        f"{COLLEGE}/campaigns/admitted_nurture.yaml",
        "message_type: lead_nurture",
        "send_window:\n  send_days: [mon-fri, sat]\n  holidays: {country: CA}\n  closed_days: [2026-12-28]\n"
        "  business_hours: {start: '10:00', end: '16:00'}\nmessage_type: lead_nurture",
    )


def test_a_campaign_window_replaces_the_clients_key_by_key(config_copy: Path) -> None:
    calendar_config(config_copy)
    deployment, problems = check_config(config_copy)
    assert problems == [] and deployment is not None

    client = calendar_for(deployment, "northfield_college", year=2026)
    campaign = calendar_for(deployment, "northfield_college", "admitted_nurture", year=2026)

    assert client.hours == ((540, 1200),) * 5 + (None, None)
    assert campaign.hours == ((600, 960),) * 6 + (None,)
    assert client.closed_reason(date(2026, 12, 25)) == "2026-12-25 is a holiday (Christmas Day, US-NY)"
    assert client.closed_reason(date(2026, 12, 31)) == "2026-12-31 is a closed day (year-end closing)"
    assert client.closed_reason(date(2026, 12, 26)) == "2026-12-26 is not a send day (Saturday)"
    assert client.closed_reason(date(2026, 12, 28)) is None
    # the campaign keeps Canada's holidays instead, its own closed day, and sends on Saturdays
    assert campaign.closed_reason(date(2026, 7, 1)) == "2026-07-01 is a holiday (Canada Day, CA)"
    assert campaign.closed_reason(date(2026, 12, 26)) is None
    assert campaign.closed_reason(date(2026, 12, 28)) == "2026-12-28 is a closed day"
    assert campaign.closed_reason(date(2026, 12, 31)) is None
    assert campaign.closed_reason(date(2026, 11, 26)) is None  # US Thanksgiving is not Canada's

    from herald.warehouse.config_tables import config_rows

    rows = config_rows(deployment)
    windows = {r[2]: r[3:] for r in rows["campaign_send_windows"] if r[1] == "admitted_nurture"}
    assert windows[6] == (600, 960, None) and windows[7] == (0, 0, "not a send day (Sunday)")
    closed = {r[2]: r[3] for r in rows["closed_days"] if r[1] == "admitted_nurture"}
    assert closed[date(2026, 12, 28)] == "a closed day"
    assert closed[date(2026, 12, 25)] == "a holiday (Christmas Day, CA)"


def test_config_check_summarises_each_campaigns_calendar(config_copy: Path) -> None:
    from herald.config.summary import deployment_summary

    calendar_config(config_copy)
    deployment, _ = check_config(config_copy)
    assert deployment is not None

    (college,) = [line for line in deployment_summary(deployment) if line.startswith("northfield_college/")]

    assert " | sends mon, tue, wed, thu, fri, sat; holidays CA; 1 closed day | " in college


def test_the_python_twin_defers_past_holidays_and_closed_days(config_copy: Path) -> None:
    calendar_config(config_copy)
    deployment, _ = check_config(config_copy)
    assert deployment is not None
    client = calendar_for(deployment, "northfield_college", year=2026)
    zones = ("America/New_York",)

    # Thursday 2026-12-24 21:00 in New York: Christmas, then the weekend → Monday 28th 09:00 EST
    assert next_allowed_moment(datetime(2026, 12, 25, 2, 0), zones, "NY", client) == datetime(2026, 12, 28, 14, 0)
    # Wednesday 30th 21:00: the 31st is closed, New Year's Day a holiday → Monday 4 January 09:00
    assert next_allowed_moment(datetime(2026, 12, 31, 2, 0), zones, "NY", client) == datetime(2027, 1, 4, 14, 0)
