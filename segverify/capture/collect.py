"""Payload of the few flows whose content must be inspected, in one more streaming pass.

The flow table is built from headers alone; only flows on sanitization channels need their bytes.
A vectorised test on the ports of those flows picks candidate packets out of each batch, so the
Python-level work (records, reassembly) is proportional to the inspected traffic, not the capture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .reader import Batch, Damage, PacketRecord, batch_records, iter_batches
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


def collect(paths: Sequence[str], tcp: Iterable[frozenset[Endpoint]], udp: Iterable[frozenset[Endpoint]]) -> Collected:
    """Reassemble the TCP connections and gather the UDP exchanges between the given endpoint pairs."""
    tcp_keys, udp_keys = set(tcp), set(udp)
    ports = np.array(sorted({port for key in tcp_keys | udp_keys for _, port in key}), dtype=np.uint16)
    udp_out: dict[frozenset[Endpoint], UdpExchange] = {}

    def candidates() -> Iterator[PacketRecord]:
        if not len(ports):
            return
        for path in paths:
            damage: list[Damage] = []  # already reported by the first pass
            for batch in iter_batches(path, damage=damage):
                p = batch.pkts
                mask = np.isin(p["sport"], ports) | np.isin(p["dport"], ports)
                if not mask.any():
                    continue
                for rec in batch_records(Batch(p[mask], batch.buf, batch.base)):
                    if rec.src is None or rec.dst is None:
                        continue
                    key = frozenset(((rec.src, rec.sport), (rec.dst, rec.dport)))
                    if rec.proto == 6 and key in tcp_keys:
                        yield rec
                    elif rec.proto == 17 and key in udp_keys:
                        _udp(udp_out, key, rec)

    connections = reassemble(candidates())
    by_key: dict[frozenset[Endpoint], list[Connection]] = {}
    for conn in connections:
        by_key.setdefault(frozenset((conn.client_endpoint, conn.server_endpoint)), []).append(conn)
    return Collected(by_key, udp_out)


def _udp(out: dict[frozenset[Endpoint], UdpExchange], key: frozenset[Endpoint], rec: PacketRecord) -> None:
    ex = out.get(key)
    sender = (rec.src, rec.sport)
    if ex is None:  # the first datagram's sender: the client, as the flow table also takes it
        ex = out[key] = UdpExchange(sender, (rec.dst, rec.dport))
    buf = ex.client_bytes if sender == ex.client else ex.server_bytes
    room = MAX_DATAGRAM_BYTES - len(buf)
    if room > 0:
        buf += bytes(rec.payload[:room])
