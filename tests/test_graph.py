"""The network graph: which segments a chain of devices joins, with and without networkx.

``replay`` asks :meth:`NetworkGraph.connected` (a search over the hops, so that it need not import networkx);
``check`` walks the networkx graph. Both must see the same network.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from segverify.analysis.graph import build_graph
from segverify.model.segmap import SegmentMap
from segverify.topology.loader import load_topology

ROOT = Path(__file__).resolve().parents[1]
SEGMENTS = 6


def _topology(firewalls: list[list[int]], routers: list[list[int]], hosts: list[list[int]]) -> str:
    lines = ["version: 1", "name: g", "segments:"]
    lines += [f"  - {{name: s{i}, kind: lgwan, cidrs: [10.{i}.0.0/16]}}" for i in range(SEGMENTS)]
    lines.append("hosts:")
    lines.append("  - {name: pc, addresses: [10.0.0.9]}")
    for k, segs in enumerate(hosts):
        addrs = ", ".join(f"10.{i}.1.{k + 1}" for i in segs)
        lines.append(f"  - {{name: h{k}, addresses: [{addrs}]}}")
    if firewalls:
        lines.append("firewalls:")
        for k, segs in enumerate(firewalls):
            lines += [f"  - name: fw{k}", "    interfaces:"]
            lines += [f"      - {{name: p{j}, segment: s{i}}}" for j, i in enumerate(segs)]
            lines.append("    rules: []")
    if routers:
        lines.append("routers:")
        lines += [f"  - {{name: r{k}, segments: [{', '.join(f's{i}' for i in segs)}]}}"
                  for k, segs in enumerate(routers)]  # fmt: skip
    return "\n".join(lines) + "\n"


def _legs(max_size: int) -> st.SearchStrategy[list[list[int]]]:
    return st.lists(st.lists(st.integers(0, SEGMENTS - 1), min_size=1, max_size=3), max_size=max_size)


def _assert_agree(path: Path) -> None:
    topo = load_topology(path)
    net = build_graph(topo, SegmentMap(topo.segments))
    names = list(topo.segments)
    for a in names:
        for b in names:
            assert net.connected(a, b) == nx.has_path(net.graph, ("segment", a), ("segment", b)), (a, b)


@settings(max_examples=60, deadline=None)
@given(firewalls=_legs(3), routers=_legs(2), hosts=_legs(3))
def test_connected_is_a_path_in_the_graph(firewalls: list, routers: list, hosts: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.yaml"
        path.write_text(_topology(firewalls, routers, hosts), encoding="utf-8")
        _assert_agree(path)


def test_connected_on_the_bundled_cities() -> None:
    for path in sorted((ROOT / "topologies").glob("*.yaml")):
        _assert_agree(path)


def test_replay_imports_no_networkx_and_leaves_it_importable() -> None:
    """networkx is a fifth of a second of imports: ``replay`` (and dd under it) must not pull it in, and it must
    stay importable afterwards for ``check``."""
    import subprocess
    import sys

    code = ("import sys, segverify.analysis.replay, segverify.analysis.sidecar; "
            "from segverify.packetspace.space import PacketSpace; "
            "assert 'networkx' not in sys.modules, 'networkx imported'; "
            "import networkx; assert networkx.Graph; "
            "from dd import cudd; assert cudd.BDD")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
