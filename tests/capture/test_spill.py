"""Long streams kept on disk (SpillStore, StreamBuffer) read back exactly as if they were kept in memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segverify.capture import tcpstream
from segverify.capture.tcpstream import SpillStore, StreamBuffer, StreamReassembler

M32 = 1 << 32


@pytest.fixture(autouse=True)
def small_spill(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny thresholds, so that a few hundred bytes already cross the head, the tail and many extents."""
    monkeypatch.setattr(tcpstream, "SPILL_AFTER", 37)
    monkeypatch.setattr(tcpstream, "SPILL_CHUNK", 11)


ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.binary(max_size=60)),
    st.tuples(st.just("slice"), st.tuples(st.integers(-50, 400), st.integers(-50, 400))),
    st.tuples(st.just("clear"), st.none()),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops=ops)
def test_stream_buffer_is_a_bytearray(ops: list) -> None:
    store = SpillStore()
    buf, model = StreamBuffer(store), bytearray()
    for op, arg in ops:
        if op == "add":
            buf += arg
            model += arg
        elif op == "slice":
            a, b = arg
            assert buf[a:b] == bytes(model[a:b])
            assert buf[a:] == bytes(model[a:])
        else:
            buf.clear()
            model.clear()
        assert len(buf) == len(model)
        assert bytes(buf) == bytes(model)


def test_spilled_bytes_are_on_disk_not_in_memory() -> None:
    store = SpillStore()
    buf = StreamBuffer(store)
    data = bytes(range(256)) * 8
    for i in range(0, len(data), 100):
        buf += data[i : i + 100]
    assert bytes(buf) == data
    assert store.size >= len(data) - tcpstream.SPILL_AFTER - tcpstream.SPILL_CHUNK
    assert len(buf._head) == tcpstream.SPILL_AFTER and len(buf._tail) < tcpstream.SPILL_CHUNK


def feed_all(r: StreamReassembler, isn: int, segs: list[tuple[int, bytes]], reads: set[int]) -> list[bytes]:
    got = []
    r.feed(isn, b"", syn=True)
    for i, (off, chunk) in enumerate(segs):
        r.feed((isn + 1 + off) % M32, chunk, fin=i == len(segs) - 1)
        if i in reads:
            got.append(r.read())
    r.finish()
    got.append(r.read())
    return got


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=1500),
    cuts=st.lists(st.integers(0, 1500), max_size=30),
    forged=st.lists(st.tuples(st.integers(0, 1500), st.binary(min_size=1, max_size=80)), max_size=10),
    drop=st.lists(st.integers(0, 40), max_size=3),
    reads=st.sets(st.integers(0, 60), max_size=6),
    keep=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_reassembly_with_a_store_equals_reassembly_in_memory(
    data: bytes, cuts: list[int], forged: list[tuple[int, bytes]], drop: list[int], reads: set[int], keep: bool,
    seed: int,
) -> None:
    """Retransmissions with other bytes (conflicts are found by comparing with spilled bytes), holes, reads
    with and without keeping: every observable of the stream is the same."""
    pts = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    segs = [(a, data[a:b]) for a, b in zip(pts, pts[1:], strict=False) if b > a]
    segs = [s for i, s in enumerate(segs) if i not in drop or len(segs) == 1]
    segs += segs[: len(segs) // 2] + [(a % len(data), b) for a, b in forged]
    random.Random(seed).shuffle(segs)
    isn = random.Random(seed).randrange(M32)
    plain = StreamReassembler(keep=keep)
    spilled = StreamReassembler(keep=keep, store=SpillStore())
    assert feed_all(spilled, isn, segs, reads) == feed_all(plain, isn, segs, reads)
    assert spilled.data() == plain.data()
    for name in ("gaps", "conflicts", "conflict_bytes", "retransmitted_bytes", "delivered", "truncated", "closed",
                 "gap_bytes", "complete"):
        assert getattr(spilled, name) == getattr(plain, name), name
