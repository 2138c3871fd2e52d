"""Payload of the few flows whose content must be inspected, in one more streaming pass.

The flow table is built from headers alone; only flows on sanitization channels need their bytes.
A vectorised test on the ports of those flows picks candidate packets out of each batch, so the
Python-level work (records, reassembly) is proportional to the inspected traffic, not the capture.
IP fragments between the same addresses are put back together first (:mod:`.fragments`), so a
recogniser sees a fragmented segment whole; a datagram that cannot be rebuilt is named in
``Collected.fragment_losses`` under its address pair, and the flows between them are not called clean.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from types import ModuleType
from typing import cast

import numpy as np

from ..model.addresses import V6_BASE, IntervalSet
from .decode import BATCH_DTYPE, FRAG_IS_FRAGMENT, LINKTYPE_RAW, TCP_CONTROL, decode_frame
from .flows import FlowTable, group_rows
from .fragments import Defragmenter, Reassembled, key_addresses
from .native import enabled, loops
from .reader import Batch, Damage, PacketRecord, Span, batch_records, iter_batches
from .tcpstream import Connection, Reassembly, SpillStore, reassemble

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
        out ^= ((_fold(addr) * _P1) + port * _P2) & _U64
    return out


def _fold(addr: int) -> int:
    """An address as the hashes see it: IPv4 as is, IPv6 as the XOR of its two 64-bit halves."""
    return addr & 0xFFFFFFFF if addr < (1 << 32) else (addr & _U64) ^ ((addr >> 64) & _U64)


def _folded(p: np.ndarray, which: str) -> np.ndarray:
    """:func:`_fold` of every packet's ``which`` ("src" or "dst") address, vectorised."""
    return np.where(p["family"] == 6, p[which + "6lo"] ^ p[which + "6hi"], p[which + "4"].astype(np.uint64))


def _pair_hash(p: np.ndarray) -> np.ndarray:
    """A hash of the unordered endpoint pair of every packet, vectorised: equal for both directions
    (XOR of the two ends), so one array test keeps a flow's packets whichever way they go."""
    with np.errstate(over="ignore"):
        src, dst = _folded(p, "src"), _folded(p, "dst")
        a = src * np.uint64(_P1) + p["sport"].astype(np.uint64) * np.uint64(_P2)
        b = dst * np.uint64(_P1) + p["dport"].astype(np.uint64) * np.uint64(_P2)
        return a ^ b


def _addr_hash_py(pair: AddressPair) -> int:
    """The hash :func:`_addr_hash` computes for a packet, for one address pair (either direction)."""
    out = 0
    addrs = list(pair) if len(pair) == 2 else list(pair) * 2  # a host talking to itself: a ^ a
    for addr in addrs:
        out ^= (_fold(addr) * _P1) & _U64
    return out


def _addr_hash(p: np.ndarray) -> np.ndarray:
    """A hash of the unordered address pair of every packet (fragments carry no ports)."""
    with np.errstate(over="ignore"):
        return (_folded(p, "src") * np.uint64(_P1)) ^ (_folded(p, "dst") * np.uint64(_P1))


_U64 = (1 << 64) - 1
_P1 = 0x9E3779B97F4A7C15
_P2 = 0xC2B2AE3D27D4EB4F


_KINDS = {"from": 0, "quiet": 1, "acks": 2}  # the table kinds of Quiet, as the compiled drop test numbers them
_UNPLANNED = object()  # a pair not yet planned (None: planned, and nothing to collect)
MAX_STARTED = 1 << 16


class Quiet:
    """Endpoint pairs whose further packets change nothing the inspection reads, so that :func:`candidates`
    (or :class:`Harvest`) leaves them out in bulk instead of making a Python record of each.

    A screen-transfer recogniser reads only the first ``prefix`` bytes each way of a session, and a long RDP
    session is most of a capture's inspected packets. For the pairs ``allowed`` says yes to (those whose
    consumer reads no more), once one end's first bytes are there for good
    (:meth:`.tcpstream.StreamReassembler.prefix_fixed`), that end's TCP packets without SYN, FIN or RST change
    nothing read: a segment only ever feeds its sender's direction, and the flags that decide port reuse and
    the ends are kept. A UDP exchange whose kept bytes are full both ways needs nothing more. And once a pair
    has its connection or exchange (:meth:`started`), its packets with no payload and none of those flags change
    only a packet counter, whatever the pair is inspected for. Packets are matched by :func:`_pair_hash`, then
    compared field by field with the pair (and sender), so a hash collision never drops another pair's packet."""

    def __init__(self, allowed: Callable[[frozenset[Endpoint], int], bool], prefix: int) -> None:
        self.prefix = prefix
        self._allowed = allowed
        # (proto, what) -> hash -> pair and its row; what: "from" (one sender's packets without SYN, FIN,
        # RST), "quiet" (both senders'; for UDP every packet), "acks" (those with no payload either)
        self._on: dict[tuple[int, str], _PairTable] = {
            (proto, what): _PairTable() for proto in (6, 17) for what in ("from", "quiet", "acks")}
        self._done: dict[frozenset[Endpoint], set[Endpoint]] = {}  # TCP pairs: senders quieted
        self._arrays: dict[tuple[int, str], tuple[np.ndarray, ...]] = {}

    def wants(self, key: frozenset[Endpoint], proto: int = 6, sender: Endpoint | None = None) -> bool:
        """Whether ``key`` (or, for TCP, its ``sender``'s side) may be quieted and is not yet."""
        if proto == 6 and sender is not None:
            done = self._done.get(key)
            return (done is None or sender not in done) and self._allowed(key, proto)
        return _pair_hash_py(key) not in self._on[(proto, "quiet")] and self._allowed(key, proto)

    def sender_done(self, key: frozenset[Endpoint], sender: Endpoint) -> None:
        """The first bytes ``sender`` sent on the current TCP connection of ``key`` are fixed."""
        if key not in self._done and len(self._done) >= MAX_STARTED:
            return  # bounded: past this many pairs, nothing more is quieted
        done = self._done.setdefault(key, set())
        done.add(sender)
        if len(key) == 2 and len(done) == 2:
            self._unset((6, "from"), key)
            self._set((6, "quiet"), key, None)
        elif len(key) == 2:
            self._set((6, "from"), key, sender)

    def saturated(self, key: frozenset[Endpoint], proto: int = 6) -> None:
        """Every side of ``key`` is done (UDP: both sides' kept bytes are full)."""
        if proto == 6:
            self._done[key] = set(key)
            self._unset((6, "from"), key)
        self._set((proto, "quiet"), key, None)

    def reopened(self, key: frozenset[Endpoint], proto: int = 6) -> None:
        """A new connection on ``key``: nothing of it is known yet."""
        self._done.pop(key, None)
        self._unset((proto, "from"), key)
        self._unset((proto, "quiet"), key)

    def started(self, key: frozenset[Endpoint], proto: int = 6) -> None:
        """``key`` has its connection (TCP) or exchange (UDP): see the class docstring. At most
        :data:`MAX_STARTED` pairs are remembered (in every table)."""
        self._set((proto, "acks"), key, None)

    def _set(self, which: tuple[int, str], key: frozenset[Endpoint], sender: Endpoint | None) -> None:
        h = _pair_hash_py(key)
        table = self._on[which]
        if h in table and table.pair(h) != key:
            return  # a second pair with the same hash is simply not dropped
        if h in table or len(table) < MAX_STARTED:  # bounded, like the tables' rebuilds
            table.set(h, key, _pair_row(key, sender))
            self._changed(which)

    def _unset(self, which: tuple[int, str], key: frozenset[Endpoint]) -> None:
        table = self._on[which]
        h = _pair_hash_py(key)
        if h in table and table.pair(h) == key:
            table.remove(h)
            self._changed(which)

    def _changed(self, which: tuple[int, str]) -> None:
        for key in (which, (0, "any"), (0, "packed")):
            self._arrays.pop(key, None)

    def drop(self, p: np.ndarray, hashes: np.ndarray) -> np.ndarray | None:
        """Which packets of a batch are no longer needed (never a fragment); None when none can be."""
        live = [(which, on) for which, on in self._on.items() if on]
        if not live:
            return None
        cl = loops() if enabled() else None
        if cl is not None:
            return self._drop_compiled(cl, np.ascontiguousarray(p), hashes, live)
        every = self._arrays.get((0, "any"))
        if every is None:
            every = self._arrays[(0, "any")] = (np.unique(np.concatenate([self._table(w)[0] for w, _ in live])),
                                                np.empty(0))
        known = every[0]
        at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
        rows = np.flatnonzero((known[at] == hashes) & ((p["frag"] & FRAG_IS_FRAGMENT) == 0))
        if not len(rows):
            return None
        q, qh = p[rows], hashes[rows]
        src, dst = _ends(q)
        no_control = (q["tcp_flags"] & TCP_CONTROL) == 0
        hit = np.zeros(len(rows), dtype=bool)
        for (proto, what), _on in live:
            table_h, table = self._table((proto, what))
            at = np.minimum(np.searchsorted(table_h, qh), len(table_h) - 1)
            pairs = table[at]
            same = (table_h[at] == qh) & (q["proto"] == proto)
            if proto == 6:
                same &= no_control
            if what == "acks":
                same &= q["pay_len"] == 0
            fwd = (src == pairs[:, 0:4]).all(axis=1) & (dst == pairs[:, 4:8]).all(axis=1)
            if what != "from":  # either way round
                fwd |= (src == pairs[:, 4:8]).all(axis=1) & (dst == pairs[:, 0:4]).all(axis=1)
            hit |= same & fwd
        out = np.zeros(len(p), dtype=bool)
        out[rows] = hit
        return out

    def _drop_compiled(self, cl: ModuleType, p: np.ndarray, hashes: np.ndarray,
                       live: list[tuple[tuple[int, str], _PairTable]]) -> np.ndarray | None:  # fmt: skip
        """:meth:`drop` in one compiled pass (``_cloops.quiet_drop``) over the live tables laid back to back."""
        packed = self._arrays.get((0, "packed"))
        if packed is None:
            index, hs, rows, at = [], [], [], 0
            for which, _ in live:
                table_h, table = self._table(which)
                index.append((at, len(table_h), which[0], _KINDS[which[1]]))
                hs.append(table_h)
                rows.append(table)
                at += len(table_h)
            packed = self._arrays[(0, "packed")] = (np.array(index, dtype=np.int64), np.concatenate(hs),
                                                    np.ascontiguousarray(np.concatenate(rows)))
        out = np.empty(len(p), dtype=np.uint8)
        dropped = cl.quiet_drop(p, np.ascontiguousarray(hashes, dtype=np.uint64), packed[0], packed[1], packed[2],
                                out)
        return out.view(bool) if dropped else None

    def _table(self, which: tuple[int, str]) -> tuple[np.ndarray, np.ndarray]:
        got = self._arrays.get(which)
        if got is None:
            got = self._arrays[which] = self._on[which].arrays()
        return got


def _split(addr: int) -> tuple[int, int, int]:
    """(family, high 64 bits, low 64 bits) of an address of the unified space."""
    if addr < V6_BASE:
        return 4, 0, addr
    a = addr - V6_BASE
    return 6, a >> 64, a & _U64


def _pair_row(key: frozenset[Endpoint], sender: Endpoint | None) -> tuple[int, ...]:
    """Both ends of a pair as (family, high, low, port) x 2, the sender first when there is one."""
    ends = sorted(key)
    (a, pa), (b, pb) = ends if len(ends) == 2 else (ends[0], ends[0])
    if sender is not None and sender != (a, pa):
        (a, pa), (b, pb) = (b, pb), (a, pa)
    return (*_split(a), pa, *_split(b), pb)


class _PairTable:
    """One table of :class:`Quiet`: pair hash -> pair, with each pair's row (:func:`_pair_row`, the sender first
    where there is one) kept in numpy arrays slot by slot, so that the sorted arrays the drop test searches are
    rebuilt in a few array operations after a change (it changes in nearly every slice of candidates), not from
    Python tuples."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[frozenset[Endpoint], int]] = {}  # hash -> (pair, slot)
        self._free: list[int] = []
        self._hashes = np.zeros(64, dtype=np.uint64)
        self._rows = np.zeros((64, 8), dtype=np.uint64)
        self._live = np.zeros(64, dtype=bool)
        self._used = 0  # slots ever handed out

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, h: int) -> bool:
        return h in self._entries

    def pair(self, h: int) -> frozenset[Endpoint]:
        return self._entries[h][0]

    def set(self, h: int, key: frozenset[Endpoint], row: tuple[int, ...]) -> None:
        old = self._entries.get(h)
        if old is not None:
            slot = old[1]
        elif self._free:
            slot = self._free.pop()
        else:
            slot = self._used
            self._used += 1
            if slot >= len(self._hashes):
                grow = len(self._hashes)
                self._hashes = np.concatenate([self._hashes, np.zeros(grow, np.uint64)])
                self._rows = np.concatenate([self._rows, np.zeros((grow, 8), np.uint64)])
                self._live = np.concatenate([self._live, np.zeros(grow, bool)])
        self._entries[h] = (key, slot)
        self._hashes[slot] = h
        self._rows[slot] = row
        self._live[slot] = True

    def remove(self, h: int) -> None:
        slot = self._entries.pop(h)[1]
        self._live[slot] = False
        self._free.append(slot)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted hashes and, row by row, their pairs (:func:`_pair_row`)."""
        slots = np.flatnonzero(self._live[: self._used])
        hs = self._hashes[slots]
        order = np.argsort(hs)
        return hs[order], self._rows[slots[order]]


def _ends(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(family, high, low, port) of each packet's source and destination, as rows of :func:`_pair_row`."""
    v6 = p["family"] == 6
    fam = p["family"].astype(np.uint64)
    zero = np.zeros(len(p), dtype=np.uint64)
    src = np.stack([fam, np.where(v6, p["src6hi"], zero), np.where(v6, p["src6lo"], p["src4"].astype(np.uint64)),
                    p["sport"].astype(np.uint64)], axis=1)
    dst = np.stack([fam, np.where(v6, p["dst6hi"], zero), np.where(v6, p["dst6lo"], p["dst4"].astype(np.uint64)),
                    p["dport"].astype(np.uint64)], axis=1)
    return src, dst


@dataclass(frozen=True)
class RawFragment:
    """An IP fragment handed out as it is (its IP packet bytes), for whoever sees all the parts'
    fragments of its datagram to rebuild it: see ``raw_pairs`` of :func:`candidates`."""

    ts: int
    pos: int
    ifindex: int
    vlan: int | None
    src: int
    dst: int
    ip: bytes


def candidates(sources: Iterable[tuple[str, Span | None]], tcp_keys: set[frozenset[Endpoint]],
               udp_keys: set[frozenset[Endpoint]], losses: dict[AddressPair, str] | None = None,
               quiet: Quiet | None = None, raw_pairs: set[AddressPair] | None = None,
               ) -> Iterator[PacketRecord | RawFragment]:  # fmt: skip
    """The TCP and UDP packets between the given endpoint pairs, in file order, from ``(path, span)``
    sources (``span`` None: the whole file; a part of a split capture otherwise). Fragmented datagrams
    between the pairs' addresses come out rebuilt, once whole; those that never are go into ``losses``.
    Fragments between the addresses of ``raw_pairs`` come out as :class:`RawFragment` instead, not rebuilt
    here (a part of a capture holding only some of a datagram's fragments). Packets ``quiet`` says are no
    longer needed are left out (it is consulted at every batch)."""
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
            hashes = _pair_hash(p)
            mask = np.isin(hashes, wanted)  # collisions only let extra packets through
            if quiet is not None:
                drop = quiet.drop(p, hashes)
                if drop is not None:
                    mask &= ~drop
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
                if raw_pairs and frozenset((rec.src, rec.dst)) in raw_pairs:
                    yield RawFragment(rec.ts, rec.pos, rec.ifindex, rec.vlan, rec.src, rec.dst,
                                      bytes(batch.frame(i)[int(p["l3_off"][i]) :]))
                    continue
                out = _defragment(defrag, batch.frame(i), int(p["l3_off"][i]), rec, losses)
                if out is not None and chosen(out):
                    yield out
    record_losses(defrag, losses, addr_pairs)


def record_losses(defrag: Defragmenter, losses: dict[AddressPair, str] | None, pairs: Iterable[AddressPair]) -> None:
    """End of the capture for ``defrag``: name each datagram it could not rebuild under its address pair
    (all of ``pairs`` when more were lost than it remembers)."""
    stats = defrag.finish()
    if losses is None:
        return
    for key in defrag.lost_keys:
        losses.setdefault(frozenset(key_addresses(key)), _loss_reason(stats))
    if stats.lost() > len(defrag.lost_keys) + stats.truncated + stats.malformed:  # beyond what is named
        for pair in pairs:
            losses.setdefault(pair, _loss_reason(stats))


def rebuild_fragments(items: Iterable[PacketRecord | RawFragment], losses: dict[AddressPair, str],
                      ) -> Iterator[PacketRecord]:  # fmt: skip
    """Records in order, with the :class:`RawFragment` among them put back together (in that order, as one
    reader of the whole capture would have): the counterpart of ``raw_pairs`` in :func:`candidates`."""
    defrag = Defragmenter()
    pairs: set[AddressPair] = set()
    for item in items:
        if not isinstance(item, RawFragment):
            yield item
            continue
        pairs.add(frozenset((item.src, item.dst)))
        out = _defragment(defrag, item.ip, 0, item, losses)
        if out is not None:
            yield out
    record_losses(defrag, losses, pairs)


def _defragment(defrag: Defragmenter, frame: bytes | memoryview, l3_off: int, frag: PacketRecord | RawFragment,
                losses: dict[AddressPair, str] | None) -> PacketRecord | None:
    """Feed one fragment to ``defrag``: the rebuilt datagram's record once it is whole; a fragment it
    cannot use (cut short, malformed) is named under its address pair in ``losses``."""
    before = defrag.stats.truncated + defrag.stats.malformed
    whole = defrag.add(frame, l3_off, frag.ts, frag.pos)
    if losses is not None and defrag.stats.truncated + defrag.stats.malformed > before:
        losses.setdefault(frozenset((frag.src, frag.dst)), "a fragment cut short or malformed")
    return _rebuilt_record(whole, frag) if whole is not None else None


def _row_addresses(row: dict) -> tuple[int, int]:
    if row["family"] == 4:
        return row["src4"], row["dst4"]
    return V6_BASE + (row["src6hi"] << 64 | row["src6lo"]), V6_BASE + (row["dst6hi"] << 64 | row["dst6lo"])


def _loss_reason(stats: object) -> str:
    parts = [f"{n} {what}" for what in ("ambiguous", "oversized", "evicted", "expired", "pending")
             if (n := getattr(stats, what))]
    return "fragmented datagram(s) not rebuilt: " + ", ".join(parts or ["see the capture"])


def _rebuilt_record(whole: Reassembled, last: PacketRecord | RawFragment) -> PacketRecord | None:
    """The record of a rebuilt datagram, as if it had arrived unfragmented with its last fragment."""
    row = decode_frame(whole.packet, LINKTYPE_RAW)
    fam = row["family"]
    if fam not in (4, 6):
        return None
    src, dst = _row_addresses(row)
    off, n = row["pay_off"], row["pay_len"]
    return PacketRecord(
        last.ts, last.pos, last.ifindex, LINKTYPE_RAW, len(whole.packet), len(whole.packet), last.vlan, fam, src,
        dst, row["proto"], row["sport"], row["dport"], row["tcp_flags"], row["seq"], row["ack"], row["icmp_type"],
        row["icmp_code"], row["ip_len"], False, False, 0, row["ip_id"], row["status"],
        memoryview(whole.packet)[off : off + n],
    )  # fmt: skip


def collect_records(records: Iterable[PacketRecord],
                    caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]] | None = None,
                    losses: dict[AddressPair, str] | None = None, quiet: Quiet | None = None) -> Collected:
    """Reassemble the TCP connections and gather the UDP exchanges of ``records`` (already selected, in
    capture order). Per endpoint pair the result depends only on that pair's records, so pairs may be
    collected in different places and put together. ``quiet`` (shared with the :func:`candidates` that
    produce ``records``) is told which pairs need no more packets."""
    udp_out: dict[frozenset[Endpoint], UdpExchange] = {}

    def tcp_only() -> Iterator[PacketRecord]:
        for rec in records:
            if rec.proto == 6:
                yield rec
            else:
                key = frozenset(((rec.src, rec.sport), (rec.dst, rec.dport)))
                ex = _udp(udp_out, key, rec)
                if (quiet is not None and len(ex.client_bytes) >= min(quiet.prefix, MAX_DATAGRAM_BYTES)
                        and len(ex.server_bytes) >= min(quiet.prefix, MAX_DATAGRAM_BYTES)):
                    quiet.saturated(key, 17)  # the bytes read are kept both ways: later datagrams add nothing

    connections = reassemble(tcp_only(), caps_for=caps_for, quiet=quiet, store=SpillStore())
    by_key: dict[frozenset[Endpoint], list[Connection]] = {}
    for conn in connections:
        by_key.setdefault(frozenset((conn.client_endpoint, conn.server_endpoint)), []).append(conn)
    return Collected(by_key, udp_out, losses if losses is not None else {})


def collect(paths: Sequence[str], tcp: Iterable[frozenset[Endpoint]], udp: Iterable[frozenset[Endpoint]],
            caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]] | None = None,
            first_bytes_only: Iterable[frozenset[Endpoint]] = (), prefix: int = 0) -> Collected:
    """Reassemble the TCP connections and gather the UDP exchanges between the given endpoint pairs.

    ``caps_for`` gives each connection its reassembly limits (a recogniser that reads 4 KiB needs no
    more kept); of the pairs in ``first_bytes_only`` the caller reads only the first ``prefix`` bytes each
    way, and their packets stop being collected once those are known (see :class:`Quiet`): the rest of such
    a pair's streams is then incomplete."""
    losses: dict[AddressPair, str] = {}
    tcp, udp = set(tcp), set(udp)
    allowed = set(first_bytes_only) if prefix > 0 else set()
    quiet = Quiet(lambda key, _proto: key in allowed, prefix)
    return collect_records(candidates([(p, None) for p in paths], tcp, udp, losses, quiet), caps_for, losses, quiet)


def _udp(out: dict[frozenset[Endpoint], UdpExchange], key: frozenset[Endpoint], rec: PacketRecord) -> UdpExchange:
    ex = out.get(key)
    sender = (rec.src, rec.sport)
    if ex is None:  # the first datagram's sender: the client, as the flow table also takes it
        ex = out[key] = UdpExchange(sender, (rec.dst, rec.dport))
    buf = ex.client_bytes if sender == ex.client else ex.server_bytes
    room = MAX_DATAGRAM_BYTES - len(buf)
    if room > 0:
        buf += bytes(rec.payload[:room])
    return ex


# --- the same packets, taken during the header pass ---------------------------------------------------


@dataclass(frozen=True)
class KeyPlan:
    """What content inspection may ask of one endpoint pair, whichever of its ends turns out to have
    initiated (the flow table knows that only at the end): which reassembly limits its TCP connections may be
    read with, whether its UDP exchange is read, and whether only its first bytes are (see :class:`Quiet`)."""

    tcp_screen: bool  # TCP, reassembled with the screen-transfer limits
    tcp_default: bool  # TCP, reassembled with the default limits
    udp: bool
    quiet_tcp: bool
    quiet_udp: bool


HARVEST_SLICE = 2048  # candidate packets per bulk drop test
MAX_PAIR_SETS = 32  # address-set pairs tested in one pass (bits of a uint64, half each side)
_MAX_PLANS = 1 << 20  # endpoint pairs whose plan is remembered (a hostile capture has many)
_V4_TOP = (1 << 32) - 1


class Harvest:
    """Collects, during the header pass, exactly what :func:`collect` would read in a second pass.

    The endpoint pairs to inspect depend on the flow table (who initiated each flow), known only at the
    end; but which *address pairs* can be inspected is known from the topology before any packet is read
    (a channel's clients and servers, a sanitizer and its legs' peers). Per batch, a vectorised test on
    those address sets keeps the few candidate packets, and each candidate pair's :class:`KeyPlan` (both
    orientations) says which reassembly it feeds: with the screen-transfer limits, the default ones, or
    both while undecided. :meth:`collected` then picks, per pair inspected, the reassembly the second pass
    would have run; per pair the result depends only on that pair's packets in capture order, which both
    see alike. IP fragments go through a defragmenter whose state depends on which fragments it is given,
    so a candidate fragment makes the harvest give up (:attr:`usable` False) and the caller read again."""

    def __init__(self, pair_sets: Sequence[tuple[IntervalSet, IntervalSet]],
                 plan_key: Callable[[frozenset[Endpoint]], KeyPlan | None],
                 screen_caps: dict[str, int | bool], prefix: int) -> None:  # fmt: skip
        if len(pair_sets) > MAX_PAIR_SETS:
            raise ValueError(f"at most {MAX_PAIR_SETS} address-set pairs")
        self._sets = [s for pair in pair_sets for s in pair]  # A0, B0, A1, B1, ...
        self._v4 = _v4_table(self._sets)
        self._even = sum(1 << i for i in range(0, len(self._sets), 2))  # the A side of every pair
        self._plan_key = plan_key
        self._plans: dict[frozenset[Endpoint], KeyPlan | None] = {}
        self._roles6: dict[tuple[int, int], int] = {}
        self.quiet = Quiet(self._quiet_ok, prefix)
        self.screen = Reassembly(lambda _key: screen_caps, self.quiet)
        self.default = Reassembly(lambda _key: {}, store=SpillStore())  # mail, downloads: long streams on disk
        self.udp: dict[frozenset[Endpoint], UdpExchange] = {}
        self.usable = True
        self.packets = 0  # candidate packets taken
        self._started: dict[int, set[frozenset[Endpoint]]] = {6: set(), 17: set()}
        # where every candidate TCP/UDP packet lies (pair hash, frame offset, captured length), quieted or not:
        # a cluster part ships the packets of tuples that span parts from there (see :meth:`where`)
        self._where: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._run_table = np.empty(0, np.int32)  # scratch of _cloops.tcp_runs

    def _plan(self, key: frozenset[Endpoint]) -> KeyPlan | None:
        plans = self._plans
        if key in plans:
            return plans[key]
        if len(plans) >= _MAX_PLANS:
            plans.clear()  # recomputed when needed: the same answer
        kp = plans[key] = self._plan_key(key)
        return kp

    def _quiet_ok(self, key: frozenset[Endpoint], proto: int) -> bool:
        kp = self._plan(key)
        return kp is not None and (kp.quiet_tcp if proto == 6 else kp.quiet_udp)

    def _roles(self, p: np.ndarray, which: str) -> np.ndarray:
        """Per packet, bit i set when its ``which`` address is in address set i."""
        out = np.zeros(len(p), dtype=np.uint64)
        fam = p["family"]
        v4 = fam == 4
        if v4.any():
            starts, bits = self._v4
            at = np.searchsorted(starts, p[which + "4"].astype(np.int64), side="right") - 1
            out[v4] = bits[at[v4]]
        rows6 = np.flatnonzero(fam == 6)
        if len(rows6):  # IPv6 is a few percent of traffic, on few hosts: one set test per distinct address
            hi, lo = p[which + "6hi"][rows6], p[which + "6lo"][rows6]
            perm, starts, inv = group_rows([hi, lo])
            firsts = perm[starts]
            cache = self._roles6
            if len(cache) > _MAX_PLANS:
                cache.clear()
            vals = []
            for h, l6 in zip(hi[firsts].tolist(), lo[firsts].tolist(), strict=True):
                bits = cache.get((h, l6))
                if bits is None:
                    addr = V6_BASE + (h << 64 | l6)
                    bits = cache[(h, l6)] = sum(1 << i for i, s in enumerate(self._sets) if addr in s)
                vals.append(bits)
            out[rows6] = np.array(vals, dtype=np.uint64)[inv]
        return out

    def add(self, batch: Batch) -> None:
        """Take the candidate packets of one batch of the header pass."""
        cand = self.select(batch)
        if cand is None:
            return
        hashes = _pair_hash(cand)
        self._where.append((hashes, cand["pos"].copy(), cand["caplen"].copy()))
        self.take(cand, batch, hashes)

    def select(self, batch: Batch) -> np.ndarray | None:
        """The candidate packets of one batch (rows of ``batch.pkts``), or None; gives up on a candidate IP
        fragment. Vectorised: the part of :meth:`add` that a process which only reads can do."""
        if not self.usable or not len(batch):
            return None
        p = batch.pkts
        cl = loops() if enabled() else None
        if cl is not None:
            return self._select_compiled(cl, np.ascontiguousarray(p))
        sel = self._pair_hits(p)
        if not sel.any():
            return None
        if (sel & ((p["frag"] & FRAG_IS_FRAGMENT) != 0)).any():
            self.give_up()
            return None
        sel &= (p["proto"] == 6) | (p["proto"] == 17)
        rows = np.flatnonzero(sel)
        return p[rows] if len(rows) else None

    def _select_compiled(self, cl: ModuleType, p: np.ndarray) -> np.ndarray | None:
        """:meth:`select` in one compiled pass (``_cloops.select_pairs``); IPv6 role bits from :meth:`_roles`."""
        rows6 = np.flatnonzero(p["family"] == 6)
        roles6 = np.empty((len(rows6), 2), dtype=np.uint64)  # the IPv6 packets', in order
        if len(rows6):
            q = p[rows6]
            roles6[:, 0] = self._roles(q, "src")
            roles6[:, 1] = self._roles(q, "dst")
        kept = np.empty(len(p), dtype=BATCH_DTYPE)
        starts, bits = self._v4
        k, fragment = cl.select_pairs(p, starts, bits, roles6, self._even, kept)
        if fragment:
            self.give_up()
            return None
        return kept[:k] if k else None  # a view: the room past it is never touched, so never paged in

    def _pair_hits(self, p: np.ndarray) -> np.ndarray:
        """Per row of ``p`` (address fields as in a batch): whether its two addresses are a candidate pair."""
        rs, rd = self._roles(p, "src"), self._roles(p, "dst")
        even = np.uint64(self._even)
        # A_i is bit 2i, B_i bit 2i+1: a packet from A_i to B_i, or from B_i to A_i
        hit = ((rs & even) & (rd >> np.uint64(1))) | ((rd & even) & (rs >> np.uint64(1)))
        return hit != 0

    def flow_candidates(self, flows: FlowTable) -> list[int]:
        """Indices of the flows between a candidate pair: the only ones content inspection can take (any
        flow it inspects has its packets among the candidates). Read from the table's columns."""
        p = np.zeros(len(flows), dtype=BATCH_DTYPE)
        if not len(p):
            return []
        c = flows.cols
        v4 = c["family"] == 4
        p["family"] = c["family"]
        for end in ("src", "dst"):
            p[end + "4"] = np.where(v4, c[end + "_lo"], 0)
            p[end + "6hi"] = np.where(v4, 0, c[end + "_hi"])
            p[end + "6lo"] = np.where(v4, 0, c[end + "_lo"])
        return np.flatnonzero(self._pair_hits(p)).tolist()

    def take(self, cand: np.ndarray, batch: Batch, hashes: np.ndarray | None = None) -> None:
        """Reassemble the candidate packets ``cand`` (whose bytes are in ``batch``): the Python part of
        :meth:`add`."""
        if not self.usable:
            return
        if hashes is None:
            hashes = _pair_hash(cand)
        # in slices, so that what is learnt from one (a session's first bytes are in) spares the next
        for at in range(0, len(cand), HARVEST_SLICE):
            sub = cand[at : at + HARVEST_SLICE]
            drop = self.quiet.drop(sub, hashes[at : at + HARVEST_SLICE])
            if drop is not None:
                sub = sub[~drop]
            self._take(sub, batch)

    def _take(self, sub: np.ndarray, batch: Batch) -> None:
        self.packets += len(sub)
        udp = self.udp
        started6, started17 = self._started[6], self._started[17]
        plans = self._plans
        screen, default = self.screen, self.default
        mv = memoryview(batch.buf)
        at = (sub["pos"] - batch.base + sub["pay_off"]).astype(np.int64)
        size = sub["pay_len"].astype(np.int64)
        offs, lens = at.tolist(), size.tolist()
        seqs, all_flags = sub["seq"].tolist(), sub["tcp_flags"].tolist()
        runs, visit = self._runs(sub)
        gather = loops().gather if runs else None  # type: ignore[union-attr]  # (runs come from the C module)
        rows: Sequence[int] = range(len(sub))
        if visit is not None:  # a run is visited at its first packet only, which takes the others with it
            rows = visit.tolist()
            sub = sub[visit]
        src, dst = _addresses(sub)
        for i, proto, s, sport, d, dport in zip(
                rows, sub["proto"].tolist(), src, sub["sport"].tolist(), dst, sub["dport"].tolist(), strict=True):
            sender = (s, sport)
            key = frozenset((sender, (d, dport)))
            kp = plans.get(key, _UNPLANNED)
            if kp is _UNPLANNED:
                kp = self._plan(key)
            if kp is None:
                continue
            seq, flags = seqs[i], all_flags[i]
            payload = mv[offs[i] : offs[i] + lens[i]]
            if proto == 6:
                run = runs.get(i) if runs else None
                if run is not None:
                    members, rows_of_run = run
                    self._take_run(kp, key, sender, (d, dport), members, seqs, all_flags,
                                   gather(batch.buf, at, size, rows_of_run), [lens[j] for j in members])  # fmt: skip
                else:
                    # a segment with none of SYN, FIN, RST on a connection already there needs no record
                    plain = not flags & TCP_CONTROL
                    rec: PacketRecord | None = None
                    if kp.tcp_screen and not (plain and screen.add_data(key, sender, seq, payload)):
                        rec = _segment(proto, s, sport, d, dport, flags, seq, payload)
                        screen.add_other(rec, key)
                    if kp.tcp_default and not (plain and default.add_data(key, sender, seq, payload)):
                        rec = rec or _segment(proto, s, sport, d, dport, flags, seq, payload)
                        default.add_other(rec, key)
                if key not in started6:
                    started6.add(key)
                    self.quiet.started(key, 6)
            elif kp.udp:
                if key not in started17:
                    started17.add(key)
                    self.quiet.started(key, 17)
                ex = _udp(udp, key, _segment(proto, s, sport, d, dport, flags, seq, payload))
                if kp.quiet_udp and min(len(ex.client_bytes), len(ex.server_bytes)) >= min(
                        self.quiet.prefix, MAX_DATAGRAM_BYTES):
                    self.quiet.saturated(key, 17)

    def _runs(self, sub: np.ndarray) -> tuple[dict[int, tuple[list[int], np.ndarray]], np.ndarray | None]:
        """The runs of two or more TCP segments in ``sub`` that reassembly may take in one step
        (``_cloops.tcp_runs``): each run's first row to all its rows, in order (a list, and an int64 array for
        ``_cloops.gather``), and the rows to visit (all but those a run's first takes with it; None: all). None
        without the compiled loops: every packet is then taken alone, which is what taking a run does."""
        cl = loops() if enabled() else None
        n = len(sub)
        if cl is None or n < 2:
            return {}, None
        cap = 1 << (2 * n - 1).bit_length()
        if len(self._run_table) < cap:
            self._run_table = np.empty(cap, np.int32)
        head = np.empty(n, np.int32)
        if not cl.tcp_runs(np.ascontiguousarray(sub), self._run_table[:cap], head):
            return {}, None
        visit = np.flatnonzero((head < 0) | (head == np.arange(n, dtype=np.int32)))
        inrun = np.flatnonzero(head >= 0)
        order = inrun[np.argsort(head[inrun], kind="stable")]  # by run, in order within one
        heads = head[order]
        cuts = np.flatnonzero(np.diff(heads)) + 1
        runs: dict[int, tuple[list[int], np.ndarray]] = {}
        for members in np.split(order.astype(np.int64), cuts):
            if len(members) > 1:
                runs[int(members[0])] = (members.tolist(), members)
        return runs, visit

    def _take_run(self, kp: KeyPlan, key: frozenset[Endpoint], sender: Endpoint, receiver: Endpoint, rows: list[int],
                  seqs: list[int], flags: list[int], data: bytes, lengths: list[int]) -> None:  # fmt: skip
        """Take a run of TCP segments from ``sender`` (none with SYN, FIN or RST, each with the bytes right after
        the previous one's; ``rows``: their rows, ``data`` their payloads joined, ``lengths`` theirs) at its
        first. In each lane, as many as the stream takes at once go in one step (:meth:`Reassembly.add_run`: the
        next bytes in order, as far as its byte limit, or any number once it stopped there), the others one by
        one as :meth:`_take` takes any segment. Taking them at the first is what taking each where it lies does:
        what lies between is other pairs' packets and the other end's segments without SYN, FIN or RST, which
        touch neither this end's stream nor anything it reads."""
        (s, sport), (d, dport) = sender, receiver
        view = memoryview(data)
        ends = [0, *accumulate(lengths)]  # ends[k]: the run's bytes before its k-th segment
        n = len(rows)
        for lane, wanted in ((self.screen, kp.tcp_screen), (self.default, kp.tcp_default)):
            k = 0
            while wanted and k < n:
                seq = _first_seq(rows, seqs, lengths, k)
                room = lane.room(key, sender, seq)
                if room is None or room >= 0:  # the segments from k on that fit go in one step
                    m = n if room is None else bisect_right(ends, ends[k] + room, k) - 1
                    if m > k and lane.add_run(key, sender, seq, view[ends[k] : ends[m]], lengths[k:m]):
                        k = m
                        continue
                j, payload = rows[k], view[ends[k] : ends[k + 1]]
                if not lane.add_data(key, sender, seqs[j], payload):
                    lane.add_other(_segment(6, s, sport, d, dport, flags[j], seqs[j], payload), key)
                k += 1

    def give_up(self) -> None:
        """Stop collecting and let go of what was collected: the caller reads the captures again."""
        self.usable = False
        self.screen = self.default = Reassembly(lambda _key: {})
        self.udp = {}
        self._plans = {}
        self._started = {6: set(), 17: set()}
        self._where = []

    def where(self, keys: Iterable[frozenset[Endpoint]]) -> tuple[np.ndarray, np.ndarray]:
        """File offsets and captured lengths of every candidate packet (quieted ones too) whose endpoint pair
        may be one of ``keys``, in file order (pair hashes: a collision adds a packet, never loses one)."""
        wanted = np.array(sorted({_pair_hash_py(k) for k in keys}), dtype=np.uint64)
        if not self._where or not len(wanted):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32)
        hashes = np.concatenate([h for h, _, _ in self._where])
        sel = np.isin(hashes, wanted)
        return (np.concatenate([pos for _, pos, _ in self._where])[sel],
                np.concatenate([n for _, _, n in self._where])[sel])  # fmt: skip

    def saw_any(self, tcp: set[frozenset[Endpoint]], udp: set[frozenset[Endpoint]]) -> bool:
        """Whether any packet of these endpoint pairs was taken (a cluster part uses this to tell whether it
        holds packets of a tuple that spans parts, which it must then read again and ship)."""
        return not (self._started[6].isdisjoint(tcp) and self._started[17].isdisjoint(udp))

    def collected(self, tcp: Iterable[frozenset[Endpoint]], udp: Iterable[frozenset[Endpoint]],
                  screen: set[frozenset[Endpoint]]) -> Collected:
        """What :func:`collect` returns for these pairs, when ``screen`` are the pairs it reassembles with the
        screen-transfer limits (``caps_for``)."""
        if not self.usable:
            raise RuntimeError("the harvest was given up: read the captures again")
        lanes = {}
        for name, lane in (("screen", self.screen), ("default", self.default)):
            by_key: dict[frozenset[Endpoint], list[Connection]] = {}
            for conn in lane.finish():
                by_key.setdefault(frozenset((conn.client_endpoint, conn.server_endpoint)), []).append(conn)
            lanes[name] = by_key
        tcp_out = {}
        for key in tcp:
            conns = lanes["screen" if key in screen else "default"].get(key)
            if conns:
                tcp_out[key] = conns
        udp_out = {key: self.udp[key] for key in udp if key in self.udp}
        return Collected(tcp_out, udp_out, {})


def compact(cand: np.ndarray, batch: Batch) -> Batch:
    """Candidate packets with only their payload bytes, for another process: a batch of those rows whose
    buffer holds the payloads back to back (``pos`` rewritten to point at each; nothing else of the packets'
    bytes is read by :meth:`Harvest.take`)."""
    offs = (cand["pos"] - batch.base + cand["pay_off"]).tolist()
    lens = cand["pay_len"].tolist()
    mv = memoryview(batch.buf)
    payload = b"".join([mv[o : o + n] for o, n in zip(offs, lens, strict=True)])
    out = cand.copy()
    ends = np.cumsum(cand["pay_len"], dtype=np.int64)
    out["pos"] = ends - cand["pay_len"]
    out["pay_off"] = 0
    return Batch(out, payload, 0)


class _Segment:
    """The fields of a :class:`PacketRecord` that reassembly and :func:`_udp` read: a harvested packet costs a
    quarter of a full record (most of a capture's inspected packets are taken this way)."""

    __slots__ = ("dport", "dst", "payload", "proto", "seq", "sport", "src", "tcp_flags")

    def __init__(self, proto: int, src: int, sport: int, dst: int, dport: int, tcp_flags: int, seq: int,
                 payload: memoryview) -> None:  # fmt: skip
        self.proto, self.src, self.sport, self.dst, self.dport = proto, src, sport, dst, dport
        self.tcp_flags, self.seq, self.payload = tcp_flags, seq, payload


def _first_seq(rows: Sequence[int], seqs: Sequence[int], lengths: Sequence[int], start: int) -> int:
    """The sequence number of the first segment from ``start`` on that carries bytes (else ``start``'s)."""
    return next((seqs[rows[k]] for k in range(start, len(rows)) if lengths[k]), seqs[rows[start]])


def _addresses(p: np.ndarray) -> tuple[list[int], list[int]]:
    """Source and destination of the packets ``p`` in the unified address space (IPv6: 2**128 + address)."""
    src, dst = p["src4"].tolist(), p["dst4"].tolist()
    for i in np.flatnonzero(p["family"] == 6).tolist():
        r = p[i]
        src[i] = V6_BASE + (int(r["src6hi"]) << 64 | int(r["src6lo"]))
        dst[i] = V6_BASE + (int(r["dst6hi"]) << 64 | int(r["dst6lo"]))
    return src, dst


def _segment(proto: int, src: int, sport: int, dst: int, dport: int, flags: int, seq: int,
             payload: memoryview) -> PacketRecord:  # fmt: skip
    """A :class:`_Segment`, typed as the record it stands for: reassembly and :func:`_udp` read nothing else."""
    return cast(PacketRecord, _Segment(proto, src, sport, dst, dport, flags, seq, payload))


def _v4_table(sets: Sequence[IntervalSet]) -> tuple[np.ndarray, np.ndarray]:
    """The IPv4 space cut where any of ``sets`` starts or ends: the start of each piece and, per piece, the
    bit of every set holding it, so that one ``np.searchsorted`` gives an address's bits for all sets."""
    cuts = {0}
    for s in sets:
        for lo, hi in s:
            if lo <= _V4_TOP:
                cuts.add(lo)
                if hi < _V4_TOP:
                    cuts.add(hi + 1)
    starts = sorted(cuts)
    bits = []
    for a in starts:
        bits.append(sum(1 << i for i, s in enumerate(sets) if a in s))
    return np.array(starts, dtype=np.int64), np.array(bits, dtype=np.uint64)
