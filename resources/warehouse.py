"""The warehouse as a Dagster resource (DuckDB or PostgreSQL, from HERALD_WAREHOUSE_URL)."""

import dagster as dg

from herald.settings import Settings
from herald.warehouse.connection import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Short-lived sessions on Herald's warehouse. Settings are read when a run uses it, so a
    long-lived process (``dagster dev``, ``herald tick``) always sees the current environment."""

    def get(self) -> Warehouse:
        warehouse = Warehouse(Settings.from_env().warehouse)
        warehouse.ensure_schema()
        return warehouse
