"""Is what crossed as 無害化通信 really sanitized? The content checks of ``replay``.

A flow a channel covers by address and port is only the start: a screen-transfer flow must really
carry that channel's protocol (not a tunnel), a mail-text channel's outbound leg must carry text
only, a file-sanitization channel's outbound leg must carry files free of active content. What
cannot be inspected (encrypted, cut by a damaged capture, a protocol that cannot be confirmed from
its bytes) is said so, and the result becomes ``incomplete``: never clean by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..capture.collect import Collected, collect
from ..capture.mail import UNINSPECTABLE, connection_transactions, transaction_findings
from ..capture.recognise import UNVERIFIABLE, identify, satisfies
from ..model.addresses import int_to_addr
from ..model.rules import PROTO_NAMES
from ..model.topology import Channel, Leg, Topology
from .findings import Finding

if TYPE_CHECKING:
    from .replay import FlowVerdict

MAX_FIRST_BYTES = 4096
# Downloads of these types from a sanitizer are its web portal's own pages, not delivered files.
PORTAL_TYPES = frozenset({"text/html", "text/css", "application/javascript", "text/javascript"})


@dataclass
class Inspection:
    findings: list[Finding] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)


def _key(v: FlowVerdict) -> frozenset[tuple[int, int]]:
    f = v.flow
    return frozenset(((f.src, f.sport), (f.dst, f.dport)))


def outbound(topo: Topology, ch: Channel, v: FlowVerdict) -> bool:
    from .replay import ports_cover

    """Whether a flow of a sanitizer channel runs on its outbound leg (sanitizer ↔ outbound peers)."""
    leg: Leg | None = ch.outbound
    if leg is None or ch.sanitizer is None:
        return False
    sanitizer = set(topo.hosts[ch.sanitizer].addresses)
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


def plan(topo: Topology, channels: Sequence[Channel], v: FlowVerdict) -> tuple[int, str] | None:
    """Which channel (index) inspects this flow, and how: a screen-transfer flow it covers, or a flow on
    a sanitizer's outbound leg. Legs are the channel's, whatever the families: a dual-homed sanitizer
    delivers to the LG side from its own LG address, a flow inside one family."""
    from .replay import ch_covers

    if v.src_segment is None or v.dst_segment is None:
        return None
    f = v.flow
    for i, ch in enumerate(channels):
        if ch.kind == "screen-transfer" and ch_covers(topo, ch, f.src, f.dst, f.proto, f.dport):
            return i, "screen"
        if ch.kind in ("mail-text", "file-sanitization") and outbound(topo, ch, v):
            return i, "mail" if ch.kind == "mail-text" else "file"
    return None


Work = list[tuple["FlowVerdict", Channel, str]]


def wanted(work: Work) -> tuple[set[frozenset[tuple[int, int]]], set[frozenset[tuple[int, int]]],
                                Callable[[frozenset[tuple[int, int]]], dict[str, int | bool]]]:  # fmt: skip
    """The endpoint pairs to collect (TCP, UDP) and the reassembly limits of each."""
    tcp = {_key(v) for v, _, _ in work if v.flow.proto == 6}
    udp = {_key(v) for v, _, _ in work if v.flow.proto == 17}
    screen = {_key(v) for v, _, what in work if what == "screen"}

    def caps(key: frozenset[tuple[int, int]]) -> dict[str, int | bool]:
        # a recogniser reads the first bytes only: keep no more of a screen-transfer session
        return {"max_bytes": 2 * MAX_FIRST_BYTES, "max_buffer": 64 * 1024} if key in screen else {}

    return tcp, udp, caps


def inspect_channels(topo: Topology, channels: Sequence[Channel], verdicts: Sequence[FlowVerdict],
                     captures: Sequence[str]) -> Inspection:
    """Inspect every flow a permitted channel carries (see :func:`plan`)."""
    work: Work = []
    for v in verdicts:
        which = plan(topo, channels, v)
        if which is not None:
            work.append((v, channels[which[0]], which[1]))
    if not work:
        return Inspection()
    tcp, udp, caps = wanted(work)
    got = collect(captures, tcp, udp, caps_for=caps)
    return combine(work, [inspect_item(topo, ch, what, v, got) for v, ch, what in work], channels)


def inspect_item(topo: Topology, ch: Channel, what: str, v: FlowVerdict, got: Collected) -> ItemResult:
    """Inspect one flow from the collected streams of its endpoint pair (``v`` is not changed)."""
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
    key = _key(v)
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
    if conn is None:
        out.incomplete.append(f"mail flow {_flow_text(v)} on channel {ch.name}: no TCP stream to inspect")
        return
    sanitizer = set(topo.hosts[ch.sanitizer or ""].addresses)
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

    ev = identify(client[:MAX_FIRST_BYTES], server[:MAX_FIRST_BYTES], v.flow.proto, v.flow.dport)
    if ev.protocol == "empty":
        return
    if ev.protocol != "http":
        out.incomplete.append(f"files on {_flow_text(v)} (channel {ch.name}) could not be inspected: "
                              f"{ev.protocol or 'unknown protocol'} ({ev.detail})")
        return
    sanitizer = set(topo.hosts[ch.sanitizer or ""].addresses)
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
        if verdict.clean is True:
            continue
        if verdict.clean is None:
            out.incomplete.append(f"file {name} on {_flow_text(v)} (channel {ch.name}) could not be inspected: "
                                  f"{'; '.join(verdict.reasons)}")
            continue
        out.findings.append(Finding(
            "FILE_NOT_SANITIZED", "high",
            f"file {name} ({verdict.kind}) on file-sanitization channel {ch.name}'s outbound leg carries active "
            f"content: {'; '.join(verdict.reasons)}",
            f"ファイル無害化の通信経路 {ch.name} の送出側のファイル {name}（{verdict.kind}）に、無害化されていない"
            f"内容があります: {'; '.join(verdict.reasons)}",
            v.src_segment, v.dst_segment, flow=v.finding_flow(),
            extra={"channel": ch.name, "filename": body.filename, "uri": body.uri, "kind": verdict.kind,
                   "reasons": list(verdict.reasons)},
        ))
