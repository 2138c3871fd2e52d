"""Bidirectional 5-tuple flow table built from decoded batches, vectorised per batch.

Why this shape: ``segverify replay`` asks "who opened a connection to whom, across which boundary", so a
flow is keyed by the unordered pair of (address, port) endpoints plus the IP protocol, and oriented by its
*initiator*: for TCP the sender of the first SYN without ACK. When no such SYN is in the capture (it
started mid-connection, or only one direction was captured) the first packet's sender is taken as a
provisional source and ``initiator_known`` is False -- a report must not claim to know who connected.
UDP, ICMP and other IP protocols have no handshake: their first packet's sender is the (provisional) source.

A TCP 5-tuple that is reused for a new connection starts a new :class:`Flow` with ``reuse`` one higher,
so later connections are not merged into a finished one: a SYN without ACK whose sequence number differs
from the previous such SYN on the tuple (the rule Wireshark uses to start a new TCP stream), or the first
such SYN on a tuple seen so far only mid-connection and already closed by FIN or RST.

Counting follows Wireshark/tshark's conversation tables so the two can be compared: every IPv4/IPv6
packet with ports (TCP/UDP) counts one frame and its *original* (wire) length in bytes. Differences, by
design: non-first IP fragments carry no ports and are counted in ``FlowBuilder.unattributed_fragments``
instead of a flow (tshark reassembles and attributes the datagram to the frame that completed it), and a
TCP header cut short by the snap length still counts when its ports are present.

Per batch, all work is numpy except one dictionary lookup per distinct flow in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, overload

import numpy as np

from segverify.model.addresses import V6_BASE

from .decode import (
    FRAG_FIRST,
    FRAG_IS_FRAGMENT,
    PROTO_TCP,
    PROTO_UDP,
    ST_NO_PORTS,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
)
from .fragments import FragmentLedger
from .native import enabled, loops
from .reader import Batch, Damage, iter_batches

KEY_DTYPE = np.dtype(
    [("lhi", "u8"), ("llo", "u8"), ("hhi", "u8"), ("hlo", "u8"), ("lport", "u2"), ("hport", "u2"),
     ("proto", "u1"), ("family", "u1"), ("_pad", "u2")]
)  # fmt: skip
"""A flow key: the lower (address, port) endpoint first. IPv4 addresses sit in ``llo``/``hlo``."""

# Per-direction event bits, kept beside the OR of TCP flags (shifted left by 16).
EV_SYN = 1  # SYN without ACK
EV_SYNACK = 2
EV_ACK = 4  # ACK without SYN
EV_DATA = 8  # TCP/UDP payload bytes
INITIATOR_BASIS = ("first-packet", "syn")
"""A flow's ``initiator_basis`` by its ``initiator_known`` (False, True)."""


@dataclass(slots=True)
class Flow:
    """One bidirectional flow, oriented src -> dst by its initiator (see ``initiator_known``)."""

    proto: int
    family: int
    src: int  # unified integer address space (IPv6 = 2**128 + address)
    sport: int
    dst: int
    dport: int
    initiator_known: bool  # True only for TCP with the initiator's SYN in the capture
    initiator_basis: str  # "syn" or "first-packet" (provisional: the first packet's sender)
    pkts_fwd: int  # src -> dst
    bytes_fwd: int  # wire length of frames, as tshark counts them
    pkts_rev: int
    bytes_rev: int
    payload_fwd: int  # captured TCP/UDP payload bytes
    payload_rev: int
    first_ts: int  # ns
    last_ts: int
    established: bool  # TCP: SYN, SYN-ACK and ACK seen, or payload both ways; others: packets both ways
    tcp_flags_fwd: int  # OR of the TCP flags seen in each direction
    tcp_flags_rev: int
    vlan: int | None  # outermost VLAN id of the first packet
    vlans: tuple[int, ...]  # every outermost VLAN id seen (usually one)
    first_pos: int  # file offset of the flow's first packet (orders flows by appearance)
    reuse: int  # 0 for the first connection on this 5-tuple, then 1, 2, ... (TCP port reuse)

    @property
    def packets(self) -> int:
        return self.pkts_fwd + self.pkts_rev

    @property
    def bytes(self) -> int:
        return self.bytes_fwd + self.bytes_rev


class _Grow:
    """Per-flow numeric columns that grow by doubling (appending to numpy arrays one by one is quadratic)."""

    def __init__(self) -> None:
        self.n = 0
        self.cap = 0
        self.cols: dict[str, np.ndarray] = {}
        self.spec = {
            "pk": (np.int64, 2, 0), "by": (np.int64, 2, 0), "pay": (np.int64, 2, 0),
            "ev": (np.uint32, 2, 0), "tmin": (np.int64, 0, np.iinfo(np.int64).max),
            "tmax": (np.int64, 0, np.iinfo(np.int64).min), "first_pos": (np.int64, 0, 0),
            "first_side": (np.int8, 0, 0), "syn_side": (np.int8, 0, -1), "last_syn": (np.int64, 0, -1),
            "vlan": (np.int32, 0, -1), "reuse": (np.int32, 0, 0),
        }  # fmt: skip
        self._resize(1024)

    def _resize(self, cap: int) -> None:
        for name, (dt, width, fill) in self.spec.items():
            shape = (cap, width) if width else (cap,)
            new = np.full(shape, fill, dtype=dt)
            if name in self.cols:
                new[: self.n] = self.cols[name][: self.n]
            self.cols[name] = new
        self.cap = cap

    def add(self, k: int) -> np.ndarray:
        """Allocate ``k`` new flow ids."""
        if self.n + k > self.cap:
            self._resize(max(self.cap * 2, self.n + k))
        ids = np.arange(self.n, self.n + k)
        self.n += k
        return ids


@dataclass
class Counters:
    """Packets the flow table counts but attributes to no flow of its own; mergeable across parts of a
    capture read apart (``segverify.scale``)."""

    packets: int = 0
    non_ip: int = 0  # not IPv4/IPv6, or IP header unreadable
    no_ports: int = 0  # TCP/UDP whose ports were not captured
    fragments: FragmentLedger = field(default_factory=FragmentLedger)  # later fragments and their datagrams

    @property
    def unattributed_fragments(self) -> int:
        """Later fragments whose datagram's first fragment (the one with ports) was never captured."""
        return self.fragments.unattributed()

    def add(self, other: Counters) -> None:
        self.packets += other.packets
        self.non_ip += other.non_ip
        self.no_ports += other.no_ports
        self.fragments.merge(other.fragments)


def flow_packets(batch: Batch | np.ndarray, counters: Counters) -> np.ndarray:
    """The packets of ``batch`` that belong to a flow (IP, with ports where TCP/UDP, not a later fragment);
    the others are counted in ``counters``. The one selection both the flow table and the cluster's
    flow pieces make, so that they agree packet for packet."""
    p = batch.pkts if isinstance(batch, Batch) else batch
    n = len(p)
    counters.packets += n
    if n == 0:
        return p
    frag = p["frag"]
    proto = p["proto"]
    ip = p["family"] != 0
    nonfirst = ip & ((frag & (FRAG_IS_FRAGMENT | FRAG_FIRST)) == FRAG_IS_FRAGMENT)
    noports = ip & ~nonfirst & ((proto == PROTO_TCP) | (proto == PROTO_UDP)) & ((p["status"] & ST_NO_PORTS) != 0)
    counters.non_ip += int(n - np.count_nonzero(ip))
    first = ip & ((frag & (FRAG_IS_FRAGMENT | FRAG_FIRST)) == (FRAG_IS_FRAGMENT | FRAG_FIRST))
    counters.fragments.add(p, first, nonfirst)
    counters.no_ports += int(np.count_nonzero(noports))
    use = ip & ~nonfirst & ~noports
    return p if use.all() else p[use]


class FlowBuilder:
    """Accumulates :class:`Flow` records over batches; call :meth:`add` per batch, then :meth:`flows`."""

    def __init__(self) -> None:
        self._index: dict[bytes, int] = {}  # key bytes -> id of the current (latest) flow for that key
        self._keys: list[bytes] = []
        self._g = _Grow()
        self._vlans: dict[int, set[int]] = {}
        self.counters = Counters()
        self._table: np.ndarray | None = None  # the compiled grouping's hash table

    @property
    def packets(self) -> int:
        return self.counters.packets

    @property
    def non_ip(self) -> int:
        return self.counters.non_ip

    @property
    def no_ports(self) -> int:
        return self.counters.no_ports

    @property
    def fragments(self) -> FragmentLedger:
        return self.counters.fragments

    @property
    def unattributed_fragments(self) -> int:
        return self.counters.unattributed_fragments

    def add(self, batch: Batch | np.ndarray) -> None:
        p = flow_packets(batch, self.counters)
        if len(p):
            self._add(p)

    def _add(self, p: np.ndarray) -> None:
        n = len(p)
        side, perm, starts, inv, kg = self._grouping(p)
        first = perm[starts]
        G = len(starts)
        # Flow keys of the groups, as bytes for the dictionary of known flows.
        kbytes = kg.view(np.dtype((np.void, KEY_DTYPE.itemsize))).tolist()
        index = self._index
        ids0 = np.fromiter((index.get(k, -1) for k in kbytes), dtype=np.int64, count=G)

        flags = p["tcp_flags"].astype(np.uint32)
        proto = p["proto"]
        tcp = proto == PROTO_TCP
        synack = flags & (TCP_SYN | TCP_ACK)
        pure = tcp & (synack == TCP_SYN)
        syn_idx = np.flatnonzero(pure)
        c = self._g.cols

        # --- TCP port reuse: a pure SYN whose seq differs from the previous pure SYN on the same key.
        gen = None
        if len(syn_idx):
            sg = inv[syn_idx]
            order = np.argsort(sg, kind="stable")
            sidx, sg = syn_idx[order], sg[order]
            seq = p["seq"][sidx].astype(np.int64)
            newgrp = np.r_[True, sg[1:] != sg[:-1]]
            prev = np.r_[-1, seq[:-1]]
            known = ids0[sg]
            kk = np.maximum(known, 0)
            carried = np.where(known >= 0, c["last_syn"][kk], -1)
            prev = np.where(newgrp, carried, prev)
            restart = (prev >= 0) & (seq != prev)
            # A flow seen without any SYN (capture began mid-connection) that was closed by FIN/RST:
            # the next SYN is a new connection on the same tuple.
            nosyn = prev < 0
            if nosyn.any():
                fr = ((flags & (TCP_FIN | TCP_RST)) != 0)[perm].astype(np.int64)
                cf = np.cumsum(fr) - fr  # FIN/RST strictly before each packet, in group-sorted order
                rank = np.empty(n, dtype=np.int64)
                rank[perm] = np.arange(n)
                closed_here = cf[rank[sidx]] - cf[starts[sg]] > 0
                was_closed = (known >= 0) & ((((c["ev"][kk, 0] | c["ev"][kk, 1]) >> 16) & (TCP_FIN | TCP_RST)) != 0)
                restart |= nosyn & (closed_here | was_closed)
            if restart.any():
                r = np.zeros(n, dtype=np.int64)
                r[sidx[restart]] = 1
                cs = np.cumsum(r[perm])  # perm is sorted by group, stable: file order inside a group
                before = np.r_[0, cs][starts]  # restarts before each group's first packet
                gen = np.empty(n, dtype=np.int64)
                gen[perm] = cs - np.repeat(before, np.diff(np.r_[starts, n]))
        if gen is not None:
            # Refine the groups to (key, generation); generations after 0 are new flows.
            refined = inv * (int(gen.max()) + 1) + gen
            perm, starts, inv = _group([refined.astype(np.uint64)])
            first = perm[starts]
            gkey = refined[first] // (int(gen.max()) + 1)
            ggen = gen[first]
            G = len(starts)
        else:
            gkey = np.arange(G)
            ggen = np.zeros(G, dtype=np.int64)

        # --- flow ids: the key's current flow for generation 0 of a known key, else new ids
        ids = np.where(ggen == 0, ids0[gkey], -1)
        fresh = np.flatnonzero(ids < 0)
        g = self._g
        if len(fresh):
            # New ids in (key, generation) order, so the index ends on the latest generation of a key.
            fresh = fresh[np.lexsort((ggen[fresh], gkey[fresh]))]
            new = g.add(len(fresh))
            c = g.cols
            ids[fresh] = new
            keys_list = self._keys
            reuse = c["reuse"]
            for fid, k, gn in zip(new.tolist(), gkey[fresh].tolist(), ggen[fresh].tolist(), strict=True):
                kb = kbytes[k]
                keys_list.append(kb)
                if gn:
                    prev_id = index.get(kb, -1)
                    reuse[fid] = reuse[prev_id] + 1 if prev_id >= 0 else gn
                index[kb] = fid
            fpk = first[fresh]
            c["first_pos"][new] = p["pos"][fpk]
            c["first_side"][new] = side[fpk]
            c["vlan"][new] = p["vlan"][fpk]

        # --- per (group, side) sums, and per-group reductions over the group-sorted order
        cl = loops() if enabled() else None
        if cl is not None:  # in one compiled pass over the packets, straight into the flow columns
            cl.flow_sums(np.ascontiguousarray(p), np.ascontiguousarray(inv, dtype=np.int64),
                         np.ascontiguousarray(side, dtype=np.uint8), np.ascontiguousarray(ids, dtype=np.int64),
                         c["pk"], c["by"], c["pay"], c["ev"], c["tmin"], c["tmax"])  # fmt: skip
        else:
            self._sums(p, side, perm, starts, inv, ids, G, flags, tcp, synack, pure)

        # --- first and last pure SYN per group (initiator; reuse detection across batches)
        if len(syn_idx):
            sg = inv[syn_idx]
            ug, firsts = np.unique(sg, return_index=True)
            fid = ids[ug]
            unset = c["syn_side"][fid] < 0
            c["syn_side"][fid[unset]] = side[syn_idx[firsts[unset]]]
            lasts = len(sg) - 1 - np.unique(sg[::-1], return_index=True)[1]
            c["last_syn"][fid] = p["seq"][syn_idx[lasts]]

        # --- VLAN sets: only for flows that show a VLAN other than their first packet's
        vl = p["vlan"].astype(np.int64)
        other = vl != c["vlan"][ids][inv]
        if other.any():
            pairs = np.unique(inv[other] * 8192 + (vl[other] + 1))
            for gi, v in zip((pairs // 8192).tolist(), (pairs % 8192 - 1).tolist(), strict=True):
                fid = int(ids[gi])
                self._vlans.setdefault(fid, {int(c["vlan"][fid])}).add(v)

    def _sums(self, p: np.ndarray, side: np.ndarray, perm: np.ndarray, starts: np.ndarray, inv: np.ndarray,
              ids: np.ndarray, G: int, flags: np.ndarray, tcp: np.ndarray, synack: np.ndarray,
              pure: np.ndarray) -> None:  # fmt: skip
        """The per-packet sums of a batch in numpy (``_cloops.flow_sums`` without the C module): packets, bytes,
        payload and event bits per flow and key side, first and last time per flow."""
        c = self._g.cols
        gs = inv * 2 + side
        m2 = 2 * G
        c["pk"][ids] += np.bincount(gs, minlength=m2).reshape(G, 2)
        c["by"][ids] += np.bincount(gs, weights=p["wirelen"], minlength=m2).astype(np.int64).reshape(G, 2)
        paylen = p["pay_len"]
        c["pay"][ids] += np.bincount(gs, weights=paylen, minlength=m2).astype(np.int64).reshape(G, 2)
        ev = (flags << 16) | (paylen > 0).astype(np.uint32) * EV_DATA
        if tcp.any():
            ev |= pure.astype(np.uint32) * EV_SYN
            ev |= (tcp & (synack == (TCP_SYN | TCP_ACK))).astype(np.uint32) * EV_SYNACK
            ev |= (tcp & (synack == TCP_ACK)).astype(np.uint32) * EV_ACK
        evp = ev[perm]
        sdp = side[perm]
        zero = np.uint32(0)
        c["ev"][ids, 0] |= np.bitwise_or.reduceat(np.where(sdp, zero, evp), starts)
        c["ev"][ids, 1] |= np.bitwise_or.reduceat(np.where(sdp, evp, zero), starts)
        tsp = p["ts"][perm]
        c["tmin"][ids] = np.minimum(c["tmin"][ids], np.minimum.reduceat(tsp, starts))
        c["tmax"][ids] = np.maximum(c["tmax"][ids], np.maximum.reduceat(tsp, starts))

    def _grouping(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each packet's side of its flow key, the packets in group order (``perm``, ``starts``), each packet's
        group (``inv``) and each group's key: in one compiled pass when the C module is there (groups in order
        of first appearance), else by sorting hashes (groups in hash order). The flow table is the same either
        way: new flows are numbered by group, but flows are listed by their first packet."""
        cl = loops() if enabled() else None
        if cl is None:
            return _grouping_numpy(p)
        n = len(p)
        cap = 1 << max(10, (2 * n - 1).bit_length())
        if self._table is None or len(self._table) < cap:
            self._table = np.empty(cap, np.int32)  # scratch, reused batch after batch
        side, inv, perm = np.empty(n, np.uint8), np.empty(n, np.int64), np.empty(n, np.int64)
        starts, keys = np.empty(n, np.int64), np.empty(n, KEY_DTYPE)
        groups = cl.group_flows(np.ascontiguousarray(p), self._table[:cap], side, inv, perm, starts, keys)
        return side.view(bool), perm, starts[:groups], inv, keys[:groups]

    def flows(self) -> list[Flow]:
        """All flows, in order of their first packet in the file."""
        return self.table().flows()

    def table(self) -> FlowTable:
        """All flows as columns (:class:`FlowTable`), in order of their first packet in the file."""
        n = self._g.n
        if n == 0:
            return FlowTable.from_keys(np.zeros(0, dtype=KEY_DTYPE), {})
        order = np.argsort(self._g.cols["first_pos"][:n], kind="stable")
        c = {k: v[:n][order] for k, v in self._g.cols.items()}
        keys = np.frombuffer(b"".join(self._keys), dtype=KEY_DTYPE)[order]
        extra: dict[int, tuple[int, ...]] = {}
        if self._vlans:
            rank = np.empty(n, np.int64)
            rank[order] = np.arange(n)
            for fid, seen in self._vlans.items():
                extra[int(rank[fid])] = tuple(sorted(v for v in seen if v >= 0))
        return FlowTable.from_keys(keys, c, extra)


def _grouping_numpy(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`FlowBuilder._grouping` in numpy: the flow keys' columns, grouped by :func:`_group`."""
    side, cols, lport, hport, small = key_columns(p, compact=True)
    all4 = len(cols) == 2
    cols.append(small)
    perm, starts, inv = _group(cols)
    first = perm[starts]
    kg = np.zeros(len(starts), dtype=KEY_DTYPE)
    if all4:
        kg["llo"], kg["hlo"] = cols[0][first], cols[1][first]
    else:
        kg["lhi"], kg["llo"], kg["hhi"], kg["hlo"] = (c[first] for c in cols[:4])
    kg["lport"], kg["hport"] = lport[first], hport[first]
    kg["proto"], kg["family"] = p["proto"][first], p["family"][first]
    return side, perm, starts, inv, kg


def key_columns(p: np.ndarray, compact: bool = False) -> tuple[np.ndarray, list[np.ndarray], np.ndarray,
                                                                np.ndarray, np.ndarray]:  # fmt: skip
    """Every packet's bidirectional flow key, in the one orientation the flow table and the cluster's pieces
    share: ``side`` (1: the sender is the higher (address, port) endpoint), the key's address columns (low
    endpoint's high and low 64 bits, then the high endpoint's; with ``compact`` and only IPv4 packets, just
    the two low halves), its low and high ports, and ports, protocol and family packed in one column."""
    u64 = np.uint64
    fam = p["family"]
    if compact and bool((fam == 4).all()):
        slo = p["src4"].astype(u64)
        dlo = p["dst4"].astype(u64)
        shi = dhi = None
    else:
        v4 = fam == 4
        shi = np.where(v4, u64(0), p["src6hi"])
        slo = np.where(v4, p["src4"].astype(u64), p["src6lo"])
        dhi = np.where(v4, u64(0), p["dst6hi"])
        dlo = np.where(v4, p["dst4"].astype(u64), p["dst6lo"])
    sp = p["sport"].astype(u64)
    dp = p["dport"].astype(u64)
    lo_gt = (slo > dlo) | ((slo == dlo) & (sp > dp))
    if shi is None or dhi is None:
        side = lo_gt
        cols = [np.where(side, dlo, slo), np.where(side, slo, dlo)]
    else:
        side = (shi > dhi) | ((shi == dhi) & lo_gt)
        cols = [np.where(side, dhi, shi), np.where(side, dlo, slo), np.where(side, shi, dhi),
                np.where(side, slo, dlo)]  # fmt: skip
    lport = np.where(side, dp, sp)
    hport = np.where(side, sp, dp)
    small = (lport << u64(32)) | (hport << u64(16)) | (p["proto"].astype(u64) << u64(8)) | fam.astype(u64)
    return side, cols, lport, hport, small


def flows_from_table(keys: np.ndarray, c: dict[str, np.ndarray], vlans: list[tuple[int, ...]]) -> list[Flow]:
    """:class:`Flow` objects from a finished flow table, in the order given (one row per flow).

    ``keys`` is a :data:`KEY_DTYPE` array; ``c`` the per-flow columns of :class:`FlowBuilder` (``pk``, ``by``,
    ``pay``, ``ev`` by key side; ``tmin``, ``tmax``, ``first_pos``, ``first_side``, ``syn_side``, ``vlan``,
    ``reuse``). Shared with the mergeable partial tables of :mod:`segverify.scale`, so that both paths
    orient and count flows with the same code."""
    extra = {i: v for i, (v, vl) in enumerate(zip(vlans, c["vlan"].tolist() if len(keys) else [], strict=True))
             if v != ((vl,) if vl >= 0 else ())}
    return FlowTable.from_keys(keys, c, extra).flows()


T = TypeVar("T")


class BuiltOnRead(Sequence[T]):
    """Columns whose items (an object each) are built only when read, several at once (:meth:`_build`): the
    indexing, slicing and iteration of :class:`FlowTable` and of the verdicts' table."""

    __slots__ = ()

    def _build(self, rows: Sequence[int] | None) -> list[T]:
        """The items of these rows, in that order (all rows when None)."""
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        n = len(self)
        if isinstance(i, slice):
            return self._build(range(n)[i])
        if not -n <= i < n:
            raise IndexError(i)
        return self._build([i % n])[0]

    def __iter__(self) -> Iterator[T]:
        return iter(self._build(None))  # every item built at once, not one at a time


class FlowTable(BuiltOnRead[Flow]):
    """The flow table as columns, each flow oriented by its initiator: what the :class:`Flow` objects hold,
    without an object per flow. A day of captures has hundreds of thousands of flows, most of which are only
    judged by kind and rendered as a row; an object is built for a flow when something asks for it
    (``table[i]``, :meth:`flows`), and it is the very object :func:`flows_from_table` builds.

    Addresses are in two halves (``*_hi``, ``*_lo``; an IPv4 address in ``*_lo`` with ``*_hi`` zero) beside
    ``family``; the unified integer of :class:`Flow` (``V6_BASE`` + address for IPv6) is made per flow built."""

    __slots__ = ("cols", "extra_vlans", "n")

    def __init__(self, cols: dict[str, np.ndarray], extra_vlans: dict[int, tuple[int, ...]] | None = None) -> None:
        self.cols = cols  # one array per field of Flow but src, dst and vlans (see from_keys)
        self.extra_vlans = extra_vlans or {}  # row -> VLAN ids, for the rows that saw more than their first's
        self.n = len(cols["proto"])

    @classmethod
    def from_keys(cls, keys: np.ndarray, c: dict[str, np.ndarray],
                  extra_vlans: dict[int, tuple[int, ...]] | None = None) -> FlowTable:  # fmt: skip
        """Oriented columns from a finished table (see :func:`flows_from_table`)."""
        n = len(keys)
        if n == 0:
            return cls({name: np.zeros(0, np.int64) for name in _TABLE_COLS}, extra_vlans)
        proto = keys["proto"].astype(np.int64)
        known, s = _initiator(keys, c)
        r = 1 - s
        rows = np.arange(n)
        evs, evr = c["ev"][rows, s], c["ev"][rows, r]
        hand = ((evs & EV_SYN) != 0) & ((evr & EV_SYNACK) != 0) & ((evs & EV_ACK) != 0)
        data2 = ((evs & EV_DATA) != 0) & ((evr & EV_DATA) != 0)
        both = (c["pk"][:, 0] > 0) & (c["pk"][:, 1] > 0)
        sb = s.astype(bool)
        v6 = keys["family"] == 6
        zero = np.uint64(0)
        lhi, hhi = np.where(v6, keys["lhi"], zero), np.where(v6, keys["hhi"], zero)
        cols = {
            "proto": proto, "family": keys["family"].astype(np.int64),
            "src_hi": np.where(sb, hhi, lhi), "src_lo": np.where(sb, keys["hlo"], keys["llo"]),
            "sport": np.where(sb, keys["hport"], keys["lport"]).astype(np.int64),
            "dst_hi": np.where(sb, lhi, hhi), "dst_lo": np.where(sb, keys["llo"], keys["hlo"]),
            "dport": np.where(sb, keys["lport"], keys["hport"]).astype(np.int64),
            "initiator_known": known,
            "pkts_fwd": c["pk"][rows, s], "bytes_fwd": c["by"][rows, s],
            "pkts_rev": c["pk"][rows, r], "bytes_rev": c["by"][rows, r],
            "payload_fwd": c["pay"][rows, s], "payload_rev": c["pay"][rows, r],
            "first_ts": c["tmin"], "last_ts": c["tmax"],
            "established": np.where(proto == PROTO_TCP, hand | data2, both),
            "tcp_flags_fwd": (evs >> 16).astype(np.int64), "tcp_flags_rev": (evr >> 16).astype(np.int64),
            "vlan": c["vlan"].astype(np.int64), "first_pos": c["first_pos"], "reuse": c["reuse"].astype(np.int64),
        }  # fmt: skip
        return cls(cols, extra_vlans)

    def __len__(self) -> int:
        return self.n

    def _build(self, rows: Sequence[int] | None) -> list[Flow]:
        return self.flows(rows)

    def addresses(self, end: str, rows: np.ndarray | Sequence[int] | None = None) -> list[int]:
        """The unified integer addresses of one end (``src`` or ``dst``) of these rows (all by default)."""
        c = self.cols
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])
        lo = pick(c[end + "_lo"]).tolist()
        six = np.flatnonzero(pick(c["family"]) == 6)
        if len(six):
            hi = pick(c[end + "_hi"])[six].tolist()
            for k, h in zip(six.tolist(), hi, strict=True):
                lo[k] = V6_BASE + (h << 64 | lo[k])
        return lo

    def flows(self, rows: Sequence[int] | None = None) -> list[Flow]:
        """The :class:`Flow` objects of these rows (all by default), in that order."""
        c = self.cols
        at = None if rows is None else np.asarray(rows, dtype=np.int64)
        if at is not None and len(at) == 0:
            return []

        def col(name: str) -> list:
            return (c[name] if at is None else c[name][at]).tolist()

        idx = range(self.n) if at is None else at.tolist()
        vlan = col("vlan")
        extra = self.extra_vlans
        vlans = [extra.get(i, (vl,) if vl >= 0 else ()) for i, vl in zip(idx, vlan, strict=True)]
        known = col("initiator_known")
        return [
            Flow(*row)
            for row in zip(
                col("proto"), col("family"), self.addresses("src", at), col("sport"), self.addresses("dst", at),
                col("dport"), known, [INITIATOR_BASIS[k] for k in known],
                col("pkts_fwd"), col("bytes_fwd"), col("pkts_rev"), col("bytes_rev"), col("payload_fwd"),
                col("payload_rev"), col("first_ts"), col("last_ts"), col("established"), col("tcp_flags_fwd"),
                col("tcp_flags_rev"), [v if v >= 0 else None for v in vlan], vlans, col("first_pos"), col("reuse"),
                strict=True,
            )  # fmt: skip
        ]

    def report_order(self) -> list[int]:
        """The rows in the report's order: ``sorted`` by (first_ts, src, dst, sport, dport, proto, reuse) of the
        flows they stand for (stable), without building them. Unified addresses compare as (IPv6, high, low), and
        a flow's two addresses are of one family."""
        c = self.cols
        v6 = c["family"] == 6
        return np.lexsort((c["reuse"], c["proto"], c["dport"], c["sport"], c["dst_lo"], c["dst_hi"], c["src_lo"],
                           c["src_hi"], v6, c["first_ts"])).tolist()  # fmt: skip


_TABLE_COLS = ("proto", "family", "src_hi", "src_lo", "sport", "dst_hi", "dst_lo", "dport", "initiator_known",
               "pkts_fwd", "bytes_fwd", "pkts_rev", "bytes_rev", "payload_fwd", "payload_rev", "first_ts", "last_ts",
               "established", "tcp_flags_fwd", "tcp_flags_rev", "vlan", "first_pos", "reuse")  # fmt: skip


def _initiator(keys: np.ndarray, c: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per flow: whether its initiator is known (a TCP SYN), and which key side (0: low, 1: high) is it."""
    known = (keys["proto"] == PROTO_TCP) & (c["syn_side"] >= 0)
    return known, np.where(known, c["syn_side"], c["first_side"]).astype(np.int64)


def report_order(keys: np.ndarray, c: dict[str, np.ndarray]) -> list[int]:
    """The rows of a finished flow table (see :func:`flows_from_table`) in the report's order, without building
    their flows (:meth:`FlowTable.report_order`)."""
    return FlowTable.from_keys(keys, c).report_order() if len(keys) else []


def build_flows(batches: Iterable[Batch]) -> tuple[list[Flow], FlowBuilder]:
    """Flows of all ``batches``; the builder is returned for its skip counters."""
    fb = FlowBuilder()
    for b in batches:
        fb.add(b)
    return fb.flows(), fb


def flows_from_file(path: str | Path) -> tuple[list[Flow], list[Damage], FlowBuilder]:
    """Read a capture and build its flow table: (flows, damage, builder with counters)."""
    damage: list[Damage] = []
    flows, fb = build_flows(iter_batches(path, damage=damage))
    return flows, damage, fb


def _group(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group rows whose key columns (uint64) are all equal.

    Returns ``perm`` (row order sorted by group, stable: file order inside a group), ``starts`` (where
    each group begins in ``perm``) and ``inv`` (group of each row). Hashes the columns into one uint64
    and sorts that (fast); two different keys with one hash -- astronomically rare by chance, but the
    mix is not keyed, and hostile input must not be able to merge flows -- are caught by comparing every
    column with its group's first row, and then grouped exactly with a lexicographic sort.
    """
    h = _mix(cols[0] ^ np.uint64(0x9E3779B97F4A7C15))
    for i, col in enumerate(cols[1:]):
        h ^= _mix(col ^ np.uint64((0xC2B2AE3D27D4EB4F * (i + 3)) & 0xFFFFFFFFFFFFFFFF))
    perm = np.argsort(h, kind="stable")
    hs = h[perm]
    brk = hs[1:] != hs[:-1]
    starts, gid = _runs(brk)
    first = perm[starts]
    if not all((col[perm] == col[first][gid]).all() for col in cols):
        perm = np.lexsort(cols[::-1])
        brk = np.zeros(len(perm) - 1, dtype=bool)
        for col in cols:
            cp = col[perm]
            brk |= cp[1:] != cp[:-1]
        starts, gid = _runs(brk)
    inv = np.empty(len(perm), dtype=np.int64)
    inv[perm] = gid
    return perm, starts, inv


def group_rows(cols: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_group` of columns of any integer or bool type (each taken as its 64-bit pattern): rows equal in
    every column are one group; ``perm[starts]`` are each group's first rows, ``inv`` each row's group."""
    return _group([np.asarray(c).astype(np.uint64, copy=False) for c in cols])


def _runs(brk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run starts and run number per element, from the "differs from predecessor" flags of a sorted array."""
    starts = np.r_[0, np.flatnonzero(brk) + 1]
    gid = np.r_[0, np.cumsum(brk)]
    return starts, gid


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole word."""
    x = x.astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
