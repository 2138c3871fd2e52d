"""Fragment reassembly: real fragments from scapy, random splits and orders, and the evasion cases."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.packet import Raw, raw

from segverify.capture.decode import LINKTYPE_RAW, decode_frame
from segverify.capture.fragments import Defragmenter


def feed(frags: list[bytes], d: Defragmenter | None = None, ts0: int = 0) -> tuple[list, Defragmenter]:
    d = d or Defragmenter()
    out = []
    for i, f in enumerate(frags):
        got = d.add(f, 0, ts0 + i, i * 100)
        if got is not None:
            out.append(got)
    return out, d


def v4_datagram(size: int = 3000, ident: int = 77) -> IP:
    body = bytes(random.Random(size).randrange(256) for _ in range(size))
    return IP(src="10.1.0.5", dst="10.2.0.9", id=ident, flags=0) / UDP(sport=40000, dport=2598) / Raw(body)


def test_ipv4_scapy_fragments_rebuild_the_original_datagram_in_any_order() -> None:
    orig = v4_datagram()
    frags = [raw(f) for f in fragment(orig, fragsize=512)]
    assert len(frags) == 6
    for seed in range(5):
        order = frags[:]
        random.Random(seed).shuffle(order)
        out, d = feed(order)
        assert len(out) == 1 and out[0].packet == raw(IP(raw(orig)))
        assert out[0].fragments == 6 and out[0].pos == 500  # the sixth fragment fed completed it
        assert d.finish().lost() == 0


def test_rebuilt_datagram_decodes_with_its_ports_and_whole_payload() -> None:
    orig = IP(src="10.1.0.5", dst="10.2.0.9", id=5, flags=0) / TCP(sport=51000, dport=3389, flags="PA", seq=9) / (
        b"\x03\x00" + b"x" * 2000)
    out, _ = feed([raw(f) for f in fragment(orig, fragsize=256)])
    row = decode_frame(out[0].packet, LINKTYPE_RAW)
    assert (row["sport"], row["dport"], row["seq"], row["frag"]) == (51000, 3389, 9, 0)
    assert row["pay_len"] == 2002


def test_ipv6_fragment_header_removed_and_next_header_restored() -> None:
    orig = IPv6(src="2001:db8:1::5", dst="2001:db8:2::9") / IPv6ExtHdrFragment(id=0x1234) / UDP(
        sport=5000, dport=3389) / Raw(b"A" * 3000)
    frags = [raw(f) for f in fragment6(orig, 1280)]
    assert len(frags) >= 3
    out, d = feed(list(reversed(frags)))
    plain = IPv6(src="2001:db8:1::5", dst="2001:db8:2::9") / UDP(sport=5000, dport=3389) / Raw(b"A" * 3000)
    assert len(out) == 1 and out[0].packet == raw(plain)
    row = decode_frame(out[0].packet, LINKTYPE_RAW)
    assert (row["proto"], row["dport"], row["pay_len"]) == (17, 3389, 3000)
    assert d.finish().lost() == 0


def split(data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    points = sorted({c * 8 for c in cuts if 0 < c * 8 < len(data)})
    edges = [0, *points, len(data)]
    return [(a, data[a:b]) for a, b in zip(edges, edges[1:], strict=False)]


def v4_fragment(offset: int, data: bytes, more: bool, ident: int = 9) -> bytes:
    return raw(IP(src="192.0.2.1", dst="198.51.100.2", id=ident, proto=17, frag=offset // 8,
                  flags="MF" if more else 0) / Raw(data))


@settings(max_examples=200, deadline=None)
@given(size=st.integers(8, 4000), cuts=st.lists(st.integers(1, 500), max_size=12), seed=st.integers(0, 10**6),
       dups=st.integers(0, 3))
def test_random_splits_orders_and_duplicates_reassemble_exactly(size: int, cuts: list[int], seed: int,
                                                                dups: int) -> None:
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(size))
    pieces = split(data, cuts)
    frags = [v4_fragment(o, d, o + len(d) < size) for o, d in pieces]
    frags += [rng.choice(frags) for _ in range(dups)]  # retransmitted duplicates agree: harmless
    rng.shuffle(frags)
    out, d = feed(frags)
    assert len(out) >= 1
    packet = out[0].packet
    assert packet[20:] == data and packet[6:8] == b"\0\0"  # no offset, no MF
    assert int.from_bytes(packet[2:4], "big") == 20 + size


@settings(max_examples=100, deadline=None)
@given(size=st.integers(16, 2000), seed=st.integers(0, 10**6))
def test_overlap_with_different_bytes_is_never_reassembled(size: int, seed: int) -> None:
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(size))
    half = (size // 16) * 8 or 8
    forged = bytearray(data[:half])
    forged[rng.randrange(len(forged))] ^= 0xFF  # e.g. a TCP header rewritten by a later fragment
    frags = [v4_fragment(0, data[:half], True), v4_fragment(half, data[half:], False),
             v4_fragment(0, bytes(forged), True)]
    rng.shuffle(frags)
    out, d = feed(frags)
    # whole before the other copy arrived (what the receiver got too); the late copy is a stray fragment
    assert all(o.packet[20:] in (data, bytes(forged) + data[half:]) for o in out)
    stats = d.finish()
    assert not out or stats.pending == 1
    # the forged copy either arrived before completion (ambiguous) or after (a stray fragment, pending)
    assert stats.ambiguous + stats.pending >= 1 and stats.lost() >= 1


def test_tiny_fragment_rewriting_the_tcp_header_is_ambiguous() -> None:
    """RFC 1858: a second fragment at offset 8 overwrites the TCP flags of the first one."""
    tcp = raw(TCP(sport=1000, dport=3389, flags="A")) + b"payload!"
    evil = raw(TCP(sport=1000, dport=3389, flags="S")) + b"payload!"
    frags = [v4_fragment(0, tcp[:16], True), v4_fragment(8, evil[8:], False)]
    out, d = feed(frags)
    assert out == [] and d.stats.ambiguous == 1


def test_ping_of_death_is_refused() -> None:
    frag = v4_fragment(65528, b"x" * 16, False)
    out, d = feed([frag])
    assert out == [] and d.stats.oversized == 1


def test_memory_stays_bounded_and_losses_are_counted() -> None:
    d = Defragmenter(max_datagrams=10, max_bytes=1 << 20)
    frags = [v4_fragment(0, b"y" * 1024, True, ident=i) for i in range(1000)]
    out, d = feed(frags, d)
    assert out == [] and len(d._pending) <= 10 and d._held <= 1 << 20
    stats = d.finish()
    assert stats.evicted == 990 and stats.pending == 10 and stats.lost() == 1000


def test_fragments_older_than_the_timeout_expire() -> None:
    d = Defragmenter(timeout_ns=1_000)
    d.add(v4_fragment(0, b"z" * 8, True), 0, 0, 0)
    assert d.add(v4_fragment(8, b"z" * 8, False), 0, 5_000, 10) is None
    assert d.stats.expired == 1


def test_truncated_and_malformed_fragments_are_counted_not_trusted() -> None:
    frag = v4_fragment(0, b"q" * 100, True)
    _, d = feed([frag[:60], v4_fragment(0, b"q" * 13, True)])
    assert d.stats.truncated == 1 and d.stats.malformed == 1  # cut by the snap length; MF with 13 octets
