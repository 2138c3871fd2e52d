"""IPv4 and IPv6 fragment reassembly, bounded, for the few flows whose bytes are inspected.

Why: a recogniser or the SMTP/HTTP reassembly needs the transport payload of a datagram, and only the
first fragment carries the transport header. A datagram split into fragments is put back together here
and handed on as one raw IP packet, exactly as if it had never been fragmented, so the rest of the
pipeline (the scalar decoder, the TCP reassembly) needs no special case.

A verifier must not be fooled by fragmentation tricks, and must not be made to hold a capture in memory:

- fragments whose ranges overlap with *different* bytes (the classic IDS evasion, RFC 1858, RFC 5722)
  make the datagram ambiguous: the receiver's view depends on its stack. It is reported, never guessed;
- a datagram that would exceed 65,535 octets ("ping of death") is refused;
- at most ``max_datagrams`` datagrams and ``max_bytes`` buffered octets are pending at any time; the
  oldest is given up first, and a datagram whose first fragment is older than ``timeout_ns`` (capture
  time, as Linux's ``ipfrag_time``) expires. Every such loss is counted: replay makes the result
  ``incomplete`` rather than judge what it did not see.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

MAX_DATAGRAM = 65535  # octets of fragmentable payload + header a datagram may reach (IPv4 total length)
IPV6_EXT_HEADERS = frozenset({0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254})
MAX_EXT_HEADERS = 16
MAX_LOST_KEYS = 10_000  # remembered to say which flows lost bytes; beyond, losses are only counted


def key_addresses(key: tuple) -> tuple[int, int]:
    """Source and destination of a datagram key, in segverify's unified address space."""
    base = 0 if key[0] == 4 else 1 << 128
    return base + int.from_bytes(key[1], "big"), base + int.from_bytes(key[2], "big")


FRAG_KEY = np.dtype([("fam", "u1"), ("proto", "u1"), ("_pad", "u2"), ("ident", "u4"), ("shi", "u8"),
                     ("slo", "u8"), ("dhi", "u8"), ("dlo", "u8")])
"""A datagram's identity (RFC 791: source, destination, protocol, identification; RFC 8200: no protocol)."""


def datagram_keys(p: np.ndarray) -> np.ndarray:
    """The datagram key of every decoded packet of ``p`` (a :data:`~.decode.BATCH_DTYPE` array), as bytes."""
    k = np.zeros(len(p), FRAG_KEY)
    v4 = p["family"] == 4
    k["fam"] = p["family"]
    k["proto"] = np.where(v4, p["proto"], 0)
    k["ident"] = p["ip_id"]
    k["shi"] = np.where(v4, 0, p["src6hi"])
    k["slo"] = np.where(v4, p["src4"].astype(np.uint64), p["src6lo"])
    k["dhi"] = np.where(v4, 0, p["dst6hi"])
    k["dlo"] = np.where(v4, p["dst4"].astype(np.uint64), p["dst6lo"])
    return k.view(f"V{FRAG_KEY.itemsize}")


class FragmentLedger:
    """Which later fragments (no ports: no flow of their own) belong to a datagram whose first fragment
    was captured, over a whole observation: those whose first fragment is missing carry bytes of a flow
    nobody can name, and make the result incomplete.

    Mergeable (parts of a capture read apart give the same answer) and bounded: beyond ``max_keys``
    stored keys, later fragments are counted as unattributed rather than remembered (never optimistic)."""

    def __init__(self, max_keys: int = 1_000_000) -> None:
        self.max_keys = max_keys
        self.first: list[np.ndarray] = []
        self.later: list[np.ndarray] = []
        self.stored = 0
        self.overflow = 0  # later fragments not remembered (the bound was reached)
        self.later_total = 0

    def add(self, p: np.ndarray, first: np.ndarray, later: np.ndarray) -> None:
        """Record the first fragments (mask ``first``) and later fragments (mask ``later``) of a batch."""
        if not (first.any() or later.any()):
            return
        keys = datagram_keys(p)
        n_later = int(np.count_nonzero(later))
        self.later_total += n_later
        self._store(self.first, keys[first])
        if self.stored + n_later > self.max_keys:
            self.overflow += n_later
            return
        self._store(self.later, keys[later])

    def _store(self, where: list[np.ndarray], keys: np.ndarray) -> None:
        if len(keys) and self.stored + len(keys) <= self.max_keys:
            where.append(keys)
            self.stored += len(keys)

    def merge(self, other: FragmentLedger) -> None:
        self.first += other.first
        self.later += other.later
        self.stored += other.stored
        self.overflow += other.overflow
        self.later_total += other.later_total

    def unattributed(self) -> int:
        """Later fragments whose datagram's first fragment is in no part of the observation."""
        if not self.later:
            return self.overflow
        later = np.concatenate(self.later)
        first = np.unique(np.concatenate(self.first)) if self.first else later[:0]
        return self.overflow + int(np.count_nonzero(~np.isin(later, first)))


def shared_pairs(ledgers: list[FragmentLedger]) -> set[frozenset[int]]:
    """Address pairs of the datagrams whose fragments lie in more than one of ``ledgers`` (parts of a
    capture read apart): no single part can rebuild them, so whatever inspects their flows must see all
    the parts' fragments in order."""
    seen: list[np.ndarray] = []
    for ledger in ledgers:
        keys = ledger.first + ledger.later
        if keys:
            seen.append(np.unique(np.concatenate(keys)))
    if len(seen) < 2:
        return set()
    every = np.concatenate(seen)
    uniq, counts = np.unique(every, return_counts=True)
    shared = uniq[counts > 1].view(FRAG_KEY)
    out: set[frozenset[int]] = set()
    for k in shared.tolist():
        fam, _proto, _pad, _ident, shi, slo, dhi, dlo = k
        base = 0 if fam == 4 else 1 << 128
        out.add(frozenset((base + (shi << 64 | slo), base + (dhi << 64 | dlo))))
    return out


@dataclass
class Reassembled:
    """A whole datagram rebuilt from its fragments, as a raw IP packet (link type RAW)."""

    packet: bytes
    ts: int  # capture time of the fragment that completed it
    pos: int  # file offset of that fragment
    first_pos: int  # file offset of the datagram's first-arriving fragment
    fragments: int


@dataclass
class FragmentStats:
    """What happened to fragments: anything but ``completed`` means unseen bytes."""

    fragments: int = 0
    completed: int = 0  # datagrams rebuilt
    ambiguous: int = 0  # datagrams whose fragments overlap with different bytes
    oversized: int = 0  # fragments reaching past 65,535 octets
    truncated: int = 0  # fragments cut by the snap length: their bytes are not in the capture
    malformed: int = 0  # headers that contradict themselves (e.g. a non-final fragment not a multiple of 8)
    evicted: int = 0  # datagrams given up to stay within the memory bound
    expired: int = 0  # datagrams whose fragments did not all arrive within the timeout
    pending: int = 0  # datagrams still incomplete at the end of the capture

    def lost(self) -> int:
        """Datagrams (or stray fragments) whose reassembled bytes could not be judged."""
        return (self.ambiguous + self.oversized + self.truncated + self.malformed + self.evicted + self.expired
                + self.pending)


@dataclass
class _Pending:
    header: bytes  # the unfragmentable part of the first fragment (offset 0), once seen
    next_header_at: int  # IPv6: where in ``header`` the next-header byte before the fragment header is
    proto: int
    first_ts: int
    first_pos: int
    pieces: dict[int, bytes] = field(default_factory=dict)  # data offset -> bytes
    total: int | None = None  # data length, known once the last fragment (MF=0) arrived
    size: int = 0  # octets held
    count: int = 0
    ambiguous: bool = False
    family: int = 4


@dataclass
class _Fragment:
    key: tuple
    family: int
    header: bytes  # unfragmentable part (offset-0 fragments only)
    next_header_at: int
    proto: int
    offset: int  # in octets
    more: bool
    data: bytes


class Defragmenter:
    """Feed it every fragment of the flows of interest; it returns each datagram once it is whole."""

    def __init__(self, max_datagrams: int = 4096, max_bytes: int = 32 << 20, timeout_ns: int = 30_000_000_000):
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.timeout_ns = timeout_ns
        self.stats = FragmentStats()
        self._pending: OrderedDict[tuple, _Pending] = OrderedDict()
        self._held = 0
        self.lost_keys: list[tuple] = []  # datagrams given up (ambiguous, oversized, evicted, expired, pending)

    def add(self, frame: bytes | memoryview, l3_off: int, ts: int, pos: int) -> Reassembled | None:
        """One fragment (the IP header at ``frame[l3_off:]``); the whole datagram when this completes it."""
        self.stats.fragments += 1
        self._expire(ts)
        frag = _parse(bytes(frame[l3_off:]), self.stats)
        if frag is None:
            return None
        # IPv4: total length (header of at least 20 octets + data); IPv6: payload length (after 40)
        if frag.offset + len(frag.data) + (20 if frag.family == 4 else 0) > MAX_DATAGRAM:
            self.stats.oversized += 1
            self._drop(frag.key)
            self._lose(frag.key)
            return None
        dg = self._pending.get(frag.key)
        if dg is None:
            dg = self._pending[frag.key] = _Pending(b"", 0, frag.proto, ts, pos, family=frag.family)
        dg.count += 1
        if frag.offset == 0 and not dg.header:
            dg.header, dg.next_header_at, dg.proto = frag.header, frag.next_header_at, frag.proto
        if not frag.more:
            end = frag.offset + len(frag.data)
            if dg.total is not None and dg.total != end:
                dg.ambiguous = True  # two different "last" fragments
            dg.total = end if dg.total is None else min(dg.total, end)
        self._insert(dg, frag.offset, frag.data)
        while self._held > self.max_bytes or len(self._pending) > self.max_datagrams:
            old, _ = next(iter(self._pending.items()))
            self._drop(old)
            self._lose(old)
            self.stats.evicted += 1
        if frag.key not in self._pending:
            return None
        return self._complete(frag.key, dg, ts, pos)

    def finish(self) -> FragmentStats:
        """End of the capture: whatever is still pending was never whole."""
        self.stats.pending += len(self._pending)
        for key in self._pending:
            self._lose(key)
        self._pending.clear()
        self._held = 0
        return self.stats

    # -- internals ------------------------------------------------------------------------------

    def _insert(self, dg: _Pending, offset: int, data: bytes) -> None:
        end = offset + len(data)
        for start, held in list(dg.pieces.items()):
            hend = start + len(held)
            if hend <= offset or start >= end:
                continue
            lo, hi = max(start, offset), min(hend, end)
            if held[lo - start : hi - start] != data[lo - offset : hi - offset]:
                dg.ambiguous = True
        # keep only the octets not held yet (the first-arrived copy wins where they agree)
        cursor = offset
        for start in sorted(dg.pieces):
            held = dg.pieces[start]
            hend = start + len(held)
            if hend <= cursor or start >= end:
                continue
            if start > cursor:
                self._put(dg, cursor, data[cursor - offset : start - offset])
            cursor = max(cursor, hend)
        if cursor < end:
            self._put(dg, cursor, data[cursor - offset :])

    def _put(self, dg: _Pending, offset: int, data: bytes) -> None:
        if data:
            dg.pieces[offset] = data
            dg.size += len(data)
            self._held += len(data)

    def _complete(self, key: tuple, dg: _Pending, ts: int, pos: int) -> Reassembled | None:
        if dg.total is None or not dg.header:
            return None
        cursor = 0
        for start in sorted(dg.pieces):
            if start > cursor:
                return None
            cursor = max(cursor, start + len(dg.pieces[start]))
        if cursor < dg.total:
            return None
        self._drop(key)
        if cursor > dg.total:  # octets past the last fragment's end: the stacks disagree on the datagram
            dg.ambiguous = True
        if dg.ambiguous:
            self.stats.ambiguous += 1
            self._lose(key)
            return None
        data = bytearray(dg.total)
        for start, piece in dg.pieces.items():
            stop = min(start + len(piece), dg.total)
            if start < stop:
                data[start:stop] = piece[: stop - start]
        self.stats.completed += 1
        return Reassembled(_rebuild(dg, bytes(data)), ts, pos, dg.first_pos, dg.count)

    def _lose(self, key: tuple) -> None:
        if len(self.lost_keys) < MAX_LOST_KEYS:
            self.lost_keys.append(key)

    def _drop(self, key: tuple) -> None:
        dg = self._pending.pop(key, None)
        if dg is not None:
            self._held -= dg.size

    def _expire(self, now: int) -> None:
        while self._pending:
            key, dg = next(iter(self._pending.items()))
            if now - dg.first_ts <= self.timeout_ns:
                return
            self._drop(key)
            self._lose(key)
            self.stats.expired += 1


def _parse(ip: bytes, stats: FragmentStats) -> _Fragment | None:
    """The fragment's identity, offset and data; None (counted) when it cannot be used."""
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl = (ip[0] & 0x0F) * 4
        total, ident, flags = struct.unpack_from(">HHH", ip, 2)
        if ihl < 20 or total < ihl:
            stats.malformed += 1
            return None
        if len(ip) < total:
            stats.truncated += 1
            return None
        offset, more = (flags & 0x1FFF) * 8, bool(flags & 0x2000)
        data = ip[ihl:total]
        if more and len(data) % 8:
            stats.malformed += 1
            return None
        key = (4, ip[12:16], ip[16:20], ip[9], ident)
        return _Fragment(key, 4, ip[:ihl] if offset == 0 else b"", 0, ip[9], offset, more, data)
    if len(ip) >= 40 and ip[0] >> 4 == 6:
        plen = struct.unpack_from(">H", ip, 4)[0]
        end = 40 + plen
        if len(ip) < end:
            stats.truncated += 1
            return None
        nh, at, pos = ip[6], 6, 40
        for _ in range(MAX_EXT_HEADERS):
            if nh == 44:
                if pos + 8 > end:
                    break
                fr, ident = struct.unpack_from(">HI", ip, pos + 2)
                offset, more = (fr >> 3) * 8, bool(fr & 1)
                data = ip[pos + 8 : end]
                if more and len(data) % 8:
                    stats.malformed += 1
                    return None
                key = (6, ip[8:24], ip[24:40], ident)
                header = ip[:pos] if offset == 0 else b""
                return _Fragment(key, 6, header, at, ip[pos], offset, more, data)
            if nh not in IPV6_EXT_HEADERS or pos + 8 > end:
                break
            size = (ip[pos + 1] + 2) * 4 if nh == 51 else (ip[pos + 1] + 1) * 8
            nh, at, pos = ip[pos], pos, pos + size
    stats.malformed += 1
    return None


def _rebuild(dg: _Pending, data: bytes) -> bytes:
    """The datagram as one unfragmented IP packet: offset and MF cleared, lengths and checksum redone."""
    if dg.family == 4:
        hdr = bytearray(dg.header)
        struct.pack_into(">HH", hdr, 2, len(hdr) + len(data), struct.unpack_from(">H", hdr, 4)[0])
        struct.pack_into(">H", hdr, 6, 0)
        struct.pack_into(">H", hdr, 10, 0)
        struct.pack_into(">H", hdr, 10, _checksum(bytes(hdr)))
        return bytes(hdr) + data
    hdr = bytearray(dg.header)  # everything before the fragment header
    hdr[dg.next_header_at] = dg.proto
    struct.pack_into(">H", hdr, 4, len(hdr) - 40 + len(data))
    return bytes(hdr) + data


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
