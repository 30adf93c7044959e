"""The whole flow as a user runs it, on DuckDB and on PostgreSQL: ``herald demo``, then packets
dropped with ``herald drop`` and ingested by ``herald tick``, answered by ``herald sql``.

Every command is a real subprocess with its own environment (as in a terminal); each engine's
deployment is built once and many things are asserted on it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import dagster as dg
import phonenumbers
import pytest

from herald.config import load_deployment
from herald.demo.packets import demo_packets, sized_packet
from tests.conftest import CONFIG_DIR, REPO_ROOT, jobs_run, last_tick_done

HERALD = str(Path(sys.executable).parent / "herald")


@dataclass
class Deployment:
    env: dict[str, str]
    home: Path
    demo_output: str
    tick_output: str
    idle_tick_output: str
    sized_packet_lines: list[int]
    after_demo: dict[str, list[dict]] = field(default_factory=dict)  # STORY_SQL, run right after the demo

    def herald(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(self.env, *args, check=check)

    def sql(self, query: str) -> list[dict]:
        return json.loads(self.herald("sql", "--format", "json", query).stdout)


# One definition of delivered (docs/analysts.md): a provider receipt; failed: a final failure without one.
DELIVERED = "(delivered_at is not null or final_status in ('delivered', 'read'))"
FAILED = f"(not {DELIVERED} and final_status in ('failed', 'undelivered', 'bounced'))"
# What the demo's story is checked against: the marts as the demo left them (later tests move on).
STORY_SQL = {
    "steps": "select client_id, campaign, step, count(*) as sent, "
    f"sum(case when {DELIVERED} then 1 else 0 end) as delivered, sum(case when {FAILED} then 1 else 0 end) as failed, "
    "sum(case when clicked_at is not null then 1 else 0 end) as clicked "
    "from marts.deliveries where substr(campaign, 1, 1) <> '_' group by 1, 2, 3",
    "enrolled": "select client_id, campaign, count(*) as n from marts.enrollments group by 1, 2",
    "exits": "select client_id, campaign, exit_reason, count(*) as n from marts.enrollments "
    "where status = 'exited' group by 1, 2, 3",
    "funnel": "select client_id, campaign, step, took_yes, took_no, paths_taken from analytics.journey_funnel "
    "where moved_on > 0",
    "clicks": "select client_id, count(distinct message_key) as n from marts.engagement_events "
    "where event = 'clicked' and substr(campaign, 1, 1) <> '_' group by 1",
    "dashboard": "select client_id, delivered_30d, delivery_rate_30d from analytics.client_dashboard",
}


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [HERALD, *args], env={**os.environ, **env, "COLUMNS": "250"}, cwd=REPO_ROOT, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        pytest.fail(f"herald {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


# The same tests run on PostgreSQL from test_pipeline_cli_postgres.py: a module of their own,
# so the two deployments are built in parallel when the suite runs on several workers.
@pytest.fixture(scope="module")
def deployed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return deploy("duckdb", request, tmp_path_factory)


def deploy(engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    home = tmp_path_factory.mktemp(f"e2e-{engine}") / "home"
    env = {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    if engine == "postgres":
        env["HERALD_WAREHOUSE_URL"] = request.getfixturevalue("pg_database_factory")()
    demo = run(env, "demo")
    after_demo = {name: json.loads(run(env, "sql", "--format", "json", q).stdout) for name, q in STORY_SQL.items()}

    # Then a client uploads three more packets: a 1,000-row file with 3 bad rows, a file whose
    # checksum sidecar does not match (a broken transfer), and the dental file again (same bytes).
    deployment = load_deployment(CONFIG_DIR)
    work = home.parent / "uploads"
    work.mkdir()
    sized = sized_packet(deployment, "northfield_college", "leads", rows=1000, bad_rows=3, seed=11)
    (work / "leads-1000.csv").write_bytes(sized.content)
    (work / "broken.csv").write_bytes(sized.content[: len(sized.content) // 2])
    # the very file the demo dropped (its dates follow the demo's simulated clock), from the archive
    (dental,) = (home / "dropzone/bright_smiles_dental/archive/appointments").glob("*.csv")
    (work / "appointments-again.csv").write_bytes(dental.read_bytes())
    run(env, "drop", str(work / "leads-1000.csv"), "--client", "northfield_college", "--type", "leads")
    run(env, "drop", str(work / "broken.csv"), "--client", "northfield_college", "--type", "leads")
    sidecar = home / "dropzone/northfield_college/incoming/leads/broken.csv.sha256"
    sidecar.write_text(f"{__import__('hashlib').sha256(sized.content).hexdigest()}  broken.csv\n")
    run(env, "drop", str(work / "appointments-again.csv"), "--client", "bright_smiles_dental", "--type", "appointments")
    # an operator added before the tick: its audit row waits in the portal store on DuckDB until
    # the tick's dbt build moves it into herald_ops.audit_log (PostgreSQL: written there at once)
    run({**env, "HERALD_PORTAL_PASSWORD": "an e2e password, long"}, "users", "add", "e2e@example.com", "--role",
        "operator")  # fmt: skip
    ticks = run(env, "tick", "--force", "--until-idle").stdout  # lands the three, then one dbt build
    idle = run(env, "tick", "--force").stdout
    return Deployment(env, home, demo.stdout, ticks, idle, sorted(sized.bad_lines), after_demo)


def test_demo_prints_a_report_per_packet(deployed: Deployment) -> None:
    out = deployed.demo_output
    for client, ptype in [
        ("bright_smiles_dental", "appointments"),
        ("lakeside_realty", "buyer_leads"),
        ("northfield_college", "leads"),
        ("northfield_college", "funnel_events"),
        ("summit_roofing", "homeowners"),
    ]:
        assert f"{client}-{ptype}-" in out
    assert "expected 12 fields like the header, found 13" in out  # the ragged dental row, with its line
    assert "required field 'phone' (column 'Cell Phone') is empty" in out
    assert "demo finished" in out
    assert "segments: " in out and "northfield_college/admitted_not_enrolled" in out


def test_demo_prints_the_portal_and_a_sign_in_for_each_example_client_and_an_operator(
    deployed: Deployment,
) -> None:
    from herald.portal.accounts import password_matches
    from herald.portal.demo_users import PASSWORD_FILE, demo_email
    from herald.portal.store import PortalStore
    from herald.settings import Settings

    out = " ".join(deployed.demo_output.split())  # rich wraps long lines
    password_file = deployed.home / PASSWORD_FILE
    password = password_file.read_text().strip()
    assert "http://127.0.0.1:8000/app/" in out and f"password {password}" in out
    assert password_file.stat().st_mode & 0o077 == 0  # the owner's only
    clients = ("bright_smiles_dental", "lakeside_realty", "northfield_college", "summit_roofing")
    assert "operator@example.com operator, every client" in out
    for client in clients:
        assert f"{demo_email(client)} client admin, client {client}" in out
    listed = deployed.herald("users", "list").stdout
    assert all(demo_email(c) in listed for c in clients) and "operator@example.com" in listed
    # the printed password is each one's (two-factor sign-in is set up at the first sign-in)
    with PortalStore(Settings.from_env(deployed.env).warehouse).session(read_only=True) as s:
        _, rows = s.query("select email, password_hash, totp_enabled_at from herald_ops.portal_users "
                          "where email like '%example.com' and email <> 'e2e@example.com' order by email")  # fmt: skip
    assert len(rows) == 5 and all(password_matches(h, password) and t is None for _, h, t in rows)


def test_every_row_of_every_packet_is_accounted_for(deployed: Deployment) -> None:
    rows = deployed.sql(
        "select p.packet_id, p.status, p.rows_in_file, p.rows_landed, p.rows_rejected, "
        "(select count(*) from herald_raw.packet_rows r where r.packet_id = p.packet_id) as landed_rows, "
        "(select count(*) from herald_raw.packet_rejects j where j.packet_id = p.packet_id) as reject_rows "
        "from herald_ops.packets p"
    )
    assert len(rows) == 8
    for r in rows:
        assert r["rows_in_file"] == r["rows_landed"] + r["rows_rejected"] == r["landed_rows"] + r["reject_rows"], r
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    assert by_status == {"landed": 6, "rejected": 1, "duplicate": 1}


def test_thousand_row_packet_lands_997_and_rejects_3_with_lines(deployed: Deployment) -> None:
    (packet,) = deployed.sql(
        "select packet_id, rows_in_file, rows_landed, rows_rejected from herald_ops.packets "
        "where file_name = 'leads-1000.csv'"
    )
    assert (packet["rows_in_file"], packet["rows_landed"], packet["rows_rejected"]) == (1000, 997, 3)
    rejects = deployed.sql(
        f"select line_number, reason from herald_raw.packet_rejects where packet_id = '{packet['packet_id']}' "
        "order by line_number"
    )
    assert [r["line_number"] for r in rejects] == deployed.sized_packet_lines
    assert {r["reason"] for r in rejects} == {"expected 12 fields like the header, found 13"}

    # the asset check in Dagster says the same, with its numbers
    with dg.DagsterInstance.from_config(str(deployed.home / "dagster")) as instance:
        check = dg.AssetCheckKey(dg.AssetKey(["herald_raw", "packet_rows"]), "every_row_accounted_for")
        records = instance.event_log_storage.get_asset_check_execution_history(check, limit=20)
        evaluations = [
            r.event.dagster_event.event_specific_data
            for r in records
            if r.event
            and r.event.dagster_event
            and r.event.dagster_event.event_specific_data.metadata["packet_id"].value == packet["packet_id"]
        ]
    assert evaluations and evaluations[0].passed
    metadata = {k: v.value for k, v in evaluations[0].metadata.items()}
    assert (metadata["rows_in_file"], metadata["rows_landed"], metadata["rows_rejected"]) == (1000, 997, 3)


def test_each_processed_packet_gets_a_receipt_in_the_clients_area(deployed: Deployment) -> None:
    archive = deployed.home / "dropzone/northfield_college/archive/leads"
    (receipt_file,) = archive.glob("*__leads-1000.csv.receipt.json")
    receipt = json.loads(receipt_file.read_text())
    assert (receipt["status"], receipt["rows_in_file"], receipt["rows_landed"], receipt["rows_rejected"]) == (
        "landed",
        1000,
        997,
        3,
    )
    assert [r["line"] for r in receipt["first_rejects"]] == deployed.sized_packet_lines
    assert receipt["contacts_created"] == 997 and receipt["contacts_updated"] == 0
    text = receipt_file.with_suffix(".txt").read_text()
    assert "Rows rejected:    3" in text and "Contacts created: 997" in text
    (duplicate,) = (deployed.home / "dropzone/bright_smiles_dental/archive/appointments").glob(
        "*__appointments-again.csv.receipt.json"
    )
    assert json.loads(duplicate.read_text())["status"] == "duplicate"


def test_broken_transfer_lands_nothing_and_is_quarantined_with_its_reason(deployed: Deployment) -> None:
    (packet,) = deployed.sql(
        "select packet_id, status, status_reason, rows_landed from herald_ops.packets where file_name = 'broken.csv'"
    )
    assert packet["status"] == "rejected" and packet["rows_landed"] == 0
    assert "checksum mismatch" in packet["status_reason"]
    quarantine = deployed.home / "dropzone/northfield_college/quarantine/leads"
    reason_files = list(quarantine.glob("*broken.csv.reason.txt"))
    assert len(reason_files) == 1 and "checksum mismatch" in reason_files[0].read_text()
    assert deployed.sql(
        f"select count(*) as n from herald_raw.packet_rows where packet_id = '{packet['packet_id']}'"
    ) == [{"n": 0}]


def test_same_packet_dropped_twice_is_loaded_once(deployed: Deployment) -> None:
    packets = deployed.sql(
        "select status, duplicate_of, rows_landed from herald_ops.packets "
        "where client_id = 'bright_smiles_dental' order by received_at"
    )
    assert [p["status"] for p in packets] == ["landed", "duplicate"]
    assert packets[1]["rows_landed"] == 0 and packets[1]["duplicate_of"]
    (row,) = deployed.sql(
        "select count(*) as n from herald_raw.packet_rows r join herald_ops.packets p using (packet_id) "
        "where p.client_id = 'bright_smiles_dental'"
    )
    assert row["n"] == 298  # 300 demo rows, 2 rejected, landed once


def test_contacts_are_deduplicated_by_phone(deployed: Deployment) -> None:
    dental = next(p for p in demo_packets(load_deployment(CONFIG_DIR)) if p.packet_type == "appointments")
    # An independent count: valid phones normalized by libphonenumber, the rest by email or id.
    import csv
    import io

    identities = set()
    for i, row in enumerate(csv.DictReader(io.StringIO(dental.text)), start=2):
        if i in dental.bad_lines:
            continue
        try:
            number = phonenumbers.parse(row["Cell Phone"], "US")
            valid = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            valid = False
        if valid:
            identities.add(("phone", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)))
        elif "@" in row["E-mail"] and "." in row["E-mail"].split("@")[-1]:
            identities.add(("email", row["E-mail"].strip().lower()))
        else:
            identities.add(("id", row["Patient ID"]))
    (row,) = deployed.sql("select count(*) as n from marts.contacts where client_id = 'bright_smiles_dental'")
    assert row["n"] == len(identities)
    assert row["n"] < 298  # duplicates written differently were merged
    assert deployed.sql(
        "select count(*) as n from marts.contacts where client_id = 'bright_smiles_dental' and is_phone_valid "
        "and phone_e164 not like '+1%'"
    ) == [{"n": 0}]


def test_marts_hold_all_clients_attributes_and_funnel_events(deployed: Deployment) -> None:
    counts = {
        r["client_id"]: r["n"] for r in deployed.sql("select client_id, count(*) as n from marts.contacts group by 1")
    }
    assert set(counts) == {"bright_smiles_dental", "lakeside_realty", "northfield_college", "summit_roofing"}
    assert counts["summit_roofing"] == 625  # every homeowner of the contractor's import, once
    types = {r["attribute_type"] for r in deployed.sql("select distinct attribute_type from marts.contact_attributes")}
    assert types == {"numeric", "string", "date", "timestamp", "boolean", "array"}
    (events,) = deployed.sql("select count(*) as n, count(contact_id) as matched from marts.funnel_events")
    assert events["n"] > 0 and events["matched"] == events["n"]


def test_every_packet_step_is_timed(deployed: Deployment) -> None:
    steps = {
        r["step"]
        for r in deployed.sql(
            "select distinct e.step from herald_ops.packet_events e join herald_ops.packets p using (packet_id) "
            "where p.status = 'landed'"
        )
    }
    assert {"received", "verified", "landed", "validated", "mapped", "cleaned", "archived"} <= steps


def test_the_dbt_builds_publish_the_portal_snapshot(deployed: Deployment) -> None:
    """The portal's read path shows the 1,000-row upload's packet as cleaned after the tick: on
    DuckDB from the snapshot each dbt build publishes at its end, on PostgreSQL live (no snapshot)."""
    from herald.portal.packets import list_packets
    from herald.portal.reads import PortalReader, current_snapshot
    from herald.settings import Settings

    settings = Settings.from_env({**deployed.env, "HERALD_CONFIG_DIR": str(CONFIG_DIR)})
    if settings.warehouse.engine == "duckdb":
        assert current_snapshot(settings.warehouse) is not None
    reader = PortalReader(settings.warehouse)
    try:
        listed = {p.file_name: p for p in list_packets(settings, "northfield_college", reader=reader)}
    finally:
        reader.close()
    upload = listed["leads-1000.csv"]
    assert (upload.status, upload.rows_rejected, upload.current_step) == ("landed", 3, "cleaned")
    assert listed["broken.csv"].current_step == "verified"  # refused at the checksum: it goes no further
    # the portal's audit row of the user added before the tick is in the warehouse's log, once
    added = deployed.sql("select actor from herald_ops.audit_log where action = 'portal_user_added' "
                         "and subject = 'e2e@example.com'")  # fmt: skip
    assert len(added) == 1 and added[0]["actor"].startswith("cli:")
    if settings.warehouse.engine == "duckdb":
        from herald.portal.store import spooled

        assert spooled(settings.warehouse) == []  # moved out of the portal store by the dbt build


def test_tick_until_idle_then_a_tick_with_nothing_new_starts_no_run(deployed: Deployment) -> None:
    # 3 uploads → 3 ingest runs; then 1 dbt build; then 1 segment refresh and 1 build of the analytics marts; then the campaign
    # trigger check (the repeated dental packet is a duplicate, so nothing to send); then nothing.
    # The sandbox's receipts for the demo's last sends (its answers to the sample replies) may
    # still wait in landing/events: then one provider events run applies them; a second applies
    # the receipt of a staff alert email, when those receipts pushed a client's 24-hour delivery
    # rate under its threshold (the sandbox fails ~3% of texts, and a day of 125 may cross 95%).
    # A client's staff digest is a schedule on the wall clock (its local digest time): a tick that
    # happens to cross that minute runs it once for that client, whatever the packets did.
    runs = jobs_run(deployed.tick_output)
    alerts = deployed.sql("select count(*) as n from herald_ops.staff_alerts where email_status = 'sent'")[0]["n"]
    assert runs.count("SUCCESS apply_provider_events_job") <= 1 + int(alerts)
    assert runs.count("SUCCESS staff_digest_job") <= len(load_deployment(CONFIG_DIR).clients)
    clock_driven = {"SUCCESS apply_provider_events_job", "SUCCESS staff_digest_job"}
    assert [r for r in runs if r not in clock_driven] == [
        *["SUCCESS ingest_packet_job"] * 3,
        "SUCCESS transform_packets_job",
        "SUCCESS refresh_segments_job",
        "SUCCESS refresh_analytics_job",
        "SUCCESS send_campaigns_job",
    ]
    assert last_tick_done(deployed.tick_output) == "tick done: 0 runs"
    assert jobs_run(deployed.idle_tick_output) == []


def test_demo_plans_renders_and_delivers_the_packet_triggered_reminders(deployed: Deployment) -> None:
    assert "campaign bright_smiles_dental/appointment_reminder:" in deployed.demo_output
    members = deployed.sql(
        "select count(*) as n from marts.segment_members where segment_name = 'upcoming_appointments'"
    )[0]["n"]
    # one enrollment per upcoming appointment of a member (enrollment: per_appointment), each
    # keyed by its appointment; every one reached its reminder, planned or left out with a reason
    (enrolled,) = deployed.sql(
        "select count(*) as n, count(distinct occurrence) as appointments, "
        "sum(case when occurrence like 'appointment:%' then 1 else 0 end) as keyed "
        "from herald_ops.enrollments where campaign = 'appointment_reminder'"
    )
    reminders = deployed.sql(
        "select count(*) as n from marts.message_plan where campaign = 'appointment_reminder' and step = 'reminder'"
    )[0]["n"]
    assert reminders == enrolled["n"] == enrolled["appointments"] == enrolled["keyed"] > 0 and members > 0
    (counts,) = deployed.sql(
        "select count(*) as planned, count(o.message_key) as enqueued, "
        "sum(case when o.status = 'sent' then 1 else 0 end) as sent, "
        "sum(case when o.status = 'cancelled' then 1 else 0 end) as cancelled, "
        "sum(case when o.status = 'queued' and o.send_after > "
        + (
            "now() at time zone 'UTC'"
            if "postgresql" in deployed.env["HERALD_WAREHOUSE_URL"]
            else "timezone('UTC', now())"
        )
        + " then 1 else 0 end) as waiting "
        "from marts.message_plan p left join herald_ops.outbox o on o.message_key = p.message_key "
        "where p.campaign = 'appointment_reminder' and p.status = 'planned'"
    )
    assert counts["enqueued"] == counts["planned"]
    # sent at the demo's time, due later, or withdrawn when its journey ended
    assert counts["sent"] + counts["waiting"] + counts["cancelled"] == counts["planned"]
    assert counts["sent"] > 0
    # withdrawn only by a journey exit: the demo's clock jumps four days, so a reminder still
    # waiting for its time when its appointment passed is never sent
    reasons = [
        r["status_reason"]
        for r in deployed.sql(
            "select status_reason from herald_ops.outbox where campaign = 'appointment_reminder' "
            "and status = 'cancelled'"
        )
    ]
    assert all(r.startswith("journey exited: ") for r in reasons), reasons
    line = next(x for x in deployed.demo_output.splitlines() if "bright_smiles_dental/appointment_reminder" in x)
    assert f"{counts['planned']} planned" in line
    # what the sandbox "sent" (texts and emails) is exactly what the outbox says was sent, each message once
    keys = [
        json.loads(entry)["message_key"]
        for journal in (deployed.home / "sandbox" / "sms.jsonl", deployed.home / "sandbox" / "email.jsonl")
        if journal.exists()
        for entry in journal.read_text().splitlines()
    ]
    sent = {r["message_key"] for r in deployed.sql("select message_key from herald_ops.outbox where status = 'sent'")}
    # besides: the staff alert emails to a client's own contact address (not through the outbox)
    sent |= {
        r["message_key"]
        for r in deployed.sql("select message_key from herald_ops.staff_alerts where email_status = 'sent'")
    }
    assert len(keys) == len(set(keys)) and set(keys) == sent
    # and marts.messages has one row per outbox message, with masked addresses only
    (mart,) = deployed.sql("select count(*) as n, max(to_address_masked) as sample from marts.messages")
    assert mart["n"] == len(deployed.sql("select message_key from herald_ops.outbox"))


def test_demo_texts_the_contractor_homeowners_125_a_day_and_only_with_consent(deployed: Deployment) -> None:
    # the import enrolled all 625 homeowners once; each pass plans at most 125 texts per local
    # day (the daily limit), leaves out those without signed consent or a valid mobile, and
    # carries the rest over to the next day
    (ledger,) = deployed.sql(
        "select count(*) as n, count(distinct contact_id) as people, "
        "sum(case when wait_reason = 'over the daily limit: carried over to the next day' then 1 else 0 end) "
        "as carried from herald_ops.enrollments where campaign = 'roof_check_offer'"
    )
    assert int(ledger["n"]) == int(ledger["people"]) == 625
    # the local day in Denver: 7 hours back from UTC puts every time of the send window
    # (9:00-20:00, MST or MDT) on its local date
    plan = deployed.sql(
        "select contact_id, status, reason, cast(send_after - interval '7 hours' as date) as day "
        "from marts.message_plan where campaign = 'roof_check_offer'"
    )
    assert len({r["contact_id"] for r in plan}) == len(plan)  # nobody planned twice
    planned = [r for r in plan if r["status"] == "planned"]
    per_day = [n for _, n in sorted(Counter(r["day"] for r in planned).items())]
    assert per_day and per_day[0] == 125 and max(per_day) == 125  # 125 on the first day, never more
    excluded = Counter(r["reason"] for r in plan if r["status"] == "excluded")
    no_consent = "no consent: express written consent needed for marketing texts"
    assert set(excluded) == {no_consent, "no valid phone for sms"}
    assert excluded["no valid phone for sms"] == 2 and excluded[no_consent] > 0
    assert len(planned) + sum(excluded.values()) + int(ledger["carried"]) == 625  # nobody dropped
    # each planned text is one of the two wordings, and only to a homeowner who signed
    assert {r["variant"] for r in deployed.sql(
        "select distinct variant from marts.message_plan where campaign = 'roof_check_offer' and status = 'planned'"
    )} == {"free_inspection", "storm_season"}  # fmt: skip
    unconsented = deployed.sql(
        "select count(*) as n from marts.message_plan p where p.campaign = 'roof_check_offer' "
        "and p.status = 'planned' and not exists (select 1 from marts.contact_attributes a "
        "where a.contact_id = p.contact_id and a.attribute_name = 'sms_consent' and a.boolean_value)"
    )
    assert unconsented == [{"n": 0}]


def test_demo_replies_opt_out_confirm_and_ask_for_help(deployed: Deployment) -> None:
    out = deployed.demo_output
    # the patients answer a reminder they got (the demo's clock put it in their send window)
    assert "reply opt_out (free_text): suppressed, opt out confirmation sent" in out
    assert "reply confirm (confirm): confirmed" in out
    assert "reply help (help): helped, help reply sent" in out
    (opt_out,) = deployed.sql(
        "select s.address, s.scope, s.reason, s.note from herald_ops.suppressions s where s.reason = 'opt_out'"
    )
    assert (opt_out["reason"], opt_out["note"]) == ("opt_out", "Stop texting me pls")
    # scoped to the kind of message last sent to the number
    assert opt_out["scope"] == "appointment_reminder"
    # the reminder before it; nothing but the one confirmation goes to that number any more
    after = deployed.sql(
        "select campaign, step, status from herald_ops.outbox where to_address = '"
        + opt_out["address"]
        + "' order by 1"
    )
    assert [(r["campaign"], r["status"]) for r in after] == [
        ("_replies", "sent"),
        ("appointment_reminder", "sent"),
    ]
    assert (
        deployed.sql("select count(*) as n from herald_ops.appointment_responses where response = 'confirmed'")[0]["n"]
        >= 1
    )
    # (the STOP's reminder was already sent and its follow-up not planned yet: nothing to cancel)
    actions = {r["action"] for r in deployed.sql("select action from herald_ops.audit_log")}
    assert {"suppression", "consent_change"} <= actions


def test_sending_a_campaign_occurrence_twice_sends_nothing_new(deployed: Deployment) -> None:
    members = deployed.sql(
        "select count(*) as n from marts.segment_members where segment_name = 'admitted_not_enrolled'"
    )[0]["n"]
    enrolled = "select count(*) as n from herald_ops.enrollments where campaign = 'admitted_nurture'"
    # the demo enrolled every admitted student (enrollment: once)
    assert deployed.sql(enrolled)[0]["n"] == members > 0
    first = deployed.herald("campaign", "send", "northfield_college", "admitted_nurture", "--occurrence", "e2e-once")
    assert "campaign northfield_college/admitted_nurture:" in first.stdout
    outbox = "select message_key, status from herald_ops.outbox order by 1"
    before = deployed.sql(outbox)
    deployed.herald("campaign", "send", "northfield_college", "admitted_nurture", "--occurrence", "e2e-once")
    # a new occurrence enrolls nobody again, and the same occurrence twice adds nothing either
    assert deployed.sql(enrolled)[0]["n"] == members
    assert deployed.sql("select count(*) as n from herald_ops.outbox where occurrence = 'e2e-once'") == [{"n": 0}]
    assert [r["message_key"] for r in deployed.sql(outbox)] == [r["message_key"] for r in before]
    journal = deployed.home / "sandbox" / "email.jsonl"
    keys = [json.loads(entry)["message_key"] for entry in journal.read_text().splitlines()] if journal.exists() else []
    assert len(keys) == len(set(keys)) > 0


def test_campaign_preview_renders_without_writing(deployed: Deployment) -> None:
    before = deployed.sql("select count(*) as n from herald_ops.outbox")[0]["n"]
    out = deployed.herald("campaign", "preview", "northfield_college", "admitted_nurture", "--limit", "2").stdout
    assert "campaign northfield_college/admitted_nurture as if it fired" in out and "audience has" in out
    # the demo enrolled every admitted student: the next pass would enroll nobody again, and says why
    assert out.count("  (enrollment) · not enrolled: already enrolled (enrollment: once)") == 2
    assert deployed.sql("select count(*) as n from herald_ops.outbox")[0]["n"] == before
    bad = deployed.herald("campaign", "preview", "northfield_college", "nope", check=False)
    assert bad.returncode == 1 and "has no campaign 'nope'; it has: admitted_nurture" in bad.stderr


def test_sql_refuses_writes_and_reports_errors(deployed: Deployment) -> None:
    proc = deployed.herald("sql", "delete from marts.contacts", check=False)
    assert proc.returncode == 1 and "error" in proc.stderr.lower()
    proc = deployed.herald("sql", "select nope from marts.contacts", check=False)
    assert proc.returncode == 1 and "nope" in proc.stderr
    (row,) = deployed.sql("select count(*) as n from marts.contacts")
    assert row["n"] > 0


def test_dropzone_check_lists_clients_and_nothing_left_waiting(deployed: Deployment) -> None:
    out = deployed.herald("dropzone", "check").stdout
    assert "drop zone OK: local folder" in out
    assert "clients: bright_smiles_dental, lakeside_realty, northfield_college, summit_roofing" in out
    assert "no packets waiting" in out


def test_segments_follow_the_new_contacts(deployed: Deployment) -> None:
    members = {
        r["segment_name"]: r["n"]
        for r in deployed.sql("select segment_name, count(*) as n from marts.segment_members group by 1")
    }
    # latest stage 'admitted' and never enrolled, counted straight from the funnel events
    (expected,) = deployed.sql(
        "select count(distinct f.contact_id) as n from marts.funnel_events f "
        "join (select contact_id, max(occurred_at) as last_at from marts.funnel_events group by 1) l "
        "on l.contact_id = f.contact_id and l.last_at = f.occurred_at "
        "where f.to_stage = 'admitted' and not exists (select 1 from marts.funnel_events e "
        "where e.contact_id = f.contact_id and e.to_stage = 'enrolled')"
    )
    assert members.get("admitted_not_enrolled", 0) == expected["n"] > 0
    entered = deployed.sql(
        "select count(*) as n from herald_ops.segment_membership_events "
        "where segment_name = 'admitted_not_enrolled' and event = 'entered'"
    )
    assert entered == [{"n": expected["n"]}]


def test_the_client_report_matches_the_marts(deployed: Deployment, tmp_path: Path) -> None:
    out = tmp_path / "report"
    deployed.herald("report", "bright_smiles_dental", "--period", "30d", "--format", "csv", "--output", str(out))
    summary = dict(line.split(",", 1) for line in (out / "summary.csv").read_text().splitlines()[1:])
    # one definition of delivered: a provider receipt (docs/analysts.md); the demo's own
    # answers (`_replies`) are conversations, not campaign messages
    delivered = "(delivered_at is not null or final_status in ('delivered', 'read'))"
    (marts,) = deployed.sql(
        f"select count(*) as sent, count(*) filter (where {delivered}) as delivered, "
        f"count(*) filter (where not {delivered} and final_status in ('failed', 'undelivered', 'bounced')) as failed "
        "from marts.deliveries where client_id = 'bright_smiles_dental' and substr(campaign, 1, 1) <> '_'"
    )
    # (PostgreSQL's sums come back as decimals, printed as text by `herald sql --format json`)
    assert (int(summary["sent"]), int(summary["delivered"]), int(summary["failed"])) == (
        int(marts["sent"]),
        int(marts["delivered"]),
        int(marts["failed"]),
    )
    # the clinic's appointments: the demo's C (and the sandbox's answers) confirmed, as the mart says
    with open(out / "appointments_summary.csv", newline="") as handle:
        appointments = {r["metric"]: r["value"] for r in csv.DictReader(handle)}
    (answers,) = deployed.sql(
        "select count(*) filter (where is_confirmed) as confirmed, "
        "count(*) filter (where response = 'reschedule_requested') as reschedule "
        "from marts.appointment_confirmations where client_id = 'bright_smiles_dental'"
    )
    assert int(appointments["confirmed"]) == int(answers["confirmed"]) >= 1
    assert int(appointments["reschedule_requested"]) == int(answers["reschedule"])
    html = tmp_path / "report.html"
    deployed.herald("report", "bright_smiles_dental", "--output", str(html))
    page = html.read_text()
    # the demo's reminders went out in their send window and came back with receipts: a real
    # delivery rate, and no internals shown
    assert int(summary["delivered"]) > 0 and summary["delivery_rate"] not in ("", "None")
    assert "_replies" not in page and "source:" not in page
    # the college's report: delivered and clicks as the marts count them
    deployed.herald("report", "northfield_college", "--period", "30d", "--format", "csv", "--output", str(out))
    college = dict(line.split(",", 1) for line in (out / "summary.csv").read_text().splitlines()[1:])
    (marts,) = deployed.sql(
        f"select count(*) filter (where {delivered}) as delivered from marts.deliveries "
        "where client_id = 'northfield_college' and substr(campaign, 1, 1) <> '_'"
    )
    (clicks,) = deployed.sql(
        "select count(distinct message_key) as n from marts.engagement_events where client_id = 'northfield_college' "
        "and event = 'clicked' and substr(campaign, 1, 1) <> '_'"
    )
    assert int(college["delivered"]) == int(marts["delivered"]) > 0
    assert int(college["clicked"]) == int(clicks["n"]) > 0
    # the client dashboard (balance, delivered, opt-outs) for the same client
    (board,) = deployed.sql("select * from analytics.client_dashboard where client_id = 'bright_smiles_dental'")
    assert int(board["opt_outs_30d"]) >= 1


def _rate(delivered: int, failed: int) -> str:
    return f"{100 * delivered / (delivered + failed):.1f}%" if delivered + failed else "no receipt yet"


def test_the_demo_sends_now_and_its_story_matches_the_marts(deployed: Deployment) -> None:
    out = deployed.demo_output
    assert "clock: simulated — " in out and "clock: moved on to " in out
    story = out.split("what happened (every number from the marts):")[1].splitlines()
    names = {c.client_id: c.config.name for c in load_deployment(CONFIG_DIR).clients.values()}
    marts = deployed.after_demo
    steps = marts["steps"]
    # messages went out at demo time and came back with receipts, from every client that has a
    # campaign (the realtor's announcement to its two hand-picked VIP buyers who signed the texting
    # consent; the third, who did not, is left out with the reason)
    assert sum(int(r["sent"]) for r in steps) > 0 and sum(int(r["delivered"]) for r in steps) > 0
    assert {r["client_id"] for r in steps} == set(names)
    assert sum(int(r["sent"]) for r in steps if r["campaign"] == "new_listings") == 2
    for r in steps:
        line = next(x for x in story if x.startswith(f"{names[r['client_id']]} — {r['campaign']}: "))
        sent, delivered, failed = int(r["sent"]), int(r["delivered"]), int(r["failed"])
        step = r["step"].replace("_", " ")
        assert f"{step}: {sent} sent, {delivered} delivered ({_rate(delivered, failed)})" in line, line
        if int(r["clicked"]):
            assert f"{int(r['clicked'])} clicked" in line
    for r in marts["enrolled"]:
        line = next(x for x in story if x.startswith(f"{names[r['client_id']]} — {r['campaign']}: "))
        assert f": {int(r['n'])} enrolled" in line
    for r in marts["exits"]:
        line = next(x for x in story if x.startswith(f"{names[r['client_id']]} — {r['campaign']}: "))
        assert f"{int(r['n'])} exited ({r['exit_reason']})" in line
    # the delivery rate printed per client is the marts' (delivered ÷ those with a final outcome)
    for client_id in {r["client_id"] for r in steps}:
        delivered = sum(int(r["delivered"]) for r in steps if r["client_id"] == client_id)
        failed = sum(int(r["failed"]) for r in steps if r["client_id"] == client_id)
        rate = f"{names[client_id]}: delivery rate {_rate(delivered, failed)} ({delivered} delivered of "
        assert any(x.startswith(rate) for x in story), (rate, story)
    # the nurture took both paths of its wait for a click, and branched on the program
    nurture = {r["step"]: r for r in marts["funnel"] if r["campaign"] == "admitted_nurture"}
    assert int(nurture["wait_for_click"]["took_yes"]) > 0 and int(nurture["wait_for_click"]["took_no"]) > 0
    assert "by_program" in nurture
    line = next(x for x in story if "— admitted_nurture: " in x)
    took = nurture["wait_for_click"]
    assert f"{int(took['took_yes'])} clicked → application link" in line
    assert f"{int(took['took_no'])} not clicked within 3d → follow up" in line
    sent_steps = {r["step"] for r in steps if r["campaign"] == "admitted_nurture"}
    assert {"welcome", "application_link", "follow_up"} <= sent_steps
    # the same in the trail: a yes path, a no path, and enrollments that a reply ended
    trail = deployed.sql(
        "select campaign, event, path, reason from herald_ops.enrollment_events where event in ('path', 'exited')"
    )
    assert any(t["campaign"] == "admitted_nurture" and t["path"] == "yes" for t in trail)
    assert any(t["campaign"] == "admitted_nurture" and t["path"] == "no" for t in trail)
    exits = {t["reason"] for t in trail if t["campaign"] == "appointment_reminder" and t["event"] == "exited"}
    assert {"confirmed", "opted out"} <= exits, exits
    # the dashboard counts the same deliveries
    for board in marts["dashboard"]:
        delivered = sum(int(r["delivered"]) for r in steps if r["client_id"] == board["client_id"])
        assert int(board["delivered_30d"]) == delivered, board


def test_tables_and_describe_show_the_marts_after_the_demo(deployed: Deployment) -> None:
    (contacts,) = deployed.sql("select count(*) as n from marts.contacts")
    listed = deployed.herald("tables", "--schema", "marts").stdout
    row = next(line for line in listed.splitlines() if line.split()[:2] == ["marts", "contacts"])
    assert row.split()[-1] == f"{int(contacts['n']):,}"
    assert not [line for line in listed.splitlines() if line.split()[:1] == ["herald_raw"]]  # --schema marts only
    described = deployed.herald("describe", "marts.contacts").stdout
    assert described.startswith(f"marts.contacts (table, {int(contacts['n']):,} rows)")
    assert {"contact_id", "client_id", "phone_e164"} <= {
        line.split()[0] for line in described.splitlines()[2:] if line.strip()
    }
    unknown = deployed.herald("describe", "marts.contact", check=False)
    assert unknown.returncode == 1 and "did you mean marts.contacts" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_preview_and_send_agree_for_every_example_campaign(deployed: Deployment) -> None:
    """For each example campaign: the preview (on a copy of the warehouse as the send found it,
    at the send's own clock) plans the same rows with the same reasons as the send itself."""
    from herald.campaigns.links import links_from_env
    from herald.campaigns.preview import preview_plan
    from herald.settings import Settings
    from herald.warehouse.scratch import scratch_copy

    settings = Settings.from_env({**os.environ, **deployed.env})
    deployment = load_deployment(CONFIG_DIR)
    compared = 0
    for client_id, client in sorted(deployment.clients.items()):
        for name, campaign in sorted(client.campaigns.items()):
            label = f"agree-{name}"
            planned_before = {
                r["message_key"]
                for r in deployed.sql(
                    f"select message_key from marts.message_plan where client_id = '{client_id}' and campaign = '{name}'"
                )
            }
            with scratch_copy(settings.warehouse) as as_found:
                deployed.herald("campaign", "send", client_id, name, "--occurrence", label)
                (fired,) = deployed.sql(
                    "select fired_at from herald_ops.campaign_occurrences "
                    f"where client_id = '{client_id}' and campaign = '{name}' and occurrence = '{label}'"
                )
                as_of = deployed.sql("select as_of from herald_ops.plan_runs order by started_at desc limit 1")[0]
                preview = preview_plan(
                    as_found, deployment, settings.config_dir, links_from_env(settings.home), client_id, campaign,
                    datetime.fromisoformat(as_of["as_of"]), occurrence=label,
                    fired_at=datetime.fromisoformat(fired["fired_at"]),
                )  # fmt: skip
            # the rows the send's own pass planned (a later pass in the same tick, a schedule's,
            # may plan carried-over messages too: its rows have a later planned_at)
            new_rows = [
                r
                for r in deployed.sql(
                    "select message_key, contact_id, step, status, reason, send_after, channel, variant, planned_at "
                    f"from marts.message_plan where client_id = '{client_id}' and campaign = '{name}'"
                )
                if r["message_key"] not in planned_before
            ]
            first_pass = min((r["planned_at"] for r in new_rows), default=None)
            sent = {
                (r["contact_id"], r["step"], r["status"], r["reason"], r["send_after"], r["channel"], r["variant"])
                for r in new_rows
                if r["planned_at"] == first_pass
            }
            previewed = {
                (r.contact_id, r.step, "planned" if r.outcome == "held" else r.outcome,
                 r.reason if r.outcome == "excluded" else None,
                 r.send_after.isoformat(sep=" ") if r.send_after else None, r.channel, r.variant)
                for r in preview.rows
                if r.outcome in ("planned", "held", "excluded")
            }  # fmt: skip
            assert previewed == {_normalized(row) for row in sent}, f"{client_id}/{name}"
            compared += 1
    assert compared == sum(len(c.campaigns) for c in deployment.clients.values()) >= 4


def _normalized(row: tuple) -> tuple:
    """A plan row as `herald sql` prints it → the preview's types (timestamps as 'YYYY-MM-DD HH:MM:SS')."""
    contact, step, status, reason, send_after, channel, variant = row
    when = datetime.fromisoformat(send_after).isoformat(sep=" ") if send_after else None
    return (contact, step, status, reason if status == "excluded" else None, when, channel, variant)
