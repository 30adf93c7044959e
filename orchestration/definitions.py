"""The one Definitions object: it only collects and merges."""

import dagster as dg

from assets.analytics.ab_tests import ab_results_job, ab_results_schedule, ab_test_results
from assets.billing.credits import alert_low_credit_job, credit_alerts
from assets.compliance.inbound import inbound_processing
from assets.events.provider_events import apply_provider_events_job, provider_event_processing
from assets.compliance.retention import retention_purge, retention_purge_job, retention_purge_schedule
from assets.delivery.campaigns import campaign_occurrences, delivery, outbox
from assets.ingest.config_tables import client_config
from assets.ingest.packets import packet_rows
from assets.reports.client_reports import client_report_assets, client_reports_job, client_reports_schedule
from assets.segments.segments import segment_assets
from assets.transform.dbt import herald_dbt_models
from orchestration.jobs import (
    apply_replies_job,
    deliver_messages_job,
    ingest_packet_job,
    refresh_segments_job,
    send_campaigns_job,
    transform_packets_job,
)
from orchestration.schedules import campaign_schedules, deliver_due_schedule
from resources import DropZoneResource, HeraldConfigResource, ProvidersResource, WarehouseResource, build_dbt_resource
from sensors.campaign_triggers import campaign_triggers_sensor
from sensors.inbound_events import inbound_events_sensor
from sensors.low_credit import low_credit_sensor
from sensors.provider_events import provider_events_sensor
from sensors.twilio_polling import twilio_polling_sensor
from sensors.manual_send import manual_send_sensor
from sensors.contacts_refreshed import contacts_refreshed_sensor
from sensors.packet_arrival import packet_arrival_sensor
from sensors.packet_landed import packet_landed_sensor

defs = dg.Definitions(
    assets=[client_config, packet_rows, herald_dbt_models, *segment_assets, campaign_occurrences, outbox, delivery,
            retention_purge, inbound_processing, provider_event_processing, credit_alerts, ab_test_results,
            *client_report_assets],
    jobs=[ingest_packet_job, transform_packets_job, refresh_segments_job, send_campaigns_job, deliver_messages_job,
          retention_purge_job, apply_replies_job, apply_provider_events_job, alert_low_credit_job, ab_results_job,
          client_reports_job],
    schedules=[*campaign_schedules, deliver_due_schedule, retention_purge_schedule, ab_results_schedule,
               client_reports_schedule],
    sensors=[packet_arrival_sensor, packet_landed_sensor, contacts_refreshed_sensor, campaign_triggers_sensor,
             manual_send_sensor, inbound_events_sensor, provider_events_sensor, twilio_polling_sensor,
             low_credit_sensor],
    resources={
        "warehouse": WarehouseResource(),
        "dropzone": DropZoneResource(),
        "herald_config": HeraldConfigResource(),
        "dbt": build_dbt_resource(),
        "providers": ProvidersResource(),
    },
    # One process per run: steps run in the run's own process (no per-step subprocess start-up).
    executor=dg.in_process_executor,
)
