"""Merging the pieces of an arbitrary split of the traffic equals one FlowBuilder pass over it.

Random traffic on a handful of 5-tuples (so that tuples are reused, closed, resumed mid-connection,
tagged with several VLANs), random split points into files, parts and batches: the merged flow table
must be field for field and in order the one-pass table.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segverify.analysis.replay import _report_order
from segverify.capture.decode import BATCH_DTYPE, FRAG_FIRST, FRAG_IS_FRAGMENT, ST_NO_PORTS
from segverify.capture.flows import FlowBuilder
from segverify.scale.partial import Counters, batch_pieces, compact, concat, merge

FLAGS = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x02, 0x02, 0x00]  # SYN weighted up: reuse is the hard part


def traffic(seed: int, n: int, files: int) -> list[np.ndarray]:
    """``files`` arrays of packets; offsets restart in every file, as they do in real captures."""
    rng = np.random.default_rng(seed)
    p = np.zeros(n, dtype=BATCH_DTYPE)
    ends = [(1, 10, 1000, 80), (2, 10, 1001, 80), (1, 2, 5000, 5000), (3, 3, 7, 9)]
    e = rng.integers(0, len(ends), n)
    flip = rng.random(n) < 0.5
    a = np.array([x[0] for x in ends])[e]
    b = np.array([x[1] for x in ends])[e]
    sp = np.array([x[2] for x in ends])[e]
    dp = np.array([x[3] for x in ends])[e]
    p["family"] = np.where(rng.random(n) < 0.2, 6, 4)
    p["family"][rng.random(n) < 0.03] = 0
    v6 = p["family"] == 6
    p["src4"], p["dst4"] = np.where(flip, b, a), np.where(flip, a, b)
    # IPv6 high halves that differ between endpoints and use the top bit: the report's order compares them
    top = np.uint64(1 << 63)
    p["src6hi"] = np.where(v6, np.where(p["src4"] % 2 == 0, 7, top + p["src4"].astype(np.uint64)), 0)
    p["dst6hi"] = np.where(v6, np.where(p["dst4"] % 2 == 0, 7, top + p["dst4"].astype(np.uint64)), 0)
    p["src6lo"] = np.where(v6, p["src4"], 0)
    p["dst6lo"] = np.where(v6, p["dst4"], 0)
    p["sport"], p["dport"] = np.where(flip, dp, sp), np.where(flip, sp, dp)
    p["proto"] = rng.choice([6, 6, 6, 17, 1], n)
    p["tcp_flags"] = np.where(p["proto"] == 6, rng.choice(FLAGS, n), 0)
    p["seq"] = rng.integers(0, 3, n)
    p["vlan"] = rng.choice([-1, -1, -1, 5, 7], n)
    p["wirelen"] = rng.integers(40, 1500, n)
    p["pay_len"] = rng.integers(0, 3, n) * 100
    p["ts"] = rng.integers(0, 1000, n)
    p["frag"][rng.random(n) < 0.02] = FRAG_IS_FRAGMENT
    p["frag"][rng.random(n) < 0.02] = FRAG_IS_FRAGMENT | FRAG_FIRST
    p["status"][rng.random(n) < 0.02] = ST_NO_PORTS
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(files - 1, n - 1), replace=False)) if n > 1 else []
    out = []
    for chunk in np.split(p, cuts):
        chunk = chunk.copy()
        chunk["pos"] = 24 + np.arange(len(chunk)) * 100
        out.append(chunk)
    return out


def one_pass(files: list[np.ndarray], batch: int) -> tuple[list, FlowBuilder]:
    fb = FlowBuilder()
    for f in files:
        for s in range(0, len(f), batch):
            fb.add(f[s : s + batch])
    return fb.flows(), fb


def pieces_of(files: list[np.ndarray], rng: np.random.Generator) -> tuple[list, Counters]:
    """Split every file into parts at random points, and every part into random batches."""
    counters = Counters()
    parts = []
    part = 0
    for fidx, f in enumerate(files):
        bounds = sorted({0, len(f), *rng.integers(0, len(f) + 1, rng.integers(0, 4)).tolist()})
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            pcs = []
            s = lo
            while s < hi:
                e = min(hi, s + int(rng.integers(1, 40)))
                pcs.append(batch_pieces(f[s:e], counters, fidx, part))
                s = e
            parts.append(compact(concat(pcs)))
            part += 1
    rng.shuffle(parts)  # parts come back from the cluster in any order
    return parts, counters


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), files=st.integers(1, 4), batch=st.integers(1, 64))
def test_merge_equals_one_pass(seed: int, n: int, files: int, batch: int) -> None:
    data = traffic(seed, n, files)
    want, fb = one_pass(data, batch)
    parts, counters = pieces_of(data, np.random.default_rng(seed + 1))
    merged = merge(concat(parts))
    got = merged.flows
    assert got == want
    # the report's order from the table's columns is the one sorted from the flow objects
    assert merged.table.report_order() == sorted(range(len(got)), key=lambda i: _report_order(got[i]))
    assert (counters.packets, counters.non_ip, counters.unattributed_fragments, counters.no_ports) == (
        fb.packets, fb.non_ip, fb.unattributed_fragments, fb.no_ports)


def test_reuse_across_parts() -> None:
    """A SYN in the next part with another seq starts reuse 1; the same seq (retransmission) does not."""
    p = np.zeros(6, dtype=BATCH_DTYPE)
    p["family"], p["proto"], p["src4"], p["dst4"], p["sport"], p["dport"] = 4, 6, 1, 2, 1000, 80
    p["tcp_flags"] = [0x02, 0x12, 0x11, 0x02, 0x02, 0x02]
    p["seq"] = [5, 9, 6, 5, 8, 8]
    p["pos"] = np.arange(6) * 100
    want, _ = one_pass([p], 100)
    c = Counters()
    got = merge(concat([compact(batch_pieces(p[i : i + 1], c, 0, i)) for i in range(6)])).flows
    assert got == want and [f.reuse for f in got] == [0, 1]
