"""The dbt project as Dagster assets: staging maps packets, intermediate cleans and dedupes,
marts publish contacts, their attributes and funnel events. dbt tests become asset checks.

The assets are built from the parsed manifest by :func:`build_dbt_models`, which the definitions
function calls: importing this module never parses the dbt project."""

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from assets.partitions import WAREHOUSE_POOL
from herald.packets.transform_steps import record_transform_steps
from herald.portal.reads import PortalReadError, publish_snapshot
from herald.portal.store import drain_spool
from herald.reports.headlines import HEADLINE_SQL, headline
from herald.reports.receipts import write_receipts
from resources import DropZoneResource, HeraldDbtResource, WarehouseResource
from resources.dbt import ensure_manifest, run_target_path

DBT_ASSETS_NAME = "herald_dbt_models"
# the op tag that lists the models one dbt step builds (shown with the step in a run's view)
MODELS_TAG = "herald/models"
_TAG_LIMIT = 255  # characters of the tag's value; the op's description lists every model
# the schemas whose models are tables an operator counts (staging views and intermediate steps are not)
ROW_COUNT_SCHEMAS = ("marts", "analytics")
ROW_COUNT_KEY = "dagster/row_count"  # the key the Dagster UI shows as a table's row count (TableMetadataSet)


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


def subset_op_name(selected: Iterable[dg.AssetKey], deps: Mapping[dg.AssetKey, set[dg.AssetKey]]) -> str:
    """The name of the op that builds the dbt models ``selected`` (a part of the project): the
    model the others lead to (the one with the most selected models upstream of it, then by
    name), and how many more, e.g. ``dbt_message_plan_and_9_more`` or ``dbt_credit_transactions``.

    Dagster names each part of one dbt asset in a job after the asset (``herald_dbt_models``,
    ``herald_dbt_models_2``, ...); a job that runs dbt before and after a Python step has several."""
    chosen = set(selected)

    def upstream(key: dg.AssetKey) -> set[dg.AssetKey]:
        seen: set[dg.AssetKey] = set()
        todo = [d for d in deps.get(key, ()) if d in chosen]
        while todo:
            k = todo.pop()
            if k not in seen:
                seen.add(k)
                todo += [d for d in deps.get(k, ()) if d in chosen]
        return seen

    main = min(chosen, key=lambda k: (-len(upstream(k)), k.path[-1]))
    more = len(chosen) - 1
    return f"dbt_{main.path[-1]}" + (f"_and_{more}_more" if more else "")


# (the dbt op's compute function, the models a subset builds) → the subset's op
_SUBSET_OPS: dict[tuple[int, frozenset[dg.AssetKey]], dg.OpDefinition] = {}


class DbtModelsDefinition(dg.AssetsDefinition):
    """The dbt assets, whose parts are named for what they build.

    A job that selects some of the models runs a subset of this definition; one that runs dbt on
    both sides of a Python step (plan → outbox → messages marts) runs several. Each subset's op is
    named by :func:`subset_op_name` and tagged ``herald/models`` with the models it builds, so a
    run's view says ``dbt_message_plan_and_9_more`` where Dagster would say ``herald_dbt_models_4``.
    The name follows from the selection alone, so a run's process rebuilds the same step keys."""

    @staticmethod
    def dagster_internal_init(**attributes: Any) -> "DbtModelsDefinition":  # type: ignore[override]
        # Dagster copies a definition (binding resources, subsetting) through this constructor,
        # called on the copy's class: kept here, so the copies stay of this class
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return DbtModelsDefinition(**attributes)

    def subset_for(
        self,
        selected_asset_keys: Any,
        selected_asset_check_keys: Any,
    ) -> dg.AssetsDefinition:
        subset = super().subset_for(selected_asset_keys, selected_asset_check_keys)
        keys = set(subset.keys)
        if not subset.is_subset or not keys or keys == set(self.keys):
            return subset
        return self.__class__.dagster_internal_init(
            **{**subset.get_attributes_dict(), "node_def": self._subset_op(frozenset(keys))}
        )

    def _subset_op(self, keys: frozenset[dg.AssetKey]) -> dg.OpDefinition:
        """The op of the subset that builds ``keys``: one object per selection (Dagster refuses
        two op definitions of one name in a code location), named for what it builds."""
        op = self.op
        cached = _SUBSET_OPS.get((id(op.compute_fn), keys))
        if cached is not None:
            return cached
        deps = {spec.key: {d.asset_key for d in spec.deps} for spec in self.specs}
        models = sorted(k.path[-1] for k in keys)
        listed = ",".join(models)
        tag = listed if len(listed) <= _TAG_LIMIT else listed[: _TAG_LIMIT - 20].rsplit(",", 1)[0] + ",..."
        # dagster-dbt's output metadata holds plain values, which rebuilding the outputs warns about
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            renamed = dg.OpDefinition.dagster_internal_init(
                compute_fn=op.compute_fn,
                name=subset_op_name(keys, deps),
                ins={i.name: dg.In.from_definition(i) for i in op.input_defs},
                outs={o.name: dg.Out.from_definition(o) for o in op.output_defs},
                description=f"dbt build of {len(models)} models: {', '.join(models)}",
                config_schema=op.config_schema,
                required_resource_keys=op.required_resource_keys,
                tags={**op.tags, MODELS_TAG: tag},
                version=None,
                retry_policy=op.retry_policy,
                code_version=op._version,  # as OpDefinition.with_replaced_properties copies it
                pool=op.pool,
            )
        _SUBSET_OPS[(id(op.compute_fn), keys)] = renamed  # the cache keeps compute_fn alive: its id stays its own
        return renamed


def row_counts(session: Any, models: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Rows of each ``(schema, model)`` that is a table in the warehouse (views are skipped:
    counting one runs its query)."""
    wanted = set(models)
    if not wanted:
        return {}
    schemas = sorted({schema for schema, _ in wanted})
    _, tables = session.query(
        "select table_schema, table_name from information_schema.tables "
        f"where table_type = 'BASE TABLE' and table_schema in ({', '.join('?' * len(schemas))})",
        schemas,
    )
    found = sorted({(s, t) for s, t in tables} & wanted)
    if not found:
        return {}
    union = " union all ".join(f"select '{s}', '{t}', count(*) from {s}.{t}" for s, t in found)
    _, rows = session.query(union)
    return {(s, t): int(n) for s, t, n in rows}


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
        events = []
        try:
            # dbt has already run to the end (in process): the events are held back until each
            # mart's rows are counted, then yielded with dagster/row_count in their metadata
            events = list(invocation.stream())
        finally:
            # if the stream fails part-way, never leave dbt running: it would hold DuckDB's write lock
            if invocation.process.poll() is None:
                invocation.process.terminate()
                invocation.process.wait(timeout=30)
        run_results = invocation.get_artifact("run_results.json")
        yield from with_row_counts(context, warehouse, events)
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
        # the portal's audit rows waiting in its own store (DuckDB) join herald_ops.audit_log while
        # this build holds the warehouse's pool slot (a failure leaves them spooled for the next)
        try:
            moved = drain_spool(warehouse.get().target, lock_wait_seconds=5.0)
        except Exception as exc:
            context.log.warning(f"the portal's audit spool was not moved: {type(exc).__name__}: {exc}")
        else:
            if moved:
                context.log.info(f"moved {moved} portal audit rows from the portal store into herald_ops.audit_log")
        # the last write of the build is done: the portal's read path gets the new state (DuckDB)
        # (a failed publish never fails the build: the portal keeps the last snapshot, says its time)
        try:
            published = publish_snapshot(warehouse.get().target)
        except PortalReadError as exc:
            context.log.warning(str(exc))
        except Exception as exc:  # logged with its type; the marts are built either way
            context.log.warning(f"the portal snapshot was not published: {type(exc).__name__}: {exc}")
        else:
            if published is not None:
                context.log.info(f"published the portal snapshot in {published.seconds:.2f} s: {published.path.name}")

    return DbtModelsDefinition.dagster_internal_init(**herald_dbt_models.get_attributes_dict())


def with_row_counts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, events: list[Any]) -> list[Any]:
    """``events`` with ``dagster/row_count`` added to each materialization of a mart or an
    analytics model. Counted by Herald after the build, on either engine: dagster-dbt's
    ``fetch_row_counts()`` counts through the dbt adapter that HeraldDbtResource leaves closed
    (it would hold DuckDB's write lock after the build)."""
    targets: dict[int, tuple[str, str]] = {}
    for i, event in enumerate(events):
        if isinstance(event, dg.Output):
            key = context.assets_def.keys_by_output_name[event.output_name]
        elif isinstance(event, dg.AssetMaterialization):
            key = event.asset_key
        else:
            continue
        if len(key.path) == 2 and key.path[0] in ROW_COUNT_SCHEMAS:
            targets[i] = (key.path[0], key.path[1])
    if not targets:
        return events
    with warehouse.get().session() as session:  # as the headlines read (DuckDB: one configuration per process)
        counts = row_counts(session, targets.values())
    counted = list(events)
    for i, relation in targets.items():
        if relation in counts:
            event = events[i]
            metadata = {**(event.metadata or {}), ROW_COUNT_KEY: dg.MetadataValue.int(counts[relation])}
            counted[i] = event.with_metadata(metadata)
    return counted


def load_dbt_models(target: str | None = None) -> dg.AssetsDefinition:
    """The dbt assets of ``target`` (default: the configured warehouse's), parsing the project
    first when its manifest is missing or stale (a few seconds)."""
    return build_dbt_models(ensure_manifest(target))
