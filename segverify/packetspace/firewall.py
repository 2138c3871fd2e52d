"""A firewall's ordered rules as one exact decision: which packets it lets through, per interface pair.

First match wins: the set a rule really decides is its match minus everything matched above it.
Those effective sets are kept per rule, so the analysis can tell which rule lets a packet through,
which rules can never match (fully shadowed), and which rules a violation depends on.

Large rule sets are compiled in shards. The packet space is cut along its top variables into cells,
one per (ingress interface, egress interface, protocol) that some rule names exactly (split into
destination blocks when one holds many rules), plus the rest; first match within one cell depends
only on the rules' parts inside it, so each group of cells (a shard) runs the first-match loop over
its own rules in its own small CUDD manager. A shard's nodes
stay in the processor's cache where one manager of the whole rule set does not: at 10k rules the
loop ran 2.5x faster in 16 shards than in one manager, before any parallelism. With the compiled
loops (``kernel``), which release the GIL, two threads build two shards at once. The decision
(``allowed``) moves to the analysis manager; each rule's effective set stays in its shard, where the
questions about it (which rules touch a region, which rules are shadowed) are asked.
"""

from __future__ import annotations

import contextlib
import functools
import os
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..model.addresses import ALL_ADDRESSES, V4_SIZE, V6_BASE, IntervalSet
from ..model.gcpause import paused_gc
from ..model.rules import And, Expr, FieldIn, Rule, RuleSet
from . import kernel
from .space import BDD, PacketSpace, Run

# Regions larger than this (BDD nodes) are tested with ``PacketSpace.meets``, smaller ones with an AND.
MEETS_ABOVE = 2_000
# The Python first-match loop calls ``PacketSpace.gc_checkpoint`` every 256 rules (a mask on the index);
# the compiled loop is called in chunks of this many rules, with a checkpoint between them.
GC_CHECK_MASK = 255
C_CHUNK = 4096
# Rule sets smaller than this compile in the analysis manager itself (no shard to set up or copy from).
SHARD_MIN_RULES = 2_000
# The split aims at about this many rules per shard (measured at 10k rules: 600 per shard ran the loop in
# 0.7 s against 1.7 s in one manager, 5,000 per shard no faster than one manager).
SHARD_RULES = 600
MAX_SHARDS = 64
MAX_PARTS = 6  # parts per rule, on average, beyond which a rule set is not cut (see _plan_shards)
MAX_THREADS = 4

# (ingress interface index, egress interface index, protocol, lowest and highest destination of a block)
Cell = tuple[int, int, int, int, int]
REST: Cell = (-1, -1, -1, -1, -1)  # every packet in no named cell
ANY = -2  # a cell's interfaces when cells are by protocol alone
ALL_LO, ALL_HI = ALL_ADDRESSES.intervals[0][0], ALL_ADDRESSES.intervals[-1][1]


@dataclass
class Shard:
    """The rules' parts inside some cells, compiled in one manager (``space``).

    ``rules[k]`` is the rule of the k-th part; ``matches`` and ``effective`` are that part's match and
    what it decides (its match minus every earlier part here).
    """

    space: PacketSpace
    rules: list[int]
    matches: list[BDD]
    effective: list[BDD]
    allowed: BDD  # what this shard's cells let through, the default's share included
    decided: BDD
    cells: list[Cell] | None  # None: every packet (a rule set compiled whole)

    @functools.cached_property
    def pairs(self) -> frozenset[tuple[int, int]] | None:
        """The interface pairs of its cells; None when any pair may have packets here (the rest, cells by
        protocol alone, or the whole rule set)."""
        cells = self.cells
        if cells is None or any(c == REST or c[0] == ANY for c in cells):
            return None
        return frozenset((c[0], c[1]) for c in cells)

    def holds_pair(self, in_index: int, out_index: int) -> bool:
        return self.pairs is None or (in_index, out_index) in self.pairs


@dataclass
class CompiledRuleSet:
    space: PacketSpace  # the analysis manager: ``allowed`` and everything ``hop`` returns live here
    ruleset: RuleSet
    iface_index: dict[str, int]
    allowed: BDD  # over interface and packet variables
    shards: list[Shard]
    placement: list[tuple[tuple[int, int], ...]]  # per rule: (shard, part) of each of its parts
    named: list[Cell] = field(default_factory=list)  # every cell some shard holds, but the rest
    _decided: BDD | None = None
    _regions: dict[int, BDD] = field(default_factory=dict)
    _hops: dict[tuple[str, str], BDD] = field(default_factory=dict)
    _candidates: dict[tuple[int, int, int, str | None], list[int]] = field(default_factory=dict)

    @property
    def decided(self) -> BDD:
        """Everything some rule matches (the rest falls to the default), in the analysis manager."""
        if self._decided is None:
            out = self.space.false
            for shard in self.shards:
                (part,) = self.space.bring([shard.decided], shard.space)
                out = out | part
            self._decided = out
        return self._decided

    def hop(self, in_iface: str, out_iface: str) -> BDD:
        """Packets let through from ``in_iface`` to ``out_iface`` (packet variables only)."""
        key = (in_iface, out_iface)
        hit = self._hops.get(key)
        if hit is None:
            hit = self.space.restrict_interfaces(
                self.allowed, self.iface_index[in_iface], self.iface_index[out_iface]
            )
            self._hops[key] = hit
        return hit

    def interfaces(self, in_iface: str, out_iface: str) -> BDD:
        sp = self.space
        return sp.interface("in_if", self.iface_index[in_iface]) & sp.interface(
            "out_if", self.iface_index[out_iface]
        )

    def rule_hop(self, index: int, in_iface: str, out_iface: str) -> BDD:
        """What rule ``index`` decides from ``in_iface`` to ``out_iface`` (packet variables only)."""
        sp = self.space
        out = sp.false
        for s, k in self.placement[index]:
            shard = self.shards[s]
            (part,) = sp.bring([shard.effective[k]], shard.space)
            out = out | part
        return sp.restrict_interfaces(out, self.iface_index[in_iface], self.iface_index[out_iface])

    def rules_touching(self, region: BDD, in_iface: str, out_iface: str, action: str | None = None) -> list[int]:
        """Indices of the rules whose effective set meets ``region`` on one interface pair.

        Asked in each shard holding that pair, with the region copied there. One intersection test
        per candidate rule; rules that cannot apply to the interface pair are skipped without a BDD
        operation. Against a large region the test is ``PacketSpace.meets`` (no BDD built, stops at
        the first common packet: 6x faster than an AND on the 10k-rule bench); against a small one a
        plain AND, which costs a microsecond where ``meets`` has a fixed 25 us (TUM_Net: 700k tests,
        18 s with ``meets`` alone). (A tree of unions over the rules was tried: its upper nodes are
        as large as the whole rule base, and testing them against a large region cost four times more.)
        """
        i, o = self.iface_index[in_iface], self.iface_index[out_iface]
        region_io = region & self.interfaces(in_iface, out_iface)
        if region_io == self.space.false:
            return []
        found: set[int] = set()
        for s, shard in enumerate(self.shards):
            if not shard.holds_pair(i, o):
                continue
            candidates = self._shard_candidates(s, i, o, action, in_iface, out_iface)
            if not candidates:
                continue
            part = region_io & self._home_region(s)  # only this shard's cells travel
            if part == self.space.false:
                continue
            sp = shard.space
            (local,) = sp.bring([part], self.space)
            effective, rules = shard.effective, shard.rules
            if local.dag_size > MEETS_ABOVE:
                meets = sp.meets
                found.update(rules[k] for k in candidates if meets(effective[k], local))
            else:
                false = sp.false
                found.update(rules[k] for k in candidates if (effective[k] & local) != false)
        return sorted(found)

    def _home_region(self, s: int) -> BDD:
        """Shard ``s``'s cells as a set of the analysis manager."""
        hit = self._regions.get(s)
        if hit is None:
            cells = self.shards[s].cells
            hit = self.space.true if cells is None else _region(self.space, cells, self.named)
            self._regions[s] = hit
        return hit

    def _shard_candidates(self, s: int, i: int, o: int, action: str | None, in_iface: str,
                          out_iface: str) -> list[int]:
        """Parts of shard ``s`` whose rule applies to the pair (with this action) and decides something there."""
        key = (s, i, o, action)
        hit = self._candidates.get(key)
        if hit is None:
            shard = self.shards[s]
            rules = self.ruleset.rules
            false = shard.space.false
            hit = [
                k for k, r in enumerate(shard.rules)
                if (action is None or rules[r].action == action) and rules[r].applies(in_iface, out_iface)
                and shard.effective[k] != false
            ]
            self._candidates[key] = hit
        return hit

    def shadowed(self) -> list[int]:
        """Indices of rules that could match some packet but never get to: earlier rules take all of it.

        A rule whose own match is empty (one that only accepts replies, say) is not shadowed: it
        matches no initiating packet by design. See ``never_matching``.
        """
        shards = self.shards
        out = []
        for index, parts in enumerate(self.placement):
            matches = decides = False
            for s, k in parts:
                shard = shards[s]
                false = shard.space.false
                matches = matches or shard.matches[k] != false
                if shard.effective[k] != false:
                    decides = True
                    break
            if matches and not decides:
                out.append(index)
        return out

    def shadowing_rule(self, index: int, limit: int = 2000) -> int | None:
        """An earlier rule that alone covers rule ``index`` (the usual cause of shadowing), if any.

        Rules bound to other interfaces than rule ``index`` cannot cover it and are skipped
        without a BDD operation (rule matches are small: a plain AND is the cheapest test). The
        cover is tested shard by shard: within each shard holding part of rule ``index``, the
        earlier rule's part must cover it.
        """
        rules = self.ruleset.rules
        mine_rule = rules[index]
        mine = [(s, k) for s, k in self.placement[index] if self.shards[s].matches[k] != self.shards[s].space.false]
        skip = bool(mine)  # an empty match is covered by anything: test every rule
        for j in range(index - 1, max(-1, index - 1 - limit), -1):
            if skip and _disjoint_ifaces(mine_rule, rules[j]):
                continue
            theirs = dict(self.placement[j])
            if all(s in theirs and self._covers(s, theirs[s], k) for s, k in mine):
                return j
        return None

    def _covers(self, s: int, big: int, small: int) -> bool:
        shard = self.shards[s]
        return (shard.matches[small] & ~shard.matches[big]) == shard.space.false


def _disjoint_ifaces(a: Rule, b: Rule) -> bool:
    """True when no interface pair is bound by both rules, so neither can cover the other's (non-empty) match."""
    for x, y in ((a.in_ifaces, b.in_ifaces), (a.out_ifaces, b.out_ifaces)):
        if x is not None and y is not None and x.isdisjoint(y):
            return True
    return False


IfaceRuns = dict[tuple[str, frozenset[str]], tuple[tuple[Run, ...], IntervalSet]]


def rule_literals(space: PacketSpace, rule: Rule, iface_index: dict[str, int],
                  iface_runs: IfaceRuns | None = None) -> tuple[bytes, list[BDD]] | None:
    """A rule's match including its interface conditions, restricted to ``valid_shape``, as
    ``PacketSpace.rule_literals`` gives it: one row of literals (the whole match, for a typical
    rule) and the sets to AND on; None when it matches nothing.

    ``iface_runs`` caches the runs of each interface list (rule sets repeat a few of them; the
    runs hold no BDD, so shards share the cache).
    """
    runs: list[Run] = []
    extra: list[BDD] = []
    for field_name, names in (("in_if", rule.in_ifaces), ("out_if", rule.out_ifaces)):
        if names is None:
            continue
        key = (field_name, names)
        got = iface_runs.get(key) if iface_runs is not None else None
        if got is None:
            values = IntervalSet.of(*(iface_index[n] for n in names if n in iface_index))
            got = (space.runs(field_name, values), values)
            if iface_runs is not None:
                iface_runs[key] = got
        field_runs, values = got
        if not field_runs:
            return None
        if len(field_runs) == 1:
            runs.append(field_runs[0])
        else:
            extra.append(space.values(field_name, values))
    match = rule.match
    parts: tuple[Expr, ...] = match.parts if isinstance(match, And) else (match,)
    return space.rule_literals(parts, runs, extra)


def first_match(space: PacketSpace, matches: list[BDD], allow: bytes) -> tuple[list[BDD], BDD, BDD]:
    """First match over ``matches`` in order: (each one's effective set, allowed, decided).

    Two BDD operations per rule against the growing union (the effective set, then the union
    itself); a rule whose effective set is empty changes nothing and costs nothing more. Runs of
    consecutive allow rules are merged into ``allowed`` once per run: their effective sets are
    disjoint and small, so their union is cheap, and one operation against the large ``allowed``
    replaces one per rule. The compiled loop (``kernel``) does the same operations in C.
    (Measured and rejected: a balanced tree of unions, no faster at 10k rules and 30% slower at
    50k; building the decision bottom-up with one ITE per rule, 2x slower than the union here;
    merging a run with one ITE over the unions before and after it, 5x slower; computing the
    effective set and the new union in one recursive pass, 30% slower than the two operations.)
    """
    ops = space.ops
    if ops is not None:
        return _first_match_compiled(space, ops, matches, allow)
    false = space.false
    decided = allowed = run = false
    effective: list[BDD] = []
    for index, m in enumerate(matches):
        if not index & GC_CHECK_MASK:
            space.gc_checkpoint()  # within ``PacketSpace.gc_deferred``: keep its budget
        eff = m & ~decided
        effective.append(eff)
        if eff == false:
            continue
        if allow[index]:
            run = run | eff
        elif run != false:
            allowed = allowed | run
            run = false
        decided = decided | eff
    return effective, allowed | run, decided


def _first_match_compiled(space: PacketSpace, ops: object, matches: list[BDD],
                          allow: bytes) -> tuple[list[BDD], BDD, BDD]:
    """``first_match`` in C, in chunks with a garbage-collection checkpoint between them; the GIL is
    released inside each chunk."""
    bdd, manager = space.bdd, space.manager
    nodes = kernel.pointers(matches)
    out = array("Q", bytes(8 * len(nodes)))
    state = None
    start = 0
    try:
        for start in range(0, len(nodes), C_CHUNK):
            space.gc_checkpoint()
            stop = min(start + C_CHUNK, len(nodes))
            state = ops.first_match(manager, nodes[start:stop], allow[start:stop],  # type: ignore[attr-defined]
                                    memoryview(out)[start:stop], state)
    except MemoryError:  # the failed chunk released its own references; release the earlier chunks'
        ops.deref(manager, out[:start])  # type: ignore[attr-defined]
        raise
    if state is None:
        return [], space.false, space.false
    effective = kernel.wrap(ops, bdd, manager, out)  # type: ignore[arg-type]
    allowed, decided, run = kernel.wrap(ops, bdd, manager, state)  # type: ignore[arg-type]
    return effective, allowed | run, decided


def compile_ruleset(space: PacketSpace, ruleset: RuleSet, interfaces: list[str]) -> CompiledRuleSet:
    """First match, rule by rule: each rule decides its match minus everything decided above it.

    Small rule sets compile in ``space`` itself; large ones in shards (see the module's docstring).
    """
    iface_index = {name: i for i, name in enumerate(interfaces)}
    if len(iface_index) > 1 << space.widths["in_if"]:
        raise ValueError(f"too many interfaces ({len(iface_index)}) for the packet space")
    rules = ruleset.rules
    plan = _plan_shards(ruleset, iface_index) if len(rules) >= SHARD_MIN_RULES else None
    if plan is None:
        shards = [_compile_shard(space, ruleset, iface_index, list(range(len(rules))), None, None)]
    else:
        shards = _compile_shards(space, ruleset, iface_index, plan)
    placement: list[list[tuple[int, int]]] = [[] for _ in rules]
    for s, shard in enumerate(shards):
        for k, r in enumerate(shard.rules):
            placement[r].append((s, k))
    allowed = space.false
    for shard in shards:
        (part,) = space.bring([shard.allowed], shard.space)
        allowed = allowed | part
    named = [] if plan is None else [c for cells in plan.cells for c in cells if c != REST]
    return CompiledRuleSet(space, ruleset, iface_index, allowed, shards, [tuple(p) for p in placement], named)


@dataclass
class _Plan:
    """Which cells go to which shard, and which shards each rule has a part in."""

    cells: list[list[Cell]]  # per shard
    parts: list[list[int]]  # per shard: its rules, in order
    whole: list[set[int]]  # per shard: rules entirely inside it (their match needs no cut)


def _group_of(rule: Rule, iface_index: dict[str, int], by_pair: bool) -> tuple[int, int, int] | None:
    """(ingress, egress, protocol) when a rule names exactly one of each, else None (a general rule).

    Without ``by_pair`` (a rule set that mostly binds no interface pair) only the protocol counts, and
    the group is (ANY, ANY, protocol)."""
    proto = _field(rule, "proto")
    if proto is None or proto.size() != 1:
        return None
    if not by_pair:
        return (ANY, ANY, proto.intervals[0][0])
    ins, outs = rule.in_ifaces, rule.out_ifaces
    if ins is None or outs is None or len(ins) != 1 or len(outs) != 1:
        return None
    i, o = iface_index.get(next(iter(ins))), iface_index.get(next(iter(outs)))
    if i is None or o is None:
        return None
    return (i, o, proto.intervals[0][0])


def _field(rule: Rule, name: str) -> IntervalSet | None:
    """The values a rule's match confines field ``name`` to by a top-level test, None when it has none."""
    match = rule.match
    for part in match.parts if isinstance(match, And) else (match,):
        if type(part) is FieldIn and part.field == name:
            return part.values
    return None


def _dst_blocks(dsts: list[IntervalSet | None], weight: int) -> list[tuple[int, int]]:
    """Cut one (pair, protocol) group's destinations into aligned blocks, a few hundred rules to a block.

    The smallest aligned block holding every rule's destinations is split into 2**k equal blocks,
    as many as the group's weight asks; a group of mixed families or with an unrestricted rule
    stays whole (one block: every address).
    """
    whole = [(ALL_LO, ALL_HI)]
    k = (weight - 1) // SHARD_RULES
    if k < 1 or any(d is None or not d for d in dsts):
        return whole
    lo = min(d.intervals[0][0] for d in dsts)  # type: ignore[union-attr]
    hi = max(d.intervals[-1][1] for d in dsts)  # type: ignore[union-attr]
    base, width = (0, 32) if hi < V4_SIZE else (V6_BASE, 128) if lo >= V6_BASE else (None, 0)
    if base is None:
        return whole
    common = width - ((lo - base) ^ (hi - base)).bit_length()  # bits of the smallest block holding both
    cut = min(k.bit_length(), width - common)
    if cut < 1:
        return whole
    size = 1 << (width - common - cut)
    first = base + (((lo - base) >> (width - common)) << (width - common))
    return [(first + n * size, first + (n + 1) * size - 1) for n in range(1 << cut)]


def _plan_shards(ruleset: RuleSet, iface_index: dict[str, int]) -> _Plan | None:
    """Cut a large rule set into shards of about ``SHARD_RULES`` rules, or None when it has too few cells.

    Cells by interface pair and protocol, or by protocol alone (an iptables rule set without -i/-o, say),
    whichever cuts the rules into fewer parts; none at all when both would cut them into more than
    ``MAX_PARTS`` parts per rule on average (each part is a rule's worth of work: the cut would cost more
    than the shards save)."""
    rules = ruleset.rules
    dst_of = {n: _field(rules[n], "dst") for n in range(len(rules))}
    best: tuple[int, dict[int, list[Cell]], dict[Cell, int], list[int]] | None = None
    for by_pair in (True, False):
        groups: dict[tuple[int, int, int], list[int]] = {}
        general: list[int] = []
        for n, r in enumerate(rules):
            g = _group_of(r, iface_index, by_pair)
            if g is None:
                general.append(n)
            else:
                groups.setdefault(g, []).append(n)
        budget = MAX_PARTS * len(rules) if best is None else best[0] - 1
        got = _homes(rules, iface_index, groups, general, dst_of, budget)
        if got is not None:
            homes, weight = got
            best = (sum(map(len, homes.values())), homes, weight, general)
            if best[0] <= len(rules) + len(rules) // 4:  # hardly anything cut: look no further
                break
    if best is None:
        return None
    _, homes, weight, general = best
    weight[REST] = len(general)  # also without general rules: the default decides the rest of the space
    n_shards = min(MAX_SHARDS, len(weight), -(-sum(weight.values()) // SHARD_RULES))
    if n_shards < 2:
        return None
    # Largest cells first, each to the lightest shard so far (ties: the lower shard); cells in sorted order.
    load = [0] * n_shards
    cells: list[list[Cell]] = [[] for _ in range(n_shards)]
    shard_of: dict[Cell, int] = {}
    for c in sorted(weight, key=lambda c: (-weight[c], c)):
        s = min(range(n_shards), key=load.__getitem__)
        load[s] += weight[c]
        cells[s].append(c)
        shard_of[c] = s
    parts: list[list[int]] = [[] for _ in range(n_shards)]
    whole: list[set[int]] = [set() for _ in range(n_shards)]
    for n in range(len(rules)):
        shards = sorted({shard_of[c] for c in homes[n]})
        for s in shards:
            parts[s].append(n)
        if len(homes[n]) == 1:  # one named cell holds all of it: no cut needed
            whole[shards[0]].add(n)
    return _Plan(cells, parts, whole)


def _homes(rules: tuple[Rule, ...], iface_index: dict[str, int], groups: dict[tuple[int, int, int], list[int]],
           general: list[int], dst_of: dict[int, IntervalSet | None],
           budget: int) -> tuple[dict[int, list[Cell]], dict[Cell, int]] | None:
    """The cells each rule has a part in, and the parts per cell; None once there are more than ``budget``
    parts (planning stops there: it is the general rules times the cells)."""
    # Each group's cells; each of its rules has a part in every cell its destinations reach.
    homes: dict[int, list[Cell]] = {}
    weight: dict[Cell, int] = {}
    for g, members in groups.items():
        blocks = _dst_blocks([dst_of[n] for n in members], len(members))
        cells = [(*g, lo, hi) for lo, hi in blocks]
        if len(cells) == 1:
            for n in members:
                homes[n] = cells
            weight[cells[0]] = len(members)
            continue
        first, size = blocks[0][0], blocks[0][1] - blocks[0][0] + 1
        for n in members:  # the blocks from its lowest destination's to its highest's
            d = dst_of[n].intervals  # type: ignore[union-attr]
            homes[n] = cells[(d[0][0] - first) // size:(d[-1][1] - first) // size + 1]
            for c in homes[n]:
                weight[c] = weight.get(c, 0) + 1
    # A general rule has a part in every named cell its interfaces, protocols and destinations allow,
    # and in the rest.
    parts = sum(weight.values())  # the specific rules' parts so far
    if parts > budget:
        return None
    named = list(weight)
    by_group: dict[tuple[int, int, int], list[Cell]] = {}  # a firewall of many interfaces has thousands of cells
    for c in named:
        by_group.setdefault(c[:3], []).append(c)
    for n in general:
        r = rules[n]
        ins = None if r.in_ifaces is None else {iface_index[x] for x in r.in_ifaces if x in iface_index}
        outs = None if r.out_ifaces is None else {iface_index[x] for x in r.out_ifaces if x in iface_index}
        protos = _field(r, "proto")
        reached = [g for g in by_group
                   if (ins is None or g[0] == ANY or g[0] in ins) and (outs is None or g[1] == ANY or g[1] in outs)
                   and (protos is None or g[2] in protos)]
        dst = dst_of[n]
        homes[n] = [c for g in reached for c in by_group[g] if _meets(dst, c)] + [REST]
        for c in homes[n][:-1]:
            weight[c] += 1
        parts += len(homes[n])
        if parts > budget:
            return None
    return homes, weight


def _meets(dst: IntervalSet | None, cell: Cell) -> bool:
    if dst is None or (cell[3], cell[4]) == (ALL_LO, ALL_HI):
        return True
    return bool(dst.intersection(IntervalSet.interval(cell[3], cell[4])))


def _compile_shards(home: PacketSpace, ruleset: RuleSet, iface_index: dict[str, int], plan: _Plan) -> list[Shard]:
    named = [c for cells in plan.cells for c in cells if c != REST]

    iface_runs: IfaceRuns = {}  # no BDD in it: the shards share it

    def build(s: int) -> Shard:
        return _compile_shard(home.sibling(), ruleset, iface_index, plan.parts[s], plan.cells[s], named,
                              plan.whole[s], iface_runs)

    n = len(plan.cells)
    threads = min(MAX_THREADS, n, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if home.ops is None or threads < 2:  # dd holds the GIL: threads would only take turns
        return [build(s) for s in range(n)]
    # Each manager is touched only by the thread building its shard. The cyclic collector stays off
    # meanwhile: run from one thread, it could free a handle of a shard another thread is compiling in C.
    with paused_gc(), ThreadPoolExecutor(threads, thread_name_prefix="segverify-shard") as pool:
        return list(pool.map(build, range(n)))


def _compile_shard(space: PacketSpace, ruleset: RuleSet, iface_index: dict[str, int], indices: list[int],
                   cells: list[Cell] | None, named: list[Cell] | None, whole: set[int] | None = None,
                   iface_runs: IfaceRuns | None = None) -> Shard:
    """One shard: its rules' parts inside ``cells`` (all of them when ``cells`` is None), first match over them.

    Only the thread building a shard touches its manager until it is returned.
    """
    iface_runs = {} if iface_runs is None else iface_runs
    rules = ruleset.rules
    # A shard's own manager defers its collections while it is built; the analysis manager already does.
    with space.gc_deferred() if cells is not None else contextlib.nullcontext():
        region = space.true if cells is None else _region(space, cells, named or [])
        # Every rule's cube from its row of literals in one C call (the GIL released); then the few
        # sets a rule's cube cannot say (port ranges, negations), and the cut of rules that cross cells.
        rows = bytearray()
        rest: list[list[BDD] | None] = []
        for i in indices:
            got = rule_literals(space, rules[i], iface_index, iface_runs)
            if got is None:
                rows += space.blank_row
                rest.append(None)
            else:
                rows += got[0]
                rest.append(got[1])
        false = space.false
        matches = []
        for n, (i, cube, sets) in enumerate(zip(indices, space.cubes_of(rows), rest, strict=True)):
            if not n & GC_CHECK_MASK:
                space.gc_checkpoint()
            if sets is None:
                matches.append(false)
                continue
            m = space.and_all(cube, sets) if sets else cube
            if cells is not None and (whole is None or i not in whole):
                m = m & region
            matches.append(m)
        allow = bytes(rules[i].action == "allow" for i in indices)
        effective, allowed, decided = first_match(space, matches, allow)
        if ruleset.default == "allow":
            allowed = allowed | (region & ~decided)
    return Shard(space, indices, matches, effective, allowed, decided, cells)


def _region(space: PacketSpace, cells: list[Cell], named: list[Cell]) -> BDD:
    """The packets of ``cells``; the rest cell is every packet in no named cell."""
    def cell(c: Cell) -> BDD:
        u = space.value("proto", c[2])
        if c[0] != ANY:
            u = u & space.interface("in_if", c[0]) & space.interface("out_if", c[1])
        return u if (c[3], c[4]) == (ALL_LO, ALL_HI) else u & space.values("dst", IntervalSet.interval(c[3], c[4]))

    out = space.false
    for c in cells:
        if c != REST:
            out = out | cell(c)
    if REST in cells:
        rest = space.true
        for c in named:
            rest = rest & ~cell(c)
        out = out | rest
    return out
