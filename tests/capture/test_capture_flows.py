"""Flow table: exact agreement with tshark's conversation tables on real captures, and flow semantics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from capture_gen import pcap_bytes, pcap_header, pcap_record, tcp_frame, udp_frame
from tshark_conv import parse_conv

from segverify.capture import flows as F
from segverify.capture.flows import Flow, FlowBuilder, build_flows, flows_from_file
from segverify.capture.reader import iter_batches
from segverify.model.addresses import addr_to_int, int_to_addr

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "captures" / "zeek"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*.pcap*") if not p.name.endswith(".txt")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CORPUS_FILES, reason=f"capture corpus not found at {CORPUS}")
PROTO_NAMES = {6: "tcp", 17: "udp"}


def flows_of(path: Path, batch_size: int | None = None) -> list[Flow]:
    kw = {} if batch_size is None else {"batch_size": batch_size}
    return build_flows(iter_batches(path, **kw))[0]


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_matches_tshark_conversations(path: Path) -> None:
    conv = path.with_name(path.name + ".tshark-conv.txt")
    if not conv.exists():
        pytest.skip(f"no tshark table beside {path.name}")
    rows = parse_conv(conv)
    flows, damage, _fb = flows_from_file(path)
    assert damage == []
    t0 = int(next(iter(iter_batches(path))).pkts["ts"][0])  # tshark's "relative" is to the first frame

    ours = {}
    for f in flows:
        if f.proto in PROTO_NAMES:
            key = (PROTO_NAMES[f.proto], frozenset({(int_to_addr(f.src), f.sport), (int_to_addr(f.dst), f.dport)}))
            assert key not in ours, f"two flows for {key}"
            ours[key] = f
    theirs = {(r.proto, frozenset({r.a, r.b})): r for r in rows}
    assert set(ours) == set(theirs)
    for key, r in theirs.items():
        f = ours[key]
        a_is_src = (int_to_addr(f.src), f.sport) == r.a
        ab = (f.pkts_fwd, f.bytes_fwd) if a_is_src else (f.pkts_rev, f.bytes_rev)
        ba = (f.pkts_rev, f.bytes_rev) if a_is_src else (f.pkts_fwd, f.bytes_fwd)
        assert (ab[0], ba[0], f.packets) == (r.frames_ab, r.frames_ba, r.frames), key
        assert r.bytes_ab.matches(ab[1]) and r.bytes_ba.matches(ba[1]) and r.bytes.matches(f.bytes), key
        # tshark's A is the sender of the conversation's first frame. In this corpus that is the SYN's
        # sender whenever there is a SYN, so our orientation agrees with it everywhere.
        assert a_is_src, (key, f.initiator_basis)
        assert abs((f.first_ts - t0) / 1e9 - r.rel_start) < 1e-6
        assert abs((f.last_ts - f.first_ts) / 1e9 - r.duration) <= 0.5e-4 + 1e-9


@needs_corpus
def test_corpus_flow_details() -> None:
    by_name = {p.name: flows_of(p) for p in CORPUS_FILES}
    (get,) = by_name["get.pcap"]
    assert get.initiator_known and get.initiator_basis == "syn" and get.established
    assert (int_to_addr(get.src), get.sport, int_to_addr(get.dst), get.dport) == ("141.142.228.5", 59856,
                                                                                  "192.150.187.43", 80)  # fmt: skip
    assert get.vlan is None and get.vlans == ()
    assert by_name["http-vlan-0.pcap"][0].vlan is not None
    assert by_name["http-qinq-0.pcap"][0].vlans == (by_name["http-qinq-0.pcap"][0].vlan,)
    # one direction of a connection captured: the SYN names the initiator, but it never got established
    (one_way,) = by_name["smtp-attachment-msg.pcap"]
    assert one_way.initiator_known and not one_way.established and one_way.pkts_rev == 0
    # UDP: first packet's sender, provisional
    (dns, *_rest) = by_name["pcapng-multi-interface.pcapng"]
    assert dns.proto == 17 and not dns.initiator_known and dns.initiator_basis == "first-packet"
    assert dns.dport == 53 and dns.established
    # ipv6.pcap: FTP active-mode data connections are opened by the server; the SYN says so
    v6 = by_name["ipv6.pcap"]
    assert all(f.family == 6 and f.initiator_known for f in v6)
    assert {f.sport for f in v6 if f.dport in (49189, 49190)} == {55785, 55647}


@needs_corpus
@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_flows_do_not_depend_on_batching(batch_size: int) -> None:
    for path in CORPUS_FILES:
        assert flows_of(path, batch_size) == flows_of(path), path.name


# ----------------------------------------------------------------------------------------- semantics


def cap(tmp_path: Path, frames: list[bytes], name: str = "f.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(pcap_bytes(frames))
    return p


C, S = "10.0.0.1", "10.0.0.2"


def test_initiator_from_syn_even_when_synack_comes_first(tmp_path: Path) -> None:
    frames = [
        tcp_frame(S, C, 80, 4000, "SA", seq=9),
        tcp_frame(C, S, 4000, 80, "S", seq=1),
        tcp_frame(C, S, 4000, 80, "A", seq=2),
    ]
    (f,) = flows_of(cap(tmp_path, frames))
    assert (f.src, f.sport, f.dst, f.dport) == (addr_to_int(C), 4000, addr_to_int(S), 80)
    assert f.initiator_known and f.established and (f.pkts_fwd, f.pkts_rev) == (2, 1)


def test_mid_stream_is_provisional(tmp_path: Path) -> None:
    frames = [
        tcp_frame(S, C, 80, 4000, "PA", payload=b"response"),
        tcp_frame(C, S, 4000, 80, "A"),
    ]
    (f,) = flows_of(cap(tmp_path, frames))
    assert not f.initiator_known and f.initiator_basis == "first-packet"
    assert (f.src, f.sport) == (addr_to_int(S), 80) and not f.established
    assert f.payload_fwd == len(b"response") and f.payload_rev == 0
    frames.append(tcp_frame(C, S, 4000, 80, "PA", payload=b"more"))
    (f,) = flows_of(cap(tmp_path, frames))
    assert f.established  # data both ways: an established connection seen mid-stream


@pytest.mark.parametrize(
    "flags,established", [("S", False), ("S SA", False), ("S SA A", True), ("S R", False)]
)  # fmt: skip
def test_established_needs_the_handshake(tmp_path: Path, flags: str, established: bool) -> None:
    frames = []
    for i, fl in enumerate(flags.split()):
        sender = i % 2 == 0 if fl != "R" else False
        frames.append(
            tcp_frame(C, S, 4000, 80, fl, seq=i) if sender else tcp_frame(S, C, 80, 4000, fl, seq=i)
        )  # fmt: skip
    (f,) = flows_of(cap(tmp_path, frames))
    assert f.established == established and f.initiator_known


def test_port_reuse_starts_a_new_flow(tmp_path: Path) -> None:
    conn = [
        tcp_frame(C, S, 4000, 80, "S", seq=100),
        tcp_frame(C, S, 4000, 80, "S", seq=100),  # retransmitted SYN: same connection
        tcp_frame(S, C, 80, 4000, "SA", seq=7),
        tcp_frame(C, S, 4000, 80, "A", seq=101),
        tcp_frame(C, S, 4000, 80, "FA", seq=101),
    ]
    again = [tcp_frame(C, S, 4000, 80, "S", seq=5000), tcp_frame(S, C, 80, 4000, "SA", seq=1)]
    third = [tcp_frame(S, C, 80, 4000, "R", seq=3), tcp_frame(C, S, 4000, 80, "S", seq=9000)]
    path = cap(tmp_path, conn + again + third)
    for bs in (1, 2, 3, 100):
        flows = flows_of(path, bs)
        assert [(f.reuse, f.packets) for f in flows] == [(0, 5), (1, 3), (2, 1)], bs
        assert all(f.initiator_known and f.src == addr_to_int(C) for f in flows)
        assert [f.established for f in flows] == [True, False, False]


def test_reuse_after_a_mid_stream_flow_closed(tmp_path: Path) -> None:
    mid = [tcp_frame(S, C, 80, 4000, "PA", seq=1, payload=b"tail"), tcp_frame(C, S, 4000, 80, "FA", seq=9)]
    new = [tcp_frame(C, S, 4000, 80, "S", seq=77), tcp_frame(S, C, 80, 4000, "SA"), tcp_frame(C, S, 4000, 80, "A")]
    path = cap(tmp_path, mid + new)
    for bs in (1, 2, 100):
        a, b = flows_of(path, bs)
        assert (a.reuse, a.packets, a.initiator_known, a.src) == (0, 2, False, addr_to_int(S))
        assert (b.reuse, b.packets, b.initiator_known, b.src, b.established) == (1, 3, True, addr_to_int(C), True)
    # without the FIN, a SYN on a mid-stream tuple is not enough evidence of a new connection
    (f,) = flows_of(cap(tmp_path, mid[:1] + new, "g.pcap"))
    assert f.packets == 4 and f.initiator_known


def test_udp_icmp_and_counters(tmp_path: Path) -> None:
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import ARP, Ether

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    frames = [
        udp_frame("2001:db8::2", "2001:db8::1", 53, 5353),
        udp_frame("2001:db8::1", "2001:db8::2", 5353, 53),
        bytes(e / IP(src=C, dst=S) / ICMP(type=8)),
        bytes(e / IP(src=S, dst=C) / ICMP(type=0)),
        bytes(e / ARP()),
        tcp_frame(C, S, 1, 2, "S")[:36],  # TCP without its ports
    ]
    flows, fb = build_flows(iter_batches(cap(tmp_path, frames)))
    udp, icmp = flows
    assert udp.proto == 17 and udp.src == addr_to_int("2001:db8::2") and udp.sport == 53
    assert not udp.initiator_known and udp.established and udp.packets == 2
    assert icmp.proto == 1 and (icmp.sport, icmp.dport) == (0, 0) and icmp.src == addr_to_int(C)
    assert (fb.packets, fb.non_ip, fb.no_ports, fb.unattributed_fragments) == (6, 1, 1, 0)


def test_bytes_are_wire_lengths(tmp_path: Path) -> None:
    """Like tshark, bytes count the original frame length, also when the snap length cut the frame."""
    fr = tcp_frame(C, S, 4000, 80, "PA", payload=b"x" * 500)
    rec = pcap_record(10**18, fr[:96], orig=len(fr))
    data = pcap_header(snaplen=96) + rec + rec
    p = tmp_path / "snap.pcap"
    p.write_bytes(data)
    (f,) = flows_of(p)
    assert f.bytes_fwd == 2 * len(fr) and f.payload_fwd == 2 * (96 - 54)


def test_vlans_of_a_flow(tmp_path: Path) -> None:
    frames = [
        tcp_frame(C, S, 4000, 80, "S", vlans=(10,)),
        tcp_frame(S, C, 80, 4000, "SA", vlans=(20,)),
        tcp_frame(C, S, 4000, 80, "A", vlans=(10,)),
    ]
    path = cap(tmp_path, frames)
    for bs in (1, 2, 10):
        (f,) = flows_of(path, bs)
        assert f.vlan == 10 and f.vlans == (10, 20)


def test_hash_collisions_cannot_merge_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if every key hashed alike, grouping falls back to comparing the keys themselves."""
    frames = [tcp_frame(C, S, 4000 + i % 5, 80, "A", seq=i) for i in range(20)]
    frames += [udp_frame("2001:db8::1", "2001:db8::2", 1000 + i % 3, 53) for i in range(9)]
    path = cap(tmp_path, frames)
    want = flows_of(path)
    monkeypatch.setattr(F, "_mix", lambda x: x.astype("uint64") * 0)
    got = flows_of(path)
    assert got == want and len(got) == 8
    assert sorted(f.packets for f in got) == [3, 3, 3, 4, 4, 4, 4, 4]


def test_flow_is_a_plain_record() -> None:
    names = [f.name for f in dataclasses.fields(Flow)]
    assert names[:6] == ["proto", "family", "src", "sport", "dst", "dport"]
    assert FlowBuilder().flows() == []
