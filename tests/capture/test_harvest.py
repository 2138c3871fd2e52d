"""The harvest taken during the header pass holds exactly what a second pass over the capture collects.

The replay's inspection reads its streams from :class:`~segverify.capture.collect.Harvest` (candidate packets
selected in bulk, dropped in bulk once they can change nothing read, reassembled with a fast path for plain
segments); the fallback reads the capture again (:func:`~segverify.capture.collect.collect`). Both must give
the same connections, byte for byte and counter for counter, on sessions cut, reordered, repeated, reset and
reopened on the same ports, both families, and UDP exchanges.
"""

from __future__ import annotations

import random
from pathlib import Path

from capture_gen import pcap_bytes, tcp_frame, udp_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segverify.analysis.inspect import MAX_FIRST_BYTES, first_bytes_only, from_harvest, harvester, planned, wanted
from segverify.analysis.replay import Judge, read_captures
from segverify.capture.collect import collect
from segverify.model.addresses import V6_BASE, addr_to_int
from segverify.topology.loader import load_topology

ROOT = Path(__file__).resolve().parents[2]
TOPO = load_topology(str(ROOT / "topologies" / "alpha-city.yaml"))
JUDGE = Judge(TOPO)

# (client, server, port): the bundled city's channels -- RDP to the virtual browser (screen-transfer limits,
# quieted after the first bytes), SMTP from the mail sanitizer, HTTPS downloads from the CDR (default limits,
# long streams spilled to disk) -- and one pair on no channel's port (never collected)
PAIRS = [("10.20.3.4", "10.30.0.10", 3389), ("fd00:20::7", "10.30.0.10", 3389), ("10.30.1.30", "10.20.1.25", 25),
         ("10.20.5.6", "10.40.0.10", 443), ("fd00:20::9", "10.40.0.10", 443), ("10.20.3.4", "10.30.0.10", 22)]
PAIRS = [p for p in PAIRS if (":" in p[0]) == (":" in p[1])]


@st.composite
def sessions(draw: st.DrawFn) -> list[bytes]:
    """Frames of a few TCP sessions (and UDP exchanges), interleaved in capture order."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    streams: list[list[bytes]] = []
    for _ in range(draw(st.integers(1, 5))):
        client, server, port = draw(st.sampled_from(PAIRS))
        cport = draw(st.sampled_from([40000, 40001]))  # few ports: reuse of a pair by a new connection
        if draw(st.integers(0, 5)) == 0:
            streams.append([udp_frame(client, server, cport, port, rng.randbytes(rng.randint(1, 3000)))
                            for _ in range(rng.randint(1, 6))])
            continue
        isn_c, isn_s = rng.randrange(2**32), rng.randrange(2**32)
        up = rng.randbytes(draw(st.integers(0, 9000)))
        down = rng.randbytes(draw(st.integers(0, 6000)))
        frames = []
        if draw(st.booleans()):  # a handshake (else the capture starts mid-connection)
            frames += [tcp_frame(client, server, cport, port, "S", isn_c),
                       tcp_frame(server, client, port, cport, "SA", isn_s)]
        for data, (a, b, pa, pb, isn) in ((up, (client, server, cport, port, isn_c)),
                                          (down, (server, client, port, cport, isn_s))):
            at = 0
            while at < len(data):
                n = rng.choice([1, 100, 536, 1448, 1460])
                frames.append(tcp_frame(a, b, pa, pb, "PA", (isn + 1 + at) % 2**32, data[at : at + n]))
                if rng.random() < 0.1:  # a pure ACK from the other side
                    frames.append(tcp_frame(b, a, pb, pa, "A", rng.randrange(2**32)))
                at += n
        if frames and draw(st.booleans()):
            for _ in range(rng.randint(1, 4)):  # retransmissions, some with other bytes
                f = rng.choice(frames)
                frames.insert(rng.randrange(len(frames) + 1), f if rng.random() < 0.7 else f[:-3] + b"xyz")
        if len(frames) > 3 and draw(st.booleans()):  # a little reordering
            i = rng.randrange(len(frames) - 1)
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
        close = draw(st.sampled_from(["", "F", "R"]))
        if close:
            frames.append(tcp_frame(client, server, cport, port, close + "A", (isn_c + 1 + len(up)) % 2**32))
        streams.append(frames)
    out: list[bytes] = []
    while any(streams):  # interleave the sessions, each in its own order
        s = rng.choice([s for s in streams if s])
        out.append(s.pop(0))
    return out


def _conn_state(conn: object) -> tuple:
    def side(r: object) -> tuple:
        return (r.data(), r.delivered, r.segments, r.gap_count, r.gap_bytes, tuple(r.gaps), tuple(r.conflicts),  # type: ignore[attr-defined]
                r.conflict_bytes, r.retransmitted_bytes, r.syn_seen, r.fin_seen, r.truncated, r.started_mid_stream,  # type: ignore[attr-defined]
                r.out_of_window_bytes, r.next_offset, r.closed, r.fin_offset)  # type: ignore[attr-defined]
    c = conn  # type: ignore[assignment]
    return (c.client_endpoint, c.server_endpoint, c.initiator_known, c.reset, side(c.client), side(c.server))  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sessions())
def test_the_harvest_collects_what_a_second_pass_collects(tmp_path_factory, frames: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("h") / "c.pcap"
    path.write_bytes(pcap_bytes(frames))
    harvest = harvester(TOPO, JUDGE.channels, lambda a: JUDGE.segment(a, None))
    assert harvest is not None
    flows, _damage, _stats = read_captures([str(path)], tap=harvest.add)
    _, work = planned(TOPO, JUDGE.channels, [JUDGE.judge(f) for f in flows])
    tcp, udp, caps = wanted(work)
    taken = from_harvest(harvest, work)
    again = collect([str(path)], tcp, udp, caps_for=caps, first_bytes_only=first_bytes_only(work),
                    prefix=MAX_FIRST_BYTES)
    assert set(taken.tcp) == set(again.tcp) and set(taken.udp) == set(again.udp)
    for key in again.tcp:
        assert [_conn_state(c) for c in taken.tcp[key]] == [_conn_state(c) for c in again.tcp[key]]
    for key in again.udp:
        a, b = taken.udp[key], again.udp[key]
        assert (a.client, a.server, bytes(a.client_bytes), bytes(a.server_bytes)) == (
            b.client, b.server, bytes(b.client_bytes), bytes(b.server_bytes))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sessions())
def test_a_harvest_from_reused_shared_buffers_keeps_nothing_of_them(tmp_path_factory, frames: list[bytes]) -> None:
    """Read in 2 KB blocks into two shared buffers used by turns (each is overwritten two blocks later), the
    harvest holds what it holds when every block is memory of its own: it keeps no view of a buffer."""
    from unittest import mock

    from segverify.capture import reader
    from segverify.capture.blocks import SharedBlocks

    path = tmp_path_factory.mktemp("b") / "c.pcap"
    path.write_bytes(pcap_bytes(frames))
    with mock.patch.object(reader, "CHUNK", 2048):
        alone = _taken(path, True)
        blocks = SharedBlocks(reader.SHARED_BLOCK_BYTES, count=2)
        try:
            assert _taken(path, True, blocks) == alone
        finally:
            blocks.close()


def _taken(path: Path, runs: bool, blocks: object = None) -> dict:
    """The harvest's connections (with their packet counters), taking runs of segments in one step or not."""
    harvest = harvester(TOPO, JUDGE.channels, lambda a: JUDGE.segment(a, None))
    assert harvest is not None
    if not runs:
        harvest._runs = lambda sub: ({}, None)  # type: ignore[method-assign]
    flows, _damage, _stats = read_captures([str(path)], tap=harvest.add, blocks=blocks)  # type: ignore[arg-type]
    _, work = planned(TOPO, JUDGE.channels, [JUDGE.judge(f) for f in flows])
    taken = from_harvest(harvest, work)
    return {key: [(_conn_state(c), c.packets) for c in conns] for key, conns in taken.tcp.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sessions())
def test_runs_taken_in_one_step_are_the_segments_taken_one_by_one(tmp_path_factory, frames: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("r") / "c.pcap"
    path.write_bytes(pcap_bytes(frames))
    assert _taken(path, True) == _taken(path, False)


def test_long_sessions_are_taken_in_runs(tmp_path: Path, monkeypatch) -> None:
    """A long RDP session in small segments (its screen-transfer stream stops at its byte limit mid-run), a
    long mail with the server's ACKs between the segments, a retransmission and a hole in the middle of a run:
    the same connections, counters included, as taking every segment alone; and most segments went in runs,
    in order and past the limit."""
    from segverify.capture import tcpstream

    rng = random.Random(7)
    rdp, mail = ("10.20.3.4", "10.30.0.10", 50000, 3389), ("10.30.1.30", "10.20.1.25", 50001, 25)
    frames = [tcp_frame(c, s, cp, sp, "S", 1000) for c, s, cp, sp in (rdp, mail)]
    frames += [tcp_frame(s, c, sp, cp, "SA", 5000) for c, s, cp, sp in (rdp, mail)]
    up = {rdp: rng.randbytes(40_000), mail: b"DATA\r\n" + rng.randbytes(150_000)}
    at = {rdp: 0, mail: 0}
    step = {rdp: 90, mail: 1448}
    while any(at[k] < len(up[k]) for k in up):
        for k in (rdp, mail):
            c, s, cp, sp = k
            if at[k] < len(up[k]):
                chunk = up[k][at[k] : at[k] + step[k]]
                if k == mail and 40_000 <= at[k] < 40_000 + step[k]:
                    at[k] += step[k]  # a hole: this segment never comes
                    continue
                frames.append(tcp_frame(c, s, cp, sp, "PA", 1001 + at[k], chunk))
                if k == mail and at[k] == 20_000 // step[k] * step[k]:
                    frames.append(frames[-1])  # a retransmission
                at[k] += len(chunk)
                frames.append(tcp_frame(s, c, sp, cp, "A", 5001))
    path = tmp_path / "long.pcap"
    path.write_bytes(pcap_bytes(frames))

    calls = {"run": 0, "stopped": 0}  # segments taken in runs: stored, or counted past the limit
    take_run = tcpstream.StreamReassembler.take_run

    def spy(self, seq, data, lengths):  # noqa: ANN001, ANN202
        ok = take_run(self, seq, data, lengths)
        if ok and len(lengths) > 1:
            calls["stopped" if self._stopped else "run"] += len(lengths)
        return ok

    monkeypatch.setattr(tcpstream.StreamReassembler, "take_run", spy)
    with_runs = _taken(path, True)
    # RDP: 8192 bytes in 90-byte segments stored, the other 354 counted; mail: up to the hole
    assert calls["run"] > 100 and calls["stopped"] > 300
    assert with_runs == _taken(path, False)
    (rdp_conn,) = next(v for k, v in with_runs.items() if (addr_to_int(rdp[0]), rdp[2]) in k)
    (_ends, _client, _known, _reset, client, _server), _packets = rdp_conn
    assert client[11]  # the screen-transfer stream is truncated at its limit (and the rest was counted)


@settings(max_examples=200, deadline=None)
@given(pair=st.sampled_from(PAIRS), sports=st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
       proto=st.sampled_from([6, 17]), reverse=st.booleans())
def test_the_plan_of_a_flow_does_not_depend_on_its_source_port(pair: tuple, sports: tuple, proto: int,
                                                               reverse: bool) -> None:  # fmt: skip
    """The harvest remembers one plan per (source, destination, protocol, destination port): plan() must not
    read the source port."""
    from segverify.analysis.inspect import plan
    from segverify.capture.flows import Flow

    client, server, port = pair
    s, d = addr_to_int(client), addr_to_int(server)
    if reverse:
        s, d = d, s
    got = set()
    for sport in sports:
        flow = Flow(proto, 6 if s >= V6_BASE else 4, s, sport, d, port, True, "syn", 1, 60, 1, 60, 0, 0, 0, 1, True,
                    0x12, 0x12, None, (), 0, 0)
        got.add(plan(TOPO, JUDGE.channels, JUDGE.judge(flow)))
    assert len(got) == 1


def _ranged_topology(tmp_path_factory):
    text = (ROOT / "topologies" / "alpha-city.yaml").read_text(encoding="utf-8")
    for old, new in (("ports: [tcp/3389]", "ports: [tcp/3389-3391, udp/3389]"),
                     ("outbound: {peers: [lg], ports: [tcp/443]}", "outbound: {peers: [lg], ports: [tcp/440-443]}")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("ranged") / "city.yaml"
    path.write_text(text, encoding="utf-8")
    return load_topology(str(path))


HOST_ADDRS = [addr_to_int(a) for a in ("10.20.10.11", "10.30.0.10", "10.40.0.10", "10.20.1.25", "10.20.1.30",
                                       "10.30.1.25", "10.10.0.5", "fd00:20:0:10::11")]  # fmt: skip
EDGE_PORTS = [3388, 3389, 3390, 3391, 3392, 439, 440, 443, 444, 24, 25, 26, 21, 0, 65535, 50000]


def _plans(tmp_path_factory):
    """The harvest's pair plans, and the same asked for every port on its own (every port its own stretch)."""
    from unittest import mock

    from segverify.analysis import inspect

    topo = _ranged_topology(tmp_path_factory)
    judge = Judge(topo)
    stretched = harvester(topo, judge.channels, lambda a: judge.segment(a, None))
    with mock.patch.object(inspect, "port_bounds", lambda channels: list(range(65537))):
        exact = harvester(topo, judge.channels, lambda a: judge.segment(a, None))
    assert stretched is not None and exact is not None
    return stretched._plan_key, exact._plan_key


def test_a_pairs_plan_is_the_same_for_every_port_between_two_range_bounds(tmp_path_factory) -> None:
    """The harvest plans a pair once per stretch of destination ports between two bounds of the channels' port
    ranges: the same plan as one asked for each port, for every host pair and port at and around the bounds,
    asked in increasing and then decreasing order of port (a stretch's first answer is the one remembered)."""
    for ports in (EDGE_PORTS, EDGE_PORTS[::-1]):
        stretched, exact = _plans(tmp_path_factory)
        planned_any = 0
        for a in HOST_ADDRS:
            for b in HOST_ADDRS:
                if a == b or (a >= V6_BASE) != (b >= V6_BASE):
                    continue
                for pb in ports:
                    key = frozenset(((a, 50001), (b, pb)))
                    want = exact(key)
                    assert stretched(key) == want, (a, b, pb)
                    planned_any += want is not None
        assert planned_any > 0
