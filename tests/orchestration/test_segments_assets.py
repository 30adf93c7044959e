"""Every configured segment is an asset in the one Definitions, refreshed by its own job."""

from __future__ import annotations

import dagster as dg

EXAMPLE_SEGMENTS = [
    ("bright_smiles_dental", "upcoming_appointments"),
    ("lakeside_realty", "vip_buyers"),
    ("northfield_college", "admitted_not_enrolled"),
    ("summit_roofing", "homeowners"),
]


def test_each_example_segment_is_an_asset_downstream_of_the_marts(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for client_id, name in EXAMPLE_SEGMENTS:
        key = dg.AssetKey(["segments", client_id, name])
        assert graph.has(key), key
        node = graph.get(key)
        assert node.group_name == "segments"
        assert {dg.AssetKey(["marts", "contacts"]), dg.AssetKey(["marts", "funnel_events"])} <= set(node.parent_keys)
    job = defs.resolve_job_def("refresh_segments_job")
    assert {tuple(k.path) for k in job.asset_layer.selected_asset_keys} == {
        ("segments", c, n) for c, n in EXAMPLE_SEGMENTS
    }
