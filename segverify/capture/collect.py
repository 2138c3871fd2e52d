"""Payload of the few flows whose content must be inspected, in one more streaming pass.

The flow table is built from headers alone; only flows on sanitization channels need their bytes.
A vectorised test on the ports of those flows picks candidate packets out of each batch, so the
Python-level work (records, reassembly) is proportional to the inspected traffic, not the capture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

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


@dataclass
class Collected:
    tcp: dict[frozenset[Endpoint], list[Connection]]  # per endpoint pair, in order of appearance
    udp: dict[frozenset[Endpoint], UdpExchange]


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


_U64 = (1 << 64) - 1
_P1 = 0x9E3779B97F4A7C15
_P2 = 0xC2B2AE3D27D4EB4F


def candidates(sources: Iterable[tuple[str, Span | None]], tcp_keys: set[frozenset[Endpoint]],
               udp_keys: set[frozenset[Endpoint]]) -> Iterator[PacketRecord]:
    """The TCP and UDP packets between the given endpoint pairs, in file order, from ``(path, span)``
    sources (``span`` None: the whole file; a part of a split capture otherwise)."""
    wanted = np.array(sorted({_pair_hash_py(k) for k in tcp_keys | udp_keys}), dtype=np.uint64)
    if not len(wanted):
        return
    for path, span in sources:
        damage: list[Damage] = []  # already reported by the first pass
        for batch in iter_batches(path, damage=damage, span=span):
            p = batch.pkts
            mask = np.isin(_pair_hash(p), wanted)  # collisions only let extra packets through
            if not mask.any():
                continue
            for rec in batch_records(Batch(p[mask], batch.buf, batch.base)):
                if rec.src is None or rec.dst is None:
                    continue
                key = frozenset(((rec.src, rec.sport), (rec.dst, rec.dport)))
                if (rec.proto == 6 and key in tcp_keys) or (rec.proto == 17 and key in udp_keys):
                    yield rec


def collect_records(records: Iterable[PacketRecord],
                    caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]] | None = None) -> Collected:
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
    return Collected(by_key, udp_out)


def collect(paths: Sequence[str], tcp: Iterable[frozenset[Endpoint]], udp: Iterable[frozenset[Endpoint]],
            caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]] | None = None) -> Collected:
    """Reassemble the TCP connections and gather the UDP exchanges between the given endpoint pairs.

    ``caps_for`` gives each connection its reassembly limits (a recogniser that reads 4 KiB needs no
    more kept)."""
    return collect_records(candidates([(p, None) for p in paths], set(tcp), set(udp)), caps_for)


def _udp(out: dict[frozenset[Endpoint], UdpExchange], key: frozenset[Endpoint], rec: PacketRecord) -> None:
    ex = out.get(key)
    sender = (rec.src, rec.sport)
    if ex is None:  # the first datagram's sender: the client, as the flow table also takes it
        ex = out[key] = UdpExchange(sender, (rec.dst, rec.dport))
    buf = ex.client_bytes if sender == ex.client else ex.server_bytes
    room = MAX_DATAGRAM_BYTES - len(buf)
    if room > 0:
        buf += bytes(rec.payload[:room])
