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

    def get_reader(self) -> Warehouse:
        """The warehouse as it is, for read-only sessions (a sensor counting waiting rows):
        creating missing schemas is a write, which is left to runs."""
        return Warehouse(Settings.from_env().warehouse)
