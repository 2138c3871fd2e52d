"""A flow's verdict, a table of them, and their rows in the report.

:class:`FlowVerdict` is one flow's verdict, the object inspection and findings read and change.
:class:`VerdictTable` holds a whole flow table's verdicts as columns: flows are judged by kind (a client's
connections from many source ports are one kind), so a verdict is an index into a short list of kinds, and
an object is built only for a verdict something reads (a finding, an inspected flow). The report's rows come
from the columns (:meth:`VerdictTable.row_texts`), byte for byte what :meth:`FlowVerdict.row_bytes` writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..capture.flows import INITIATOR_BASIS, BuiltOnRead, Flow, FlowTable, group_rows
from ..model.addresses import int_to_addr as _int_to_addr
from ..model.rules import PROTO_NAMES

_JS_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # the report's encoder (report.rows.row_encoder)
FINDING_VERDICTS = ("MYNUMBER_FLOW", "UNSANITIZED_FLOW")
"""Verdicts that are findings of their own (beside a denial and an unknown address)."""


def _jv(value: bool | int) -> str:
    """A flag as the report's JSON encodes it (a bool; an int, should one come, as a number)."""
    return "true" if value is True else "false" if value is False else _JS_ENCODE(value)


@lru_cache(maxsize=1 << 16)
def _js(value: str | None) -> str:
    """A string (or None) as the report's JSON encodes it."""
    return _JS_ENCODE(value)


# Addresses repeat across a month of flows: each is formatted once (ipaddress is ~3 µs a call).
int_to_addr = lru_cache(maxsize=1 << 16)(_int_to_addr)


@dataclass
class FlowVerdict:
    flow: Flow
    src_segment: str | None
    dst_segment: str | None
    verdict: str  # intra-family | exception:NAME | channel:NAME | MYNUMBER_FLOW | UNSANITIZED_FLOW | …
    notes: list[str] = field(default_factory=list)
    denied: bool = False
    no_path: bool = False  # denied because no device in the topology joins the two segments

    def to_json(self) -> dict[str, Any]:
        f = self.flow
        out: dict[str, Any] = {
            "src": int_to_addr(f.src), "sport": f.sport, "dst": int_to_addr(f.dst), "dport": f.dport,
            "proto": PROTO_NAMES.get(f.proto, f.proto),
            "src_segment": self.src_segment, "dst_segment": self.dst_segment,
            "packets": f.packets, "bytes": f.bytes,
            "packets_fwd": f.pkts_fwd, "packets_rev": f.pkts_rev, "bytes_fwd": f.bytes_fwd, "bytes_rev": f.bytes_rev,
            "first_ns": f.first_ts, "last_ns": f.last_ts,
            "established": f.established, "initiator_known": f.initiator_known, "initiator_basis": f.initiator_basis,
            "verdict": self.verdict,
        }
        if f.vlan is not None:
            out["vlan"] = f.vlan
        if self.denied:
            out["denied_by_rules"] = True
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def row_bytes(self) -> bytes:
        """:meth:`to_json` as the report's JSON text (``report.rows.row_bytes``), byte for byte, written directly:
        a dict per flow and the encoder's walk over it were most of the cost of a flow table's rows. The text of
        every string comes from the encoder itself (cached: a flow table names the same hosts and segments)."""
        f = self.flow
        out = (f'{{"src": {_js(int_to_addr(f.src))}, "sport": {f.sport}, "dst": {_js(int_to_addr(f.dst))}, '
               f'"dport": {f.dport}, "proto": {_proto_text(f.proto)}, '
               f'"src_segment": {_js(self.src_segment)}, "dst_segment": {_js(self.dst_segment)}, '
               f'"packets": {f.packets}, "bytes": {f.bytes}, "packets_fwd": {f.pkts_fwd}, '
               f'"packets_rev": {f.pkts_rev}, "bytes_fwd": {f.bytes_fwd}, "bytes_rev": {f.bytes_rev}, '
               f'"first_ns": {f.first_ts}, "last_ns": {f.last_ts}, "established": {_jv(f.established)}, '
               f'"initiator_known": {_jv(f.initiator_known)}, '
               f'"initiator_basis": {_js(f.initiator_basis)}, "verdict": {_js(self.verdict)}')
        return (out + _tail(f.vlan, self.denied, self.notes) + "}").encode("utf-8")

    def finding_flow(self) -> dict[str, Any]:
        f = self.flow
        return {"src": int_to_addr(f.src), "dst": int_to_addr(f.dst), "proto": PROTO_NAMES.get(f.proto, f.proto),
                "sport": f.sport, "dport": f.dport, "packets": f.packets, "bytes": f.bytes,
                "established": f.established, "initiator_known": f.initiator_known}


def _proto_text(proto: int) -> str:
    """A flow's protocol as its row holds it: the name where there is one, else the number."""
    name = PROTO_NAMES.get(proto, proto)
    return _js(name) if isinstance(name, str) else str(int(name))


def _tail(vlan: int | None, denied: bool, notes: Sequence[str]) -> str:
    """The optional end of a flow's row (after its verdict): VLAN, denial and notes, where there are any."""
    out = ""
    if vlan is not None:
        out += f', "vlan": {int(vlan)}'
    if denied:
        out += ', "denied_by_rules": true'
    if notes:
        out += ', "notes": ' + _JS_ENCODE(list(notes))
    return out


Kind = tuple[str | None, str | None, str, tuple[str, ...], bool]
"""What a flow's verdict is for every flow of its kind: source and destination segment, verdict, notes, and
whether the rules must be asked about it (established, between two segments)."""

# A row's literal text around its values, and which values are strings (indices into the distinct texts).
_ROW = (
    ('{"src": ', True), (', "sport": ', False), (', "dst": ', True), (', "dport": ', False), (', "proto": ', True),
    (', "src_segment": ', True), (', "dst_segment": ', True), (', "packets": ', False), (', "bytes": ', False),
    (', "packets_fwd": ', False), (', "packets_rev": ', False), (', "bytes_fwd": ', False), (', "bytes_rev": ', False),
    (', "first_ns": ', False), (', "last_ns": ', False), (', "established": ', True), (', "initiator_known": ', True),
    (', "initiator_basis": ', True), (', "verdict": ', True), ("", True),
)  # fmt: skip
_PIECES = tuple(p.encode() for p, _ in _ROW) + (b"}",)
_IS_TEXT = tuple(t for _, t in _ROW)


class VerdictTable(BuiltOnRead[FlowVerdict]):
    """Every flow's verdict, as columns: the kind of each flow (an index into ``kinds``), and whether the rules
    deny it. ``table[i]`` builds the verdict of flow ``i`` (with its :class:`Flow`) the first time it is asked
    for, and gives that same object after: inspection changes the verdicts it inspects in place."""

    __slots__ = ("_made", "denied", "flows", "kind", "kinds", "no_path")

    def __init__(self, flows: FlowTable, kinds: list[Kind], kind: np.ndarray, denied: np.ndarray,
                 no_path: np.ndarray) -> None:  # fmt: skip
        self.flows, self.kinds, self.kind, self.denied, self.no_path = flows, kinds, kind, denied, no_path
        self._made: dict[int, FlowVerdict] = {}

    def __len__(self) -> int:
        return len(self.flows)

    def _build(self, rows: Sequence[int] | None) -> list[FlowVerdict]:
        return self.take(range(len(self)) if rows is None else rows)

    def take(self, rows: Iterable[int]) -> list[FlowVerdict]:
        """The verdicts of these rows, in that order (the flows not built yet are built together)."""
        rows = list(rows)
        made = self._made
        missing = sorted({i for i in rows if i not in made})
        if missing:
            kinds, kind, denied, no_path = self.kinds, self.kind, self.denied, self.no_path
            for i, flow in zip(missing, self.flows.flows(missing), strict=True):
                a, b, verdict, notes, _ = kinds[kind[i]]
                made[i] = FlowVerdict(flow, a, b, verdict, list(notes), bool(denied[i]), bool(no_path[i]))
        return [made[i] for i in rows]

    def notable(self) -> list[FlowVerdict]:
        """The verdicts a finding may name, in table order: a verdict that is a finding, a flow the rules deny,
        an address in no segment; and every verdict built (inspection may have changed it)."""
        marks = np.array([k[2] in FINDING_VERDICTS or k[0] is None or k[1] is None for k in self.kinds], bool)
        rows = set(np.flatnonzero(marks[self.kind] | self.denied).tolist()) if len(self) else set()
        rows.update(self._made)
        return self.take(sorted(rows))

    def cross_family(self) -> int:
        """How many flows have a verdict other than ``intra-family`` (as they stand: built ones as they are)."""
        if not len(self):
            return 0
        intra = np.array([k[2] == "intra-family" for k in self.kinds], bool)
        count = int(np.count_nonzero(~intra[self.kind]))
        for i, v in self._made.items():
            count += (v.verdict != "intra-family") - (not intra[self.kind[i]])
        return count

    def row_texts(self) -> list[bytes]:
        """Every flow's row of the report (:meth:`FlowVerdict.row_bytes`) from the columns, as judged: a verdict
        changed since (an inspected one) must be rendered again from its object."""
        from ..report.rowtext import render

        n = len(self)
        if n == 0:
            return []
        c = self.flows.cols
        texts: dict[str, int] = {}

        def text(s: str) -> int:
            at = texts.get(s)
            if at is None:
                at = texts[s] = len(texts)
            return at

        def ids(values: list, make: Any) -> np.ndarray:
            """Each value's index among the distinct texts (``make`` gives a value's text)."""
            local: dict[Any, int] = {}
            out = np.empty(len(values), np.int64)
            for k, v in enumerate(values):
                at = local.get(v)
                if at is None:
                    at = local[v] = text(make(v))
                out[k] = at
            return out

        def distinct(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The first row of each distinct combination of these columns, and each row's combination."""
            perm, starts, inv = group_rows(cols)
            return perm[starts], inv

        def addresses(end: str) -> np.ndarray:
            first, inv = distinct(c["family"], c[end + "_hi"], c[end + "_lo"])
            return ids(self.flows.addresses(end, first), lambda a: _js(int_to_addr(a)))[inv]

        kind = self.kind
        kinds = self.kinds
        seg_a = ids([k[0] for k in kinds], _js)[kind]
        seg_b = ids([k[1] for k in kinds], _js)[kind]
        verdict = ids([k[2] for k in kinds], _js)[kind]
        pfirst, pinv = distinct(c["proto"])
        proto = ids(c["proto"][pfirst].tolist(), _proto_text)[pinv]
        flag = np.array([text("false"), text("true")], np.int64)
        basis = np.array([text(_js(b)) for b in INITIATOR_BASIS], np.int64)
        known = c["initiator_known"].astype(np.int64)
        # the tail: VLAN, denial and the kind's notes, which most rows have none of
        tfirst, tinv = distinct(c["vlan"] + 1, self.denied, kind)
        tail = ids([(int(c["vlan"][r]), bool(self.denied[r]), int(kind[r])) for r in tfirst.tolist()],
                   lambda t: _tail(t[0] if t[0] >= 0 else None, t[1], kinds[t[2]][3]))[tinv]  # fmt: skip
        columns = (
            addresses("src"), c["sport"], addresses("dst"), c["dport"], proto, seg_a, seg_b,
            c["pkts_fwd"] + c["pkts_rev"], c["bytes_fwd"] + c["bytes_rev"], c["pkts_fwd"], c["pkts_rev"],
            c["bytes_fwd"], c["bytes_rev"], c["first_ts"], c["last_ts"], flag[c["established"].astype(np.int64)],
            flag[known], basis[known], verdict, tail,
        )  # fmt: skip
        strs = tuple(s.encode("utf-8") for s in texts)
        return render(_PIECES, columns, _IS_TEXT, strs)


def notable(verdicts: Sequence[FlowVerdict]) -> Sequence[FlowVerdict]:
    """The verdicts a finding may name (:meth:`VerdictTable.notable`); a plain list as it is."""
    return verdicts.notable() if isinstance(verdicts, VerdictTable) else verdicts


def cross_family(verdicts: Sequence[FlowVerdict]) -> int:
    """How many verdicts are other than ``intra-family``."""
    if isinstance(verdicts, VerdictTable):
        return verdicts.cross_family()
    return sum(1 for v in verdicts if v.verdict != "intra-family")
