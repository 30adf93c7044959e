"""herald.config: the example config loads; every break is one problem naming its file and field."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from herald.config import ConfigError, LoadMap, Problem, check_config, load_deployment
from herald.config.models import AttributeColumn, FieldColumn

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO_ROOT / "config"
HERALD_CLI = Path(sys.executable).parent / "herald"

DENTAL = "config/clients/bright_smiles_dental"
REALTY = "config/clients/lakeside_realty"
COLLEGE = "config/clients/northfield_college"
ROOFING = "config/clients/summit_roofing"


@dataclass(frozen=True)
class Break:
    """One mistake a person could make: the edit, and the problem it must produce."""

    name: str
    file: str  # relative to the parent of the config dir, as problems report it
    old: str
    new: str
    field: str
    message: str  # a fragment of the problem's message

    def apply(self, parent: Path) -> None:
        path = parent / self.file
        text = path.read_text(encoding="utf-8")
        assert self.old in text, f"{self.name}: {self.old!r} not in {self.file}"
        path.write_text(text.replace(self.old, self.new, 1), encoding="utf-8")


# Each file carries breaks that pydantic can report together (field errors stop a model's
# cross-field checks, so those never share a file with a cross-field break).
BREAKS = [
    Break(
        "invalid YAML",
        "config/herald.yaml",
        "  default_region: US\n",
        "  default_region: US: CA\n",
        "line 4",
        "not valid YAML: mapping values are not allowed here",
    ),
    Break(
        "unknown key (typo) in client.yaml",
        f"{DENTAL}/client.yaml",
        "credit_alert_threshold_pct: 20",
        "credit_alert_treshold_pct: 20",
        "credit_alert_treshold_pct",
        "unknown key (check its spelling)",
    ),
    Break(
        "bad time zone",
        f"{REALTY}/client.yaml",
        "time_zone: America/Denver",
        "time_zone: America/Denvr",
        "time_zone",
        "unknown time zone 'America/Denvr'; use an IANA name such as 'America/Chicago'",
    ),
    Break(
        "client_id not matching its folder",
        f"{COLLEGE}/client.yaml",
        "client_id: northfield_college",
        "client_id: northfield_collage",
        "client_id",
        "'northfield_collage' must match its folder name 'northfield_college'",
    ),
    Break(
        "column mapped to an unknown field",
        f"{DENTAL}/load_maps/appointments.yaml",
        "Zip: postal_code",
        "Zip: zip_code",
        "columns.Zip",
        "column 'Zip' maps to unknown field 'zip_code'; known fields: appointment_at,",
    ),
    Break(
        "required field not mapped",
        f"{DENTAL}/load_maps/appointments.yaml",
        "required: [external_id, phone, appointment_at]",
        "required: [external_id, phone, appointment_at, time_zone]",
        "required",
        "required field 'time_zone' is not mapped by any column",
    ),
    Break(
        "two columns mapped to the same field",
        f"{COLLEGE}/load_maps/leads.yaml",
        "mobile: phone",
        "mobile: email",
        "columns.mobile",
        "columns 'email' and 'mobile' both map to 'email'",
    ),
    Break(
        "two-character delimiter",
        f"{REALTY}/load_maps/buyer_leads.yaml",
        'delimiter: ";"',
        'delimiter: ";;"',
        "format.delimiter",
        "must be exactly one character, got ';;'",
    ),
    Break(
        "attribute column with an unknown type",
        f"{REALTY}/load_maps/buyer_leads.yaml",
        "Pre-Approved: {attribute: is_pre_approved, type: boolean}",
        "Pre-Approved: {attribute: is_pre_approved, type: yesno}",
        "columns.Pre-Approved.type",
        "Input should be 'string', 'numeric', 'date', 'timestamp', 'boolean' or 'array'",
    ),
    Break(
        "a sender quota of zero",
        f"{DENTAL}/client.yaml",
        '  email_from: "Bright Smiles Dental <reminders@brightsmiles.example>"\n',
        '  email_from: "Bright Smiles Dental <reminders@brightsmiles.example>"\n  daily_limit: {email: 0}\n',
        "senders.daily_limit.email",
        "Input should be greater than 0",
    ),
    Break(
        "a sender quota without the sender",
        f"{ROOFING}/client.yaml",
        '  sms_from: "+13035550177"\n',
        "",
        "senders.daily_limit.sms",
        "a daily limit for sms needs a sender: set senders.sms_from",
    ),
    Break(
        "funnel_events map without to_stage",
        f"{COLLEGE}/load_maps/funnel_events.yaml",
        "  to_stage: to_stage\n",
        "",
        "columns",
        "a funnel_events load map must map 'to_stage'",
    ),
]


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A fresh copy of the example config at ``<tmp>/config``."""
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, target)
    return target


def assert_problem(problem: Problem, brk: Break) -> None:
    assert (problem.file, problem.field) == (brk.file, brk.field), brk.name
    assert brk.message in problem.message, brk.name
    assert str(problem).startswith(f"{brk.file}: {brk.field}: "), brk.name
    assert str(problem) == f"{problem.file}: {problem.field}: {problem.message}"


def test_example_config_loads_clean() -> None:
    deployment, problems = check_config(EXAMPLE_CONFIG)

    assert problems == []
    assert deployment is not None
    assert {cid: c.config.name for cid, c in deployment.clients.items()} == {
        "bright_smiles_dental": "Bright Smiles Dental",
        "lakeside_realty": "Lakeside Realty Group",
        "northfield_college": "Northfield College",
        "summit_roofing": "Summit Roofing & Exteriors",
    }
    assert {(cid, t) for cid, c in deployment.clients.items() for t in c.load_maps} == {
        ("bright_smiles_dental", "appointments"),
        ("lakeside_realty", "buyer_leads"),
        ("northfield_college", "leads"),
        ("northfield_college", "funnel_events"),
        ("summit_roofing", "homeowners"),
    }
    assert {cid: (c.time_zone, c.default_region) for cid, c in deployment.clients.items()} == {
        "bright_smiles_dental": ("America/Chicago", "US"),
        "lakeside_realty": ("America/Denver", "US"),
        "northfield_college": ("America/New_York", "US"),
        "summit_roofing": ("America/Denver", "US"),
    }


def test_load_map_columns_become_fields_and_attributes() -> None:
    realty = load_deployment(EXAMPLE_CONFIG).load_map("lakeside_realty", "buyer_leads")

    assert realty is not None
    assert realty.format.delimiter == ";"
    assert realty.column_for("phone") == "Mobile #"
    assert realty.column_for("appointment_at") is None
    assert realty.columns["Mobile #"] == FieldColumn(field="phone")
    assert realty.columns["Interests"] == AttributeColumn(attribute="interests", type="array", separator="|")


def test_a_client_inherits_defaults_from_herald_yaml(config_copy: Path) -> None:
    Break("", "config/clients/lakeside_realty/client.yaml", "time_zone: America/Denver\n", "", "", "").apply(
        config_copy.parent
    )
    (config_copy / "herald.yaml").write_text("defaults:\n  time_zone: Europe/Dublin\n  default_region: IE\n")

    realty = load_deployment(config_copy).clients["lakeside_realty"]

    assert (realty.time_zone, realty.default_region) == ("Europe/Dublin", "IE")


def test_a_long_lived_process_sees_a_changed_file_at_its_next_load(config_copy: Path) -> None:
    first = load_deployment(config_copy)
    assert load_deployment(config_copy) is first  # nothing changed: validated once

    client = config_copy / "clients" / "lakeside_realty" / "client.yaml"
    client.write_text(client.read_text().replace("name: Lakeside Realty Group", "name: Lakeside Homes"))
    assert load_deployment(config_copy).clients["lakeside_realty"].config.name == "Lakeside Homes"

    client.write_text(client.read_text().replace("time_zone: America/Denver", "time_zone: Mars/Olympus"))
    with pytest.raises(ConfigError, match="time_zone"):
        load_deployment(config_copy)


@pytest.mark.parametrize("brk", BREAKS, ids=[b.name for b in BREAKS])
def test_each_break_is_one_problem_naming_file_and_field(config_copy: Path, brk: Break) -> None:
    brk.apply(config_copy.parent)

    deployment, problems = check_config(config_copy)

    assert deployment is None
    assert len(problems) == 1, [str(p) for p in problems]
    assert_problem(problems[0], brk)


def test_all_breaks_at_once_are_all_reported(config_copy: Path) -> None:
    for brk in BREAKS:
        brk.apply(config_copy.parent)

    with pytest.raises(ConfigError) as raised:
        load_deployment(config_copy)

    problems = raised.value.problems
    assert sorted((p.file, p.field) for p in problems) == sorted((b.file, b.field) for b in BREAKS)
    for brk in BREAKS:
        assert_problem(next(p for p in problems if (p.file, p.field) == (brk.file, brk.field)), brk)
    assert str(raised.value).splitlines() == [str(p) for p in problems]


@pytest.mark.parametrize(
    ("edit", "file", "field", "message"),
    [
        (
            lambda cfg: (cfg / "clients" / "lakeside_realty" / "client.yaml").unlink(),
            f"{REALTY}/client.yaml",
            "(file)",
            "missing: every client folder needs a client.yaml",
        ),
        (
            lambda cfg: shutil.rmtree(cfg / "clients" / "lakeside_realty" / "load_maps"),
            f"{REALTY}/load_maps",
            "(directory)",
            "no load maps: add load_maps/<packet_type>.yaml",
        ),
        (
            lambda cfg: (cfg / "clients" / "lakeside_realty" / "client.yaml").write_text("- a list\n"),
            f"{REALTY}/client.yaml",
            "(file)",
            "must be a mapping of keys to values, not list",
        ),
        (
            lambda cfg: (cfg / "clients" / "lakeside_realty" / "load_maps" / "buyer_leads.yaml").rename(
                cfg / "clients" / "lakeside_realty" / "load_maps" / "Buyer-Leads.yaml"
            ),
            f"{REALTY}/load_maps/Buyer-Leads.yaml",
            "packet_type",
            "'Buyer-Leads' is not a valid packet type",
        ),
        (
            lambda cfg: Break(
                "", f"{DENTAL}/load_maps/appointments.yaml", "Zip: postal_code", "Zip: [postal_code]", "", ""
            ).apply(cfg.parent),
            f"{DENTAL}/load_maps/appointments.yaml",
            "columns.Zip",
            "map the column to a field name, {field: <name>} or {attribute: <name>, type: <type>}",
        ),
        (
            lambda cfg: shutil.rmtree(cfg / "clients"),
            "config/clients",
            "(directory)",
            "missing: add one folder per client",
        ),
    ],
    ids=[
        "no client.yaml",
        "no load maps",
        "client.yaml not a mapping",
        "bad packet type file name",
        "column mapped to a list",
        "no clients",
    ],
)
def test_structural_problems(
    config_copy: Path, edit: Callable[[Path], None], file: str, field: str, message: str
) -> None:
    edit(config_copy)

    _, problems = check_config(config_copy)

    assert [(p.file, p.field) for p in problems] == [(file, field)]
    assert message in problems[0].message


def test_a_load_map_error_reads_the_same_without_the_loader() -> None:
    """Code that validates a LoadMap directly still gets every problem in one error."""
    with pytest.raises(ValueError) as raised:
        LoadMap.model_validate(
            {"packet_type": "leads", "columns": {"a": "email", "b": "email", "c": "shoe_size"}, "required": ["phone"]}
        )

    text = str(raised.value)
    assert "columns 'a' and 'b' both map to 'email'" in text
    assert "column 'c' maps to unknown field 'shoe_size'" in text
    assert "required field 'phone' is not mapped by any column" in text


# --- the CLI, as a user runs it -------------------------------------------------------------

NARROW_PIPE = pytest.param(None, id="piped-80-columns")  # a script or CI reading the output
WIDE_TERMINAL = pytest.param("1000", id="wide-terminal")


def run_config_check(directory: Path, columns: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns:
        env["COLUMNS"] = columns
    return subprocess.run(
        [str(HERALD_CLI), "config", "check", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )


@pytest.mark.parametrize("columns", [WIDE_TERMINAL, NARROW_PIPE])
def test_cli_lists_each_problem_on_its_own_line(config_copy: Path, columns: str | None) -> None:
    for brk in BREAKS:
        brk.apply(config_copy.parent)
    _, problems = check_config(config_copy)

    result = run_config_check(config_copy, columns)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [str(p) for p in problems]
    assert f"{len(BREAKS)} problems in {config_copy}" in result.stderr


@pytest.mark.parametrize("columns", [WIDE_TERMINAL, NARROW_PIPE])
def test_cli_on_a_clean_config_prints_a_summary_line_then_one_line_per_campaign(columns: str | None) -> None:
    result = run_config_check(EXAMPLE_CONFIG, columns)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "config OK: 4 clients (bright_smiles_dental, lakeside_realty, northfield_college, summit_roofing), "
        f"5 load maps in {EXAMPLE_CONFIG}"
    )
    assert [line.split(" | ")[0].strip() for line in lines[1:]] == [
        "bright_smiles_dental/appointment_reminder",
        "lakeside_realty/new_listings",
        "northfield_college/admitted_nurture",
        "summit_roofing/roof_check_offer",
    ]
    assert "At 09:30 AM, Monday through Friday (America/Denver)" in lines[2]


def test_a_sender_quota_becomes_a_config_row_per_channel_with_its_sender() -> None:
    from herald.warehouse.config_tables import config_rows

    rows = config_rows(load_deployment(EXAMPLE_CONFIG))["sender_quotas"]

    assert rows == [("summit_roofing", "sms", "+13035550177", 250)]  # the other clients set none
