"""The reader's compiled loops (``_cloops.c``) against its numpy passes: same packets, same damage, always.

The numpy passes are the reference (tested against scapy and the scalar decoder elsewhere); the compiled
walk-and-decode must reproduce them field for field on the corpus, on hostile mutations of valid captures,
on random frames, and across block boundaries.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from capture_gen import (
    EDITS,
    INSERTS,
    mutate,
    ng_epb,
    ng_idb,
    ng_shb,
    ng_spb,
    pcap_bytes,
    pcap_header,
    pcap_record,
    tcp_frame,
    udp_frame,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segverify.capture import decode as D
from segverify.capture import native
from segverify.capture import reader as R

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "captures" / "zeek"
FILES = sorted(p for p in CORPUS.glob("*.pcap*") if not p.name.endswith(".txt")) if CORPUS.is_dir() else []
FILES += sorted((ROOT / "captures").glob("*.pcap*"))


def read(path: Path | str, compiled: bool) -> tuple[np.ndarray, list[R.Damage]]:
    damage: list[R.Damage] = []
    reader = R.CaptureReader(path, damage, compiled=compiled)
    assert (reader.loops is not None) == compiled
    parts = [b.pkts for b in reader.batches()]
    return (np.concatenate(parts) if parts else np.zeros(0, D.BATCH_DTYPE)), damage


def assert_same(path: Path | str) -> tuple[np.ndarray, list[R.Damage]]:
    a, da = read(path, False)
    b, db = read(path, True)
    assert da == db
    assert len(a) == len(b)
    for name in D.BATCH_DTYPE.names:
        bad = np.flatnonzero(a[name] != b[name])
        assert not len(bad), f"field {name} differs at packet {bad[0]}: {a[name][bad[0]]} vs {b[name][bad[0]]}"
    return a, da


def test_compiled_loops_are_built() -> None:
    """CI builds the C extension (a compiler is part of the set-up): a silently skipped build would leave
    every large capture on the slow path."""
    loops = native.loops()
    assert loops is not None, "segverify.capture._cloops was not built (pip install -e . needs a C compiler)"
    assert loops.layout() == tuple((n, D.BATCH_DTYPE.fields[n][1], D.BATCH_DTYPE.fields[n][0].itemsize)
                                   for n in D.BATCH_DTYPE.names)  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_same_both_ways(path: Path) -> None:
    pk, damage = assert_same(path)
    assert len(pk) > 0 and damage == []


def _frames() -> list[bytes]:
    return [
        tcp_frame("10.0.0.1", "10.0.0.2", 1234, 80, "S", seq=100),
        tcp_frame("10.0.0.2", "10.0.0.1", 80, 1234, "SA", seq=500, payload=b"x" * 300),
        udp_frame("2001:db8::1", "2001:db8::2", 5353, 53, b"hello"),
        tcp_frame("10.9.9.9", "10.8.8.8", 5, 6, vlans=(3, 4), payload=b"v" * 50),
        tcp_frame("10.9.9.9", "10.8.8.8", 5, 6, vlans=(3, 4, 5), payload=b"w"),
    ]


def _bases() -> list[bytes]:
    fr = _frames()
    ng = ng_shb() + ng_idb(1) + b"".join(ng_epb(0, i, f) for i, f in enumerate(fr * 2)) + ng_spb(fr[0])
    return [pcap_bytes(fr * 3), pcap_bytes(fr * 2, endian=">", nano=True), ng]


BASES = _bases()


def _write(data: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cap", delete=False) as fh:
        fh.write(data)
    return fh.name


@settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(range(len(BASES))),
    cut=st.integers(min_value=0, max_value=1500),
    edits=EDITS,
    insert=INSERTS,
    compress=st.booleans(),
)
def test_hostile_mutations_same_both_ways(base: int, cut: int, edits: list, insert: tuple, compress: bool) -> None:
    data = mutate(BASES[base], edits, insert)
    raw = bytes(data[: max(0, len(data) - cut)])
    if compress:
        raw = gzip.compress(raw)
    path = _write(raw)
    try:
        assert_same(path)
    finally:
        Path(path).unlink()


LINKTYPES = [1, 1, 1, 113, 276, 101, 228, 229, 0, 105]


@settings(max_examples=400, deadline=5000)
@given(
    frames=st.lists(st.tuples(st.sampled_from(LINKTYPES), st.binary(min_size=0, max_size=120)), min_size=1,
                    max_size=20),
    seeds=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 255)), max_size=30),
    tail=st.binary(max_size=D.PAD),
)
# A 1-byte SLL2 frame whose next byte (past the capture) would complete a VLAN tag: found by this test.
@example(frames=[(276, b"\x91")], seeds=[], tail=b"\x01")
@example(frames=[(1, bytes(12) + b"\x81\x00" + bytes(2) + b"\x81\x00" + bytes(2) + b"\x91")], seeds=[],
         tail=b"\x00")
def test_random_frames_decode_the_same(frames: list, seeds: list, tail: bytes) -> None:
    """Random frames, made more IP-like by planting plausible bytes (ethertypes, version nibbles, protocol
    numbers), then arbitrary bytes after the last one instead of zeros: both decoders agree, and neither
    depends on what lies past a frame's captured bytes."""
    proto_bytes = [0x08, 0x00, 0x86, 0xDD, 0x81, 0x00, 0x45, 0x60, 6, 17, 1, 58, 0x50]
    bufs, offs, caps, lts = bytearray(), [], [], []
    for lt, body in frames:
        body = bytearray(body)
        for pos, val in seeds:
            if pos < len(body):
                body[pos] = proto_bytes[val % len(proto_bytes)] if val < 128 else val
        offs.append(len(bufs))
        caps.append(len(body))
        lts.append(lt)
        bufs += body
    off, cap, lt = (np.array(x, np.int64) for x in (offs, caps, lts))
    results = []
    for after in (bytes(D.PAD), tail + bytes(D.PAD)):
        buf = bytes(bufs) + after
        for compiled in (None, native.loops()):
            ts = np.zeros(len(off), np.int64)
            out = D.decode_batch(buf, off, cap, cap, ts, np.zeros(len(off), np.int32), lt, 0, compiled=compiled)
            results.append(out)
    for other in results[1:]:
        for name in D.BATCH_DTYPE.names:
            assert np.array_equal(results[0][name], other[name]), name


@pytest.mark.parametrize("compiled", [False, True])
def test_records_across_many_blocks(monkeypatch: pytest.MonkeyPatch, compiled: bool) -> None:
    """Small blocks: records straddle every block boundary; the kept tail is read again with the next
    block, and the file's last block gets zeros after it. Same packets as one big block."""
    fr = _frames()
    frames = [fr[i % len(fr)] for i in range(400)]
    path = _write(pcap_bytes(frames))
    try:
        whole, _ = read(path, compiled)
        monkeypatch.setattr(R, "CHUNK", 1000)
        small, damage = read(path, compiled)
        assert damage == [] and len(small) == 400
        for name in D.BATCH_DTYPE.names:
            assert np.array_equal(whole[name], small[name]), name
    finally:
        Path(path).unlink()


def test_the_walk_writes_every_field_and_runs_out_of_room_safely(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled walk's room is not zeroed, and is sized by the records seen so far: filled with garbage
    instead, and with large packets followed by many tiny ones (the room runs out, and the walk goes on in
    further batches), the packets are still those of the numpy passes, field for field."""
    sizes: list[int] = []

    def garbage(n: int) -> tuple[np.ndarray, np.ndarray]:
        sizes.append(n)
        out = np.frombuffer(b"\xa5" * (n * D.BATCH_DTYPE.itemsize), dtype=D.BATCH_DTYPE).copy()
        return out, np.full(n, 0xA5, dtype=np.uint8).view(bool)

    monkeypatch.setattr(R, "_room", garbage)
    monkeypatch.setattr(R, "CHUNK", 1 << 16)
    big = [tcp_frame("10.0.0.1", "10.0.0.2", 1234, 80, "A", seq=i, payload=b"x" * 1400) for i in range(300)]
    tiny = [udp_frame("10.0.0.3", "10.0.0.4", 53, 53, b"") for _ in range(3000)]
    path = _write(pcap_bytes(big + tiny + big[:5]))
    try:
        pk, damage = assert_same(path)
        assert damage == [] and len(pk) == 3305
        assert len(sizes) > 2  # the tiny packets outgrew the room sized by the big ones
        for corpus in FILES[:6]:
            assert_same(corpus)
    finally:
        Path(path).unlink()


def test_damage_in_a_later_block_same_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    """An impossible length and garbage well after the first block: the same offsets and reasons."""
    fr = _frames()
    recs = [pcap_record(1_600_000_000 * 10**9 + i * 1000, fr[i % 4]) for i in range(60)]
    evil = struct.pack("<IIII", 1_600_000_000, 0, 0x7FFFFFF0, 0x7FFFFFF0) + b"\x00" * 40
    data = pcap_header() + b"".join(recs[:40]) + evil + b"".join(recs[40:]) + b"\x01\x02\x03"
    path = _write(data)
    try:
        monkeypatch.setattr(R, "CHUNK", 2048)
        pk, damage = assert_same(path)
        assert len(pk) == 60
        assert damage[0].offset == 24 + sum(len(r) for r in recs[:40]) and "exceeds" in damage[0].reason
        assert "truncated record" in damage[-1].reason
    finally:
        Path(path).unlink()


# --- the harvest's candidate test, compiled and in numpy -----------------------------------------------

_POOL4 = [0, 1, 10 << 24 | 5, 10 << 24 | 6, 10 << 24 | 200, 192 << 24 | 168 << 16 | 1, (1 << 32) - 1]
_POOL6 = [(0, 0), (0x20010DB8 << 32, 1), (0x20010DB8 << 32, 2), (1 << 63, 5), ((1 << 64) - 1, (1 << 64) - 1)]


def _interval(draw: st.DrawFn) -> tuple[int, int]:
    from segverify.model.addresses import V6_BASE

    if draw(st.booleans()):
        a, b = sorted(draw(st.sampled_from(_POOL4)) + draw(st.integers(-3, 3)) for _ in range(2))
        return max(0, a), min((1 << 32) - 1, max(0, b))
    hi, lo = draw(st.sampled_from(_POOL6))
    a = V6_BASE + (hi << 64 | lo)
    return a, a + draw(st.integers(0, 2))


@st.composite
def _harvest_case(draw: st.DrawFn) -> tuple[list, np.ndarray]:
    from segverify.model.addresses import IntervalSet

    pairs = [(IntervalSet([_interval(draw) for _ in range(draw(st.integers(1, 3)))]),
              IntervalSet([_interval(draw) for _ in range(draw(st.integers(1, 3)))]))
             for _ in range(draw(st.integers(1, 4)))]
    n = draw(st.integers(0, 60))
    p = np.zeros(n, dtype=D.BATCH_DTYPE)
    for i in range(n):
        fam = draw(st.sampled_from([4, 4, 6, 0]))
        p["family"][i] = fam
        p["proto"][i] = draw(st.sampled_from([6, 17, 1, 58]))
        p["frag"][i] = draw(st.sampled_from([0, 0, 0, D.FRAG_IS_FRAGMENT]))
        p["pos"][i] = i
        for end in ("src", "dst"):
            if fam == 6:
                hi, lo = draw(st.sampled_from(_POOL6))
                p[end + "6hi"][i], p[end + "6lo"][i] = hi, min((1 << 64) - 1, lo + draw(st.integers(0, 2)))
            else:
                p[end + "4"][i] = max(0, min((1 << 32) - 1, draw(st.sampled_from(_POOL4)) + draw(st.integers(-2, 2))))
    return pairs, p


@settings(max_examples=400, deadline=None)
@given(_harvest_case())
def test_harvest_selects_the_same_candidates_compiled_and_in_numpy(case: tuple[list, np.ndarray]) -> None:
    from segverify.capture import collect
    from segverify.capture.reader import Batch

    pairs, p = case
    batch = Batch(p, b"", 0)
    got = []
    for compiled in (False, True):
        h = collect.Harvest(pairs, lambda _key: None, {}, 4096)
        if not compiled:
            with pytest.MonkeyPatch.context() as m:
                m.setattr(collect, "enabled", lambda: False)
                out = h.select(batch)
        else:
            out = h.select(batch)
        got.append((None if out is None else out.tobytes(), h.usable))
    assert got[0] == got[1]


# --- the harvest's bulk drop test, compiled and in numpy ----------------------------------------------

_ENDS = [(10 << 24 | 5, 3389), (10 << 24 | 6, 50000), (10 << 24 | 6, 50001), (10 << 24 | 5, 25),
         ((1 << 128) + (0x20010DB8 << 96) + 1, 443), ((1 << 128) + (0x20010DB8 << 96) + 2, 50000)]


def _put_ends(p: np.ndarray, i: int, src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int, int, int]:
    """Write a packet's two ends (unified addresses, ports) into row ``i``: one family per packet (a destination
    of the other family becomes the source itself). Returns the ends written."""
    from segverify.model.addresses import V6_BASE

    (s, sp), (d, dp) = src, dst
    if (s >= V6_BASE) != (d >= V6_BASE):
        d, dp = s, sp
    fam = 6 if s >= V6_BASE else 4
    p["family"][i], p["sport"][i], p["dport"][i] = fam, sp, dp
    if fam == 4:
        p["src4"][i], p["dst4"][i] = s, d
    else:
        for end, a in (("src", s - V6_BASE), ("dst", d - V6_BASE)):
            p[end + "6hi"][i], p[end + "6lo"][i] = a >> 64, a & ((1 << 64) - 1)
    return s, sp, d, dp


@st.composite
def _quiet_case(draw: st.DrawFn) -> tuple[list, np.ndarray]:

    def key() -> frozenset:
        a, b = draw(st.sampled_from(_ENDS)), draw(st.sampled_from(_ENDS))
        return frozenset((a, b))

    ops = []
    for _ in range(draw(st.integers(0, 12))):
        k = key()
        op = draw(st.sampled_from(["started", "sender_done", "saturated", "reopened"]))
        ops.append((op, k, draw(st.sampled_from([6, 17])), draw(st.sampled_from(sorted(k)))))
    n = draw(st.integers(0, 40))
    p = np.zeros(n, dtype=D.BATCH_DTYPE)
    for i in range(n):
        s, sp, d, dp = _put_ends(p, i, draw(st.sampled_from(_ENDS)), draw(st.sampled_from(_ENDS)))
        p["proto"][i] = draw(st.sampled_from([6, 17]))
        p["tcp_flags"][i] = draw(st.sampled_from([0x10, 0x18, 0x02, 0x12, 0x11, 0x04, 0]))
        p["pay_len"][i] = draw(st.sampled_from([0, 0, 1, 1400]))
        p["frag"][i] = draw(st.sampled_from([0, 0, 0, D.FRAG_IS_FRAGMENT]))
    return ops, p


@settings(max_examples=400, deadline=None)
@given(_quiet_case())
def test_quiet_drops_the_same_packets_compiled_and_in_numpy(case: tuple[list, np.ndarray]) -> None:
    from segverify.capture import collect

    ops, p = case
    q = collect.Quiet(lambda _key, _proto: True, 4096)
    for op, k, proto, sender in ops:
        if op == "sender_done":
            q.sender_done(k, sender)
        else:
            getattr(q, op)(k, proto)
    hashes = collect._pair_hash(p)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(collect, "enabled", lambda: False)
        ref = q.drop(p, hashes)
    got = q.drop(p, hashes)
    assert native.loops() is not None
    ref_mask = np.zeros(len(p), dtype=bool) if ref is None else ref
    got_mask = np.zeros(len(p), dtype=bool) if got is None else got
    assert ref_mask.tolist() == got_mask.tolist()


# --- the flow table's grouping, compiled and in numpy ------------------------------------------------


def _flow_table(batches: list[np.ndarray], compiled: bool) -> list:
    from segverify.capture import flows as F

    with pytest.MonkeyPatch.context() as m:
        if not compiled:
            m.setattr(F, "enabled", lambda: False)
        fb = F.FlowBuilder()
        for b in batches:
            fb.add(b)
        return fb.flows()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_flow_tables_same_both_ways(path: Path) -> None:
    batches = [b.pkts for b in R.CaptureReader(path, [], compiled=True).batches()]
    assert _flow_table(batches, True) == _flow_table(batches, False)


@st.composite
def _flow_batches(draw: st.DrawFn) -> list[np.ndarray]:
    ends = [(4, 0, 10 << 24 | 1, 80), (4, 0, 10 << 24 | 2, 50000), (4, 0, 10 << 24 | 2, 80), (4, 0, 0, 0),
            (6, 0x20010DB8 << 32, 1, 443), (6, 0x20010DB8 << 32, 2, 50000), (6, 0, 10 << 24 | 1, 80)]
    out = []
    pos = 0
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 40))
        p = np.zeros(n, dtype=D.BATCH_DTYPE)
        for i in range(n):
            a = draw(st.sampled_from(ends))
            b = draw(st.sampled_from([e for e in ends if e[0] == a[0]]))
            p["family"][i], p["proto"][i] = a[0], draw(st.sampled_from([6, 6, 17, 1]))
            if a[0] == 4:
                p["src4"][i], p["dst4"][i] = a[2], b[2]
            else:
                p["src6hi"][i], p["src6lo"][i], p["dst6hi"][i], p["dst6lo"][i] = a[1], a[2], b[1], b[2]
            p["sport"][i], p["dport"][i] = a[3], b[3]
            p["tcp_flags"][i] = draw(st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x04]))
            p["seq"][i] = draw(st.sampled_from([1, 2, 1000]))
            p["pay_len"][i] = draw(st.sampled_from([0, 10]))
            p["wirelen"][i] = 60 + int(p["pay_len"][i])
            p["ts"][i] = draw(st.sampled_from([pos * 1000, 5, 10**12]))  # out of order: first and last times
            p["pos"][i] = pos
            p["vlan"][i] = draw(st.sampled_from([-1, -1, 10, 20]))
            pos += 100
        out.append(p)
    return out


@settings(max_examples=300, deadline=None)
@given(_flow_batches())
def test_random_flow_tables_same_both_ways(batches: list[np.ndarray]) -> None:
    """Port reuse across batches, both families, a host talking to itself, VLANs: the same flows."""
    assert native.loops() is not None
    assert _flow_table(batches, True) == _flow_table(batches, False)


def test_flow_sums_refuses_indices_outside_its_arrays() -> None:
    cl = native.loops()
    assert cl is not None
    p = np.zeros(2, dtype=D.BATCH_DTYPE)
    cols = [np.zeros((4, 2), np.int64), np.zeros((4, 2), np.int64), np.zeros((4, 2), np.int64),
            np.zeros((4, 2), np.uint32), np.zeros(4, np.int64), np.zeros(4, np.int64)]  # fmt: skip
    side = np.zeros(2, np.uint8)
    for inv, ids, sd, what in ((np.array([0, 1]), np.array([0]), side, "group"),
                               (np.array([0, 0]), np.array([4]), side, "flow id"),
                               (np.array([0, 0]), np.array([-1]), side, "flow id"),
                               (np.array([0, 0]), np.array([0]), np.array([0, 2], np.uint8), "side")):
        with pytest.raises(ValueError, match=what):
            cl.flow_sums(p, inv, sd, ids, *cols)
    cl.flow_sums(p, np.array([0, 0]), side, np.array([3]), *cols)
    assert cols[0][3].tolist() == [2, 0] and not cols[0][:3].any()


def test_compiled_candidate_test_refuses_short_ipv6_roles() -> None:
    cl = native.loops()
    assert cl is not None
    p = np.zeros(3, dtype=D.BATCH_DTYPE)
    p["family"] = [4, 6, 6]
    kept = np.empty(3, dtype=D.BATCH_DTYPE)
    starts, bits = np.zeros(1, np.int64), np.ones(1, np.uint64)
    with pytest.raises(ValueError, match="roles6"):
        cl.select_pairs(p, starts, bits, np.zeros((1, 2), np.uint64), 1, kept)
    assert cl.select_pairs(p, starts, bits, np.zeros((2, 2), np.uint64), 1, kept) == (0, 0)


# --- the harvest's runs of in-order segments ------------------------------------------------------------


def _runs_reference(p: np.ndarray) -> list[int]:
    """``_cloops.tcp_runs`` as its comment states it, one record at a time."""
    from segverify.model.addresses import V6_BASE

    head: list[int] = []
    open_runs: dict[tuple, int] = {}  # (pair, sender) -> first record of its open run
    expect: dict[tuple, int | None] = {}  # (pair, sender) -> the sequence number its run continues at
    for i, r in enumerate(p):
        if r["proto"] != 6 or r["frag"] & D.FRAG_IS_FRAGMENT or r["family"] not in (4, 6):
            head.append(-1)
            continue
        if r["family"] == 4:
            s, d = int(r["src4"]), int(r["dst4"])
        else:
            s = V6_BASE + (int(r["src6hi"]) << 64 | int(r["src6lo"]))
            d = V6_BASE + (int(r["dst6hi"]) << 64 | int(r["dst6lo"]))
        sender, receiver = (s, int(r["sport"])), (d, int(r["dport"]))
        pair = frozenset((sender, receiver))
        if r["tcp_flags"] & D.TCP_CONTROL:
            for k in [k for k in open_runs if k[0] == pair]:
                del open_runs[k]
            head.append(-1)
            continue
        if sender == receiver:
            head.append(-1)
            continue
        stream, n, seq = (pair, sender), int(r["pay_len"]), int(r["seq"])
        if stream in open_runs and (n == 0 or expect[stream] is None or expect[stream] == seq):
            head.append(open_runs[stream])
        else:
            head.append(i)
            open_runs[stream], expect[stream] = i, None
        if n:
            expect[stream] = (seq + n) % 2**32
    return head


@st.composite
def _run_rows(draw: st.DrawFn) -> np.ndarray:

    n = draw(st.integers(0, 80))
    p = np.zeros(n, dtype=D.BATCH_DTYPE)
    nxt: dict[tuple, int] = {}
    for i in range(n):
        s, sp, d, dp = _put_ends(p, i, draw(st.sampled_from(_ENDS)), draw(st.sampled_from(_ENDS)))
        p["proto"][i] = draw(st.sampled_from([6, 6, 6, 6, 17]))
        p["tcp_flags"][i] = draw(st.sampled_from([0x10, 0x18, 0x18, 0x18, 0x10, 0x02, 0x12, 0x11, 0x04, 0]))
        n_bytes = draw(st.sampled_from([0, 0, 1, 100, 1448]))
        p["pay_len"][i] = n_bytes
        p["frag"][i] = draw(st.sampled_from([0] * 9 + [D.FRAG_IS_FRAGMENT]))
        # mostly the next bytes of the sender's stream (wrapping past 2**32), sometimes a jump
        key = (s, sp, d, dp)
        seq = nxt.get(key, draw(st.sampled_from([0, 2**32 - 50, 12345])))
        if draw(st.integers(0, 5)) == 0:
            seq = (seq + draw(st.sampled_from([-1448, -1, 1, 5000]))) % 2**32
        p["seq"][i] = seq
        nxt[key] = (seq + n_bytes) % 2**32
    return p


@settings(max_examples=400, deadline=None)
@given(_run_rows())
def test_tcp_runs_are_the_runs_its_comment_states(p: np.ndarray) -> None:
    """Interleaved streams, both ends of a pair, pure ACKs, jumps, wraps, SYN/FIN/RST, UDP, fragments, a host
    talking to itself: the compiled runs are the reference's, record for record."""
    cl = native.loops()
    assert cl is not None
    head = np.empty(len(p), np.int32)
    table = np.empty(1 << max(1, (2 * len(p)).bit_length()), np.int32)
    joined = cl.tcp_runs(p, table, head)
    ref = _runs_reference(p)
    assert head.tolist() == ref
    assert joined == sum(1 for i, h in enumerate(ref) if h >= 0 and h != i)


def test_tcp_runs_refuses_a_small_table() -> None:
    cl = native.loops()
    assert cl is not None
    p = np.zeros(4, dtype=D.BATCH_DTYPE)
    with pytest.raises(ValueError, match="power of two"):
        cl.tcp_runs(p, np.empty(6, np.int32), np.empty(4, np.int32))
    with pytest.raises(ValueError, match="head"):
        cl.tcp_runs(p, np.empty(8, np.int32), np.empty(3, np.int32))


def test_the_reader_keeps_its_blocks_where_the_c_library_can() -> None:
    """glibc is told to keep freed read blocks (so the kernel need not zero fresh pages for each); the C
    library answers for itself, and a size it cannot take is refused."""
    import platform

    assert R.keep_read_blocks() is (platform.libc_ver()[0] == "glibc")
    cl = native.loops()
    assert cl is not None
    assert cl.keep_read_blocks(0) is False and cl.keep_read_blocks(1 << 40) is False
    path = FILES[0] if FILES else None
    if path is not None:
        assert_same(path)  # reading goes on as before


@settings(max_examples=300, deadline=None)
@given(buf=st.binary(max_size=200), picks=st.lists(st.tuples(st.integers(0, 220), st.integers(0, 60)), max_size=12),
       order=st.lists(st.integers(0, 11), max_size=20))
def test_gather_joins_the_rows_bytes_or_refuses(buf: bytes, picks: list, order: list) -> None:
    """A run's payloads joined in one copy: the bytes of each row in the order given, as slicing joins them;
    a row that points outside the buffer (or is no row) is refused, never read."""
    cl = native.loops()
    assert cl is not None
    offs = np.array([o for o, _ in picks], np.int64)
    lens = np.array([n for _, n in picks], np.int64)
    rows = np.array(order, np.int64)
    inside = all(j < len(picks) and picks[j][0] + picks[j][1] <= len(buf) for j in order)
    if inside:
        assert cl.gather(buf, offs, lens, rows) == b"".join(buf[offs[j] : offs[j] + lens[j]] for j in order)
    else:
        with pytest.raises(ValueError, match="outside"):
            cl.gather(buf, offs, lens, rows)
