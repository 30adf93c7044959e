"""The dbt project as Dagster assets: staging maps packets, intermediate cleans and dedupes,
marts publish contacts, their attributes and funnel events. dbt tests become asset checks.

The assets are built from the parsed manifest by :func:`build_dbt_models`, which the definitions
function calls: importing this module never parses the dbt project."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from assets.partitions import WAREHOUSE_POOL
from herald.packets.transform_steps import record_transform_steps
from herald.reports.headlines import HEADLINE_SQL, headline
from herald.reports.receipts import write_receipts
from resources import DropZoneResource, HeraldDbtResource, WarehouseResource
from resources.dbt import ensure_manifest, run_target_path

DBT_ASSETS_NAME = "herald_dbt_models"


class HeraldDbtTranslator(DagsterDbtTranslator):
    """Models are keyed ``<schema>/<model>`` and grouped by layer; sources keep dbt's
    ``<source>/<table>`` keys, which are exactly the Python assets' keys (``herald_raw/...``)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props.get("schema")
            return dg.AssetKey([schema, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dbt_resource_props.get("config", {}).get("schema") or "transform"
        return None


translator = HeraldDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def build_dbt_models(manifest: Path) -> dg.AssetsDefinition:
    """One Dagster asset per dbt model (and asset checks for its tests), from ``manifest``."""

    @dbt_assets(manifest=manifest, dagster_dbt_translator=translator, pool=WAREHOUSE_POOL, name=DBT_ASSETS_NAME)
    def herald_dbt_models(
        context: dg.AssetExecutionContext,
        dbt: HeraldDbtResource,
        warehouse: WarehouseResource,
        dropzone: DropZoneResource,
    ):
        """Builds the dbt models and runs their tests, then records the mapped and cleaned steps
        of every packet this build took in (``herald_ops.packet_events``) and writes each one's
        receipt into the client's area of the drop zone."""
        # dbt unit tests run in the test suite, not on every production build. The run writes in
        # the deployment's own target folder, seeded with the parsed project (partial parsing).
        invocation = dbt.cli(
            ["build", "--exclude-resource-type", "unit_test"],
            context=context,
            target_path=run_target_path(dbt.target or "duckdb"),
        )
        try:
            yield from invocation.stream()
        finally:
            # if the stream fails part-way, never leave dbt running: it would hold DuckDB's write lock
            if invocation.process.poll() is None:
                invocation.process.terminate()
                invocation.process.wait(timeout=30)
        run_results = invocation.get_artifact("run_results.json")
        # the analytics marts' headline numbers, for the operator in the Dagster UI (read once dbt has
        # let go of the warehouse)
        built = {r["unique_id"].split(".")[-1] for r in run_results.get("results", []) if r.get("status") == "success"}
        for model in sorted(built & HEADLINE_SQL.keys()):
            table = headline(warehouse.get(), model)
            if table is not None:
                yield dg.AssetObservation(asset_key=dg.AssetKey(["analytics", model]),
                                          metadata={"headline": dg.MetadataValue.md(table)})  # fmt: skip
        recorded = record_transform_steps(warehouse.get(), run_results)
        zone = dropzone.get()
        try:
            receipts = write_receipts(zone, warehouse.get(), recorded)
        finally:
            zone.close()
        context.log.info(f"recorded mapped/cleaned steps and wrote receipts for {len(recorded)} packets: {receipts}")

    return herald_dbt_models


def load_dbt_models(target: str | None = None) -> dg.AssetsDefinition:
    """The dbt assets of ``target`` (default: the configured warehouse's), parsing the project
    first when its manifest is missing or stale (a few seconds)."""
    return build_dbt_models(ensure_manifest(target))
