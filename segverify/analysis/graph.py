"""The network as a graph: segments joined by firewalls, routers and multi-homed hosts.

Firewalls filter; routers and multi-homed hosts forward everything (never optimistic: a host with
a leg in two segments is assumed able to forward). A declared sanitizer is not a forwarder: what
may touch its addresses is exactly what its channel's legs say.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..model.segmap import SegmentMap
from ..model.topology import Topology

if TYPE_CHECKING:
    import networkx as nx

Node = tuple[str, str]  # ("segment"|"firewall"|"router"|"host", name)


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
    """The devices and segments as nodes, an edge from each device to each segment it has a leg in.

    The networkx graph is built when first asked for (by ``check``'s bypass search): ``replay`` needs only the
    hops, and networkx is a fifth of a second of imports."""

    nodes: list[Node]
    edges: list[tuple[Node, Node]]
    hops: list[Hop]
    host_segments: dict[str, list[str]]  # every host → the segments its addresses are in
    _links: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def graph(self) -> nx.Graph:
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(self.edges)
        return g

    def hops_from(self, segment: str) -> list[Hop]:
        return [h for h in self.hops if h.src == segment]

    def connected(self, a: str, b: str) -> bool:
        """Whether some chain of devices joins segments ``a`` and ``b`` (a path between them in :attr:`graph`:
        every device joins each pair of the segments it has legs in, and so gives a hop between them)."""
        if a == b:
            return True
        if not self._links:
            for h in self.hops:
                self._links.setdefault(h.src, set()).add(h.dst)
        seen, todo = {a}, deque([a])
        while todo:
            for nxt in self._links.get(todo.popleft(), ()):
                if nxt == b:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False


def sanitizer_hosts(topo: Topology) -> set[str]:
    return {ch.sanitizer for ch in topo.channels if ch.sanitizer}


def build_graph(topo: Topology, segmap: SegmentMap) -> NetworkGraph:
    nodes: list[Node] = [("segment", name) for name in topo.segments]
    edges: list[tuple[Node, Node]] = []
    hops: list[Hop] = []
    for fw in topo.firewalls.values():
        nodes.append(("firewall", fw.name))
        for iface in fw.interfaces:
            edges.append((("firewall", fw.name), ("segment", iface.segment)))
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
        nodes.append((kind, name))
        for s in segs:
            edges.append(((kind, name), ("segment", s)))
        for a in segs:
            for b in segs:
                if a != b:
                    hops.append(Hop(a, b, name, kind))
    hops.sort(key=lambda h: (h.src, h.dst, h.device, h.in_iface or "", h.out_iface or ""))
    return NetworkGraph(nodes, edges, hops, host_segments)
