"""One report asset per configured client, keyed ``reports/<client_id>``: the client's HTML report
over the last 30 days, written under ``$HERALD_HOME/reports/<client_id>/`` and linked from the
materialization with its headline numbers; refreshed daily by ``client_reports_schedule``."""

import shutil
from datetime import datetime, timezone

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from assets.analytics.ab_tests import AB_TEST_RESULTS_KEY
from assets.transform.dbt import herald_dbt_models
from herald.config import load_deployment
from herald.reports.client_report import build_report, default_output, headline_markdown, write_report
from herald.settings import Settings
from orchestration.partitions import WAREHOUSE_POOL
from resources import HeraldConfigResource, WarehouseResource

REPORTS_GROUP = "reports"
REPORT_PERIOD_DAYS = 30
CLIENT_REPORTS_CRON = "0 6 * * *"  # after the A/B results (04:00 UTC)
LATEST_NAME = "latest.html"
MARTS_READ = ("campaign_performance_daily", "compliance_daily", "attribution_by_channel", "client_dashboard")


def client_report_key(client_id: str) -> dg.AssetKey:
    return dg.AssetKey(["reports", client_id])


def _mart_deps() -> list[dg.AssetKey]:
    """The dbt marts the report reads that the project has. A mart not built yet is left out:
    the report shows its section as "no data yet" rather than failing."""
    keys = []
    for model in MARTS_READ:
        try:
            keys.append(get_asset_key_for_model([herald_dbt_models], model))
        except Exception:  # dagster_dbt raises a bare KeyError/Exception for a model not in the manifest
            continue
    return keys


def build_client_report_asset(client_id: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=client_report_key(client_id),
        group_name=REPORTS_GROUP,
        deps=[*_mart_deps(), AB_TEST_RESULTS_KEY],
        pool=WAREHOUSE_POOL,  # a DuckDB reader cannot open the file while a writer holds it
        kinds={"python", "html"},
        tags={"herald/client": client_id},
    )
    def _report(
        context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """The client's report over the last 30 days: one HTML file with headline numbers, charts
        (delivered over time, response rate by campaign, A/B results, attribution by channel) and tables."""
        deployment = herald_config.load()
        if client_id not in deployment.clients:
            raise dg.Failure(f"client {client_id} is no longer configured")
        report = build_report(warehouse.get(), deployment, client_id, REPORT_PERIOD_DAYS, datetime.now(timezone.utc))
        folder = Settings.from_env().home / "reports" / client_id
        path = write_report(report, "html", folder / default_output(client_id, "html", report.end_date))
        shutil.copyfile(path, folder / LATEST_NAME)  # a stable address for bookmarks
        context.log.info(f"report for {client_id} ({report.start_date} to {report.end_date}) written to {path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "url": dg.MetadataValue.url(path.as_uri()),
                "period": dg.MetadataValue.text(f"{report.start_date} to {report.end_date} ({report.time_zone})"),
                "headline": dg.MetadataValue.md(headline_markdown(report)),
                "delivered": dg.MetadataValue.int(report.headline.delivered or 0),
                "sections_without_data": dg.MetadataValue.text(
                    ", ".join(t.title for t in report.tables if not t.has_data) or "none"
                ),
            }
        )

    return _report


client_report_assets = [
    build_client_report_asset(client_id)
    for client_id in sorted(load_deployment(Settings.from_env().config_dir).clients)
]

client_reports_job = dg.define_asset_job(
    "client_reports_job",
    selection=dg.AssetSelection.groups(REPORTS_GROUP),
    description="Writes every client's HTML report over the last 30 days under $HERALD_HOME/reports/.",
    tags={"herald/stage": "reports"},
)

client_reports_schedule = dg.ScheduleDefinition(
    name="client_reports_schedule",
    cron_schedule=CLIENT_REPORTS_CRON,
    execution_timezone="UTC",
    job=client_reports_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 06:00 UTC: refreshes every client's report (after the A/B results at 04:00).",
)
