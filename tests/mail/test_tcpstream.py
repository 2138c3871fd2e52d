"""TCP stream reassembly: generated segment orders, wrap-around, gaps, conflicts, caps, and the real captures."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from segverify.capture import iter_packets
from segverify.capture.decode import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from segverify.capture.tcpstream import Connection, Gap, StreamReassembler, reassemble

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "captures" / "zeek"
needs_corpus = pytest.mark.skipif(not (CORPUS / "smtp.pcap").exists(), reason=f"capture corpus not found at {CORPUS}")
M32 = 1 << 32


def segments(data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    """Split ``data`` at ``cuts`` into (offset, bytes) segments."""
    pts = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [(a, data[a:b]) for a, b in zip(pts, pts[1:], strict=False) if b > a]


def run(isn: int, segs: list[tuple[int, bytes]], **kw: int) -> StreamReassembler:
    r = StreamReassembler(**kw)
    r.feed(isn, b"", syn=True)
    for off, chunk in segs:
        r.feed((isn + 1 + off) % M32, chunk)
    r.finish()
    return r


# ---------------------------------------------------------------------------------------------- generated


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    cuts=st.lists(st.integers(0, 3000), max_size=40),
    isn=st.one_of(st.integers(0, M32 - 1), st.integers(M32 - 3000, M32 - 1)),
    extra=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 600)), max_size=15),
    seed=st.integers(0, 2**32),
)
def test_any_order_duplicates_and_overlaps_reassemble_exactly(
    data: bytes, cuts: list[int], isn: int, extra: list[tuple[int, int]], seed: int
) -> None:
    segs = segments(data, cuts)
    segs += segs[: len(segs) // 2]  # duplicates (retransmissions)
    for a, n in extra:  # overlapping re-segmentations of the same bytes
        a %= len(data)
        segs.append((a, data[a : a + n]))
    random.Random(seed).shuffle(segs)
    r = run(isn, segs)
    assert r.data() == data
    assert r.gaps == [] and r.conflicts == [] and not r.truncated and r.complete
    assert r.delivered == len(data) and r.syn_seen and not r.started_mid_stream


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=2, max_size=2000), cuts=st.lists(st.integers(0, 2000), min_size=1, max_size=20),
       drop=st.integers(0, 100), seed=st.integers(0, 2**32), isn=st.integers(0, M32 - 1))  # fmt: skip
def test_a_lost_segment_is_one_gap_and_the_rest_is_kept(
    data: bytes, cuts: list[int], drop: int, seed: int, isn: int
) -> None:
    segs = segments(data, cuts)
    if len(segs) < 2:
        return
    k = drop % (len(segs) - 1)  # never the last one: a missing tail without FIN is not detectable
    off, lost = segs.pop(k)
    random.Random(seed).shuffle(segs)
    r = run(isn, segs)
    assert r.gaps == [Gap(off, len(lost), off)]
    assert r.data() == data[:off] + data[off + len(lost) :]
    assert not r.complete


def test_incremental_read_matches_data() -> None:
    data = bytes(range(256)) * 40
    segs = segments(data, list(range(0, len(data), 97)))
    random.Random(1).shuffle(segs)
    r = StreamReassembler()
    r.feed(5, b"", syn=True)
    got = bytearray()
    for off, chunk in segs:
        r.feed(6 + off, chunk)
        got += r.read()
    assert bytes(got) == data == r.data()
    assert r.read() == b""


def test_keep_false_drops_what_was_read() -> None:
    r = StreamReassembler(keep=False)
    r.feed(0, b"", syn=True)
    r.feed(1, b"hello ")
    assert r.read() == b"hello "
    r.feed(7, b"world")
    assert r.data() == b"world" and r.read() == b"world" and r.data() == b""
    r.feed(1, b"HELLO ")  # a retransmission of bytes no longer held: counted, not compared
    assert r.retransmitted_bytes == 6 and r.conflicts == []


# ---------------------------------------------------------------------------------------------- wrap-around


def test_sequence_wrap_around() -> None:
    data = b"".join(b"%06d\n" % i for i in range(2000))
    isn = M32 - 5000  # the stream crosses 2**32 at offset 4999
    segs = segments(data, list(range(0, len(data), 700)))
    segs.reverse()
    r = run(isn, segs)
    assert r.data() == data and r.isn == isn and r.gaps == []


def test_wrap_around_without_syn_and_stale_retransmission() -> None:
    r = StreamReassembler()
    r.feed(M32 - 3, b"abc")  # first segment seen mid-stream: offset 0 is here
    r.feed(0, b"def")  # wrapped
    r.feed(M32 - 3, b"abc")  # old retransmission, across the wrap
    r.feed(3, b"ghi")
    r.finish()
    assert r.data() == b"abcdefghi" and r.started_mid_stream and not r.syn_seen
    assert r.retransmitted_bytes == 3 and r.complete


def test_syn_with_data_and_fin() -> None:
    r = StreamReassembler()
    r.feed(100, b"early", syn=True)  # TCP Fast Open: data in the SYN follows its sequence number
    r.feed(106, b" late", fin=True)
    r.feed(111, b"after fin")  # never delivered to an application
    r.finish()
    assert r.data() == b"early late" and r.closed and r.fin_offset == 10


def test_segments_before_the_syn_are_held_until_it_comes() -> None:
    r = StreamReassembler()
    r.feed(11, b"world", fin=True)
    r.feed(5, b"hello ")
    r.feed(4, b"", syn=True)  # the SYN shows up last (merged interfaces, reordered capture)
    r.finish()
    assert r.data() == b"hello world" and r.syn_seen and not r.started_mid_stream and r.closed and r.complete


def test_without_syn_the_earliest_byte_held_is_offset_zero() -> None:
    r = StreamReassembler()
    r.feed(1003, b"def")
    r.feed(1000, b"abc")  # earlier than the first segment seen
    r.feed(1006, b"ghi")
    assert r.data() == b"abcdefghi" and r.started_mid_stream and r.isn == 999
    r.feed(999, b"X")  # once settled, bytes before offset 0 are old: not delivered
    r.finish()
    assert r.data() == b"abcdefghi" and r.gaps == []


def test_holding_back_is_capped() -> None:
    r = StreamReassembler(max_buffer=10)
    r.feed(100, b"x" * 8)
    r.feed(50, b"y" * 8)  # 16 bytes held > 10: offset 0 is settled on the earliest
    assert r.started_mid_stream and r.data() == b"y" * 8
    r.finish()
    assert r.gaps == [Gap(8, 42, 8)] and r.data() == b"y" * 8 + b"x" * 8


# ---------------------------------------------------------------------------------------------- gaps and conflicts


def test_bogus_fin_and_far_away_bytes_are_ignored() -> None:
    r = StreamReassembler()
    r.feed(0, b"", syn=True)
    r.feed(1, b"abcdef")
    r.feed(3, b"", fin=True)  # a FIN before bytes already delivered cannot be real
    r.feed(1 + (1 << 30) + 100, b"far")  # beyond any receive window
    r.feed(7, b"ghi", fin=True)
    r.finish()
    assert r.data() == b"abcdefghi" and r.fin_offset == 9 and r.out_of_window_bytes == 3 and r.complete


def test_hole_before_fin_is_a_gap() -> None:
    r = StreamReassembler()
    r.feed(0, b"", syn=True)
    r.feed(1, b"abc")
    r.feed(10, b"", fin=True)  # FIN at offset 9: bytes 3..8 never came
    assert not r.closed
    r.finish()
    assert r.gaps == [Gap(3, 6, 3)] and r.closed and r.data() == b"abc"


def test_gap_filled_late_is_no_gap() -> None:
    r = StreamReassembler()
    r.feed(0, b"", syn=True)
    r.feed(4, b"def")
    assert r.data() == b"" and r.buffered == 3
    r.feed(1, b"abc")
    r.finish()
    assert r.data() == b"abcdef" and r.gaps == [] and r.buffered == 0


def test_first_arrival_wins_and_conflicts_are_recorded() -> None:
    r = StreamReassembler()
    r.feed(0, b"", syn=True)
    r.feed(5, b"EFGH")  # buffered out of order
    r.feed(1, b"abcdXXXXij")  # overlaps the buffered bytes with other bytes: the buffered ones win
    r.feed(1, b"abZd")  # overlaps delivered bytes with other bytes: the delivered ones win
    r.finish()
    assert r.data() == b"abcdEFGHij"
    assert [(c.offset, c.length) for c in r.conflicts] == [(4, 4), (0, 4)]
    assert r.conflict_bytes == 8 and not r.complete


def test_identical_retransmissions_are_no_conflict() -> None:
    r = StreamReassembler()
    r.feed(0, b"", syn=True)
    for _ in range(3):
        r.feed(1, b"abcdef")
        r.feed(3, b"cdefgh")
    r.finish()
    assert r.data() == b"abcdefgh" and r.conflicts == [] and r.retransmitted_bytes == 4 + 6 + 6 + 6 + 6


def test_conflict_after_a_gap_is_compared_at_the_right_place() -> None:
    r = StreamReassembler()
    r.feed(0, b"", syn=True)
    r.feed(1, b"abc")
    r.feed(10, b"xyz")
    r.finish()  # gap 3..8
    r.feed(10, b"xyz")
    r.feed(10, b"xQz")
    assert r.gaps == [Gap(3, 6, 3)] and [(c.offset, c.length) for c in r.conflicts] == [(9, 3)]


# ---------------------------------------------------------------------------------------------- caps


def test_max_bytes_truncates_and_stops() -> None:
    r = StreamReassembler(max_bytes=10)
    r.feed(0, b"", syn=True)
    r.feed(1, b"0123456")
    r.feed(15, b"later")  # buffered, then dropped when the cap is hit
    r.feed(8, b"789abcdef")
    r.feed(17, b"more")
    r.finish()
    assert r.data() == b"0123456789" and r.truncated and "max_bytes" in r.reasons[0]
    assert r.buffered == 0 and r.gaps == []


def test_out_of_order_cap_skips_the_hole() -> None:
    r = StreamReassembler(max_buffer=100)
    r.feed(0, b"", syn=True)
    r.feed(1, b"a" * 10)
    for i in range(5):
        r.feed(21 + 30 * i, bytes([66 + i]) * 30)  # a hole of 10 bytes at offset 10, never filled
    assert r.truncated and "out-of-order" in r.reasons[0]
    assert r.gaps and r.gaps[0] == Gap(10, 10, 10)
    r.finish()
    assert r.data() == b"a" * 10 + b"".join(bytes([66 + i]) * 30 for i in range(5))


def test_flood_of_tiny_out_of_order_segments_is_bounded() -> None:
    r = StreamReassembler(max_segments=1000)
    r.feed(0, b"", syn=True)
    t = time.perf_counter()
    for i in range(50000):
        r.feed(3 + 2 * i, b"x")  # every other byte missing
    r.finish()
    assert time.perf_counter() - t < 10
    assert r.truncated and r.gap_count == 50000 and r.gap_bytes == 50001 and r.delivered == 50000
    assert len(r.gaps) == 1024  # recorded one by one up to MAX_GAPS, counted beyond


def test_hostile_sequence_numbers_never_raise() -> None:
    rng = random.Random(7)
    r = StreamReassembler(max_bytes=1 << 16, max_buffer=1 << 12)
    r.feed(rng.getrandbits(32), b"", syn=True)
    for _ in range(3000):
        r.feed(rng.getrandbits(32) + rng.getrandbits(40), rng.randbytes(rng.randrange(0, 300)),
               syn=rng.random() < 0.01, fin=rng.random() < 0.01)  # fmt: skip
    r.finish()
    assert r.buffered <= 1 << 12 and r.delivered <= 1 << 16


def test_large_stream_in_order_is_fast() -> None:
    data = random.Random(3).randbytes(8 << 20)
    r = StreamReassembler()
    r.feed(1000, b"", syn=True)
    t = time.perf_counter()
    for off in range(0, len(data), 1460):
        r.feed(1001 + off, data[off : off + 1460])
    r.finish()
    assert time.perf_counter() - t < 5
    assert r.data() == data and not r.truncated


# ---------------------------------------------------------------------------------------------- Connection


def test_connection_orientation() -> None:
    a, b = (1, 40000), (2, 25)
    c = Connection(b, a)  # provisional: the server's packet was seen first
    c.feed(b, 500, b"220 hi\r\n", TCP_ACK)
    assert not c.initiator_known
    c.feed(a, 99, b"", TCP_SYN)  # a's SYN settles who connected
    assert c.initiator_known and c.client_endpoint == a and c.server_endpoint == b
    c.feed(a, 100, b"EHLO x\r\n", TCP_ACK)
    c.feed(a, 108, b"", TCP_FIN | TCP_ACK)
    c.feed(b, 508, b"", TCP_RST)
    c.finish()
    assert c.client.data() == b"EHLO x\r\n" and c.client.closed and c.reset
    assert c.server.data() == b"220 hi\r\n" and c.server.started_mid_stream


def test_connection_from_synack() -> None:
    a, b = (1, 40000), (2, 25)
    c = Connection(b, a)
    c.feed(b, 7, b"", TCP_SYN | TCP_ACK)
    assert c.initiator_known and c.client_endpoint == a


# ---------------------------------------------------------------------------------------------- real captures


@needs_corpus
def test_smtp_pcap_per_direction() -> None:
    """Feed smtp.pcap's first connection by hand: it has retransmissions re-segmented (1460 -> 1452 bytes)."""
    pkts = [p for p in iter_packets(CORPUS / "smtp.pcap") if p.proto == 6 and 1470 in (p.sport, p.dport)]
    cli, srv = StreamReassembler(), StreamReassembler()
    for p in pkts:
        r = cli if p.sport == 1470 else srv
        r.feed(p.seq, p.payload, syn=bool(p.tcp_flags & TCP_SYN), fin=bool(p.tcp_flags & TCP_FIN))
    cli.finish()
    srv.finish()
    payload = sum(len(p.payload) for p in pkts if p.sport == 1470)
    assert cli.retransmitted_bytes == 5840 and cli.delivered == payload - 5840 == 14705
    assert cli.conflicts == [] and cli.gaps == [] and cli.closed and srv.closed and srv.delivered == 538
    c = cli.data()
    assert c.startswith(b"EHLO GP\r\nAUTH LOGIN\r\n") and c.endswith(b"\r\n.\r\nQUIT\r\n")
    s = srv.data()
    assert s.startswith(b"220-xc90.websitewelcome.com ESMTP") and s.endswith(b"closing connection\r\n")


@needs_corpus
@pytest.mark.parametrize(("name", "conns", "client_bytes", "server_bytes"), [
    ("smtp.pcap", 2, [14705, 969], [538, 162]),
    ("smtp-attachment-msg.pcap", 1, [688], [0]),  # only the client's side was captured
    ("rfc3030-bdat-multipart.pcap", 1, [3552], [287]),
])  # fmt: skip
def test_reassemble_corpus(name: str, conns: int, client_bytes: list[int], server_bytes: list[int]) -> None:
    cs = reassemble(iter_packets(CORPUS / name), port=25)
    assert len(cs) == conns
    assert [c.client.delivered for c in cs] == client_bytes
    assert [c.server.delivered for c in cs] == server_bytes
    for c in cs:
        assert c.initiator_known and c.server_endpoint[1] == 25
        assert c.client.complete and c.server.complete


@needs_corpus
@pytest.mark.parametrize("name", ["smtp.pcap", "rfc3030-bdat-multipart.pcap"])
def test_shuffled_capture_reassembles_the_same(name: str) -> None:
    pkts = [p for p in iter_packets(CORPUS / name) if p.proto == 6 and 25 in (p.sport, p.dport)]
    want = reassemble(pkts)
    rng = random.Random(5)
    for _ in range(5):
        rng.shuffle(pkts)  # the SYNs too: the orientation and offset 0 must still come out right ...
        pkts.sort(key=lambda p: bool(p.tcp_flags & (TCP_FIN | TCP_RST)))  # ... but a SYN after a FIN is port reuse
        got = reassemble(pkts)
        assert len(got) == len(want)
        key = {c.client_endpoint: c for c in got}
        for w in want:
            g = key[w.client_endpoint]
            assert g.initiator_known and g.server_endpoint == w.server_endpoint
            assert g.client.data() == w.client.data() and g.server.data() == w.server.data()
            assert g.client.complete and g.server.complete and g.client.closed == w.client.closed


# ------------------------------------------------------------------------------- the in-order fast path


def _snapshot(r: StreamReassembler) -> tuple[object, ...]:
    """What a reassembler holds between two segments (the bytes waiting out of order included)."""
    return (bytes(r._buf), r._next, r._base, list(r._starts), list(r._chunks), r._pending, r.delivered, r.segments,
            r.truncated, r.fin_offset, r.retransmitted_bytes, r.conflict_bytes, r.out_of_window_bytes)


def _state(r: StreamReassembler) -> dict[str, object]:
    """Everything a reassembler exposes or keeps, after the end of the stream."""
    r.finish()
    public = {k: getattr(r, k) for k in ("syn_seen", "fin_seen", "started_mid_stream", "fin_offset", "closed",
                                         "truncated", "reasons", "gaps", "gap_count", "gap_bytes", "conflicts",
                                         "conflict_bytes", "retransmitted_bytes", "out_of_window_bytes", "segments",
                                         "delivered", "isn", "complete")}
    return {**public, "data": r.data(), "next": r.next_offset, "buffered": r.buffered}


@settings(max_examples=500, deadline=None)
@given(
    isn=st.one_of(st.integers(0, M32 - 1), st.integers(M32 - 500, M32 - 1)),
    steps=st.lists(st.tuples(st.sampled_from(["next", "next", "next", "at", "syn", "fin"]), st.integers(0, 90),
                             st.integers(-50, 600)), max_size=40),
    syn_first=st.booleans(),
    max_bytes=st.integers(1, 400),
)
@example(isn=7, steps=[("next", 10, 0), ("next", 11, 0)], syn_first=True, max_bytes=20)  # one byte over the cap
@example(isn=7, steps=[("next", 10, 0), ("next", 10, 0), ("next", 1, 0)], syn_first=True, max_bytes=20)  # at it
def test_feed_data_is_feed_without_flags(isn: int, steps: list[tuple[str, int, int]], syn_first: bool,
                                         max_bytes: int) -> None:
    """Segments without SYN or FIN fed through ``feed_data`` leave exactly the state ``feed`` leaves: in order,
    out of order, retransmitted, before the SYN, up to and past the cap, around the wrap."""
    slow, fast = StreamReassembler(max_bytes=max_bytes), StreamReassembler(max_bytes=max_bytes)
    if syn_first:
        slow.feed(isn, b"", syn=True)
        fast.feed(isn, b"", syn=True)
    at = 0
    for kind, size, off in steps:
        if kind != "next":
            at = off
        payload = bytes((at + k) % 251 for k in range(size))
        seq = (isn + 1 + at) % M32
        syn, fin = kind == "syn", kind == "fin"
        slow.feed(seq, payload, syn=syn, fin=fin)
        if syn or fin:
            fast.feed(seq, payload, syn=syn, fin=fin)
        else:
            fast.feed_data(seq, memoryview(payload))
        at += size
        assert _snapshot(fast) == _snapshot(slow)
    assert _state(fast) == _state(slow)


@settings(max_examples=500, deadline=None)
@given(
    isn=st.one_of(st.integers(0, M32 - 1), st.integers(M32 - 500, M32 - 1)),
    steps=st.lists(st.tuples(st.sampled_from(["next", "next", "at", "fin"]), st.integers(0, 90),
                             st.integers(-50, 600)), max_size=12),
    run_at=st.one_of(st.integers(-100, 700), st.sampled_from([(1 << 30) - 60, 1 << 30, (1 << 31) - 30])),
    sizes=st.lists(st.integers(1, 90), min_size=1, max_size=12),
    max_bytes=st.integers(1, 400),
)
def test_take_run_is_feed_of_each_segment(isn: int, steps: list[tuple[str, int, int]], run_at: int,
                                          sizes: list[int], max_bytes: int) -> None:  # fmt: skip
    """A run of segments back to back taken in one step leaves exactly the state that feeding each leaves (in
    order, up to the cap, past it, far out of the window, around the wrap); refused, it leaves nothing changed."""
    one, each = StreamReassembler(max_bytes=max_bytes), StreamReassembler(max_bytes=max_bytes)
    for r in (one, each):
        r.feed(isn, b"", syn=True)
    at = 0
    for kind, size, off in steps:
        if kind == "at":
            at = off
        payload = bytes((at + k) % 251 for k in range(size))
        for r in (one, each):
            r.feed((isn + 1 + at) % M32, payload, fin=kind == "fin")
        at += size
    before = _snapshot(one)
    pieces, seq = [], (isn + 1 + run_at) % M32
    for size in sizes:
        pieces.append(bytes((run_at + len(b"".join(pieces)) + k) % 251 for k in range(size)))
    taken = one.take_run(seq, memoryview(b"".join(pieces)), [len(p) for p in pieces])
    if not taken:
        assert _snapshot(one) == before
        return
    for k, p in enumerate(pieces):
        each.feed((seq + sum(map(len, pieces[:k]))) % M32, p)
    assert _snapshot(one) == _snapshot(each)
    assert _state(one) == _state(each)
