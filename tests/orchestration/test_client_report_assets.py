"""The report assets: one per configured client, in the reports group, with their job and schedule."""

from __future__ import annotations

import dagster as dg

from assets.reports.client_reports import REPORTS_GROUP, client_report_key
from herald.config import Deployment


def test_one_asset_per_client(defs: dg.Definitions, deployment: Deployment) -> None:
    graph = defs.resolve_asset_graph()
    keys = sorted((k for k in graph.get_all_asset_keys() if k.path[0] == "reports"), key=lambda k: k.path)
    assert keys == [client_report_key(c) for c in sorted(deployment.clients)]
    assert keys[0] == dg.AssetKey(["reports", "bright_smiles_dental"])
    for key in keys:
        node = graph.get(key)
        assert node.group_name == REPORTS_GROUP
        deps = {k.to_user_string() for k in node.parent_keys}
        assert {"analytics/campaign_performance_daily", "analytics/ab_test_results"} <= deps


def test_job_and_schedule_resolve(defs: dg.Definitions, deployment: Deployment) -> None:
    job = defs.resolve_job_def("client_reports_job")
    assert {tuple(k.path) for k in job.asset_layer.selected_asset_keys} == {("reports", c) for c in deployment.clients}
    schedule = defs.resolve_schedule_def("client_reports_schedule")
    assert (schedule.cron_schedule, schedule.job_name) == ("0 6 * * *", "client_reports_job")
