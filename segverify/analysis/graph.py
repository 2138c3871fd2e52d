"""The network as a graph: segments joined by firewalls, routers and multi-homed hosts.

Firewalls filter; routers and multi-homed hosts forward everything (never optimistic: a host with
a leg in two segments is assumed able to forward). A declared sanitizer is not a forwarder: what
may touch its addresses is exactly what its channel's legs say.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..model.segmap import SegmentMap
from ..model.topology import Topology


@dataclass(frozen=True)
class Hop:
    """One way a packet can go from segment ``src`` to segment ``dst`` through one device."""

    src: str
    dst: str
    device: str
    kind: str  # firewall | router | host
    in_iface: str | None = None
    out_iface: str | None = None


@dataclass
class NetworkGraph:
    graph: nx.Graph  # nodes: ("segment"|"firewall"|"router"|"host", name)
    hops: list[Hop]
    host_segments: dict[str, list[str]]  # every host → the segments its addresses are in

    def hops_from(self, segment: str) -> list[Hop]:
        return [h for h in self.hops if h.src == segment]


def sanitizer_hosts(topo: Topology) -> set[str]:
    return {ch.sanitizer for ch in topo.channels if ch.sanitizer}


def build_graph(topo: Topology, segmap: SegmentMap) -> NetworkGraph:
    g = nx.Graph()
    hops: list[Hop] = []
    for name in topo.segments:
        g.add_node(("segment", name))
    for fw in topo.firewalls.values():
        g.add_node(("firewall", fw.name))
        for iface in fw.interfaces:
            g.add_edge(("firewall", fw.name), ("segment", iface.segment))
        for a in fw.interfaces:
            for b in fw.interfaces:
                if a.name != b.name and a.segment != b.segment:
                    hops.append(Hop(a.segment, b.segment, fw.name, "firewall", a.name, b.name))
    forwarders: list[tuple[str, str, list[str]]] = [
        (rt.name, "router", sorted(set(rt.segments))) for rt in topo.routers.values()
    ]
    host_segments: dict[str, list[str]] = {}
    sanitizers = sanitizer_hosts(topo)
    for host in topo.hosts.values():
        segs = sorted({s for a in host.addresses if (s := segmap.lookup(a)) is not None})
        host_segments[host.name] = segs
        if len(segs) > 1 and host.name not in sanitizers:
            forwarders.append((host.name, "host", segs))
    for name, kind, segs in forwarders:
        g.add_node((kind, name))
        for s in segs:
            g.add_edge((kind, name), ("segment", s))
        for a in segs:
            for b in segs:
                if a != b:
                    hops.append(Hop(a, b, name, kind))
    hops.sort(key=lambda h: (h.src, h.dst, h.device, h.in_iface or "", h.out_iface or ""))
    return NetworkGraph(g, hops, host_segments)
