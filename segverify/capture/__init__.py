"""Packet capture reading and flow building for ``segverify replay``.

The reader streams pcap/pcapng (optionally gzip-compressed) in large blocks, decodes headers for whole
batches with numpy, and treats the file as hostile: damage is reported, never raised. The flow builder
turns batches into a bidirectional 5-tuple flow table oriented by the connection's initiator.

Typical use::

    from segverify.capture import flows_from_file
    flows, damage, stats = flows_from_file("trunk.pcapng.gz")

or, for packets::

    damage = []
    for batch in iter_batches(path, damage=damage):   # numpy structured arrays (fast)
        ...
    for pkt in iter_packets(path, damage=damage):      # one PacketRecord per packet (convenient)
        ...
"""

from .flows import Flow, FlowBuilder, build_flows, flows_from_file
from .reader import (
    Batch,
    CaptureReader,
    Damage,
    Interface,
    PacketRecord,
    batch_records,
    iter_batches,
    iter_packets,
)

__all__ = [
    "Batch",
    "CaptureReader",
    "Damage",
    "Flow",
    "FlowBuilder",
    "Interface",
    "PacketRecord",
    "batch_records",
    "build_flows",
    "flows_from_file",
    "iter_batches",
    "iter_packets",
]
