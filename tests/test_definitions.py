"""The Definitions load, every job/sensor resolves, and the graph connects Python to dbt."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import pytest

from resources.dbt import ensure_manifest


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs()


def test_importing_the_definitions_loads_neither_the_configuration_nor_dbt() -> None:
    # what `dagster dev`'s processes and every `herald` command that imports orchestration pay
    probe = (
        "import sys, herald.config, herald.config.loader as loader\n"
        "calls = []\n"
        "real = loader.load_deployment\n"
        "herald.config.load_deployment = loader.load_deployment = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
        "import orchestration.definitions\n"
        "heavy = sorted(m for m in ('dagster_dbt', 'dbt.cli.main', 'phonenumbers.geocoder') if m in sys.modules)\n"
        "print(heavy, len(calls))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] 0"


def test_importing_the_definitions_starts_no_process() -> None:
    # every run the daemon launches imports the definitions: croniter used to run `file` on the
    # interpreter twice (platform.architecture) before herald/__init__.py answered it
    probe = (
        "import os, subprocess\n"
        "started = []\n"
        "real_popen, real_fork = subprocess.Popen.__init__, os.fork\n"
        "subprocess.Popen.__init__ = lambda self, *a, **k: started.append(a[0] if a else k) or real_popen(self, *a, **k)\n"
        "os.fork = lambda: started.append('fork') or real_fork()\n"
        "import orchestration.definitions\n"
        "import multiprocessing.resource_tracker as tracker\n"
        "print(started, tracker._resource_tracker._pid)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] None"


def test_jobs_and_sensors_resolve(defs: dg.Definitions) -> None:
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"ingest_packet_job", "transform_packets_job"}
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {
        "packet_arrival_sensor", "packet_landed_sensor", "contacts_refreshed_sensor",
        "campaign_triggers_sensor", "manual_send_sensor", "inbound_events_sensor",
        "provider_events_sensor", "twilio_polling_sensor", "low_credit_sensor", "staff_alerts_sensor",
        "webhooks_sensor", "messages_due_sensor", "run_failure_sensor",
    }  # fmt: skip
    assert sensors["messages_due_sensor"].job_name == "deliver_messages_job"
    assert sensors["provider_events_sensor"].job_name == "apply_provider_events_job"
    assert sensors["inbound_events_sensor"].job_name == "apply_replies_job"
    assert sensors["packet_arrival_sensor"].job_name == "ingest_packet_job"
    assert sensors["packet_landed_sensor"].job_name == "transform_packets_job"
    assert {t.job_name for t in sensors["contacts_refreshed_sensor"].targets} == {
        "refresh_segments_job", "refresh_analytics_job",
    }  # fmt: skip
    assert sensors["campaign_triggers_sensor"].job_name == "send_campaigns_job"
    assert sensors["manual_send_sensor"].job_name == "send_campaigns_job"
    assert sensors["low_credit_sensor"].job_name == "alert_low_credit_job"
    assert {t.job_name for t in sensors["twilio_polling_sensor"].targets} == {
        "apply_provider_events_job", "apply_replies_job",
    }  # fmt: skip
    for sensor in sensors.values():
        for target in sensor.targets:
            defs.resolve_job_def(target.job_name)  # raises if the job is missing or its selection does not resolve
    for job in ("ingest_packet_job", "send_campaigns_job", "deliver_messages_job"):
        defs.resolve_job_def(job)


def test_a_transform_builds_the_contact_marts_and_the_analytics_job_the_rest_of_the_project(
    defs: dg.Definitions,
) -> None:
    from assets.transform.dbt import DBT_ASSETS_NAME

    dbt_models = next(
        a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and a.node_def.name == DBT_ASSETS_NAME
    )
    transform, analytics = (defs.resolve_job_def(n) for n in ("transform_packets_job", "refresh_analytics_job"))

    def models(job: dg.JobDefinition) -> set[str]:
        return {"/".join(k.path) for k in job.asset_layer.executable_asset_keys}

    def checks(job: dg.JobDefinition) -> set[str]:
        return {f"{'/'.join(c.asset_key.path)}:{c.name}" for c in job.asset_layer.asset_graph.asset_check_keys
                if "/".join(c.asset_key.path) in models(job)}  # fmt: skip

    # the contact marts a plan or a segment reads are fresh after the transform alone
    assert {"marts/contacts", "marts/contact_attributes", "marts/contact_template_variables",
            "marts/contact_sources", "marts/appointments", "marts/funnel_events"} <= models(transform)  # fmt: skip
    # what reads the analytics marts or plans waits for the next job (client_events reads conversions)
    assert not {m for m in models(transform) if m.startswith("analytics/")}
    assert {"marts/client_events", "marts/message_plan", "analytics/client_dashboard"} <= models(analytics)
    # together they are one whole build: every model and every test, each once
    every_model = {"/".join(k.path) for k in dbt_models.keys}
    assert models(transform) | models(analytics) == every_model
    assert not models(transform) & models(analytics)
    every_check = {f"{'/'.join(c.asset_key.path)}:{c.name}" for c in dbt_models.check_keys}
    assert checks(transform) | checks(analytics) == every_check and not checks(transform) & checks(analytics)


def test_dbt_steps_are_named_for_the_models_they_build(defs: dg.Definitions) -> None:
    import re

    from assets.transform.dbt import MODELS_TAG

    send = defs.resolve_job_def("send_campaigns_job")
    steps = {name: node.definition for name, node in send.graph.node_dict.items() if name.startswith("dbt_")}
    # dbt runs on both sides of the outbox: five parts, each named for the model its others lead to
    assert set(steps) == {
        "dbt_journey_transitions_and_9_more", "dbt_conversions_and_1_more", "dbt_credit_transactions",
        "dbt_attribution_by_campaign_and_4_more", "dbt_client_dashboard_and_10_more",
    }  # fmt: skip
    plan = steps["dbt_journey_transitions_and_9_more"]
    assert set(plan.tags[MODELS_TAG].split(",")) >= {"journey_transitions", "int_message_plan__judged"}
    assert plan.description.startswith("dbt build of 10 models: ")
    assert steps["dbt_credit_transactions"].tags[MODELS_TAG] == "credit_transactions"
    # no job shows Dagster's numbered copies of the dbt op; one op object per name across jobs
    for job in defs.resolve_all_job_defs():
        assert not [n for n in job.graph.node_dict if re.fullmatch(r"herald_dbt_models_\d+", n)], job.name
    transform = defs.resolve_job_def("transform_packets_job")
    assert set(transform.graph.node_dict) == {"dbt_contact_template_variables_and_20_more"}


def test_the_delivery_checks_run_with_the_outbox_and_delivery(defs: dg.Definitions) -> None:
    def checks(job: str) -> set[str]:
        graph = defs.resolve_job_def(job).asset_layer.asset_graph
        return {c.name for c in graph.asset_check_keys if c.asset_key.path[0] == "herald_ops"}

    delivery = {"no_message_sent_twice", "no_suppressed_recipients", "sent_inside_send_windows"}
    assert checks("send_campaigns_job") == delivery | {"no_duplicate_messages", "every_message_accounted_for"}
    assert checks("deliver_messages_job") == delivery
    assert checks("apply_replies_job") == delivery
    assert "herald_ops/operator_incidents" in {
        "/".join(k.path) for k in defs.resolve_job_def("staff_alerts_job").asset_layer.executable_asset_keys
    }


def test_a_packets_path_from_drop_to_send_is_paced_by_at_most_30_seconds(defs: dg.Definitions) -> None:
    # under the daemon each sensor on the path waits up to its minimum interval after the run
    # before it ends: drop zone listing → ingest → dbt → segments → triggered send
    path = ("packet_arrival_sensor", "packet_landed_sensor", "contacts_refreshed_sensor", "campaign_triggers_sensor")
    sensors = {s.name: s for s in defs.sensors or []}
    intervals = [sensors[name].minimum_interval_seconds for name in path]
    assert intervals == [15, 5, 5, 5] and sum(intervals) <= 30


def test_every_cron_campaign_has_a_schedule_in_its_clients_time_zone(defs: dg.Definitions) -> None:
    schedules = {s.name: s for s in defs.schedules or []}
    assert set(schedules) == {
        "lakeside_realty__new_listings__schedule", "northfield_college__admitted_nurture__schedule",
        "retention_purge_schedule", "ab_results_schedule", "client_reports_schedule", "check_marts_schedule",
        "advance_journeys_schedule", "bright_smiles_dental__staff_digest_schedule",
        "lakeside_realty__staff_digest_schedule", "northfield_college__staff_digest_schedule",
        "summit_roofing__staff_digest_schedule",
    }  # fmt: skip
    listings = schedules["lakeside_realty__new_listings__schedule"]
    assert (listings.cron_schedule, listings.execution_timezone) == ("30 9 * * 1-5", "America/Denver")
    assert listings.job_name == "send_campaigns_job"
    assert schedules["advance_journeys_schedule"].job_name == "advance_journeys_job"


def test_a_campaign_schedule_names_its_occurrence_by_local_time(defs: dg.Definitions) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    schedule = next(s for s in defs.schedules if s.name == "northfield_college__admitted_nurture__schedule")
    # the fall-back morning in New York: 10:00 EST is 15:00 UTC
    fire = datetime(2026, 11, 1, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    with dg.build_schedule_context(scheduled_execution_time=fire) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.run_key == "northfield_college/admitted_nurture/2026-11-01T10:00"
    spec = request.run_config["ops"]["herald_ops__campaign_occurrences"]["config"]["occurrences"][0]
    assert spec["occurrence"] == "2026-11-01T10:00" and spec["fired_at"] == "2026-11-01T15:00:00"


def test_every_dbt_source_has_a_producing_python_asset(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    manifest = json.loads(ensure_manifest().read_text())
    sources = {dg.AssetKey([s["source_name"], s["name"]]) for s in manifest["sources"].values()}
    assert sources, "the dbt project declares no sources"
    unproduced = {k.to_user_string() for k in sources if not graph.has(k) or not graph.get(k).is_materializable}
    # written by every segment asset (segments/<client>/<name>), not by one asset of that key
    by_segment_assets = {"herald_ops/segment_membership_events", "segments/segment_members"}
    # written by inbound reply processing (herald_ops/inbound_processing) beside its own table, and
    # (suppressions, audit_log, consent_events) by the web pages, retention and manual tools too
    by_compliance = {
        "herald_ops/suppressions", "herald_ops/consent_events", "herald_ops/audit_log",
        "herald_ops/appointment_responses",
        "herald_ops/privacy_salt",  # written by the first erasure (herald/privacy), never by an asset
        # written by applying the preference page's events and SMS PAUSE/RESUME (herald/compliance/preferences.py)
        "herald_ops/contact_preferences",
        "herald_ops/consent_requests",  # the opt-in form's sign-ups, written when provider events are applied
    }  # fmt: skip
    # the ledger is written by every delivery run (debits) and `herald credits add` (purchases);
    # packet events by packet landing and by the dbt build (mapped, cleaned)
    by_several = {"herald_ops/credit_ledger", "herald_ops/packet_events"}
    # a pause or resume on the portal's Campaigns page (herald/portal/campaigns.py), never an asset
    by_portal = {"herald_ops/campaign_pauses"}
    # what the next send pass reads back from later stages (replies, clicks, the enrollment
    # ledger), deliberately without an asset edge: the plan would otherwise depend on itself
    fed_back = {k for k in unproduced if k.startswith("journey_feedback")}
    assert fed_back >= {"journey_feedback/enrollments", "journey_feedback/outbox", "journey_feedback/plan_runs"}
    assert unproduced - fed_back == by_segment_assets | by_compliance | by_several | by_portal


def test_the_graph_runs_from_packets_through_dbt_to_the_marts(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    contacts = dg.AssetKey(["marts", "contacts"])
    upstream = graph.get(contacts).parent_keys
    ancestors: set[dg.AssetKey] = set()
    frontier = set(upstream)
    while frontier:
        key = frontier.pop()
        if key not in ancestors:
            ancestors.add(key)
            frontier |= set(graph.get(key).parent_keys)
    assert dg.AssetKey(["herald_raw", "packet_rows"]) in ancestors
    assert dg.AssetKey(["herald_ops", "load_map_columns"]) in ancestors
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"ingest", "staging", "intermediate", "marts"} <= groups


def test_packet_checks_and_dbt_tests_are_asset_checks(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    checks = graph.asset_check_keys
    packet_checks = {c.name for c in checks if c.asset_key == dg.AssetKey(["herald_raw", "packet_rows"])}
    assert packet_checks == {
        "every_row_accounted_for",
        "required_fields_present",
        "phones_mostly_valid",
        "emails_mostly_valid",
        "row_count_matches_manifest",
    }
    dbt_checks = [c for c in checks if c.asset_key.path[0] in ("staging", "intermediate", "marts")]
    assert any(c.asset_key == dg.AssetKey(["marts", "contacts"]) for c in dbt_checks)


def test_every_warehouse_writer_claims_the_warehouse_pool(defs: dg.Definitions) -> None:
    from assets.partitions import WAREHOUSE_POOL

    for assets_def in defs.assets or []:
        assert isinstance(assets_def, dg.AssetsDefinition)
        pools = {assets_def.node_def.pool} if hasattr(assets_def.node_def, "pool") else set()
        assert pools == {WAREHOUSE_POOL}, assets_def.node_def.name


def test_the_runs_that_change_the_marts_sources_rebuild_those_marts(defs: dg.Definitions) -> None:
    """A STOP, a receipt or a delivery is in the marts when its run ends (suppressions, messages,
    deliveries, conversations, credits), and no reply, event or delivery run re-plans a send."""

    def models(job: str) -> set[str]:
        keys = defs.resolve_job_def(job).asset_layer.selected_asset_keys
        return {k.to_user_string() for k in keys if k.path[0] in ("intermediate", "marts", "analytics")}

    changed = {"marts/messages", "marts/deliveries", "marts/conversations", "marts/conversation_messages"}
    assert changed | {"marts/credit_transactions"} <= models("deliver_messages_job")
    assert changed | {"marts/suppressions", "marts/consent_status", "marts/credit_transactions",
                      "marts/appointment_confirmations"} <= models("apply_replies_job")  # fmt: skip
    assert changed | {"marts/suppressions", "marts/consent_status", "marts/engagement_events"} <= models(
        "apply_provider_events_job"
    )
    for job in ("deliver_messages_job", "apply_replies_job", "apply_provider_events_job"):
        assert not {m for m in models(job) if m.startswith("intermediate/")} | (
            models(job) & {"marts/message_plan", "marts/journey_transitions"}
        ), job


def test_frequent_runs_rebuild_marts_without_their_dbt_tests_which_run_hourly(defs: dg.Definitions) -> None:
    """Send, delivery, reply and provider-event runs build the marts over the outbox without their dbt
    tests; check_marts_job runs exactly those tests (and builds nothing), and check_marts_schedule
    requests it hourly. The planning models keep their tests in the send pass."""
    every_check = defs.resolve_asset_graph().asset_check_keys

    def dbt_checks(job: str) -> set[dg.AssetCheckKey]:
        return {c for c in defs.resolve_job_def(job).asset_layer.asset_graph.asset_check_keys if c.asset_key.path[0]
                in ("marts", "analytics")}  # fmt: skip

    def models(job: str) -> set[dg.AssetKey]:
        keys = defs.resolve_job_def(job).asset_layer.executable_asset_keys
        return {k for k in keys if k.path[0] in ("marts", "analytics")}

    checked = dbt_checks("check_marts_job")
    assert not models("check_marts_job") and len(checked) > 50
    for job in ("deliver_messages_job", "apply_replies_job", "apply_provider_events_job"):
        assert models(job) and not dbt_checks(job), job
        assert {c for c in every_check if c.asset_key in models(job)} <= checked, job
    send = {c.asset_key.path[-1] for c in dbt_checks("send_campaigns_job")}
    assert "message_plan" in send and "messages" not in send, send
    schedule = {s.name: s for s in defs.schedules or []}["check_marts_schedule"]
    assert schedule.job_name == "check_marts_job" and schedule.cron_schedule == "50 * * * *"


def test_the_hourly_mart_tests_cover_only_marts_that_have_been_built(defs: dg.Definitions) -> None:
    """A new deployment's first :50 comes before most marts exist: the schedule skips while none of
    them is built, then asks for the tests of the built ones only (a dbt test of a missing table
    fails the run, which says nothing about the data)."""
    schedule = {s.name: s for s in defs.schedules or []}["check_marts_schedule"]
    every = defs.resolve_job_def("check_marts_job").asset_layer.asset_graph.asset_check_keys
    messages, dashboard = dg.AssetKey(["marts", "messages"]), dg.AssetKey(["analytics", "client_dashboard"])
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def())
        result = schedule.evaluate_tick(context)
        assert not result.run_requests and "no mart the hourly tests cover has been built yet" in result.skip_message
        for key in (messages, dashboard):
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        (request,) = schedule.evaluate_tick(context).run_requests
    wanted = {c for c in every if c.asset_key in (messages, dashboard)}
    assert wanted and {c.asset_key for c in wanted} == {messages, dashboard}
    assert set(request.asset_check_keys) == wanted and request.tags["herald/checks"] == str(len(wanted))
