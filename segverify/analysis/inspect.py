"""Is what crossed as 無害化通信 really sanitized? The content checks of ``replay``.

A flow a channel covers by address and port is only the start: a screen-transfer flow must really
carry that channel's protocol (not a tunnel), a mail-text channel's outbound leg must carry text
only, a file-sanitization channel's outbound leg must carry files free of active content. What
cannot be inspected (encrypted, cut by a damaged capture, a protocol that cannot be confirmed from
its bytes) is said so, and the result becomes ``incomplete``: never clean by default.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..capture.collect import MAX_PAIR_SETS, Collected, Harvest, KeyPlan, collect
from ..model.addresses import IntervalSet, int_to_addr
from ..model.rules import PROTO_NAMES
from ..model.topology import Channel, Leg, Topology
from .findings import Finding
from .replay import address_set, ch_covers, ports_cover

if TYPE_CHECKING:
    from ..capture.content import Verdict
    from ..capture.ftp import FtpTransfer
    from .verdicts import FlowVerdict, VerdictTable


def load_inspectors() -> None:
    """Import the content inspectors (recognisers, mail, files, FTP) now. They are imported where first used,
    so that a replay's main process, which leaves inspection to its side process, never loads them; the side
    calls this while the captures are still being read, so that its inspection does not wait for them."""
    from ..capture import content, ftp, http, mail, recognise  # noqa: F401

MAX_FIRST_BYTES = 4096
# Downloads of these types from a sanitizer are its web portal's own pages, not delivered files.
PORTAL_TYPES = frozenset({"text/html", "text/css", "application/javascript", "text/javascript"})


@dataclass
class Inspection:
    findings: list[Finding] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)


def pair_key(v: FlowVerdict) -> frozenset[tuple[int, int]]:
    """The unordered endpoint pair of a flow: how its connections are collected."""
    f = v.flow
    return frozenset(((f.src, f.sport), (f.dst, f.dport)))


def outbound(topo: Topology, ch: Channel, v: FlowVerdict) -> bool:
    """Whether a flow of a sanitizer channel runs on its outbound leg (sanitizer ↔ outbound peers)."""
    leg: Leg | None = ch.outbound
    if leg is None or ch.sanitizer is None:
        return False
    sanitizer = address_set(topo.hosts[ch.sanitizer].addresses)
    f = v.flow
    pairs = ((f.src, f.dst), (f.dst, f.src))
    return any(a in sanitizer and b in leg.peers.addresses for a, b in pairs) and ports_cover(
        leg.ports, f.proto, f.dport)


@dataclass
class ItemResult:
    """What inspecting one flow found: computed wherever its packets are, put together in flow order."""

    notes: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    mismatch: tuple[tuple, str] | None = None  # (channel, segments, protocol seen), evidence
    ftp_control: FtpControl | None = None  # an FTP control connection on a file-sanitization leg
    ftp_data: FtpData | None = None  # a possible FTP data connection of such a leg, its bytes judged


@dataclass
class FtpControl:
    """The transfers of an FTP control connection, for :func:`combine` to find their data connections."""

    channel: str
    client: tuple[int, int]
    server: tuple[int, int]
    sanitizer_is_client: bool
    first_ts: int
    transfers: list[FtpTransfer]


@dataclass
class FtpData:
    """A TCP connection that may be an FTP data connection, with what each side sent, judged."""

    client: tuple[int, int]
    server: tuple[int, int]
    first_ts: int
    from_client: Verdict | None  # None: that side sent nothing
    from_server: Verdict | None


def plan(topo: Topology, channels: Sequence[Channel], v: FlowVerdict) -> tuple[int, str] | None:
    """Which channel (index) inspects this flow, and how: a screen-transfer flow it covers, or a flow on
    a sanitizer's outbound leg. Legs are the channel's, whatever the families: a dual-homed sanitizer
    delivers to the LG side from its own LG address, a flow inside one family."""
    if v.src_segment is None or v.dst_segment is None:
        return None
    f = v.flow
    for i, ch in enumerate(channels):
        if ch.kind == "screen-transfer" and ch_covers(topo, ch, f.src, f.dst, f.proto, f.dport):
            return i, "screen"
        if ch.kind in ("mail-text", "file-sanitization") and outbound(topo, ch, v):
            return i, "mail" if ch.kind == "mail-text" else "file"
    for i, ch in enumerate(channels):
        if ch.kind == "file-sanitization" and f.proto == 6 and _ftp_data_candidate(topo, ch, v):
            return i, "ftp-data"
    return None


def _ftp_data_candidate(topo: Topology, ch: Channel, v: FlowVerdict) -> bool:
    """A TCP flow between the sanitizer and an outbound peer on another port, where the leg carries FTP:
    it may be the data connection of a transfer negotiated on the control connection."""
    leg = ch.outbound
    if leg is None or ch.sanitizer is None or not ports_cover(leg.ports, 6, FTP_CONTROL_PORT):
        return False
    sanitizer = address_set(topo.hosts[ch.sanitizer].addresses)
    f = v.flow
    return any(a in sanitizer and b in leg.peers.addresses for a, b in ((f.src, f.dst), (f.dst, f.src)))


Work = list[tuple["FlowVerdict", Channel, str]]


SCREEN_CAPS: dict[str, int | bool] = {"max_bytes": 2 * MAX_FIRST_BYTES, "max_buffer": 64 * 1024}
"""Reassembly limits of a screen-transfer session: a recogniser reads its first bytes only."""


def wanted(work: Work) -> tuple[set[frozenset[tuple[int, int]]], set[frozenset[tuple[int, int]]],
                                Callable[[frozenset[tuple[int, int]]], dict[str, int | bool]]]:  # fmt: skip
    """The endpoint pairs to collect (TCP, UDP) and the reassembly limits of each."""
    tcp = {pair_key(v) for v, _, _ in work if v.flow.proto == 6}
    udp = {pair_key(v) for v, _, _ in work if v.flow.proto == 17}
    screen = screen_pairs(work)

    def caps(key: frozenset[tuple[int, int]]) -> dict[str, int | bool]:
        # a recogniser reads the first bytes only: keep no more of a screen-transfer session
        return SCREEN_CAPS if key in screen else {}

    return tcp, udp, caps


def screen_pairs(work: Work) -> set[frozenset[tuple[int, int]]]:
    """Endpoint pairs reassembled with the screen-transfer limits: those with a screen-transfer flow."""
    return {pair_key(v) for v, _, what in work if what == "screen"}


def first_bytes_only(work: Work) -> set[frozenset[tuple[int, int]]]:
    """Endpoint pairs whose every inspected flow is a screen-transfer one: only their first
    :data:`MAX_FIRST_BYTES` each way are read (:func:`inspect_item`), so their packets may stop being collected
    once those are known (:class:`~segverify.capture.collect.Quiet`)."""
    screen: set[frozenset[tuple[int, int]]] = set()
    other: set[frozenset[tuple[int, int]]] = set()
    for v, _, what in work:
        (screen if what == "screen" else other).add(pair_key(v))
    return screen - other


def planned(topo: Topology, channels: Sequence[Channel], verdicts: Sequence[FlowVerdict]) -> tuple[list[int], Work]:
    """The flows a channel inspects (see :func:`plan`): their indices in ``verdicts``, and the work."""
    index: list[int] = []
    work: Work = []
    if not channels:
        return index, work
    for i, v in enumerate(verdicts):
        which = plan(topo, channels, v)
        if which is not None:
            index.append(i)
            work.append((v, channels[which[0]], which[1]))
    return index, work


def planned_among(topo: Topology, channels: Sequence[Channel], verdicts: VerdictTable,
                  among: Sequence[int] | None) -> tuple[list[int], Work]:  # fmt: skip
    """:func:`planned` asked only of the flows at ``among`` (all of them when None), with their indices in
    ``verdicts``: the flows between the harvest's candidate pairs (:meth:`Harvest.flow_candidates`), since no
    other flow can be planned (its packets were never candidates)."""
    if among is None:
        return planned(topo, channels, verdicts)
    at, work = planned(topo, channels, verdicts.take(among))
    return [among[k] for k in at], work


def from_harvest(harvest: Harvest, work: Work) -> Collected:
    """What ``work`` reads, from a usable harvest: each pair from the reassembly whose limits it needs."""
    tcp, udp, _caps = wanted(work)
    return harvest.collected(tcp, udp, screen_pairs(work))


def inspect_channels(topo: Topology, channels: Sequence[Channel], verdicts: Sequence[FlowVerdict],
                     captures: Sequence[str], harvest: Harvest | None = None, work: Work | None = None) -> Inspection:
    """Inspect every flow a permitted channel carries (see :func:`plan`). Their packets come from
    ``harvest`` (taken during the header pass, see :func:`harvester`) when it is usable, else from one more
    pass over the captures: the same packets either way. ``work``: the verdicts' plan, when the caller has it."""
    if work is None:
        _, work = planned(topo, channels, verdicts)
    if not work:
        return Inspection()
    if harvest is not None and harvest.usable:
        got = from_harvest(harvest, work)
    else:
        tcp, udp, caps = wanted(work)
        got = collect(captures, tcp, udp, caps_for=caps, first_bytes_only=first_bytes_only(work),
                      prefix=MAX_FIRST_BYTES)
    return combine(work, [inspect_item(topo, ch, what, v, got) for v, ch, what in work], channels)


MAX_PLAN_CACHE = 1 << 16
_UNKNOWN = object()


@dataclass
class _ProbeFlow:
    src: int
    sport: int
    dst: int
    dport: int
    proto: int


@dataclass
class _Probe:
    """What :func:`plan` reads of a flow verdict, for an endpoint pair seen before its flow is known."""

    flow: _ProbeFlow
    src_segment: str | None
    dst_segment: str | None


def port_bounds(channels: Sequence[Channel]) -> list[int]:
    """Where a destination port can change what :func:`plan` says: the first port of every range a channel names
    and the port after its last. Every port between two bounds is in the same ranges, and :func:`plan` reads the
    destination port only to test it against them (``ports_cover``), so it says the same for all of them."""
    bounds: set[int] = set()
    for ch in channels:
        for leg in (ch.inbound, ch.outbound):
            specs = ch.ports + (leg.ports if leg is not None else ())
            for spec in specs:
                if spec.ports is not None:
                    for lo, hi in spec.ports:
                        bounds.update((lo, hi + 1))
    return sorted(bounds)


def harvester(topo: Topology, channels: Sequence[Channel], segment: Callable[[int], str | None]) -> Harvest | None:
    """A :class:`Harvest` that takes, during the header pass, the packets :func:`inspect_channels` reads;
    None when the channels give nothing to inspect or too many address-set pairs to test in bulk.

    ``segment`` maps an address to its segment (None outside every segment; :func:`plan` only asks whether
    there is one, which a VLAN does not change)."""
    pairs: list[tuple[IntervalSet, IntervalSet]] = []
    for ch in channels:
        sanitizer = IntervalSet.of(*topo.hosts[ch.sanitizer].addresses) if ch.sanitizer in topo.hosts else None
        if ch.kind == "screen-transfer":
            if ch.clients is not None and ch.servers is not None:
                pairs.append((ch.clients.addresses, ch.servers.addresses))
                continue
            if sanitizer is None:
                return None  # ch_covers cannot judge it either: leave it to the second pass
            pairs += [(sanitizer, leg.peers.addresses) for leg in (ch.inbound, ch.outbound) if leg is not None]
        elif ch.kind in ("mail-text", "file-sanitization") and sanitizer is not None and ch.outbound is not None:
            pairs.append((sanitizer, ch.outbound.peers.addresses))
    if not pairs or len(pairs) > MAX_PAIR_SETS:
        return None

    # plan() reads neither source port, and the destination port only to test it against the channels' port
    # ranges: one answer per (source, destination, protocol, stretch of ports between two range bounds), which a
    # client's connections share, and both directions of a pair's connections (bounded for hostile captures)
    known: dict[tuple[int, int, int, int], str | None] = {}
    bounds = port_bounds(channels)

    def how(s: int, d: int, proto: int, dp: int) -> str | None:
        key = (s, d, proto, bisect.bisect_right(bounds, dp))
        hit = known.get(key, _UNKNOWN)
        if hit is _UNKNOWN:
            if len(known) >= MAX_PLAN_CACHE:
                known.clear()
            which = plan(topo, channels, _Probe(_ProbeFlow(s, 0, d, dp, proto), segment(s), segment(d)))  # type: ignore[arg-type]
            hit = known[key] = None if which is None else which[1]
        return hit  # type: ignore[return-value]

    def whats(key: frozenset[tuple[int, int]], proto: int) -> set[str]:
        ends = sorted(key)
        (a, pa), (b, pb) = ends if len(ends) == 2 else (ends[0], ends[0])
        return {w for w in (how(a, b, proto, pb), how(b, a, proto, pa)) if w is not None}

    def plan_key(key: frozenset[tuple[int, int]]) -> KeyPlan | None:
        tcp, udp = whats(key, 6), whats(key, 17)
        if not tcp and not udp:
            return None
        # a pair is reassembled with the screen limits when any of its inspected flows (either protocol) is
        # a screen-transfer one (see wanted): while that is open, both reassemblies run
        return KeyPlan(tcp_screen=bool(tcp) and ("screen" in tcp or "screen" in udp),
                       tcp_default=bool(tcp - {"screen"}), udp=bool(udp),
                       quiet_tcp=tcp == {"screen"} and udp <= {"screen"},
                       quiet_udp=udp == {"screen"} and tcp <= {"screen"})

    return Harvest(pairs, plan_key, SCREEN_CAPS, MAX_FIRST_BYTES)


def inspect_item(topo: Topology, ch: Channel, what: str, v: FlowVerdict, got: Collected) -> ItemResult:
    """Inspect one flow from the collected streams of its endpoint pair (``v`` is not changed)."""
    from ..capture.recognise import UNVERIFIABLE, identify, satisfies

    out = ItemResult()
    loss = got.fragment_losses.get(frozenset((v.flow.src, v.flow.dst)))
    if loss:
        out.incomplete.append(f"flow {_flow_text(v)} on channel {ch.name}: {loss}; not all its bytes were seen")
    client, server, conn = _streams(got, v)
    if what == "screen":
        ev = identify(client[:MAX_FIRST_BYTES], server[:MAX_FIRST_BYTES], v.flow.proto, v.flow.dport)
        out.notes.append(f"content: {ev.protocol or 'unknown'} ({ev.detail})")
        if ev.protocol == "empty" or satisfies(ch.protocol or "", ev):
            return out
        if (ch.protocol or "") in UNVERIFIABLE and ev.protocol in (None, "tls"):
            out.incomplete.append(
                f"flow {_flow_text(v)} on channel {ch.name}: {ch.protocol} cannot be confirmed from its bytes "
                f"({UNVERIFIABLE[ch.protocol or '']})")
            return out
        out.mismatch = ((ch.name, v.src_segment, v.dst_segment, ev.protocol), ev.detail)
    elif what == "mail":
        _mail(out, topo, ch, v, conn)
    elif what == "ftp-data":
        _ftp_data(out, v, conn)
    else:
        _files(out, topo, ch, v, client, server, conn)
    return out


def combine(work: Work, results: Sequence[ItemResult], channels: Sequence[Channel]) -> Inspection:
    """Put the per-flow results together in flow order, as one pass over all of them would have."""
    out = Inspection()
    mismatches: dict[tuple, list[tuple[FlowVerdict, str]]] = {}
    for (v, _ch, _what), res in zip(work, results, strict=True):
        v.notes.extend(res.notes)
        out.incomplete.extend(res.incomplete)
        out.findings.extend(res.findings)
        if res.mismatch is not None:
            mismatches.setdefault(res.mismatch[0], []).append((v, res.mismatch[1]))
    by_name = {c.name: c for c in channels}
    _pair_ftp(work, results, by_name, out)
    for (name, a, b, proto), members in sorted(mismatches.items(), key=lambda kv: tuple(map(str, kv[0]))):
        ch = by_name[name]
        first, detail = members[0]
        n = len(members)
        seen = proto or "no recognisable protocol"
        out.findings.append(Finding(
            "PROTOCOL_MISMATCH", "high",
            f"{n} flow(s) on screen-transfer channel {name} ({ch.protocol}) carried {seen}, not {ch.protocol}: "
            f"e.g. {_flow_text(first)}: {detail}",
            f"画面転送の通信経路 {name}（{ch.protocol}）で {ch.protocol} 以外の通信（{seen}）が {n} 件ありました"
            f"（例: {_flow_text(first)}: {detail}）",
            a, b, flow=first.finding_flow(),
            extra={"channel": name, "recognised": proto, "evidence": detail, "flows": n},
        ))
    return out


def _streams(got: Collected, v: FlowVerdict) -> tuple[bytes, bytes, object]:
    key = pair_key(v)
    if v.flow.proto == 17:
        ex = got.udp.get(key)
        return (bytes(ex.client_bytes), bytes(ex.server_bytes), None) if ex else (b"", b"", None)
    conns = got.tcp.get(key, [])
    if not conns:
        return b"", b"", None
    conn = conns[min(v.flow.reuse, len(conns) - 1)]
    return conn.client.data(), conn.server.data(), conn


def _flow_text(v: FlowVerdict) -> str:
    f = v.flow
    return f"{PROTO_NAMES.get(f.proto, f.proto)} {int_to_addr(f.src)}:{f.sport} → {int_to_addr(f.dst)}:{f.dport}"


def _mail(out: ItemResult, topo: Topology, ch: Channel, v: FlowVerdict, conn: object) -> None:
    from ..capture.mail import UNINSPECTABLE, connection_transactions, transaction_findings

    if conn is None:
        out.incomplete.append(f"mail flow {_flow_text(v)} on channel {ch.name}: no TCP stream to inspect")
        return
    sanitizer = address_set(topo.hosts[ch.sanitizer or ""].addresses)
    client_addr = conn.client_endpoint[0]  # type: ignore[attr-defined]
    if client_addr not in sanitizer:
        return  # a peer sending mail to the sanitizer: outgoing mail, not what the channel sanitizes
    transactions = connection_transactions(conn)  # type: ignore[arg-type]
    out.notes.append(f"content: smtp, {sum(1 for t in transactions if t.mode)} message(s) inspected")
    for t in transactions:
        parts = transaction_findings(t)
        bad = [p for p in parts if p.content_type != UNINSPECTABLE]
        blind = [p for p in parts if p.content_type == UNINSPECTABLE]
        for p in blind:
            out.incomplete.append(f"mail on {_flow_text(v)} (channel {ch.name}) could not be inspected: {p.reason}")
        if not bad:
            continue
        listed = [{"content_type": p.content_type, "filename": p.filename, "disposition": p.disposition,
                   "size": p.size, "reason": p.reason} for p in bad]
        names = ", ".join(p.content_type + (f" ({p.filename})" if p.filename else "") for p in bad[:5])
        out.findings.append(Finding(
            "MAIL_NOT_TEXT", "high",
            f"a message from {t.mail_from or '?'} on mail-text channel {ch.name}'s outbound leg is not text only: "
            f"{names}",
            f"メール無害化の通信経路 {ch.name} の送出側で、テキストのみでないメールがあります（差出人 "
            f"{t.mail_from or '?'}: {names}）",
            v.src_segment, v.dst_segment, flow=v.finding_flow(),
            extra={"channel": ch.name, "mail_from": t.mail_from, "rcpt_to": list(t.rcpt_to), "parts": listed},
        ))


def _files(out: ItemResult, topo: Topology, ch: Channel, v: FlowVerdict, client: bytes, server: bytes,
           conn: object) -> None:
    from ..capture.content import judge
    from ..capture.http import DOWNLOAD, UPLOAD, http_bodies
    from ..capture.recognise import identify

    ev = identify(client[:MAX_FIRST_BYTES], server[:MAX_FIRST_BYTES], v.flow.proto, v.flow.dport)
    if ev.protocol == "empty":
        return
    if ev.protocol == "ftp" and conn is not None:
        _ftp_control(out, topo, ch, v, client, server, conn)
        return
    if ev.protocol != "http":
        out.incomplete.append(f"files on {_flow_text(v)} (channel {ch.name}) could not be inspected: "
                              f"{ev.protocol or 'unknown protocol'} ({ev.detail})")
        return
    sanitizer = address_set(topo.hosts[ch.sanitizer or ""].addresses)
    client_is_sanitizer = conn is not None and conn.client_endpoint[0] in sanitizer  # type: ignore[attr-defined]
    leaving = UPLOAD if client_is_sanitizer else DOWNLOAD  # what moves from the sanitizer to the peer
    for body in http_bodies(client, server):
        if body.direction != leaving:
            continue
        if body.direction == DOWNLOAD and (body.content_type or "").split(";")[0].strip().lower() in PORTAL_TYPES:
            continue  # the sanitizer's own web pages, not a delivered file
        name = body.filename or body.uri or "(unnamed)"
        if not body.inspectable:
            out.incomplete.append(f"file {name} on {_flow_text(v)} (channel {ch.name}) could not be inspected: "
                                  f"{body.note or 'truncated'}")
            continue
        verdict = judge(body.data, body.filename, body.truncated)
        _file_verdict(out.findings, out.incomplete, ch, v, name, verdict, {"filename": body.filename, "uri": body.uri})


def _file_verdict(findings: list[Finding], incomplete: list[str], ch: Channel, v: FlowVerdict, name: str,
                  verdict: Verdict, where: dict[str, object]) -> None:
    """A delivered file's judgement as a finding (active content) or an incomplete note (not inspectable)."""
    if verdict.clean is True:
        return
    if verdict.clean is None:
        incomplete.append(f"file {name} on {_flow_text(v)} (channel {ch.name}) could not be inspected: "
                          f"{'; '.join(verdict.reasons)}")
        return
    findings.append(Finding(
        "FILE_NOT_SANITIZED", "high",
        f"file {name} ({verdict.kind}) on file-sanitization channel {ch.name}'s outbound leg carries active "
        f"content: {'; '.join(verdict.reasons)}",
        f"ファイル無害化の通信経路 {ch.name} の送出側のファイル {name}（{verdict.kind}）に、無害化されていない"
        f"内容があります: {'; '.join(verdict.reasons)}",
        v.src_segment, v.dst_segment, flow=v.finding_flow(),
        extra={"channel": ch.name, **where, "kind": verdict.kind, "reasons": list(verdict.reasons)},
    ))


# --- FTP: transfers on the control connection, files on the data connections ------------------------

FTP_CONTROL_PORT = 21
FTP_DATA_PORT = 20  # RFC 959 3.2: the server's default data port in active mode


def _stream_verdict(stream: object, name: str | None) -> Verdict | None:
    """Judge what one side of a data connection sent; a stream not seen whole is never clean."""
    from ..capture.content import judge

    data = stream.data()  # type: ignore[attr-defined]
    if not data and stream.fin_seen:  # type: ignore[attr-defined]
        return None
    whole = stream.complete and stream.syn_seen and stream.fin_seen  # type: ignore[attr-defined]
    return judge(data, name, truncated=not whole)


def _ftp_data(out: ItemResult, v: FlowVerdict, conn: object) -> None:
    if conn is None:
        return
    out.ftp_data = FtpData(conn.client_endpoint, conn.server_endpoint, v.flow.first_ts,  # type: ignore[attr-defined]
                           _stream_verdict(conn.client, None), _stream_verdict(conn.server, None))  # type: ignore[attr-defined]


def _ftp_control(out: ItemResult, topo: Topology, ch: Channel, v: FlowVerdict, client: bytes, server: bytes,
                 conn: object) -> None:
    from ..capture.ftp import parse_session

    session = parse_session(client, server)
    sanitizer = address_set(topo.hosts[ch.sanitizer or ""].addresses)
    c_end, s_end = conn.client_endpoint, conn.server_endpoint  # type: ignore[attr-defined]
    out.notes.append(f"content: ftp, {len(session.transfers)} transfer(s)")
    if session.encrypted:
        out.incomplete.append(f"FTP on {_flow_text(v)} (channel {ch.name}) switched to TLS (AUTH TLS): the files "
                              "it transferred could not be inspected")
    if session.malformed:
        out.incomplete.append(f"FTP on {_flow_text(v)} (channel {ch.name}) stopped being readable: "
                              f"{session.malformed}")
    out.ftp_control = FtpControl(ch.name, c_end, s_end, c_end[0] in sanitizer, v.flow.first_ts, session.transfers)


def _pair_ftp(work: Work, results: Sequence[ItemResult], by_name: dict[str, Channel], out: Inspection) -> None:
    """Give each FTP transfer its data connection (first unused match after the control connection opened,
    in flow order), judge the files that left the sanitizer, and count the data connections as part of the
    channel: the firewall passes them as RELATED to the control connection, which rules on paper do not show."""
    if all(res.ftp_control is None for res in results):
        return  # no FTP control connection: nothing to pair (and the FTP and content modules stay unloaded)
    from ..capture.content import Verdict
    from ..capture.ftp import UPLOAD as FTP_UPLOAD
    from ..capture.ftp import DataEndpoint

    data = [(v, res.ftp_data) for (v, _, _), res in zip(work, results, strict=True) if res.ftp_data is not None]
    used: set[int] = set()
    for (v, _, _), res in zip(work, results, strict=True):
        c = res.ftp_control
        if c is None:
            continue
        ch = by_name[c.channel]
        for t in c.transfers:
            if not t.accepted:
                continue  # refused by the server: nothing moved
            ep = t.data or DataEndpoint("server", c.client[0], c.client[1])  # the default data port
            if ep.connector == "client":
                src, dst = c.client[0], ep.address if ep.address is not None else c.server[0]
            else:
                src, dst = c.server[0], ep.address if ep.address is not None else c.client[0]
            hit = next((i for i, (dv, d) in enumerate(data) if i not in used and d.client[0] == src
                        and d.server == (dst, ep.port) and d.first_ts >= c.first_ts), None)
            leaving = (t.direction == FTP_UPLOAD) == c.sanitizer_is_client
            if hit is None:
                if leaving:
                    out.incomplete.append(
                        f"FTP {t.command} {t.filename} on {_flow_text(v)} (channel {c.channel}): its data connection "
                        f"to {int_to_addr(dst)}:{ep.port} is not in the captures, the file could not be inspected")
                continue
            used.add(hit)
            dv, d = data[hit]
            dv.notes.append(f"FTP data connection of {t.command} {t.filename} on {_flow_text(v)}")
            # RELATED only between the control connection's own two hosts: a PORT/PASV naming a third host
            # (FTP bounce, or a peer the channel does not cover) is judged as the flow it is
            same_hosts = {d.client[0], d.server[0]} == {c.client[0], c.server[0]}
            if same_hosts and dv.verdict == "UNSANITIZED_FLOW" and v.verdict.startswith("channel:"):
                dv.verdict = v.verdict
                dv.denied = False
            if not leaving:
                continue  # a file the sanitizer received: what it sanitizes
            # the file travels from the control client for an upload; which end of the data connection is that
            from_control_client = d.from_client if ep.connector == "client" else d.from_server
            from_control_server = d.from_server if ep.connector == "client" else d.from_client
            verdict = from_control_client if t.direction == FTP_UPLOAD else from_control_server
            if verdict is None:
                continue  # an empty file
            verdict = Verdict(verdict.clean, verdict.kind, [r.replace("<data>", t.filename) for r in verdict.reasons])
            _file_verdict(out.findings, out.incomplete, ch, dv, t.filename, verdict,
                          {"filename": t.filename, "ftp_command": t.command})
