"""Partitions: one dynamic partition per packet, added by ``packet_arrival_sensor``."""

import dagster as dg

PACKETS_PARTITION = "packets"
packets_partitions = dg.DynamicPartitionsDefinition(name=PACKETS_PARTITION)

# Every asset that writes the DuckDB warehouse claims this pool; dagster.yaml limits it to
# one slot, so writes are serialized across runs, steps and processes (DuckDB has one writer).
WAREHOUSE_POOL = "warehouse"
