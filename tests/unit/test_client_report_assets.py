"""The report assets: one per configured client, in the reports group, with their job and schedule."""

from __future__ import annotations

import dagster as dg

from assets.reports.client_reports import (
    REPORTS_GROUP,
    client_report_assets,
    client_report_key,
    client_reports_job,
    client_reports_schedule,
)
from herald.config import Deployment
from resources import HeraldConfigResource, WarehouseResource


def test_one_asset_per_client(deployment: Deployment) -> None:
    keys = [a.key for a in client_report_assets]
    assert keys == [client_report_key(c) for c in sorted(deployment.clients)]
    assert keys[0] == dg.AssetKey(["reports", "bright_smiles_dental"])
    for asset in client_report_assets:
        assert asset.group_names_by_key[asset.key] == REPORTS_GROUP
        deps = {k.to_user_string() for k in asset.asset_deps[asset.key]}
        assert {"analytics/campaign_performance_daily", "analytics/ab_test_results"} <= deps


def test_job_and_schedule_resolve() -> None:
    defs = dg.Definitions(
        assets=client_report_assets,
        jobs=[client_reports_job],
        schedules=[client_reports_schedule],
        resources={"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()},
    )
    job = defs.resolve_job_def("client_reports_job")
    assert {n.name for n in job.nodes} == {a.op.name for a in client_report_assets}
    schedule = defs.resolve_schedule_def("client_reports_schedule")
    assert (schedule.cron_schedule, schedule.job_name) == ("0 6 * * *", "client_reports_job")
