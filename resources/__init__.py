"""Dagster resources: thin wrappers over herald's warehouse, drop zone, config and dbt."""

from resources.config import HeraldConfigResource
from resources.dbt import HeraldDbtResource, build_dbt_resource
from resources.dropzone import DropZoneResource
from resources.providers import ProvidersResource
from resources.warehouse import WarehouseResource

__all__ = [
    "DropZoneResource",
    "HeraldConfigResource",
    "HeraldDbtResource",
    "ProvidersResource",
    "WarehouseResource",
    "build_dbt_resource",
]
