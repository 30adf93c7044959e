"""One report asset per configured client, keyed ``reports/<client_id>``: the client's HTML report
over the last 30 days, written under ``$HERALD_HOME/reports/<client_id>/`` and linked from the
materialization with its headline numbers; refreshed daily by ``client_reports_schedule``."""

import shutil

import dagster as dg

from assets.analytics.ab_tests import AB_TEST_RESULTS_KEY
from assets.partitions import WAREHOUSE_POOL
from assets.transform.keys import dbt_model_key
from herald.clock import utcnow_aware
from herald.config import Deployment
from herald.reports.client_report import build_report, default_output, headline_markdown, write_report
from herald.settings import Settings
from resources import HeraldConfigResource, WarehouseResource

REPORTS_GROUP = "reports"
REPORT_PERIOD_DAYS = 30
LATEST_NAME = "latest.html"
MARTS_READ = (
    "deliveries",
    "campaign_performance_daily",
    "compliance_daily",
    "attribution_by_channel",
    "client_dashboard",
    "appointment_confirmations",
    "funnel_events",
    "conversions",
    "attributed_conversions",
    "conversation_messages",
    "engagement_events",
)


def client_report_key(client_id: str) -> dg.AssetKey:
    return dg.AssetKey(["reports", client_id])


def _mart_deps(dbt_models: dg.AssetsDefinition) -> list[dg.AssetKey]:
    """The dbt marts the report reads that the project has. A mart not built yet is left out:
    the report shows its section as "no data yet" rather than failing."""
    keys = []
    for model in MARTS_READ:
        try:
            keys.append(dbt_model_key(dbt_models, model))
        except Exception:  # dagster_dbt raises a bare KeyError/Exception for a model not in the manifest
            continue
    return keys


def build_client_report_asset(dbt_models: dg.AssetsDefinition, client_id: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=client_report_key(client_id),
        group_name=REPORTS_GROUP,
        deps=[*_mart_deps(dbt_models), AB_TEST_RESULTS_KEY],
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
        report = build_report(warehouse.get(), deployment, client_id, REPORT_PERIOD_DAYS, utcnow_aware())
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


def build_client_report_assets(deployment: Deployment, dbt_models: dg.AssetsDefinition) -> list[dg.AssetsDefinition]:
    """One report asset per client the deployment configures."""
    return [build_client_report_asset(dbt_models, client_id) for client_id in sorted(deployment.clients)]
