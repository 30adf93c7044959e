"""One asset per configured segment (``clients/<id>/segments/<name>.yaml``), keyed
``segments/<client_id>/<segment_name>``: evaluates the segment over the marts and snapshots its
members into ``marts.segment_members`` (+ entered/exited events)."""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from assets.transform.keys import dbt_model_key
from herald.config import Deployment
from herald.segments import evaluate_segment, snapshot_segment
from herald.segments.preview import preview_markdown, preview_members
from resources import HeraldConfigResource, WarehouseResource

SEGMENTS_GROUP = "segments"
MARTS_READ = ("contacts", "contact_attributes", "funnel_events")


def segment_asset_key(client_id: str, segment_name: str) -> dg.AssetKey:
    return dg.AssetKey(["segments", client_id, segment_name])


def build_segment_asset(
    dbt_models: dg.AssetsDefinition, client_id: str, segment_name: str, description: str, segment_type: str
) -> dg.AssetsDefinition:
    @dg.asset(
        key=segment_asset_key(client_id, segment_name),
        group_name=SEGMENTS_GROUP,
        description=description
        or f"Members of {client_id}'s {segment_type} segment {segment_name}: one row per contact.",
        deps=[dbt_model_key(dbt_models, model) for model in MARTS_READ],
        pool=WAREHOUSE_POOL,
        kinds={"python"},
        tags={"herald/client": client_id, "herald/segment_type": segment_type},
    )
    def _segment(context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource):
        # the segment's definition is read at run time, so an edited SQL or list applies at once
        client = herald_config.load().clients.get(client_id)
        segment = client.segments.get(segment_name) if client else None
        if client is None or segment is None:
            raise dg.Failure(f"segment {client_id}/{segment_name} is no longer configured")
        wh = warehouse.get()
        contact_ids = evaluate_segment(wh, client, segment)  # SegmentError fails only this asset
        result = snapshot_segment(wh, client_id, segment_name, contact_ids)
        context.log.info(
            f"segment {client_id}/{segment_name}: {result.size} members, {result.entered} entered, {result.exited} exited"
        )
        return dg.MaterializeResult(
            metadata={
                "size": dg.MetadataValue.int(result.size),
                "entered": dg.MetadataValue.int(result.entered),
                "exited": dg.MetadataValue.int(result.exited),
                "type": dg.MetadataValue.text(segment.type),
                "preview": dg.MetadataValue.md(preview_markdown(preview_members(wh, client_id, result.preview_ids))),
            }
        )

    return _segment


def build_segment_assets(deployment: Deployment, dbt_models: dg.AssetsDefinition) -> list[dg.AssetsDefinition]:
    """One asset per segment the deployment configures, downstream of the marts segments read."""
    return [
        build_segment_asset(dbt_models, client_id, name, segment.description, segment.type)
        for client_id, client in sorted(deployment.clients.items())
        for name, segment in sorted(client.segments.items())
    ]
