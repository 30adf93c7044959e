"""Configuration as warehouse tables, so dbt can join the load maps it applies."""

from __future__ import annotations

from herald.config.fields import CANONICAL_FIELDS, FIELDS_BY_NAME
from herald.config.models import AttributeColumn, Deployment
from herald.packets.landing import utcnow
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

CONFIG_TABLES = ("clients", "load_maps", "load_map_columns", "canonical_fields")


def config_rows(deployment: Deployment) -> dict[str, list[tuple]]:
    """Rows for each ``herald_ops`` configuration table."""
    now = utcnow()
    clients, maps, columns = [], [], []
    for client in deployment.clients.values():
        c = client.config
        clients.append((c.client_id, c.name, c.industry, client.time_zone, client.default_region, now))
        for load_map in client.load_maps.values():
            maps.append(
                (c.client_id, load_map.packet_type, load_map.entity, load_map.description, load_map.keep_unmapped, now)
            )
            for position, (column, target) in enumerate(load_map.columns.items(), start=1):
                if isinstance(target, AttributeColumn):
                    kind, name, data_type, sep = "attribute", target.attribute, target.type, target.separator
                else:
                    kind, name = "field", target.field
                    data_type, sep = FIELDS_BY_NAME[name].data_type, None
                required = kind == "field" and name in load_map.required
                columns.append((c.client_id, load_map.packet_type, column, kind, name, data_type, sep, required, position))
    fields = [(f.name, f.data_type, f.stored_in, f.description) for f in CANONICAL_FIELDS]
    return {"clients": clients, "load_maps": maps, "load_map_columns": columns, "canonical_fields": fields}


def load_config_tables(session: Session, deployment: Deployment) -> dict[str, int]:
    """Replace the configuration tables with ``deployment`` (in the session's transaction)."""
    counts: dict[str, int] = {}
    for table, rows in config_rows(deployment).items():
        qualified = f"{OPS_SCHEMA}.{table}"
        session.execute(f"delete from {qualified}")
        counts[table] = session.insert_rows(qualified, column_names(qualified), rows)
    return counts
