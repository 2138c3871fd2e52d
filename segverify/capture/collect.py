"""Payload of the few flows whose content must be inspected, in one more streaming pass.

The flow table is built from headers alone; only flows on sanitization channels need their bytes.
A vectorised test on the ports of those flows picks candidate packets out of each batch, so the
Python-level work (records, reassembly) is proportional to the inspected traffic, not the capture.
IP fragments between the same addresses are put back together first (:mod:`.fragments`), so a
recogniser sees a fragmented segment whole; a datagram that cannot be rebuilt is named in
``Collected.fragment_losses`` under its address pair, and the flows between them are not called clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..model.addresses import V6_BASE
from .decode import FRAG_IS_FRAGMENT, LINKTYPE_RAW, decode_frame
from .fragments import Defragmenter, Reassembled, key_addresses
from .reader import Batch, Damage, PacketRecord, Span, batch_records, iter_batches
from .tcpstream import Connection, reassemble

Endpoint = tuple[int, int]
MAX_DATAGRAM_BYTES = 4096


@dataclass
class UdpExchange:
    """The first bytes each side of a UDP flow sent (enough for a handshake recogniser)."""

    client: Endpoint
    server: Endpoint
    client_bytes: bytearray = field(default_factory=bytearray)
    server_bytes: bytearray = field(default_factory=bytearray)


AddressPair = frozenset[int]


@dataclass
class Collected:
    tcp: dict[frozenset[Endpoint], list[Connection]]  # per endpoint pair, in order of appearance
    udp: dict[frozenset[Endpoint], UdpExchange]
    # address pairs with fragmented datagrams that could not be rebuilt, and why
    fragment_losses: dict[AddressPair, str] = field(default_factory=dict)


def _pair_hash_py(key: frozenset[Endpoint]) -> int:
    """The hash :func:`_pair_hash` computes for a packet, for one endpoint pair (either direction)."""
    out = 0
    for addr, port in key:
        low = addr & 0xFFFFFFFF if addr < (1 << 32) else (addr & _U64) ^ ((addr >> 64) & _U64)
        out ^= ((low * _P1) + port * _P2) & _U64
    return out


def _pair_hash(p: np.ndarray) -> np.ndarray:
    """A hash of the unordered endpoint pair of every packet, vectorised: equal for both directions
    (XOR of the two ends), so one array test keeps a flow's packets whichever way they go."""
    with np.errstate(over="ignore"):
        v6 = p["family"] == 6
        src = np.where(v6, p["src6lo"] ^ p["src6hi"], p["src4"].astype(np.uint64))
        dst = np.where(v6, p["dst6lo"] ^ p["dst6hi"], p["dst4"].astype(np.uint64))
        a = src * np.uint64(_P1) + p["sport"].astype(np.uint64) * np.uint64(_P2)
        b = dst * np.uint64(_P1) + p["dport"].astype(np.uint64) * np.uint64(_P2)
        return a ^ b


def _addr_hash_py(pair: AddressPair) -> int:
    """The hash :func:`_addr_hash` computes for a packet, for one address pair (either direction)."""
    out = 0
    addrs = list(pair) if len(pair) == 2 else list(pair) * 2  # a host talking to itself: a ^ a
    for addr in addrs:
        low = addr & 0xFFFFFFFF if addr < (1 << 32) else (addr & _U64) ^ ((addr >> 64) & _U64)
        out ^= (low * _P1) & _U64
    return out


def _addr_hash(p: np.ndarray) -> np.ndarray:
    """A hash of the unordered address pair of every packet (fragments carry no ports)."""
    with np.errstate(over="ignore"):
        v6 = p["family"] == 6
        src = np.where(v6, p["src6lo"] ^ p["src6hi"], p["src4"].astype(np.uint64))
        dst = np.where(v6, p["dst6lo"] ^ p["dst6hi"], p["dst4"].astype(np.uint64))
        return (src * np.uint64(_P1)) ^ (dst * np.uint64(_P1))


_U64 = (1 << 64) - 1
_P1 = 0x9E3779B97F4A7C15
_P2 = 0xC2B2AE3D27D4EB4F


def candidates(sources: Iterable[tuple[str, Span | None]], tcp_keys: set[frozenset[Endpoint]],
               udp_keys: set[frozenset[Endpoint]], losses: dict[AddressPair, str] | None = None,
               ) -> Iterator[PacketRecord]:  # fmt: skip
    """The TCP and UDP packets between the given endpoint pairs, in file order, from ``(path, span)``
    sources (``span`` None: the whole file; a part of a split capture otherwise). Fragmented datagrams
    between the pairs' addresses come out rebuilt, once whole; those that never are go into ``losses``."""
    keys = tcp_keys | udp_keys
    wanted = np.array(sorted({_pair_hash_py(k) for k in keys}), dtype=np.uint64)
    if not len(wanted):
        return
    addr_pairs = {frozenset(a for a, _ in k) for k in keys}
    wanted_addr = np.array(sorted({_addr_hash_py(pair) for pair in addr_pairs}), dtype=np.uint64)
    defrag = Defragmenter()

    def chosen(rec: PacketRecord) -> bool:
        if rec.src is None or rec.dst is None:
            return False
        key = frozenset(((rec.src, rec.sport), (rec.dst, rec.dport)))
        return (rec.proto == 6 and key in tcp_keys) or (rec.proto == 17 and key in udp_keys)

    for path, span in sources:
        damage: list[Damage] = []  # already reported by the first pass
        for batch in iter_batches(path, damage=damage, span=span):
            p = batch.pkts
            isfrag = (p["frag"] & FRAG_IS_FRAGMENT) != 0
            mask = np.isin(_pair_hash(p), wanted)  # collisions only let extra packets through
            if isfrag.any():
                mask = (mask & ~isfrag) | (isfrag & np.isin(_addr_hash(p), wanted_addr))
            if not mask.any():
                continue
            sel = np.flatnonzero(mask)
            for i, rec in zip(sel.tolist(), batch_records(Batch(p[sel], batch.buf, batch.base)), strict=True):
                if not isfrag[i]:
                    if chosen(rec):
                        yield rec
                    continue
                if rec.src is None or frozenset((rec.src, rec.dst)) not in addr_pairs:
                    continue
                before = defrag.stats.truncated + defrag.stats.malformed
                whole = defrag.add(batch.frame(i), int(p["l3_off"][i]), rec.ts, rec.pos)
                if losses is not None and defrag.stats.truncated + defrag.stats.malformed > before:
                    losses.setdefault(frozenset((rec.src, rec.dst)), "a fragment cut short or malformed")
                if whole is not None:
                    out = _rebuilt_record(whole, rec)
                    if out is not None and chosen(out):
                        yield out
    stats = defrag.finish()
    if losses is not None:
        for key in defrag.lost_keys:
            losses.setdefault(frozenset(key_addresses(key)), _loss_reason(stats))
        if stats.lost() > len(defrag.lost_keys) + stats.truncated + stats.malformed:  # beyond what is named
            for pair in addr_pairs:
                losses.setdefault(pair, _loss_reason(stats))


def _loss_reason(stats: object) -> str:
    parts = [f"{n} {what}" for what in ("ambiguous", "oversized", "evicted", "expired", "pending")
             if (n := getattr(stats, what))]
    return "fragmented datagram(s) not rebuilt: " + ", ".join(parts or ["see the capture"])


def _rebuilt_record(whole: Reassembled, last: PacketRecord) -> PacketRecord | None:
    """The record of a rebuilt datagram, as if it had arrived unfragmented with its last fragment."""
    row = decode_frame(whole.packet, LINKTYPE_RAW)
    fam = row["family"]
    if fam == 4:
        src, dst = row["src4"], row["dst4"]
    elif fam == 6:
        src, dst = V6_BASE + (row["src6hi"] << 64 | row["src6lo"]), V6_BASE + (row["dst6hi"] << 64 | row["dst6lo"])
    else:
        return None
    off, n = row["pay_off"], row["pay_len"]
    return PacketRecord(
        last.ts, last.pos, last.ifindex, LINKTYPE_RAW, len(whole.packet), len(whole.packet), last.vlan, fam, src,
        dst, row["proto"], row["sport"], row["dport"], row["tcp_flags"], row["seq"], row["ack"], row["icmp_type"],
        row["icmp_code"], row["ip_len"], False, False, 0, row["ip_id"], row["status"],
        memoryview(whole.packet)[off : off + n],
    )  # fmt: skip


def collect_records(records: Iterable[PacketRecord],
                    caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]] | None = None,
                    losses: dict[AddressPair, str] | None = None) -> Collected:
    """Reassemble the TCP connections and gather the UDP exchanges of ``records`` (already selected, in
    capture order). Per endpoint pair the result depends only on that pair's records, so pairs may be
    collected in different places and put together."""
    udp_out: dict[frozenset[Endpoint], UdpExchange] = {}

    def tcp_only() -> Iterator[PacketRecord]:
        for rec in records:
            if rec.proto == 6:
                yield rec
            else:
                _udp(udp_out, frozenset(((rec.src, rec.sport), (rec.dst, rec.dport))), rec)

    connections = reassemble(tcp_only(), caps_for=caps_for)
    by_key: dict[frozenset[Endpoint], list[Connection]] = {}
    for conn in connections:
        by_key.setdefault(frozenset((conn.client_endpoint, conn.server_endpoint)), []).append(conn)
    return Collected(by_key, udp_out, losses if losses is not None else {})


def collect(paths: Sequence[str], tcp: Iterable[frozenset[Endpoint]], udp: Iterable[frozenset[Endpoint]],
            caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]] | None = None) -> Collected:
    """Reassemble the TCP connections and gather the UDP exchanges between the given endpoint pairs.

    ``caps_for`` gives each connection its reassembly limits (a recogniser that reads 4 KiB needs no
    more kept)."""
    losses: dict[AddressPair, str] = {}
    return collect_records(candidates([(p, None) for p in paths], set(tcp), set(udp), losses), caps_for, losses)


def _udp(out: dict[frozenset[Endpoint], UdpExchange], key: frozenset[Endpoint], rec: PacketRecord) -> None:
    ex = out.get(key)
    sender = (rec.src, rec.sport)
    if ex is None:  # the first datagram's sender: the client, as the flow table also takes it
        ex = out[key] = UdpExchange(sender, (rec.dst, rec.dport))
    buf = ex.client_bytes if sender == ex.client else ex.server_bytes
    room = MAX_DATAGRAM_BYTES - len(buf)
    if room > 0:
        buf += bytes(rec.payload[:room])
