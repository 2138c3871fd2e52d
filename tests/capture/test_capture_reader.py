"""Capture reader: formats, link types, header decoding, damage and resynchronisation, hostile input."""

from __future__ import annotations

import gzip
import ipaddress
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from capture_gen import (
    EDITS,
    INSERTS,
    eth,
    mutate,
    ng_block,
    ng_epb,
    ng_idb,
    ng_pb,
    ng_shb,
    ng_spb,
    pcap_bytes,
    pcap_header,
    pcap_record,
    tcp_frame,
    udp_frame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segverify.capture import decode as D
from segverify.capture import reader as R
from segverify.capture.flows import FlowBuilder
from segverify.capture.reader import CaptureReader, iter_batches, iter_packets
from segverify.model.addresses import V6_BASE, addr_to_int

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "captures" / "zeek"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*.pcap*") if not p.name.endswith(".txt")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CORPUS_FILES, reason=f"capture corpus not found at {CORPUS}")

T0 = 1_600_000_000 * 10**9


def write(tmp_path: Path, data: bytes, name: str = "c.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def read_all(path: Path, **kw) -> tuple[list[R.PacketRecord], list[R.Damage]]:
    damage: list[R.Damage] = []
    return list(iter_packets(path, damage=damage, **kw)), damage


def summary(p: R.PacketRecord) -> tuple:
    return (p.ts, p.src, p.dst, p.proto, p.sport, p.dport, p.tcp_flags, p.wirelen, p.vlan, bytes(p.payload))


def frames3() -> list[bytes]:
    return [
        tcp_frame("10.0.0.1", "10.0.0.2", 1234, 80, "S", seq=100),
        tcp_frame("10.0.0.2", "10.0.0.1", 80, 1234, "SA", seq=500),
        udp_frame("2001:db8::1", "2001:db8::2", 5353, 53, b"hello"),
    ]


def assert_decoders_agree(path: Path) -> None:
    """The vectorised batch decoder and the scalar reference decoder give identical rows."""
    for b in iter_batches(path):
        p = b.pkts
        q = D.decode_batch(
            b.buf, p["pos"] - b.base, p["caplen"], p["wirelen"], p["ts"], p["ifindex"], p["linktype"], b.base, True
        )
        for name in D.BATCH_DTYPE.names:
            x, y = p[name], q[name]
            if name == "status":
                x, y = x & (0xFF ^ D.ST_SLOW), y & (0xFF ^ D.ST_SLOW)
            bad = np.flatnonzero(x != y)
            assert not len(bad), f"{path.name}: field {name} differs at packet {bad[0]}: {x[bad[0]]} vs {y[bad[0]]}"


# ---------------------------------------------------------------------------------------------- corpus


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_matches_scapy(path: Path) -> None:
    """Every corpus frame: timestamp, lengths, VLAN, addresses and ports agree with scapy's dissection."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q
    from scapy.utils import rdpcap

    ours, damage = read_all(path)
    assert damage == []
    theirs = rdpcap(str(path))
    assert len(ours) == len(theirs)
    for a, s in zip(ours, theirs, strict=True):
        assert a.ts == int(s.time * 10**9) or abs(a.ts - float(s.time) * 1e9) < 2000
        assert a.wirelen == s.wirelen and a.caplen == len(s)
        assert a.vlan == (s[Dot1Q].vlan if Dot1Q in s else None)
        ip = s.getlayer(IP) or s.getlayer(IPv6)
        if ip is None:
            assert a.family == 0
            continue
        assert a.src == addr_to_int(ip.src) and a.dst == addr_to_int(ip.dst)
        l4 = s.getlayer(TCP) or s.getlayer(UDP)
        if l4 is not None:
            assert (a.sport, a.dport) == (l4.sport, l4.dport)
            assert bytes(a.payload) == bytes(l4.payload)[: len(a.payload)]
        if TCP in s:
            assert a.tcp_flags == int(s[TCP].flags) and a.seq == s[TCP].seq


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_decoders_agree(path: Path) -> None:
    assert_decoders_agree(path)


@needs_corpus
def test_corpus_pcapng_interfaces() -> None:
    r = CaptureReader(CORPUS / "pcapng-multi-interface.pcapng")
    pk = [p for b in r.batches() for p in R.batch_records(b)]
    assert r.format == "pcapng" and r.damage == []
    assert [i.linktype for i in r.interfaces] == [1, 1]
    assert [i.tsresol for i in r.interfaces] == [9, 6]
    assert [p.ifindex for p in pk] == [0, 0, 1, 1, 1, 1]
    # 347.611566507 s between the interfaces' first packets, per tshark's relative start
    assert pk[2].ts - pk[0].ts == 347_611_566_507


# --------------------------------------------------------------------------------------- pcap variants


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nano: bool) -> None:
    fr = frames3()
    data = pcap_header(endian, nano) + b"".join(
        pcap_record(T0 + i * 1_000_000 + (123 if nano else 0), f, endian, nano) for i, f in enumerate(fr)
    )
    pk, damage = read_all(write(tmp_path, data))
    assert damage == []
    assert [p.ts for p in pk] == [T0 + i * 1_000_000 + (123 if nano else 0) for i in range(3)]
    assert pk[0].src == addr_to_int("10.0.0.1") and pk[0].dport == 80 and pk[0].tcp_flags == D.TCP_SYN
    assert pk[0].seq == 100 and pk[1].tcp_flags == D.TCP_SYN | D.TCP_ACK
    assert pk[2].family == 6 and pk[2].src == V6_BASE + int(ipaddress.ip_address("2001:db8::1"))
    assert pk[2].proto == 17 and bytes(pk[2].payload) == b"hello"


def test_gzip_transparent(tmp_path: Path) -> None:
    plain = pcap_bytes(frames3() * 50)
    a, da = read_all(write(tmp_path, plain))
    b, db = read_all(write(tmp_path, gzip.compress(plain), "c.pcap.gz"))
    assert da == db == [] and len(a) == 150
    assert [summary(p) for p in a] == [summary(p) for p in b]
    # concatenated members (as `cat a.gz b.gz` makes) and zero padding after the last one
    half = 24 + sum(16 + len(f) for f in frames3() * 25)
    c, dc = read_all(write(tmp_path, gzip.compress(plain[:half]) + gzip.compress(plain[half:]) + bytes(10), "d.gz"))
    assert dc == [] and [summary(p) for p in c] == [summary(p) for p in a]


def test_gzip_truncated_keeps_what_was_decoded(tmp_path: Path) -> None:
    plain = pcap_bytes(frames3() * 400)
    z = gzip.compress(plain)
    pk, damage = read_all(write(tmp_path, z[: len(z) // 2], "t.gz"))
    assert 0 < len(pk) < 1200
    assert any("gzip stream truncated" in d.reason for d in damage)
    full, _ = read_all(write(tmp_path, plain))
    assert [summary(p) for p in pk] == [summary(p) for p in full[: len(pk)]]


def test_gzip_corrupt(tmp_path: Path) -> None:
    z = bytearray(gzip.compress(pcap_bytes(frames3() * 400)))
    z[len(z) // 2 : len(z) // 2 + 64] = bytes(64)
    pk, damage = read_all(write(tmp_path, bytes(z), "t.gz"))
    assert damage  # either the deflate stream or the CRC complains; no exception either way


def test_not_a_capture(tmp_path: Path) -> None:
    pk, damage = read_all(write(tmp_path, b"hello world, not a capture"))
    assert pk == [] and len(damage) == 1 and damage[0].offset == 0 and "not a pcap" in damage[0].reason
    pk, damage = read_all(write(tmp_path, b""))
    assert pk == [] and damage[0].reason == "empty file"


# ------------------------------------------------------------------------------------------ link types


def _ip_tcp(v6: bool = False) -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else IP(src="192.0.2.1", dst="192.0.2.2")
    return bytes(ip / TCP(sport=40000, dport=443, flags="S") / b"abc")


def _sll(payload: bytes, proto: int) -> bytes:
    return struct.pack(">HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", proto) + payload


def _sll2(payload: bytes, proto: int) -> bytes:
    return struct.pack(">HHIHBB8s", proto, 0, 3, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + payload


@pytest.mark.parametrize(
    "linktype,frame,v6",
    [
        (113, _sll(_ip_tcp(), 0x0800), False),
        (113, _sll(_ip_tcp(True), 0x86DD), True),
        (276, _sll2(_ip_tcp(), 0x0800), False),
        (276, _sll2(_ip_tcp(True), 0x86DD), True),
        (101, _ip_tcp(), False),
        (101, _ip_tcp(True), True),
        (12, _ip_tcp(), False),
        (14, _ip_tcp(True), True),
        (228, _ip_tcp(), False),
        (229, _ip_tcp(True), True),
        (0, struct.pack("<I", 2) + _ip_tcp(), False),
        (0, struct.pack(">I", 30) + _ip_tcp(True), True),  # Darwin AF_INET6, written big-endian
        (0, struct.pack("<I", 10) + _ip_tcp(True), True),  # Linux AF_INET6
        (108, struct.pack(">I", 2) + _ip_tcp(), False),
    ],
)
def test_link_types(tmp_path: Path, linktype: int, frame: bytes, v6: bool) -> None:
    path = write(tmp_path, pcap_bytes([frame, frame], linktype=linktype))
    pk, damage = read_all(path)
    assert damage == [] and len(pk) == 2
    p = pk[0]
    assert p.linktype == linktype and p.family == (6 if v6 else 4)
    assert p.src == (addr_to_int("fd00::1") if v6 else addr_to_int("192.0.2.1"))
    assert (p.proto, p.sport, p.dport, p.tcp_flags, bytes(p.payload)) == (6, 40000, 443, D.TCP_SYN, b"abc")
    assert_decoders_agree(path)


def test_vlan_tags(tmp_path: Path) -> None:
    frames = [
        tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, vlans=(10,)),
        tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, vlans=(20, 30)),  # QinQ 0x88a8 outer: the outer id counts
        tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, vlans=(40, 50, 60)),  # three tags: scalar path
        tcp_frame("10.0.0.1", "10.0.0.2", 1, 2),
    ]
    # a 0x9100 outer tag
    frames.append(frames[1][:12] + b"\x91\x00" + frames[1][14:])
    path = write(tmp_path, pcap_bytes(frames))
    pk, damage = read_all(path)
    assert damage == []
    assert [p.vlan for p in pk] == [10, 20, 40, None, 20]
    assert all(p.sport == 1 and p.dport == 2 and p.family == 4 for p in pk)
    assert_decoders_agree(path)


def test_ipv6_extension_headers_and_fragments(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP, UDP, fragment
    from scapy.layers.inet6 import (
        IPv6,
        IPv6ExtHdrDestOpt,
        IPv6ExtHdrFragment,
        IPv6ExtHdrHopByHop,
        IPv6ExtHdrRouting,
        fragment6,
    )
    from scapy.layers.ipsec import AH

    base = IPv6(src="2001:db8::a", dst="2001:db8::b")
    chain = eth() / base / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt()
    chain = chain / AH(nh=6, payloadlen=4, spi=7, icv=b"\0" * 12) / TCP(sport=1111, dport=22, flags="S") / b"data"
    big = eth() / base / IPv6ExtHdrFragment() / UDP(sport=5000, dport=6000) / (b"z" * 3000)
    frags6 = [bytes(eth() / f) for f in fragment6(big[IPv6], 1280)]
    v4 = IP(src="10.1.1.1", dst="10.2.2.2", id=77) / UDP(sport=7000, dport=8000) / (b"y" * 3000)
    frags4 = [bytes(eth() / f) for f in fragment(v4, fragsize=1000)]
    opts4 = bytes(eth() / IP(src="10.1.1.1", dst="10.2.2.2", options=b"\x01" * 8) / TCP(sport=3, dport=4) / b"q")
    frames = [bytes(chain), *frags6, *frags4, opts4]
    path = write(tmp_path, pcap_bytes(frames))
    pk, damage = read_all(path)
    assert damage == []
    p = pk[0]
    assert (p.family, p.proto, p.sport, p.dport, p.tcp_flags, bytes(p.payload)) == (6, 6, 1111, 22, 2, b"data")
    f6 = pk[1 : 1 + len(frags6)]
    assert len(f6) >= 3 and all(q.is_fragment for q in f6)
    assert f6[0].first_fragment and (f6[0].sport, f6[0].dport) == (5000, 6000) and f6[0].proto == 17
    assert all(not q.first_fragment and q.sport == 0 and q.proto == 17 and q.frag_off > 0 for q in f6[1:])
    assert len({q.ip_id for q in f6}) == 1
    f4 = pk[1 + len(frags6) : -1]
    assert len(f4) == 4 and f4[0].first_fragment and (f4[0].sport, f4[0].dport) == (7000, 8000)
    assert all(q.is_fragment and q.ip_id == 77 for q in f4)
    assert all(q.sport == 0 and q.frag_off > 0 for q in f4[1:])
    assert (pk[-1].sport, pk[-1].dport, bytes(pk[-1].payload)) == (3, 4, b"q")
    assert_decoders_agree(path)
    fb = FlowBuilder()
    for b in iter_batches(path):
        fb.add(b)
    assert fb.fragments.later_total == len(f6) - 1 + 3  # later fragments: no ports, no flow of their own
    assert fb.unattributed_fragments == 0  # ... but each datagram's first fragment is in the capture


def test_ipv6_extension_chain_is_bounded(tmp_path: Path) -> None:
    """A chain of 40 destination-options headers stops at the bound instead of walking on."""
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt

    pkt = IPv6(src="::1", dst="::2")
    for _ in range(40):
        pkt = pkt / IPv6ExtHdrDestOpt()
    path = write(tmp_path, pcap_bytes([bytes(eth() / pkt)]))
    pk, damage = read_all(path)
    assert damage == [] and pk[0].status & D.ST_EXT_LIMIT and pk[0].sport == 0


def test_truncated_and_odd_headers(tmp_path: Path) -> None:
    """Frames cut inside their headers decode what is there and flag the rest."""
    full = tcp_frame("10.0.0.1", "10.0.0.2", 1000, 2000, "S")
    frames = [full[:n] for n in (0, 5, 14, 20, 34, 36, 38, 40, 53)]
    frames.append(full[:16] + b"\x00" + full[17:])  # total length 0 (TSO capture)
    frames.append(full[:14] + b"\x44" + full[15:])  # IHL 4: invalid
    frames.append(b"\xff" * 60)  # not IP
    path = write(tmp_path, pcap_bytes(frames))
    pk, damage = read_all(path)
    assert damage == [] and len(pk) == len(frames)
    assert [p.family for p in pk[:4]] == [0, 0, 0, 0]
    assert pk[4].family == 4 and pk[4].status & D.ST_NO_PORTS
    assert (pk[5].sport, pk[5].dport) == (0, 0) and pk[5].status & D.ST_NO_PORTS
    assert (pk[6].sport, pk[6].dport, pk[6].tcp_flags) == (1000, 2000, 0) and pk[6].status & D.ST_L4_TRUNC
    assert pk[8].sport == 1000 and pk[8].status & D.ST_L4_TRUNC
    assert pk[9].tcp_flags == D.TCP_SYN
    assert pk[10].status & D.ST_IP_BAD and pk[10].family == 0
    assert pk[11].status & D.ST_NOT_IP
    assert_decoders_agree(path)


# ------------------------------------------------------------------------------------------------ pcapng


def test_pcapng_sections_interfaces_blocks(tmp_path: Path) -> None:
    tcp = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, "S")
    raw = _ip_tcp()
    sll = _sll(_ip_tcp(True), 0x86DD)
    t = 1_700_000_000  # seconds
    data = b"".join(
        [
            ng_shb("<"),
            ng_idb(1, "<"),  # default resolution: microseconds
            ng_idb(101, "<", tsresol=9),
            ng_epb(0, t * 10**6 + 5, tcp, "<"),
            ng_block(0x99, b"unknown block body", "<"),  # skipped
            ng_epb(1, t * 10**9 + 7, raw, "<"),
            ng_shb(">"),  # new section, other byte order: interface numbering restarts
            ng_idb(113, ">", tsresol=0x80 | 20),  # 2^-20 s
            ng_idb(1, ">", tsresol=3, tsoffset=100),  # milliseconds, +100 s
            ng_epb(0, (t << 20) + (1 << 19), sll, ">"),
            ng_epb(1, t * 1000 + 250, tcp, ">"),
            ng_spb(tcp, ">"),  # simple packet block: interface 0 of the section, no timestamp
            ng_pb(1, t * 1000, tcp, ">"),  # obsolete packet block
        ]
    )
    path = write(tmp_path, data, "c.pcapng")
    r = CaptureReader(path)
    pk = [p for b in r.batches() for p in R.batch_records(b)]
    assert r.damage == []
    assert [(i.linktype, i.section) for i in r.interfaces] == [(1, 0), (101, 0), (113, 1), (1, 1)]
    assert [p.ifindex for p in pk] == [0, 1, 2, 3, 2, 3]
    assert [p.linktype for p in pk] == [1, 101, 113, 1, 113, 1]
    assert pk[0].ts == t * 10**9 + 5000
    assert pk[1].ts == t * 10**9 + 7
    assert pk[2].ts == t * 10**9 + 500_000_000
    assert pk[3].ts == (t + 100) * 10**9 + 250_000_000
    assert pk[4].ts == 0
    assert pk[2].family == 6 and pk[2].sport == 40000
    assert all(p.sport == 1 for p in (pk[0], pk[3], pk[5]))
    assert_decoders_agree(path)


def test_pcapng_wrong_trailing_length(tmp_path: Path) -> None:
    f = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2)
    blocks = [ng_shb(), ng_idb(1)] + [ng_epb(0, i, f) for i in range(3)]
    bad = ng_epb(0, 99, f, trailer=1234)
    tail = [ng_epb(0, 100 + i, f) for i in range(5)]
    data = b"".join(blocks + [bad] + tail)
    path = write(tmp_path, data, "c.pcapng")
    pk, damage = read_all(path)
    bad_at = len(b"".join(blocks))
    assert damage[0].offset == bad_at and "trailing" in damage[0].reason
    assert damage[-1].offset == bad_at + len(bad) and "resynchronised" in damage[-1].reason
    assert len(pk) == 8 and [p.ts for p in pk[3:]] == [(100 + i) * 1000 for i in range(5)]


def test_pcapng_truncated_and_bad_blocks(tmp_path: Path) -> None:
    f = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2)
    head = ng_shb() + ng_idb(1)
    good = ng_epb(0, 1, f)
    # a block length that is not a multiple of 4 and absurdly large
    weird = struct.pack("<II", 6, 0xFFFFFFF0) + bytes(40)
    data = head + good + weird + good + good + good[:-9]
    pk, damage = read_all(write(tmp_path, data, "c.pcapng"))
    assert len(pk) == 3
    assert damage[0].offset == len(head + good) and "impossible" in damage[0].reason
    assert "truncated" in damage[-1].reason and damage[-1].offset == len(data) - len(good) + 9
    # an EPB naming an interface that does not exist, and one claiming more data than the block holds
    bad_if = ng_epb(5, 1, f)
    over = bytearray(ng_epb(0, 1, f))
    struct.pack_into("<I", over, 20, 10_000)
    pk, damage = read_all(write(tmp_path, head + bad_if + bytes(over) + good, "d.pcapng"))
    assert len(pk) == 1 and len(damage) == 2
    assert "unknown interface" in damage[0].reason and "exceeds" in damage[1].reason


# --------------------------------------------------------------------------------------- damage (pcap)


def test_truncated_last_record(tmp_path: Path) -> None:
    fr = frames3()
    data = pcap_bytes(fr)
    last = len(data) - (16 + len(fr[2]))
    pk, damage = read_all(write(tmp_path, data[:-10]))
    assert len(pk) == 2
    assert damage == [R.Damage(str(tmp_path / "c.pcap"), last, damage[0].reason)]
    assert "truncated" in damage[0].reason
    # cut inside the record header too
    pk, damage = read_all(write(tmp_path, data[: last + 7]))
    assert len(pk) == 2 and damage[0].offset == last


def test_garbage_in_the_middle_resyncs(tmp_path: Path) -> None:
    fr = [tcp_frame("10.0.0.1", "10.0.0.2", 1000 + i, 80) for i in range(10)]
    recs = [pcap_record(T0 + i * 1000_000, f) for i, f in enumerate(fr)]
    cut = 24 + sum(len(r) for r in recs[:4])
    garbage = bytes(np.random.default_rng(1).integers(0, 256, 333, dtype=np.uint8))
    data = pcap_header() + b"".join(recs[:4]) + garbage + b"".join(recs[4:])
    pk, damage = read_all(write(tmp_path, data))
    assert [p.sport for p in pk] == [1000 + i for i in range(10)]
    assert damage[0].offset >= cut and damage[0].offset < cut + len(garbage)
    assert damage[-1].offset == cut + len(garbage)
    assert damage[-1].reason == f"resynchronised after skipping {cut + len(garbage) - damage[0].offset} bytes"


def test_absurd_record_length_no_allocation(tmp_path: Path) -> None:
    fr = [tcp_frame("10.0.0.1", "10.0.0.2", 1000 + i, 80) for i in range(6)]
    recs = [pcap_record(T0 + i * 1000_000, f) for i, f in enumerate(fr)]
    evil = struct.pack("<IIII", T0 // 10**9, 0, 0x7FFFFFF0, 0x7FFFFFF0) + b"\x00" * 40
    data = pcap_header() + b"".join(recs[:2]) + evil + b"".join(recs[2:])
    path = write(tmp_path, data)
    tracemalloc.start()
    try:
        pk, damage = read_all(path)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert [p.sport for p in pk] == [1000 + i for i in range(6)]
    assert damage[0].offset == 24 + len(recs[0]) + len(recs[1]) and "exceeds" in damage[0].reason


def test_caplen_larger_than_origlen_is_damage(tmp_path: Path) -> None:
    f = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2)
    recs = [pcap_record(T0 + i, f) for i in range(6)]
    bad = pcap_record(T0, f, orig=10)
    pk, damage = read_all(write(tmp_path, pcap_header() + recs[0] + bad + b"".join(recs[1:])))
    assert len(pk) == 6 and "larger than original" in damage[0].reason


def test_lenient_where_libpcap_is_lenient(tmp_path: Path) -> None:
    """A microsecond field of 1000000 (some writers emit it) is read, not treated as damage."""
    f = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2)
    odd = struct.pack("<IIII", 1_600_000_000, 1_000_000, len(f), len(f)) + f
    pk, damage = read_all(write(tmp_path, pcap_header() + odd + pcap_record(T0, f)))
    assert damage == [] and pk[0].ts == 1_600_000_001 * 10**9


def test_unknown_link_type_and_hostile_interface_options(tmp_path: Path) -> None:
    f = tcp_frame("10.0.0.1", "10.0.0.2", 1, 2)
    pk, damage = read_all(write(tmp_path, pcap_bytes([f, f], linktype=127)))  # radiotap: not decoded
    assert damage == [] and [(p.family, p.status & D.ST_NOT_IP) for p in pk] == [(0, D.ST_NOT_IP)] * 2
    data = ng_shb() + ng_idb(1, tsresol=0xFF, tsoffset=(1 << 63) - 1) + ng_idb(1, tsresol=200) + ng_idb(1, tsresol=0)
    data += ng_epb(0, (1 << 64) - 1, f) + ng_epb(1, (1 << 64) - 1, f) + ng_epb(2, (1 << 64) - 1, f)
    pk, damage = read_all(write(tmp_path, data, "c.pcapng"))
    assert damage == [] and len(pk) == 3 and all(p.sport == 1 for p in pk)


def test_small_blocks_stream_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records and blocks straddling block boundaries read the same as with one big block."""
    fr = [tcp_frame("10.0.0.1", "10.0.0.2", 1000 + i, 80, payload=b"p" * (i % 300)) for i in range(400)]
    pcap = write(tmp_path, pcap_bytes(fr))
    ng = write(tmp_path, ng_shb() + ng_idb(1) + b"".join(ng_epb(0, i, f) for i, f in enumerate(fr)), "c.pcapng")
    gz = write(tmp_path, gzip.compress(pcap.read_bytes()), "c.gz")
    want = {p: [summary(x) for x in read_all(p)[0]] for p in (pcap, ng, gz)}
    monkeypatch.setattr(R, "CHUNK", 1000)
    for p in (pcap, ng, gz):
        got, damage = read_all(p)
        assert damage == [] and [summary(x) for x in got] == want[p]
    # damage found, and resynchronised after, while the reader refills its small blocks
    junk = b"\xff" * 2500
    bad_pcap = pcap.read_bytes()
    bad_pcap = write(tmp_path, bad_pcap[:5000] + junk + bad_pcap[5000:], "bad.pcap")
    ng_bytes = ng.read_bytes()
    cut = len(ng_shb() + ng_idb(1)) + sum(len(ng_epb(0, i, f)) for i, f in enumerate(fr[:30]))
    bad_ng = write(tmp_path, ng_bytes[:cut] + junk + ng_bytes[cut:], "bad.pcapng")
    for p, n in ((bad_pcap, 399), (bad_ng, 400)):
        got, damage = read_all(p)
        assert len(got) >= n - 1 and "resynchronised" in damage[-1].reason
        assert [summary(x)[1:] for x in got[-300:]] == [s[1:] for s in want[pcap][-300:]]
    batches = list(iter_batches(pcap, batch_size=7))
    assert max(len(b) for b in batches) <= 7 and sum(len(b) for b in batches) == 400


def test_scapy_written_files(tmp_path: Path) -> None:
    """Files written by an independent writer (scapy) read back with the same packets."""
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter, wrpcap

    pkts = [Ether(f) for f in frames3()]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i / 4
    wrpcap(str(tmp_path / "s.pcap"), pkts)
    w = PcapNgWriter(str(tmp_path / "s.pcapng"))
    for p in pkts:
        w.write(p)
    w.close()
    for name in ("s.pcap", "s.pcapng"):
        pk, damage = read_all(tmp_path / name)
        assert damage == [] and [(p.sport, p.dport) for p in pk] == [(1234, 80), (80, 1234), (5353, 53)]
        assert [p.ts for p in pk] == [1_700_000_000 * 10**9 + i * 250_000_000 for i in range(3)]


# --------------------------------------------------------------------------------------- hostile input


def _base_captures() -> list[bytes]:
    fr = frames3() + [tcp_frame("10.9.9.9", "10.8.8.8", 5, 6, vlans=(3, 4), payload=b"v" * 50)]
    pcap = pcap_bytes(fr * 3)
    ng = (
        ng_shb()
        + ng_idb(1)
        + ng_idb(101, tsresol=9, tsoffset=5)
        + b"".join(ng_epb(0, i, f) for i, f in enumerate(fr * 2))
    )
    ng += ng_epb(1, 9, _ip_tcp()) + ng_spb(fr[0]) + ng_shb(">") + ng_idb(1, ">") + ng_epb(0, 5, fr[1], ">")
    return [pcap, ng]


_BASES = _base_captures()


def _read_everything(data: bytes) -> tuple[int, list[R.Damage]]:
    with tempfile.NamedTemporaryFile(suffix=".cap") as fh:
        fh.write(data)
        fh.flush()
        damage: list[R.Damage] = []
        fb = FlowBuilder()
        n = 0
        for b in iter_batches(fh.name, damage=damage):
            fb.add(b)
            n += len(b)
            for p in R.batch_records(b):
                assert p.caplen <= R.MAX_CAPLEN and len(p.payload) <= p.caplen
        fb.flows()
        return n, damage


@settings(max_examples=400, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(range(len(_BASES))),
    cut=st.integers(min_value=0, max_value=2000),
    edits=EDITS,
    insert=INSERTS,
    compress=st.booleans(),
)
def test_hostile_mutations_never_raise(base: int, cut: int, edits: list, insert: tuple, compress: bool) -> None:
    data = mutate(_BASES[base], edits, insert)
    data = data[: len(data) - cut] if cut < len(data) else data[:cut]
    raw = bytes(data)
    if compress:
        raw = gzip.compress(raw)
        raw = raw[: len(raw) - cut % 7]
    n, damage = _read_everything(raw)
    assert all(isinstance(d.offset, int) and d.offset >= 0 for d in damage)


@settings(max_examples=60, deadline=3000)
@given(body=st.binary(min_size=0, max_size=3000), ng=st.booleans())
def test_random_bytes_after_a_valid_header(body: bytes, ng: bool) -> None:
    head = ng_shb() + ng_idb(1) if ng else pcap_header()
    _read_everything(head + body)
