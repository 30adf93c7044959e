"""What the assets share besides their keys: the packet partitions and the warehouse pool."""

import dagster as dg

# One dynamic partition per packet, added by ``packet_arrival_sensor`` (and ``herald tick``,
# which runs that sensor) before the ingest run that materializes it.
PACKETS_PARTITION = "packets"
packets_partitions = dg.DynamicPartitionsDefinition(name=PACKETS_PARTITION)

# Every asset that writes the DuckDB warehouse claims this pool; dagster.yaml limits it to
# one slot, so writes are serialized across runs, steps and processes (DuckDB has one writer).
WAREHOUSE_POOL = "warehouse"
