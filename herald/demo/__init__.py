"""Sample data for demos, tests and benchmarks (standard library only, no Dagster)."""

from herald.demo.packets import (
    DEFAULT_REFERENCE_DATE,
    SamplePacket,
    demo_packets,
    sized_packet,
    write_packets,
)

__all__ = ["DEFAULT_REFERENCE_DATE", "SamplePacket", "demo_packets", "sized_packet", "write_packets"]
