"""``segverify replay``: what crossed between families in captured traffic, flow by flow.

Every flow is mapped to the segments of its endpoints (longest prefix; a VLAN the topology names
breaks ties) and judged: inside one family it is not this tool's business; across families it
must be covered by an exception (MN ↔ LG) or by a channel the model permits, in its direction and
on its ports. Established flows between different segments are also checked against the
topology's own firewall rules, with the same engine as ``check``: a flow the rules deny but the
capture shows means the running firewall is not the one on paper.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..capture import Damage, Flow, FlowBuilder, iter_batches
from ..capture.flows import FlowTable, group_rows
from ..capture.reader import Batch
from ..errors import InputError
from ..model.addresses import IntervalSet
from ..model.gcpause import frozen_gc, pausable_gc
from ..model.rules import PORT_PROTOS, PROTO_NAMES, Packet
from ..model.topology import Channel, ExceptionRule, PortSpec, Topology
from ..packetspace.space import FIELD_ORDER, SHARD_CACHE_SIZE, SHARD_MEMORY_ESTIMATE, PacketSpace
from .check import Context, build_context, judge_channels, judge_exceptions, reach_from, report_context
from .findings import Finding, Result, hash_in_background
from .verdicts import FINDING_VERDICTS, FlowVerdict, Kind, VerdictTable, cross_family, int_to_addr, notable

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..capture.blocks import SharedBlocks
    from ..capture.collect import Harvest
    from .inspect import Inspection
    from .sidecar import HarvestSidecar

MAX_EXAMPLES = 5
MAX_DENIED_CACHE = 200_000
MAX_JUDGE_CACHE = 1 << 16  # addresses and flow kinds remembered by a Judge (a hostile capture has many)
_UNSEEN = object()
_PORT_PROTO_NUMBERS = [p for lo, hi in PORT_PROTOS for p in range(lo, hi + 1)]
UNSEEN_INITIATOR = "initiator not seen (no SYN): the first packet's sender is taken as the initiator"


def read_captures(
    paths: Sequence[str], progress: Progress | None = None, tap: Callable[[Batch], None] | None = None,
    on_file: Callable[[str], None] | None = None, blocks: SharedBlocks | None = None,
) -> tuple[FlowTable, list[Damage], dict[str, int]]:
    """All captures as one observation: one flow table across every file (as columns). ``tap`` sees every batch too
    (content inspection takes its packets there instead of reading the captures again); ``on_file`` is told
    which capture the batches that follow come from; ``blocks``: shared buffers to read into (see
    :func:`~segverify.capture.reader.iter_batches`)."""
    builder = FlowBuilder()
    damage: list[Damage] = []
    for path in paths:
        if not os.path.isfile(path):
            raise InputError(path, "capture file not found")
    task = (progress.add_task("reading", total=sum(os.path.getsize(p) for p in paths), packets=0)
            if progress else None)
    done = 0
    for path in paths:
        mine: list[Damage] = []
        before = builder.packets
        size = os.path.getsize(path)
        if on_file is not None:
            on_file(path)
        try:
            for batch in iter_batches(path, damage=mine, blocks=blocks):
                builder.add(batch)
                if tap is not None:
                    tap(batch)
                if progress is not None and task is not None and len(batch):
                    # a gzip capture's offsets are in the decompressed stream: capped at the file size
                    at = int(batch.pkts["pos"][-1])
                    progress.update(task, completed=done + min(at, size), packets=builder.packets,
                                    description=os.path.basename(path))
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
        done += size
        if mine and mine[0].offset == 0 and mine[0].reason.startswith("not a ") and builder.packets == before:
            raise InputError(path, f"not a pcap or pcapng capture ({mine[0].reason})")
        damage.extend(mine)
    stats = {"packets": builder.packets, "non_ip_packets": builder.non_ip,
             "unattributed_fragments": builder.unattributed_fragments}
    return builder.table(), damage, stats


def progress_bar() -> Progress:
    """Files, bytes, packets and rate on stderr: a month of captures takes a while."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TextColumn("{task.fields[packets]:,} packets"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


class Judge:
    """Decides each flow's verdict from the topology (the model only, never the capture format)."""

    def __init__(self, topo: Topology, ctx: Context | None = None) -> None:
        self.topo = topo
        # a replay asks the rules about a few thousand kinds of flow: a manager that starts small (CUDD grows its
        # cache as it is hit) is set up in 1 ms, where check's starts at the size tens of thousands of rules use
        self.ctx: Context = ctx or build_context(topo, PacketSpace(cache_size=SHARD_CACHE_SIZE,
                                                                   memory_estimate=SHARD_MEMORY_ESTIMATE))
        self.channels, _ = judge_channels(self.ctx)
        self.exceptions, _ = judge_exceptions(self.ctx)
        self._reach: dict[str, dict] = {}
        self._denied_cache: dict[tuple, Any] = {}
        self._reach_valid: dict[tuple[str, str], Any] = {}
        self._paths: dict[tuple[str, str], bool] = {}  # segment pairs: the topology's graph does not change
        self._walk: dict[tuple[str, str], bool] = {}
        self._segments: dict[tuple[int, int | None], str | None] = {}
        self._verdicts: dict[tuple, Kind] = {}
        self._sport_cubes: dict[int, dict[str, bool]] = {}
        self._sport_vars = frozenset(self.ctx.space.vars["sport"])
        self.vlan_segments: dict[int, list[str]] = {}
        for seg in topo.segments.values():
            for v in seg.vlans:
                self.vlan_segments.setdefault(v, []).append(seg.name)

    def segment(self, addr: int, vlan: int | None) -> str | None:
        key = (addr, vlan)
        hit = self._segments.get(key, _UNSEEN)
        if hit is _UNSEEN:
            if len(self._segments) >= MAX_JUDGE_CACHE:
                self._segments.clear()
            hit = self._segments[key] = self._segment(addr, vlan)
        return hit  # type: ignore[return-value]

    def _segment(self, addr: int, vlan: int | None) -> str | None:
        if vlan is not None:
            for name in self.vlan_segments.get(vlan, []):
                if any(p.lo <= addr <= p.hi for p in self.topo.segments[name].prefixes):
                    return name
        return self.ctx.segmap.lookup(addr)

    def judge(self, flow: Flow) -> FlowVerdict:
        a, b, verdict, notes, rules = self.kind(flow)
        v = FlowVerdict(flow, a, b, verdict, list(notes))
        if rules:
            v.no_path = not self.path_exists(a, b)  # type: ignore[arg-type]
            v.denied = v.no_path or self.denied(flow, a, b)  # type: ignore[arg-type]
        return v

    def kind(self, flow: Flow) -> Kind:
        """Everything of a flow's verdict but the rules' answer: the same for the flows of one (addresses, VLAN,
        protocol, destination port, how they were seen), so a client's connections from many source ports are
        judged once (the source port matters only where the initiator is unproven, and is then part of it)."""
        key = (flow.src, flow.dst, flow.vlan, flow.proto, flow.dport, flow.initiator_known, flow.established,
               None if flow.initiator_known else flow.sport)  # fmt: skip
        hit = self._verdicts.get(key)
        if hit is None:
            if len(self._verdicts) >= MAX_JUDGE_CACHE:
                self._verdicts.clear()
            hit = self._verdicts[key] = self._judge(flow)
        return hit

    def judge_table(self, table: FlowTable) -> VerdictTable:
        """Every flow of ``table`` judged as :meth:`judge` judges it, by kind, from the columns: each distinct
        endpoint is mapped to its segment once; a flow inside one family (or with an address in no segment) is
        of a kind that its two segments and how it was seen decide (:meth:`_plain_kind`); one flow of each
        other kind is built and judged (:meth:`kind`); and the rules are asked only about the flows whose kind
        needs it (established, between two segments), for all the flows of a segment pair at once."""
        if not len(table):
            return VerdictTable(table, [], np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool))
        kinds, kind = self._kinds(table)
        denied, no_path = self._denials(table, kinds, kind)
        return VerdictTable(table, kinds, kind, denied, no_path)

    def _kinds(self, table: FlowTable) -> tuple[list[Kind], np.ndarray]:
        """The distinct kinds of the table's flows, and each flow's kind (an index into them)."""
        c = table.cols
        names: dict[str | None, int] = {}  # the segments (None: no segment), numbered as first met
        ends = []
        for end in ("src", "dst"):
            perm, starts, inv = group_rows([c["family"], c[end + "_hi"], c[end + "_lo"], c["vlan"]])
            at = perm[starts]
            segs = [self.segment(addr, vl if vl >= 0 else None)
                    for addr, vl in zip(table.addresses(end, at), c["vlan"][at].tolist(), strict=True)]  # fmt: skip
            ends.append(np.array([names.setdefault(g, len(names)) for g in segs], np.int64)[inv])
        segment = list(names)
        kinds: list[Kind] = []
        kind = np.empty(len(table), np.int64)
        # flows of one (segments, initiator seen, established): one plain kind, or all between two families
        perm, starts, inv = group_rows([ends[0], ends[1], c["initiator_known"], c["established"]])
        cross = np.zeros(len(starts), bool)
        for g, row in enumerate(perm[starts].tolist()):
            plain = self._plain_kind(segment[ends[0][row]], segment[ends[1][row]], bool(c["initiator_known"][row]),
                                     bool(c["established"][row]))  # fmt: skip
            if plain is None:
                cross[g] = True
            else:
                kinds.append(plain)
        kind[:] = (np.cumsum(~cross) - 1)[inv]  # the plain kinds' numbers (the others' are set below)
        rows = np.flatnonzero(cross[inv])
        if len(rows):  # between two families: one flow judged per key of Judge.kind
            unproven = np.where(c["initiator_known"], -1, c["sport"])
            perm, starts, inv = group_rows([x[rows] for x in (
                c["family"], c["src_hi"], c["src_lo"], c["dst_hi"], c["dst_lo"], c["vlan"], c["proto"], c["dport"],
                c["initiator_known"], c["established"], unproven)])  # fmt: skip
            kind[rows] = len(kinds) + inv
            kinds += [self.kind(f) for f in table.flows(rows[perm[starts]])]
        return kinds, kind

    def _denials(self, table: FlowTable, kinds: list[Kind], kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per flow, whether the rules deny it, and whether that is for want of a path (:meth:`judge`'s
        ``denied`` and ``no_path``), asked segment pair by segment pair for the flows whose kind needs it."""
        denied = np.zeros(len(table), bool)
        no_path = np.zeros(len(table), bool)
        pair = [(k[0], k[1]) if k[4] else None for k in kinds]  # each kind's segment pair, where it is asked
        number = {p: i for i, p in enumerate(dict.fromkeys(p for p in pair if p is not None))}
        flow_pair = np.array([-1 if p is None else number[p] for p in pair], np.int64)[kind]
        for (a, b), i in number.items():
            rows = np.flatnonzero(flow_pair == i)
            if not self.path_exists(a, b):  # type: ignore[arg-type]
                denied[rows] = no_path[rows] = True
            else:
                denied[rows] = self._denied_rows(table, rows, a, b)  # type: ignore[arg-type]
        return denied, no_path

    def _denied_rows(self, table: FlowTable, rows: np.ndarray, a: str, b: str) -> np.ndarray:
        """:meth:`denied` for these rows of ``table``, all from segment ``a`` to ``b`` (which a path joins): a
        TCP/UDP packet's membership is walked in one call for all of them (:meth:`PacketSpace.holds_packets`)
        where :meth:`denied_packet` would walk it, the rest one by one."""
        out = np.ones(len(rows), bool)
        reach = self.reach(a).get(b)
        if reach is None:
            return out
        c = table.cols
        proto = c["proto"][rows]
        rest = np.ones(len(rows), bool)
        if self._walkable(a, b, reach):
            ports = np.isin(proto, _PORT_PROTO_NUMBERS)
            at = rows[ports]
            held = self.ctx.space.holds_packets(self._rv(a, b, reach), c["family"][at] == 6, c["src_hi"][at],
                                                c["src_lo"][at], c["dst_hi"][at], c["dst_lo"][at], proto[ports],
                                                c["sport"][at], c["dport"][at])  # fmt: skip
            if held is not None:
                out[ports] = ~held
                rest = ~ports
        one = np.flatnonzero(rest)
        if len(one):
            at = rows[one]
            fields = (table.addresses("src", at), table.addresses("dst", at), c["proto"][at].tolist(),
                      c["sport"][at].tolist(), c["dport"][at].tolist())  # fmt: skip
            for k, src, dst, p, sport, dport in zip(one.tolist(), *fields, strict=True):
                out[k] = self.denied_packet(a, b, src, dst, p, sport, dport)
        return out

    def _judge(self, flow: Flow) -> Kind:
        """A flow's segments, verdict and notes, and whether the rules must be asked about it (established,
        between two segments)."""
        a = self.segment(flow.src, flow.vlan)
        b = self.segment(flow.dst, flow.vlan)
        plain = self._plain_kind(a, b, flow.initiator_known, flow.established)
        if plain is not None:
            return plain
        notes = [UNSEEN_INITIATOR] if not flow.initiator_known else []
        fa, fb = self.ctx.family(a), self.ctx.family(b)  # type: ignore[arg-type]
        covered = self.coverage(flow.src, flow.dst, flow.proto, flow.dport)
        if covered is None and not flow.initiator_known:
            covered = self.coverage(flow.dst, flow.src, flow.proto, flow.sport)
            if covered is not None:
                notes.append("covered only if the responder initiated: direction unproven")
        if covered is not None:
            verdict = covered
        elif "MN" in (fa, fb):
            verdict = "MYNUMBER_FLOW"
        else:
            verdict = "UNSANITIZED_FLOW"
        return a, b, verdict, tuple(notes), a != b and flow.established

    def _plain_kind(self, a: str | None, b: str | None, known: bool, established: bool) -> Kind | None:
        """The kind of a flow with an address in no segment, or inside one family, which nothing else of the flow
        changes; None for a flow between two families."""
        notes = () if known else (UNSEEN_INITIATOR,)
        if a is None or b is None:
            return a, b, "UNKNOWN_ADDRESS", notes, False
        if self.ctx.family(a) == self.ctx.family(b):
            return a, b, "intra-family", notes, a != b and established
        return None

    def coverage(self, src: int, dst: int, proto: int, dport: int) -> str | None:
        for ex in self.exceptions:
            if _between(ex, src, dst) and ports_cover(ex.ports, proto, dport, empty_means_all=True):
                return f"exception:{ex.name}"
        for ch in self.channels:
            if ch_covers(self.topo, ch, src, dst, proto, dport):
                return f"channel:{ch.name}"
        return None

    def reach(self, a: str) -> dict:
        if a not in self._reach:
            self._reach[a] = reach_from(self.ctx, a)
        return self._reach[a]

    def path_exists(self, a: str, b: str) -> bool:
        hit = self._paths.get((a, b))
        if hit is None:
            hit = self._paths[(a, b)] = self.ctx.net.connected(a, b)
        return hit

    def denied(self, flow: Flow, a: str, b: str) -> bool:
        return self.denied_packet(a, b, flow.src, flow.dst, flow.proto, flow.sport, flow.dport)

    def denied_packet(self, a: str, b: str, src: int, dst: int, proto: int, sport: int, dport: int) -> bool:
        """Whether the topology's rules deny this flow's initiating packet on every path from a to b.

        A TCP/UDP packet fixes every packet variable, so with the C module its membership in ``reach & valid``
        is one walk from the root (:meth:`_walkable`). Otherwise ``reach & packet & valid`` is empty exactly
        when the cofactor of ``reach & valid`` on the packet's bits is (a packet is a cube): cofactored in two
        steps, the first cached per (segments, addresses, protocol, destination port), the second on the source
        port alone (~20 µs a flow instead of building a packet BDD, ~0.2 ms), the same answer; an ICMP flow's
        type is free, so it is always cofactored."""
        sp = self.ctx.space
        reach = self.reach(a).get(b)
        if reach is None:
            return True
        if proto in PORT_PROTOS and self._walkable(a, b, reach):
            # a TCP/UDP packet fixes every packet variable (valid zeroes the rest): one walk from the root
            held = sp.holds_packet(self._rv(a, b, reach), src, dst, proto, sport, dport)
            if held is not None:
                return not held
        if proto not in PORT_PROTOS:  # no ICMP type in the flow table: any type the rules allow will do
            key = (a, b, src, dst, proto, -1)
            hit = self._denied_cache.get(key)
            if hit is None:
                pkt = (sp.values("src", IntervalSet.of(src)) & sp.values("dst", IntervalSet.of(dst))
                       & sp.value("proto", proto))
                hit = self._denied_cache[key] = (reach & pkt & sp.valid) == sp.false
            return bool(hit)
        key = (a, b, src, dst, proto, dport)
        base = self._denied_cache.get(key)
        if base is None:
            pkt = Packet(src, dst, proto, sport, dport)
            cube: dict[str, bool] = {}
            for name in FIELD_ORDER:
                if name != "sport":
                    (block,) = sp.blocks(name, IntervalSet.of(pkt.get(name)))
                    cube.update(block)
            base = sp.bdd.let(cube, self._rv(a, b, reach))
            if base == sp.false or self._sport_vars.isdisjoint(sp.bdd.support(base)):
                base = base == sp.false  # the source port does not matter: the answer itself
            self._denied_cache[key] = base
            if len(self._denied_cache) > MAX_DENIED_CACHE:  # hostile captures: bounded, oldest first
                del self._denied_cache[next(iter(self._denied_cache))]
        if base is True or base is False:
            return base
        return sp.bdd.let(self._sport_cube(sport), base) == sp.false

    def _rv(self, a: str, b: str, reach: Any) -> Any:
        rv = self._reach_valid.get((a, b))
        if rv is None:
            rv = self._reach_valid[(a, b)] = reach & self.ctx.space.valid
        return rv

    def _walkable(self, a: str, b: str, reach: Any) -> bool:
        """Whether a packet's membership in ``reach & valid`` is one walk (:meth:`PacketSpace.holds_packet`): the
        C module is there and the set does not depend on interfaces (reach sets never do; checked once)."""
        hit = self._walk.get((a, b))
        if hit is None:
            sp = self.ctx.space
            hit = self._walk[(a, b)] = sp.ops is not None and not sp.depends_on_interfaces(self._rv(a, b, reach))
        return hit

    def _sport_cube(self, sport: int) -> dict[str, bool]:
        cube = self._sport_cubes.get(sport)
        if cube is None:
            (cube,) = self.ctx.space.blocks("sport", IntervalSet.of(sport))
            self._sport_cubes[sport] = cube
        return cube


def _between(ex: ExceptionRule, src: int, dst: int) -> bool:
    return src in ex.src.addresses and dst in ex.dst.addresses


def ports_cover(specs: tuple[PortSpec, ...], proto: int, dport: int, empty_means_all: bool = False) -> bool:
    if not specs:
        return empty_means_all
    return any(spec.proto == proto and (spec.ports is None or dport in spec.ports) for spec in specs)


@lru_cache(maxsize=1024)
def address_set(addresses: tuple[int, ...]) -> frozenset[int]:
    """A host's addresses as a set, built once (asked for every flow and channel)."""
    return frozenset(addresses)


def ch_covers(topo: Topology, ch: Channel, src: int, dst: int, proto: int, dport: int) -> bool:
    """Whether a permitted channel makes this initiating flow legal (direction and ports)."""
    if ch.clients is not None and ch.servers is not None:
        return src in ch.clients.addresses and dst in ch.servers.addresses and ports_cover(ch.ports, proto, dport)
    sanitizer = address_set(topo.hosts[ch.sanitizer or ""].addresses)
    for leg in (ch.inbound, ch.outbound):
        if leg is None or not ports_cover(leg.ports, proto, dport):
            continue
        if (src in sanitizer and dst in leg.peers.addresses) or (dst in sanitizer and src in leg.peers.addresses):
            return True
    return False


def replay(topo: Topology, captures: Sequence[str], show_progress: bool = False, ctx: Context | None = None,
           digests: dict[str, Future[str]] | None = None, last: bool = False) -> Result:  # fmt: skip
    """``segverify replay``; ``ctx``: the topology's compiled context, when the caller already has it;
    ``digests``: the captures' digests, when the caller started them (:func:`~.findings.hash_in_background`);
    ``last``: the process ends once the result is reported (the command line): the garbage collector is left
    off after the captures are read, and the result holds what the run built (:attr:`Result.retain`), where
    switching the collector back on cost a collection of every object, and freeing the flows and the shared
    buffers as much again, before the report was written."""
    from . import sidecar
    from .inspect import harvester

    judge = Judge(topo, ctx)
    harvest = harvester(topo, judge.channels, lambda addr: judge.segment(addr, None))
    # the harvest and the inspection on the second core, when a process can be forked (before any thread runs)
    side = (sidecar.HarvestSidecar(harvest, topo, judge.channels, judge.segment)
            if harvest and sidecar.available() else None)  # fmt: skip
    if digests is None:
        digests = hash_in_background(captures)  # beside the reading (a forked process on Linux)
    tap = side.add if side is not None else harvest.add if harvest is not None else None
    on_file = side.file if side is not None else None
    blocks = side.blocks if side is not None else None
    # The topology, its compiled rules and segverify's modules live to the end: collections while the captures
    # are read need not walk them (frozen); and from the flow table on, only long-lived objects are made (the
    # flows, their verdicts and rows: no cycles), which the collector walked three times over at 1M packets.
    with frozen_gc(restore=not last) as freeze, pausable_gc(restore=not last) as pause:
        freeze()
        try:
            if show_progress:
                with progress_bar() as bar:
                    flows, damage, stats = read_captures(captures, bar, tap, on_file, blocks)
            else:
                flows, damage, stats = read_captures(captures, tap=tap, on_file=on_file, blocks=blocks)
            pause()
            if side is not None:
                side.flows(flows)  # the side plans and inspects while the verdicts are made here
            verdicts = judge.judge_table(flows)
        except BaseException:
            if side is not None:
                side.close()
            raise
        result = _finish(topo, judge, captures, verdicts, damage, stats, harvest, side, digests)
    if last:  # left to the process's end (see Result.retain): freeing the flow table object by object and the
        result.retain = (flows, verdicts, judge, side)  # side's shared buffers took 0.02 s before the report
    return result


def _finish(topo: Topology, judge: Judge, captures: Sequence[str], verdicts: VerdictTable,
            damage: list[Damage], stats: dict[str, int], harvest: Harvest | None, side: HarvestSidecar | None,
            digests: dict[str, Future[str]]) -> Result:  # fmt: skip
    """:func:`replay` once the flows are judged: the inspection's findings, and the report.

    The report's order and every flow's row are made from the verdicts as judged (while the side inspects, when
    there is one); inspection changes only the verdicts it inspects, whose rows are made again after it."""
    from ..report.rows import RenderedRows
    from .inspect import inspect_channels, planned_among

    if side is not None:
        index, work = side.planned(topo, judge.channels, verdicts)
    else:
        among = harvest.flow_candidates(verdicts.flows) if harvest is not None else None
        index, work = planned_among(topo, judge.channels, verdicts, among)
    order = report_order(verdicts)
    texts = verdicts.row_texts()
    if side is not None:
        inspection = side.inspect(topo, judge.channels, verdicts, captures)
    else:
        inspection = inspect_channels(topo, judge.channels, verdicts, captures, harvest, work=work)
    for i in index:
        texts[i] = verdicts[i].row_bytes()
    result = assemble(topo, judge, captures, verdicts, damage, stats, inspection, order=order,
                      flow_rows=lambda order: RenderedRows([texts[i] for i in order]))
    result.digests.update(digests)
    return result


def assemble(topo: Topology, judge: Judge, captures: Sequence[str], verdicts: list[FlowVerdict],
             damage: list[Damage], stats: dict[str, int], inspection: Inspection,
             more_incomplete: Sequence[str] = (), result_type: type[Result] = Result,
             flow_rows: Callable[[list[int]], Sequence[dict[str, Any]]] | None = None,
             order: list[int] | None = None) -> Result:
    """The report from judged flows, damage and content inspection: shared by the one-process and the
    cluster paths, so that both give the same result from the same flow table.

    ``flow_rows`` gives the report's flow rows for the verdicts at these indices, in this order (a cluster's
    workers rendered them already); by default each verdict's ``to_json``. ``order``: the verdicts' indices in
    the report's order when the caller knows it (a flow table sorts its columns); by default sorted here."""
    findings: list[Finding] = []
    findings += flow_findings(judge, verdicts)
    findings += unknown_address_findings(verdicts)
    incomplete: list[str] = []
    real_damage = [d for d in damage if not d.reason.startswith("resynchronised")]
    if real_damage:
        findings += damage_findings(real_damage)
        incomplete.append(f"{len(real_damage)} damaged region(s) in the captures: what they held was not judged")
    if stats.get("unattributed_fragments"):
        incomplete.append(
            f"{stats['unattributed_fragments']} IP fragment(s) belong to datagrams whose first fragment (the one "
            "with the ports) is not in the captures: the flow they belong to is unknown and was not judged"
        )
    findings += inspection.findings
    incomplete += inspection.incomplete
    incomplete += more_incomplete
    findings.sort(key=Finding.sort_key)
    stats = dict(stats)
    stats.update({
        "captures": len(captures),
        "flows": len(verdicts),
        "cross_family_flows": cross_family(verdicts),
        "damaged_regions": len(real_damage),
    })
    if order is None:
        order = report_order(verdicts)
    rows = flow_rows(order) if flow_rows is not None else [verdicts[i].to_json() for i in order]
    inputs = list(topo.inputs) + list(captures)
    return result_type("replay", findings, inputs, stats, incomplete, title=topo.name,
                       extra={"model": topo.model, "flows": rows},
                       context=report_context(topo))


def report_order(verdicts: Sequence[FlowVerdict]) -> list[int]:
    """The verdicts' indices in the report's order (first time, then the 5-tuple and the reuse count)."""
    if isinstance(verdicts, VerdictTable):
        return verdicts.flows.report_order()
    return sorted(range(len(verdicts)), key=lambda i: _report_order(verdicts[i].flow))


def _report_order(f: Flow) -> tuple:
    return (f.first_ts, f.src, f.dst, f.sport, f.dport, f.proto, f.reuse)


def flow_findings(judge: Judge, verdicts: list[FlowVerdict]) -> list[Finding]:
    """One finding per (code, source segment, destination segment, protocol, port), with the
    number of flows and the first one as the example: a month of captures stays readable."""
    groups: dict[tuple, list[FlowVerdict]] = {}
    for v in notable(verdicts):
        if v.verdict in FINDING_VERDICTS:
            groups.setdefault((v.verdict, v.src_segment, v.dst_segment, v.flow.proto, v.flow.dport), []).append(v)
        if v.denied:
            groups.setdefault(("DENIED_BUT_OBSERVED", v.src_segment, v.dst_segment, v.flow.proto, v.flow.dport),
                              []).append(v)
    out: list[Finding] = []
    for (code, a, b, proto, dport), members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        first = min(members, key=lambda v: v.flow.first_ts)
        f = first.flow
        service = f"{PROTO_NAMES.get(proto, proto)}/{dport}" if proto in PORT_PROTOS else PROTO_NAMES.get(proto, proto)
        example = f"{int_to_addr(f.src)}:{f.sport} → {int_to_addr(f.dst)}:{f.dport}"
        n = len(members)
        fa, fb = judge.ctx.family(a), judge.ctx.family(b)
        if code == "MYNUMBER_FLOW":
            severity = "critical"
            en = f"{n} flow(s) {a} ({fa}) → {b} ({fb}) on {service} that no exception covers, e.g. {example}"
            ja = (f"{a}（{fa}）から {b}（{fb}）への {service} の通信 {n} 件は例外として宣言されていません"
                  f"（例: {example}）")
        elif code == "UNSANITIZED_FLOW":
            severity = "high"
            en = f"{n} flow(s) {a} ({fa}) → {b} ({fb}) on {service} that no sanitization channel covers, e.g. {example}"
            ja = (f"{a}（{fa}）から {b}（{fb}）への {service} の通信 {n} 件は無害化通信として宣言されていません"
                  f"（例: {example}）")
        elif first.no_path:
            severity = "high"
            en = (f"{n} established flow(s) {a} → {b} on {service}, but no firewall, router or host in the "
                  f"topology joins these segments, e.g. {example}: the network is not the one on paper")
            ja = (f"{a} から {b} への {service} の確立済み通信 {n} 件を観測しましたが、トポロジ上この2つのセグメントを"
                  f"結ぶ機器がありません（例: {example}）。実際のネットワークが文書と一致していません")
        else:
            severity = "high"
            en = (f"{n} established flow(s) {a} → {b} on {service} that the topology's firewall rules deny, "
                  f"e.g. {example}: the running firewall is not the one on paper")
            ja = (f"{a} から {b} への {service} の確立済み通信 {n} 件は、トポロジのファイアウォールルールでは拒否される"
                  f"はずのものです（例: {example}）。稼働中の設定が文書と一致していません")
        if not first.flow.initiator_known:
            en += " (initiator not seen: direction provisional)"
            ja += "（通信開始を観測していないため、方向は推定）"
        examples = [m.finding_flow() for m in sorted(members, key=lambda v: v.flow.first_ts)[:MAX_EXAMPLES]]
        out.append(Finding(code, severity, en, ja, a, b, flow=first.finding_flow(),
                           extra={"flows": n, "examples": examples}))
    return out


def unknown_address_findings(verdicts: list[FlowVerdict]) -> list[Finding]:
    unknown: dict[int, list[FlowVerdict]] = {}
    for v in notable(verdicts):
        if v.src_segment is None:
            unknown.setdefault(v.flow.src, []).append(v)
        if v.dst_segment is None:
            unknown.setdefault(v.flow.dst, []).append(v)
    out = []
    for addr in sorted(unknown):
        members = unknown[addr]
        text = int_to_addr(addr)
        first = members[0]
        out.append(Finding(
            "UNKNOWN_ADDRESS", "medium",
            f"address {text} belongs to no segment; {len(members)} flow(s) could not be judged",
            f"アドレス {text} はどのセグメントにも属さないため、{len(members)} 件の通信を判定できません",
            first.src_segment, first.dst_segment, flow=first.finding_flow(),
            extra={"address": text, "flows": len(members)},
        ))
    return out


def damage_findings(damage: list[Damage]) -> list[Finding]:
    by_file: dict[str, list[Damage]] = {}
    for d in damage:
        by_file.setdefault(str(d.path), []).append(d)
    out = []
    for path in sorted(by_file):
        items = by_file[path]
        first = items[0]
        out.append(Finding(
            "CAPTURE_DAMAGED", "low",
            f"{path}: {len(items)} damaged region(s), first at byte {first.offset}: {first.reason}",
            f"{path}: 破損箇所 {len(items)} 件（最初はバイト位置 {first.offset}: {first.reason}）",
            extra={"capture": path, "regions": [{"offset": d.offset, "reason": d.reason} for d in items[:50]],
                   "regions_total": len(items)},
        ))
    return out

