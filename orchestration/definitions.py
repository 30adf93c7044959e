"""The one Definitions, built by a function: it loads the configuration once, builds what depends
on it (segment and report assets, campaign schedules) and on the dbt manifest (dbt assets and the
jobs that select them), and collects the rest. Importing this module loads neither."""

from functools import lru_cache
from pathlib import Path

import dagster as dg

from assets.alerts.operator_alerts import operator_incidents
from assets.alerts.staff_alerts import staff_alerts
from assets.analytics.ab_tests import build_ab_test_results
from assets.appointments.digest import staff_digests
from assets.billing.credits import credit_alerts
from assets.compliance.inbound import build_inbound_processing
from assets.compliance.retention import retention_purge
from assets.delivery.campaigns import build_campaign_assets, delivery
from assets.delivery.checks import DELIVERY_CHECKS
from assets.events.provider_events import provider_event_processing
from assets.ingest.config_tables import client_config
from assets.ingest.packets import packet_rows
from assets.reports.client_reports import build_client_report_assets
from assets.segments.segments import build_segment_assets
from assets.webhooks.deliveries import webhook_deliveries
from herald.config import load_deployment
from herald.settings import Settings
from orchestration.jobs import (
    ab_results_job,
    alert_low_credit_job,
    build_dbt_jobs,
    client_reports_job,
    ingest_packet_job,
    refresh_segments_job,
    retention_purge_job,
    staff_alerts_job,
    staff_digest_job,
    webhooks_job,
)
from orchestration.schedules import (
    ab_results_schedule,
    advance_journeys_schedule,
    build_campaign_schedules,
    build_digest_schedules,
    check_marts_schedule,
    client_reports_schedule,
    retention_purge_schedule,
)
from resources import (
    DropZoneResource,
    HeraldConfigResource,
    HeraldSettingsResource,
    ProvidersResource,
    WarehouseResource,
)
from sensors.campaign_triggers import build_campaign_triggers_sensor
from sensors.contacts_refreshed import build_contacts_refreshed_sensor
from sensors.inbound_events import inbound_events_sensor
from sensors.low_credit import build_low_credit_sensor
from sensors.manual_send import manual_send_sensor
from sensors.messages_due import messages_due_sensor
from sensors.operator_alerts import run_failure_sensor
from sensors.packet_arrival import packet_arrival_sensor
from sensors.packet_landed import packet_landed_sensor
from sensors.provider_events import provider_events_sensor
from sensors.staff_alerts import staff_alerts_sensor
from sensors.twilio_polling import build_twilio_polling_sensor
from sensors.webhooks import build_webhooks_sensor


@dg.definitions
def defs() -> dg.Definitions:
    """Herald's Definitions for the configuration directory and warehouse the settings name."""
    settings = Settings.from_env()
    return build_definitions(settings.config_dir, settings.warehouse.dbt_target)


# Dagster calls the definitions function again for every run it reconstructs in a process
# (`herald tick` executes its runs in-process): build once per configuration and dbt target.
@lru_cache(maxsize=4)
def build_definitions(config_dir: Path, dbt_target: str) -> dg.Definitions:
    # dagster-dbt (and dbt-core with it) takes seconds to import: it is imported here, when the
    # definitions load, not when a module imports this one
    from assets.transform.dbt import load_dbt_models
    from resources.dbt import build_dbt_resource

    deployment = load_deployment(config_dir)
    dbt_models = load_dbt_models(dbt_target)
    dbt_jobs = build_dbt_jobs(dbt_models)
    python_assets = [client_config, packet_rows, delivery, retention_purge, provider_event_processing, credit_alerts,
                     staff_alerts]  # fmt: skip
    built_assets = [
        dbt_models,
        *build_segment_assets(deployment, dbt_models),
        *build_campaign_assets(dbt_models),
        build_inbound_processing(dbt_models),
        build_ab_test_results(dbt_models),
        *build_client_report_assets(deployment, dbt_models),
    ]
    python_assets.append(staff_digests)
    python_assets.append(webhook_deliveries)
    python_assets.append(operator_incidents)
    jobs = [ingest_packet_job, refresh_segments_job, retention_purge_job, alert_low_credit_job, ab_results_job,
            client_reports_job, staff_alerts_job, staff_digest_job, *dbt_jobs]  # fmt: skip
    jobs.append(webhooks_job)
    schedules = [advance_journeys_schedule, retention_purge_schedule, ab_results_schedule, check_marts_schedule,
                 client_reports_schedule,
                 *build_campaign_schedules(deployment), *build_digest_schedules(deployment)]  # fmt: skip
    sensors = [
        packet_arrival_sensor,
        packet_landed_sensor,
        manual_send_sensor,
        messages_due_sensor,
        inbound_events_sensor,
        provider_events_sensor,
        staff_alerts_sensor,
        run_failure_sensor,
        build_webhooks_sensor(sum(len(c.config.webhooks) for c in deployment.clients.values())),
        build_contacts_refreshed_sensor(
            dbt_jobs.transform_packets_job, refresh_segments_job, dbt_jobs.refresh_analytics_job
        ),
        build_campaign_triggers_sensor(refresh_segments_job, dbt_jobs.send_campaigns_job),
        build_twilio_polling_sensor(dbt_jobs.apply_provider_events_job, dbt_jobs.apply_replies_job),
        build_low_credit_sensor(
            [dbt_jobs.send_campaigns_job, dbt_jobs.deliver_messages_job, dbt_jobs.apply_replies_job],
            alert_low_credit_job,
        ),
    ]
    return dg.Definitions(
        assets=[*python_assets, *built_assets],
        asset_checks=DELIVERY_CHECKS,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "warehouse": WarehouseResource(),
            "dropzone": DropZoneResource(),
            "herald_config": HeraldConfigResource(),
            "herald_settings": HeraldSettingsResource(),
            "dbt": build_dbt_resource(),
            "providers": ProvidersResource(),
        },
        # One process per run: steps run in the run's own process (no per-step subprocess start-up).
        executor=dg.in_process_executor,
    )
