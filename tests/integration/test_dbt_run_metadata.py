"""What a dbt run shows in Dagster, on both engines: the step is named for the models it builds,
and every mart's materialization carries its row count (dagster/row_count), equal to the table's."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.test_dbt_models import load_dataset


@pytest.mark.parametrize("engine", ENGINES)
def test_a_transform_run_names_its_dbt_step_and_counts_each_marts_rows(
    engine: str, herald_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from assets.transform.dbt import MODELS_TAG
    from orchestration.definitions import build_definitions

    env = herald_env(engine)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    load_dataset(warehouse)  # landed packets, load maps and phone verdicts of the dbt model tests
    warehouse.ensure_schema()
    with warehouse.session() as s:  # the receipts go beside each packet, inside the drop zone
        s.execute(
            "update herald_ops.packets set file_path = client_id || '/archive/' || packet_type || '/' || file_name"
        )
    defs = build_definitions(CONFIG_DIR, settings.warehouse.dbt_target)
    job = defs.resolve_job_def("transform_packets_job")

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = job.execute_in_process(instance=instance)
        # the rest of the project, then a delivery run (nothing due: it rebuilds the marts over the
        # outbox without their tests), then the hourly run of those tests, which builds nothing
        analytics = defs.resolve_job_def("refresh_analytics_job").execute_in_process(instance=instance)
        deliver = defs.resolve_job_def("deliver_messages_job").execute_in_process(instance=instance)
        # as the hourly schedule asks for it: the tests of the marts built so far (all of them, here)
        schedule = next(s for s in defs.schedules or [] if s.name == "check_marts_schedule")
        context = dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def())
        (request,) = schedule.evaluate_tick(context).run_requests
        check_job = defs.resolve_job_def("check_marts_job")
        checked = check_job.get_subset(asset_check_selection=set(request.asset_check_keys)).execute_in_process(
            instance=instance
        )

    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert steps == {"dbt_contact_template_variables_and_20_more"}
    op = job.graph.node_named("dbt_contact_template_variables_and_20_more").definition
    assert "contacts" in op.tags[MODELS_TAG].split(",") and op.description.startswith("dbt build of 21 models: ")

    counts = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        counts[tuple(materialization.asset_key.path)] = materialization.metadata.get("dagster/row_count")
    with warehouse.session(read_only=True) as s:
        contacts = int(s.scalar("select count(*) from marts.contacts"))
        attributes = int(s.scalar("select count(*) from marts.contact_attributes"))
        _, tables = s.query(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('marts', 'analytics') and table_type = 'BASE TABLE'"
        )
    assert contacts > 0
    assert counts[("marts", "contacts")].value == contacts
    assert counts[("marts", "contact_attributes")].value == attributes
    built_tables = {k for k in counts if k in set(tables)}
    assert len(built_tables) >= 8 and all(counts[k] is not None for k in built_tables), counts
    # views (staging, a mart kept as a view) and intermediate steps are not counted: counting a
    # view runs its query
    assert all(v is None for k, v in counts.items() if k not in built_tables)

    def dbt_checks(run: dg.ExecuteInProcessResult) -> dict[tuple[str, ...], list[bool]]:
        found: dict[tuple[str, ...], list[bool]] = {}
        for e in run.all_events:
            if e.event_type_value == "ASSET_CHECK_EVALUATION":
                evaluation = e.event_specific_data
                found.setdefault(tuple(evaluation.asset_key.path), []).append(evaluation.passed)
        return {k: v for k, v in found.items() if k[0] in ("marts", "analytics")}

    assert analytics.success and deliver.success and checked.success
    rebuilt = {
        tuple(m.event_specific_data.materialization.asset_key.path) for m in deliver.get_asset_materialization_events()
    }
    assert {("marts", "messages"), ("marts", "deliveries")} <= rebuilt and not dbt_checks(deliver)
    assert not checked.get_asset_materialization_events()
    tests = dbt_checks(checked)
    assert {("marts", "messages"), ("marts", "deliveries")} <= set(tests) and all(all(v) for v in tests.values()), tests
    # the same tests ran after the packets arrived: in the transform or the analytics refresh
    assert set(tests) <= set(dbt_checks(result)) | set(dbt_checks(analytics))
