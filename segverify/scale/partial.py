"""Mergeable partial flow tables: what a worker returns for one part of the captures.

Why pieces: the one-pass :class:`~segverify.capture.flows.FlowBuilder` decides where a TCP 5-tuple starts
a new flow (port reuse) at a SYN without ACK, from the flow's previous such SYN and whether it was closed
by FIN/RST. Those decisions depend on everything before on that tuple, possibly in another file or chunk.
So a part keeps, per tuple, its packets cut at every SYN without ACK into *pieces* (the first piece may
start without one), each with the aggregates a flow is made of (per-side packets, bytes, payload, OR of
event bits and flags, first and last time, first packet's side/VLAN/position, the starting SYN's seq and
every VLAN seen). A piece either continues the flow before it or starts a new one, never both: merging
the pieces of every part in global order (file index, then offset) and re-applying the reuse rule at
each SYN piece gives exactly the one-pass table. Everything is numpy; a part ships a few arrays whose size
follows its flows, never its packets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..capture.decode import (
    PROTO_TCP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
)
from ..capture.flows import (
    EV_ACK,
    EV_DATA,
    EV_SYN,
    EV_SYNACK,
    KEY_DTYPE,
    Counters,
    Flow,
    _group,
    flow_packets,
    flows_from_table,
    key_columns,
    report_order,
)
from ..capture.reader import Batch

KEY_COLS = ("k0", "k1", "k2", "k3", "k4")  # lower hi, lower lo, higher hi, higher lo, ports|proto|family
SCALAR_COLS = {
    "fidx": np.int32, "pos": np.int64, "part": np.int64, "seq": np.int64, "first_side": np.int8,
    "vlan": np.int32, "tmin": np.int64, "tmax": np.int64,
}  # fmt: skip
PAIR_COLS = {"pk": np.int64, "by": np.int64, "pay": np.int64, "ev": np.uint32}
_CLOSE = np.uint32((TCP_FIN | TCP_RST) << 16)


@dataclass
class Pieces:
    """Pieces of flows, one row each; ``xvlan`` lists (row, VLAN) for VLANs other than a row's first."""

    cols: dict[str, np.ndarray]
    xrow: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    xvlan: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.cols["pos"])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.cols.values()) + self.xrow.nbytes + self.xvlan.nbytes


def empty_pieces() -> Pieces:
    cols: dict[str, np.ndarray] = {k: np.zeros(0, np.uint64) for k in KEY_COLS}
    cols["has_syn"] = np.zeros(0, bool)
    cols.update({k: np.zeros(0, dt) for k, dt in SCALAR_COLS.items()})
    cols.update({k: np.zeros((0, 2), dt) for k, dt in PAIR_COLS.items()})
    return Pieces(cols)


def batch_pieces(batch: Batch | np.ndarray, counters: Counters, fidx: int = 0, part: int = 0) -> Pieces:
    """The pieces of one decoded batch (file order inside), with the same packet selection and key
    orientation as :meth:`FlowBuilder.add`."""
    p = flow_packets(batch, counters)
    if len(p) == 0:
        return empty_pieces()
    side, cols, _lport, _hport, small = key_columns(p)  # the flow table's own orientation
    cols.append(small)
    perm, starts, _inv = _group(cols)

    flags = p["tcp_flags"].astype(np.uint32)
    tcp = p["proto"] == PROTO_TCP
    synack = flags & (TCP_SYN | TCP_ACK)
    pure = tcp & (synack == TCP_SYN)
    paylen = p["pay_len"]
    ev = (flags << 16) | (paylen > 0).astype(np.uint32) * EV_DATA
    ev |= pure.astype(np.uint32) * EV_SYN
    ev |= (tcp & (synack == (TCP_SYN | TCP_ACK))).astype(np.uint32) * EV_SYNACK
    ev |= (tcp & (synack == TCP_ACK)).astype(np.uint32) * EV_ACK

    # pieces: runs of a key's packets (file order) starting at the key's first packet or at a pure SYN
    newp = pure[perm].copy()
    newp[starts] = True
    ps = np.flatnonzero(newp)
    fr = perm[ps]  # first packet of each piece
    sdp = side[perm]
    out: dict[str, np.ndarray] = {k: c[fr] for k, c in zip(KEY_COLS, cols, strict=True)}
    out["has_syn"] = pure[fr]
    out["fidx"] = np.full(len(ps), fidx, np.int32)
    out["part"] = np.full(len(ps), part, np.int64)
    out["pos"] = p["pos"][fr].astype(np.int64)
    out["seq"] = np.where(pure[fr], p["seq"][fr].astype(np.int64), -1)
    out["first_side"] = side[fr].astype(np.int8)
    out["vlan"] = p["vlan"][fr].astype(np.int32)
    ts = p["ts"][perm]
    out["tmin"] = np.minimum.reduceat(ts, ps)
    out["tmax"] = np.maximum.reduceat(ts, ps)
    one = sdp.astype(np.int64)
    lens = np.diff(np.r_[ps, len(perm)])
    pk1 = np.add.reduceat(one, ps)
    out["pk"] = np.stack([lens - pk1, pk1], axis=1)
    for name, col in (("by", p["wirelen"]), ("pay", paylen)):
        v = col[perm].astype(np.int64)
        s1 = np.add.reduceat(v * one, ps)
        out[name] = np.stack([np.add.reduceat(v, ps) - s1, s1], axis=1)
    evp = ev[perm]
    zero = np.uint32(0)
    out["ev"] = np.stack([np.bitwise_or.reduceat(np.where(sdp, zero, evp), ps),
                          np.bitwise_or.reduceat(np.where(sdp, evp, zero), ps)], axis=1)  # fmt: skip
    # VLANs other than the piece's first packet's
    pid = np.cumsum(newp) - 1
    vl = p["vlan"][perm].astype(np.int64)
    other = vl != out["vlan"][pid]
    pieces = Pieces(out)
    if other.any():
        pairs = np.unique(pid[other] * 8192 + (vl[other] + 1))
        pieces.xrow, pieces.xvlan = pairs // 8192, pairs % 8192 - 1
    return pieces


def concat(parts: list[Pieces]) -> Pieces:
    """Rows of several piece tables, in the order given."""
    parts = [x for x in parts if len(x)]
    if not parts:
        return empty_pieces()
    if len(parts) == 1:
        return parts[0]
    cols = {k: np.concatenate([x.cols[k] for x in parts]) for k in parts[0].cols}
    offs = np.cumsum([0] + [len(x) for x in parts[:-1]])
    xrow = np.concatenate([x.xrow + o for x, o in zip(parts, offs, strict=True)])
    xvlan = np.concatenate([x.xvlan for x in parts])
    return Pieces(cols, xrow, xvlan)


def _key_groups(pc: Pieces) -> tuple[np.ndarray, np.ndarray]:
    """(row order by key then global position, key start flags in that order)."""
    keycols = [pc.cols[k] for k in KEY_COLS]
    _perm, _starts, inv = _group(keycols)
    order = np.lexsort((pc.cols["pos"], pc.cols["fidx"], inv))
    g = inv[order]
    kstart = np.r_[True, g[1:] != g[:-1]]
    return order, kstart


def _reduce(pc: Pieces, order: np.ndarray, gstart: np.ndarray) -> tuple[Pieces, np.ndarray]:
    """Fold runs of rows (``order``, new run where ``gstart``) into one row each: first-row fields from the
    run's first row, sums, ORs, min and max over the run, VLAN sets united. Also returns each input
    position's run number."""
    c = {k: v[order] for k, v in pc.cols.items()}
    st = np.flatnonzero(gstart)
    out = {k: c[k][st] for k in (*KEY_COLS, "has_syn", "fidx", "pos", "part", "seq", "first_side", "vlan")}
    out["tmin"] = np.minimum.reduceat(c["tmin"], st)
    out["tmax"] = np.maximum.reduceat(c["tmax"], st)
    for k in ("pk", "by", "pay"):
        out[k] = np.add.reduceat(c[k], st, axis=0)
    out["ev"] = np.bitwise_or.reduceat(c["ev"], st, axis=0)
    run = np.cumsum(gstart) - 1
    # VLANs: every row's first VLAN and extra VLANs, per run, minus the run's first VLAN
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    rr = np.r_[run, run[rank[pc.xrow]]] if len(pc.xrow) else run
    vv = np.r_[c["vlan"].astype(np.int64), pc.xvlan] if len(pc.xrow) else c["vlan"].astype(np.int64)
    other = vv != out["vlan"][rr]
    res = Pieces(out)
    if other.any():
        pairs = np.unique(rr[other] * 8192 + (vv[other] + 1))
        res.xrow, res.xvlan = pairs // 8192, pairs % 8192 - 1
    return res, run


def compact(pc: Pieces) -> Pieces:
    """Fold the pieces of one part: consecutive rows of a key with no SYN between them join (a piece
    without a starting SYN always continues the one before it), so a part ships one row per piece."""
    if len(pc) == 0:
        return pc
    order, kstart = _key_groups(pc)
    res, _ = _reduce(pc, order, kstart | pc.cols["has_syn"][order])
    return res


@dataclass
class Merged:
    """The merged flow table: flows in the one-pass order, and for each flow the part holding every
    packet of its 5-tuple, or -1 when the tuple spans parts."""

    local_part: np.ndarray
    table: FlowRows  # the flows as columns: what is shipped to workers, and what ``flows`` is built from
    _flows: list[Flow] | None = None

    @property
    def flows(self) -> list[Flow]:
        """The flow objects, built on first use (the cluster client ships ``table`` rows first and builds
        these while the workers judge)."""
        if self._flows is None:
            self._flows = self.table.flows()
        return self._flows


@dataclass
class FlowRows:
    """Flows as the columns :func:`flows_from_table` builds them from: a slice of the merged table pickles
    in a few milliseconds where the same ``Flow`` objects take a second per 100k, and the worker that gets
    it builds the very same objects."""

    keys: np.ndarray
    cols: dict[str, np.ndarray]
    vlans: list[tuple[int, ...]]

    def take(self, idx: list[int]) -> FlowRows:
        at = np.asarray(idx, dtype=np.int64)
        return FlowRows(self.keys[at], {k: v[at] for k, v in self.cols.items()}, [self.vlans[i] for i in idx])

    def flows(self) -> list[Flow]:
        return flows_from_table(self.keys, self.cols, self.vlans)

    def report_order(self) -> list[int]:
        """Row indices in the report's order (see :func:`report_order`)."""
        return report_order(self.keys, self.cols)


class TableFlow:
    """Row ``i`` of a flow table standing for its :class:`Flow`, built only if something reads it: a cluster's
    client reads the flows of a few verdicts (findings, inspected flows) of hundreds of thousands, whose
    objects took it a second to build."""

    __slots__ = ("_flow", "_i", "_rows")

    def __init__(self, rows: FlowRows, i: int) -> None:
        self._rows, self._i, self._flow = rows, i, None

    def __getattr__(self, name: str) -> object:
        if self._flow is None:
            self._flow = self._rows.take([self._i]).flows()[0]
        return getattr(self._flow, name)


def merge(pc: Pieces) -> Merged:
    """Merge the pieces of all parts into flows exactly as one :class:`FlowBuilder` pass over the files
    in order would have built them (same flows, fields and order)."""
    if len(pc) == 0:
        return Merged(np.zeros(0, np.int64), FlowRows(np.zeros(0, dtype=KEY_DTYPE), {}, []))
    order, kstart = _key_groups(pc)
    c = {k: pc.cols[k][order] for k in ("has_syn", "seq", "ev", "part")}
    n = len(order)
    kid = np.cumsum(kstart) - 1
    kfirst = np.flatnonzero(kstart)
    idx = np.arange(n)
    # the previous SYN piece's seq on the key (forward fill of SYN rows, shifted by one)
    syn_at = np.where(c["has_syn"], idx, -1)
    last_syn_row = np.maximum.accumulate(syn_at)
    prev_row = np.r_[-1, last_syn_row[:-1]]
    prev_row = np.where(kstart | (prev_row < kfirst[kid]), -1, prev_row)
    prev_seq = np.where(prev_row >= 0, c["seq"][np.maximum(prev_row, 0)], -1)
    # FIN or RST anywhere on the key before this piece
    closes = ((c["ev"][:, 0] | c["ev"][:, 1]) & _CLOSE) != 0
    cc = np.cumsum(closes) - closes
    closed_before = cc - cc[kfirst[kid]] > 0
    restart = c["has_syn"] & ~kstart & np.where(prev_seq >= 0, c["seq"] != prev_seq, closed_before)
    fstart = kstart | restart
    res, run = _reduce(pc, order, fstart)
    nf = len(res)
    # reuse: restarts on the key up to the flow's first piece
    rc = np.cumsum(restart)
    reuse = (rc - rc[kfirst[kid]])[fstart]
    # initiator: side of the flow's first SYN piece
    syn_side = np.full(nf, -1, np.int8)
    srows = np.flatnonzero(c["has_syn"])
    if len(srows):
        fl, first = np.unique(run[srows], return_index=True)
        syn_side[fl] = pc.cols["first_side"][order][srows[first]]
    # a 5-tuple is local to one part when all its pieces are
    pmin = np.minimum.reduceat(c["part"], kfirst)
    pmax = np.maximum.reduceat(c["part"], kfirst)
    klocal = np.where(pmin == pmax, pmin, -1)
    flocal = klocal[kid[fstart]]
    # one-pass order: by offset of the first packet, earlier files first on equal offsets
    fo = np.lexsort((res.cols["fidx"], res.cols["pos"]))
    rc_ = res.cols
    keys = np.zeros(nf, dtype=KEY_DTYPE)
    keys["lhi"], keys["llo"], keys["hhi"], keys["hlo"] = (rc_[k][fo] for k in KEY_COLS[:4])
    small = rc_["k4"][fo]
    keys["lport"] = (small >> np.uint64(32)) & np.uint64(0xFFFF)
    keys["hport"] = (small >> np.uint64(16)) & np.uint64(0xFFFF)
    keys["proto"] = (small >> np.uint64(8)) & np.uint64(0xFF)
    keys["family"] = small & np.uint64(0xFF)
    cols = {
        "pk": rc_["pk"][fo], "by": rc_["by"][fo], "pay": rc_["pay"][fo], "ev": rc_["ev"][fo],
        "tmin": rc_["tmin"][fo], "tmax": rc_["tmax"][fo], "first_pos": rc_["pos"][fo],
        "first_side": rc_["first_side"][fo], "syn_side": syn_side[fo], "vlan": rc_["vlan"][fo],
        "reuse": reuse[fo].astype(np.int32),
    }  # fmt: skip
    rank = np.empty(nf, np.int64)
    rank[fo] = np.arange(nf)
    extra: dict[int, list[int]] = {}
    for r, v in zip(rank[res.xrow].tolist(), res.xvlan.tolist(), strict=True):
        extra.setdefault(r, []).append(v)
    vlan = cols["vlan"].tolist()
    vlans = [tuple(sorted(v for v in {vl, *extra[i]} if v >= 0)) if i in extra else ((vl,) if vl >= 0 else ())
             for i, vl in enumerate(vlan)]  # fmt: skip
    return Merged(flocal[fo].astype(np.int64), FlowRows(keys, cols, vlans))
