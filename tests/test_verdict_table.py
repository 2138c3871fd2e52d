"""A flow table judged as columns is the flow table judged flow by flow.

``Judge.judge_table`` judges by kind and asks the rules from the columns; ``VerdictTable`` builds a verdict
only when it is read and renders the report's rows from the columns (in C where built). Each must give what
the flow-by-flow path gives: the same verdicts, notes and denials (``Judge.judge``), the same rows
(``FlowVerdict.row_bytes``), the same findings and counts, the same report order. Random traffic between
the hosts of the bundled α city (with the public segment narrowed so that some addresses are in no
segment), over TCP, UDP and ICMP, IPv4 and IPv6, several VLANs, reused ports.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segverify.analysis.replay import Judge, _report_order, flow_findings, unknown_address_findings
from segverify.analysis.verdicts import VerdictTable, cross_family
from segverify.capture.decode import BATCH_DTYPE
from segverify.capture.flows import FlowBuilder, FlowTable
from segverify.model.addresses import V6_BASE, addr_to_int
from segverify.report import rowtext
from segverify.topology.loader import load_topology

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    text = (ROOT / "topologies" / "alpha-city.yaml").read_text(encoding="utf-8")
    wide = 'cidrs: [0.0.0.0/0, "::/0"]'
    assert wide in text
    path = tmp_path_factory.mktemp("t") / "city.yaml"
    # and a segment no device joins to the others (its flows are denied for want of a path)
    island = "  - {name: lab, kind: lgwan, cidrs: [10.99.0.0/16]}\n"
    text = text.replace(wide, "cidrs: [203.0.113.0/24]").replace("\nhosts:\n", island + "\nhosts:\n", 1)
    path.write_text(text, encoding="utf-8")
    return load_topology(str(path))


HOSTS = [addr_to_int(a) for a in (
    "10.10.0.5", "10.10.20.11", "10.20.1.25", "10.20.10.11", "10.20.10.12", "10.30.0.10", "10.30.1.25",
    "10.40.0.10", "10.20.1.30", "10.30.1.30", "172.20.1.10", "100.64.1.10", "100.64.1.25", "203.0.113.9",
    "192.0.2.7", "10.99.0.7", "fd00:20:0:10::11", "fd00:20::99", "2001:db8::1",
)]  # fmt: skip
PORTS = [443, 25, 3389, 80, 445, 53, 21, 5000]
DECLARED = [(addr_to_int(a), addr_to_int(b), port) for a, b, port in (
    ("10.10.0.5", "172.20.1.10", 443), ("10.20.10.11", "10.30.0.10", 3389), ("10.20.10.12", "10.40.0.10", 443),
    ("10.30.1.25", "10.20.1.30", 25), ("10.20.1.30", "10.20.1.25", 25),
    ("10.20.10.11", "10.99.0.7", 445),
)]  # fmt: skip
"""Flows the α city's exception and channels declare (their own verdicts, their own rules), and one to a
segment no device joins."""
FLAGS = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x02, 0x00]


def traffic(seed: int, n: int) -> np.ndarray:
    """``n`` packets on a few dozen endpoint pairs of :data:`HOSTS` (one family per pair)."""
    rng = np.random.default_rng(seed)
    v4 = [h for h in HOSTS if h < V6_BASE]
    v6 = [h - V6_BASE for h in HOSTS if h >= V6_BASE]
    pairs = []
    for _ in range(int(rng.integers(1, 40))):
        if rng.random() < 0.25:
            # a client port shared with an undeclared service on the same server: seen from the server's side
            # only, the two differ only in the source port, which decides the second one's verdict
            a, b, port = DECLARED[int(rng.integers(0, len(DECLARED)))]
            pairs.append((False, a, b, int(rng.choice([40000, 40001])), int(rng.choice([port, 8443])), 6))
            continue
        pool = v6 if rng.random() < 0.2 else v4
        a, b = (int(x) for x in rng.choice(len(pool), 2))
        pairs.append((pool is v6, pool[a], pool[b], int(rng.choice(PORTS + [int(rng.integers(1024, 65535))])),
                      int(rng.choice(PORTS)), int(rng.choice([6, 6, 6, 17, 17, 1]))))  # fmt: skip
    p = np.zeros(n, dtype=BATCH_DTYPE)
    for k, e in enumerate(rng.integers(0, len(pairs), n).tolist()):
        six, a, b, sp, dp, proto = pairs[e]
        if rng.random() < 0.5:
            a, b, sp, dp = b, a, dp, sp
        r = p[k : k + 1]
        r["family"] = 6 if six else 4
        if six:
            r["src6hi"], r["src6lo"], r["dst6hi"], r["dst6lo"] = a >> 64, a & (2**64 - 1), b >> 64, b & (2**64 - 1)
        else:
            r["src4"], r["dst4"] = a, b
        r["proto"] = proto
        if proto != 1:
            r["sport"], r["dport"] = sp, dp
        r["tcp_flags"] = int(rng.choice(FLAGS)) if proto == 6 else 0
    p["seq"] = rng.integers(0, 3, n)
    p["vlan"] = rng.choice([-1, -1, -1, -1, 10, 20, 30, 99], n)
    p["wirelen"] = rng.integers(40, 1500, n)
    p["pay_len"] = rng.integers(0, 3, n) * 100
    p["ts"] = rng.integers(0, 10**12, n)
    p["pos"] = 24 + np.arange(n) * 100
    return p


def table_of(p: np.ndarray) -> FlowTable:
    fb = FlowBuilder()
    for at in range(0, len(p), 97):
        fb.add(p[at : at + 97])
    return fb.table()


def fields(v) -> tuple:
    return (v.flow, v.src_segment, v.dst_segment, v.verdict, tuple(v.notes), v.denied, v.no_path)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 600))
def test_a_table_judged_by_kind_is_the_flows_judged_one_by_one(topo, seed: int, n: int) -> None:
    table = table_of(traffic(seed, n))
    flows = table.flows()
    one_by_one = Judge(topo)
    expected = [one_by_one.judge(f) for f in flows]
    judge = Judge(topo)
    got = judge.judge_table(table)
    assert isinstance(got, VerdictTable) and len(got) == len(expected)
    assert got.row_texts() == [v.row_bytes() for v in expected]
    assert cross_family(got) == cross_family(expected)
    assert [f.to_json() for f in flow_findings(judge, got)] == [f.to_json() for f in flow_findings(judge, expected)]
    assert [f.to_json() for f in unknown_address_findings(got)] == [
        f.to_json() for f in unknown_address_findings(expected)]
    assert [fields(v) for v in got] == [fields(v) for v in expected]
    assert table.report_order() == sorted(range(len(flows)), key=lambda i: _report_order(flows[i]))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.data())
def test_a_verdict_changed_after_judging_counts_as_changed(topo, seed: int, n: int, data) -> None:
    """Inspection changes the verdicts it inspects in place: findings and counts read those objects, and the
    table gives the same object each time it is asked."""
    table = table_of(traffic(seed, n))
    if not len(table):
        return
    judge = Judge(topo)
    got = judge.judge_table(table)
    expected = [judge.judge(f) for f in table.flows()]
    placed = [i for i, v in enumerate(expected) if v.src_segment is not None and v.dst_segment is not None]
    if not placed:
        return
    for i in data.draw(st.lists(st.sampled_from(placed), max_size=5)):
        verdict = data.draw(st.sampled_from(["intra-family", "UNSANITIZED_FLOW", "channel:file-import"]))
        denied = data.draw(st.booleans())
        for vs in (got, expected):
            vs[i].verdict, vs[i].denied = verdict, denied
            vs[i].notes.append("inspected")
        assert got[i] is got[i]
    assert cross_family(got) == cross_family(expected)
    assert [f.to_json() for f in flow_findings(judge, got)] == [f.to_json() for f in flow_findings(judge, expected)]


def test_the_random_traffic_reaches_every_kind_of_verdict(topo) -> None:
    """The tests above compare something: over a few seeds, every verdict, a denial by the rules and a denial
    for want of a path, IPv6 flows and VLAN rows all occur."""
    seen: set[str] = set()
    denied = no_path = six = vlan = 0
    for seed in range(12):
        table = table_of(traffic(seed, 800))
        got = Judge(topo).judge_table(table)
        seen |= {got.kinds[k][2].split(":")[0] for k in set(got.kind.tolist())}
        denied += int(got.denied.sum())
        no_path += int(got.no_path.sum())
        six += int((table.cols["family"] == 6).sum())
        vlan += int((table.cols["vlan"] >= 0).sum())
    assert {"intra-family", "UNKNOWN_ADDRESS", "MYNUMBER_FLOW", "UNSANITIZED_FLOW", "channel",
            "exception"} <= seen  # fmt: skip
    assert denied > no_path > 0 and six > 0 and vlan > 0


def test_the_flows_of_a_table_are_its_rows(topo) -> None:
    table = table_of(traffic(7, 500))
    flows = table.flows()
    assert [table[i] for i in range(len(table))] == flows == list(table)
    assert table[-1] == flows[-1] and table[2:5] == flows[2:5]
    assert table.addresses("src") == [f.src for f in flows] and table.addresses("dst", [3, 1]) == [
        flows[3].dst, flows[1].dst]
    with pytest.raises(IndexError):
        table[len(table)]


texts = st.binary(max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6), st.integers(0, 20), st.data())
def test_rows_rendered_in_c_are_the_python_loops(k: int, n: int, data) -> None:
    strs = data.draw(st.lists(texts, min_size=1, max_size=6))
    is_text = data.draw(st.lists(st.booleans(), min_size=k, max_size=k))
    pieces = data.draw(st.lists(texts, min_size=k + 1, max_size=k + 1))
    cols = [np.array(data.draw(st.lists(st.integers(0, len(strs) - 1) if t else st.integers(-(2**63), 2**63 - 1),
                                        min_size=n, max_size=n)), dtype=np.int64) for t in is_text]  # fmt: skip
    expected = [
        pieces[0] + b"".join((strs[c[i]] if t else str(int(c[i])).encode()) + pieces[j + 1]
                             for j, (c, t) in enumerate(zip(cols, is_text, strict=True)))
        for i in range(n if k else 0)
    ]  # fmt: skip
    assert rowtext.render(pieces, cols, is_text, strs) == expected
    with mock.patch.dict(os.environ, {"SEGVERIFY_NO_NATIVE": "1"}):
        assert rowtext.render(pieces, cols, is_text, strs) == expected


def test_the_compiled_row_loop_is_built_and_checks_its_input() -> None:
    assert rowtext._compiled() is not None  # CI builds it: the fast path must be the one tested
    for env in ({}, {"SEGVERIFY_NO_NATIVE": "1"}):
        with mock.patch.dict(os.environ, env):
            with pytest.raises(ValueError, match="outside strs"):
                rowtext.render([b"<", b">"], [np.array([0, 2])], [True], [b"a", b"b"])
            with pytest.raises(ValueError, match="outside strs"):
                rowtext.render([b"<", b">"], [np.array([-1])], [True], [b"a"])
            with pytest.raises(ValueError, match="pieces"):
                rowtext.render([b"<"], [np.array([0])], [True], [b"a"])
            with pytest.raises(ValueError, match="one length"):
                rowtext.render([b"<", b",", b">"], [np.array([0]), np.array([1, 2])], [False, False], [])
