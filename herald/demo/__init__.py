"""Sample data for demos, tests and benchmarks (standard library only, no Dagster): the example
clients' packets (:mod:`herald.demo.packets` and the modules it names), the replies the demo
lands, and the SQL behind the demo's printed summary (:mod:`herald.demo.summary`)."""

from herald.demo.packets import (
    DEFAULT_REFERENCE_DATE,
    SamplePacket,
    demo_packets,
    sized_packet,
    write_packets,
)

__all__ = ["DEFAULT_REFERENCE_DATE", "SamplePacket", "demo_packets", "sized_packet", "write_packets"]
