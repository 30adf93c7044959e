"""Dagster resources: thin wrappers over herald's warehouse, drop zone, config and dbt."""

from resources.config import HeraldConfigResource
from resources.dropzone import DropZoneResource
from resources.providers import ProvidersResource
from resources.settings import HeraldSettingsResource
from resources.warehouse import WarehouseResource

__all__ = [
    "DropZoneResource",
    "HeraldConfigResource",
    "HeraldDbtResource",
    "HeraldSettingsResource",
    "ProvidersResource",
    "WarehouseResource",
    "build_dbt_resource",
]


def __getattr__(name: str) -> object:
    # the dbt resource subclasses dagster-dbt's, which takes seconds to import: loaded on first use
    if name in ("HeraldDbtResource", "build_dbt_resource"):
        from resources import dbt

        return getattr(dbt, name)
    raise AttributeError(f"module 'resources' has no attribute {name!r}")
