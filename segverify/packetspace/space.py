"""Exact sets of packets as binary decision diagrams (CUDD through ``dd``), as Batfish does.

Every packet field is a vector of BDD variables, most significant bit first. A set of packets is
one BDD; union, intersection and difference are exact, and emptiness is a constant-time test.
Interface variables (which port of a firewall a packet enters and leaves by) sit on top, so one
BDD can hold a whole firewall's decision for every interface pair.
"""

from __future__ import annotations

import functools
import warnings
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._dd import cudd

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

from ..model.addresses import V4_SIZE, V6_BASE, IntervalSet
from ..model.rules import (
    FIELD_BITS,
    ICMP_PROTOS,
    PORT_PROTOS,
    And,
    Expr,
    FieldIn,
    Not,
    Or,
    Packet,
)
from . import kernel

if TYPE_CHECKING:
    import numpy as np

BDD = Any  # dd.cudd.Function; dd ships no type stubs
Run = tuple[int, bytes]  # literals of consecutive variables: (index of the first, one byte 0/1 each)
FREE = 2  # a variable a cube leaves free, in a row of literals

# Order of fields from the root down. Protocol first: it splits rule sets into small, independent
# halves (tcp, udp, icmp …); destination before source, as most rule sets branch on the server.
FIELD_ORDER = ("proto", "dst", "src", "dport", "sport", "icmp_type", "icmp_code")
IFACE_FIELDS = ("in_if", "out_if")
ADDRESS_FIELDS = frozenset(("src", "dst"))
MEMORY_ESTIMATE = 2 << 30
CACHE_SIZE = 1 << 18
# A shard's manager (``sibling``) holds a few hundred rules: a small table that stays in cache (CUDD grows it
# when it is hit often).
SHARD_CACHE_SIZE = 1 << 12
SHARD_MAX_CACHE = 1 << 12
# CUDD's soft target for a shard (it collects sooner beyond it, never fails for it); a manager's set-up
# time grows with it (2 GB: 4-10 ms, 512 MB: 1 ms), and a large rule set has dozens of shards.
SHARD_MEMORY_ESTIMATE = 512 << 20
# CUDD doubles its computed table while the hit rate is high; uncapped it reached 4M entries (130 MB
# more than before at 10k rules) once the emptiness tests below were in, for no measurable speed.
MAX_CACHE = 1 << 20
# ``gc_checkpoint`` reads CUDD's memory count (milliseconds) only after peak RSS grew by this much.
GC_LOOK_STEP = 64 << 20


class PacketSpace:
    """One BDD manager and the encoding of packets (and firewall interfaces) into its variables."""

    def __init__(self, iface_bits: int = 6, order: Sequence[str] | None = None, cache_size: int = CACHE_SIZE,
                 share: PacketSpace | None = None, memory_estimate: int = MEMORY_ESTIMATE,
                 max_cache: int = MAX_CACHE) -> None:
        """``share``: a space of the same variables whose manager-independent caches (fields' blocks as
        literals, block counts, protocol shapes) this one uses too."""
        self.bdd = cudd.BDD(memory_estimate=memory_estimate, initial_cache_size=cache_size)
        # Reordering would make timings and picked witnesses depend on the run: keep the order fixed.
        self.bdd.configure(reordering=False, max_cache_hard=max_cache)
        self.widths: dict[str, int] = {"in_if": iface_bits, "out_if": iface_bits}
        self.widths.update(FIELD_BITS)
        self.vars: dict[str, list[str]] = {}
        for name in order or IFACE_FIELDS + FIELD_ORDER:
            names = [f"{name}_{i}" for i in range(self.widths[name])]
            self.vars[name] = names
            self.bdd.declare(*names)
        self.true: BDD = self.bdd.true
        self.false: BDD = self.bdd.false
        # The compiled CUDD loops, when usable on this manager (None: dd's own calls, same results).
        self.ops = kernel.ops(self.bdd)
        self.manager = self.ops.manager(self.bdd) if self.ops else 0
        self._var_fn: dict[str, BDD] = {v: self.bdd.var(v) for vs in self.vars.values() for v in vs}
        self._levels = {v: self.bdd.level_of_var(v) for v in self._var_fn}
        self._all_vars = frozenset(self._var_fn)
        self._ipv4_low_bits = frozenset(v for name in ("src", "dst") for v in self.vars[name][1 + 32:])
        packet_levels = [self._levels[v] for name in FIELD_ORDER for v in self.vars[name]]
        self._witness_by_walk = packet_levels == sorted(packet_levels) and min(packet_levels) > max(
            self._levels[v] for name in IFACE_FIELDS for v in self.vars[name])
        self.n_levels = len(self._var_fn)
        self._range_cache: dict[tuple[str, IntervalSet], BDD] = {}
        self._iface_vars = frozenset(v for name in IFACE_FIELDS if name in self.vars for v in self.vars[name])
        self._block_cache: dict[tuple[str, IntervalSet], tuple[dict[str, bool], ...]] = (
            share._block_cache if share else {})
        self._expr_cache: dict[Expr, BDD] = {}
        self._n_blocks_cache: dict[tuple[str, IntervalSet], int] = share._n_blocks_cache if share else {}
        self._run_cache: dict[tuple[str, IntervalSet], tuple[Run, ...]] = share._run_cache if share else {}
        self._shape_runs: dict[int, tuple[Run, ...]] = share._shape_runs if share else {}
        # Literal rows: one byte per variable, in CUDD's index order (the declaration order).
        index_of = self.bdd._index_of_var
        self.n_vars = len(index_of)
        self._first_index = {name: index_of[names[0]] for name, names in self.vars.items()}
        self._names_by_index = [name for name, _ in sorted(index_of.items(), key=lambda item: item[1])]
        self.blank_row = bytes([FREE]) * self.n_vars
        self._proto_width = self.widths["proto"]
        self._gc_budget: float | None = None
        self._gc_next_look = 0
        self.valid = self._valid_packets(exact=True)
        # Every set built from the model leaves the unused low 96 bits of IPv4 addresses free, so
        # for emptiness tests this smaller set is equivalent to ``valid`` and far cheaper to AND.
        self.valid_shape = self._valid_packets(exact=False)
        self._fam_index = (self._first_index["src"], self._first_index["dst"])
        src_fam, dst_fam = self._var_fn[self.vars["src"][0]], self._var_fn[self.vars["dst"][0]]
        self._same_family = (src_fam & dst_fam) | (~src_fam & ~dst_fam)
        self._ports_shape = self._valid_packets(exact=False, family=False)

    def sibling(self) -> PacketSpace:
        """A new manager with the same variables in the same order and a small computed table: one
        shard of a large rule set (see ``firewall.compile_ruleset``). It shares this space's
        manager-independent caches."""
        return PacketSpace(self.widths["in_if"], tuple(self.vars), cache_size=SHARD_CACHE_SIZE, share=self,
                           memory_estimate=SHARD_MEMORY_ESTIMATE, max_cache=SHARD_MAX_CACHE)

    def bring(self, functions: Sequence[BDD], source: PacketSpace) -> list[BDD]:
        """Sets of ``source``'s manager as sets of this one (same variables, same order: a sibling)."""
        if source is self:
            return list(functions)
        ops = self.ops
        if ops is not None and source.ops is not None:  # one pass, nodes shared between sets copied once
            nodes = kernel.pointers(functions)
            out = array("Q", bytes(8 * len(nodes)))
            ops.transfer(source.manager, self.manager, nodes, out)
            return kernel.wrap(ops, self.bdd, self.manager, out)
        return [cudd.copy_bdd(u, self.bdd) for u in functions]

    # --- building sets -------------------------------------------------------------------------

    def cube(self, assignment: dict[str, bool]) -> BDD:
        """The conjunction of literals ``assignment`` (variable -> value): one rule's fixed bits.

        In C when it can (``dd.cube`` spends 60 us converting the dictionary for a rule's cube of
        a hundred variables; the compiled loop 3 us)."""
        if self.ops is None:
            return self.bdd.cube(assignment)
        return self.ops.cube(self.manager, assignment, self.bdd._index_of_var, self.bdd._add_int)

    def blocks(self, field: str, values: IntervalSet) -> tuple[dict[str, bool], ...]:
        """``values`` of ``field`` as aligned blocks, each a partial assignment (a cube).

        Addresses are encoded as a family bit and 128 bits; an IPv4 address sits in the top 32
        of them (the low 96 are forced to zero only in ``valid``), so an IPv4 prefix is a cube of
        a few dozen variables rather than 129.
        """
        key = (field, values)
        hit = self._block_cache.get(key)
        if hit is not None:
            return hit
        names = self.vars[field]
        out: list[dict[str, bool]] = []
        if field in ("src", "dst"):
            fam, bits = names[0], names[1:]
            for lo, hi in values:
                if lo < V4_SIZE:
                    for a, fixed in _aligned_blocks(lo, min(hi, V4_SIZE - 1), 32):
                        cube = _bits_cube(bits, a >> (32 - fixed), fixed)
                        cube[fam] = False
                        out.append(cube)
                if hi >= V6_BASE:
                    for a, fixed in _aligned_blocks(max(lo, V6_BASE) - V6_BASE, hi - V6_BASE, 128):
                        cube = _bits_cube(bits, a >> (128 - fixed), fixed)
                        cube[fam] = True
                        out.append(cube)
        else:
            width = self.widths[field]
            for lo, hi in values:
                for a, fixed in _aligned_blocks(max(lo, 0), min(hi, (1 << width) - 1), width):
                    out.append(_bits_cube(names, a >> (width - fixed), fixed))
        result = tuple(out)
        self._block_cache[key] = result
        return result

    def values(self, field: str, values: IntervalSet) -> BDD:
        """Packets whose ``field`` lies in ``values``."""
        key = (field, values)
        hit = self._range_cache.get(key)
        if hit is not None:
            return hit
        out = self.false
        if field not in ADDRESS_FIELDS and self._n_blocks(field, values) > 2:
            # A port range splits into up to 30 blocks; two comparator chains are far cheaper.
            for lo, hi in values:
                out = out | self._range(field, lo, hi)
        else:
            for cube in self.blocks(field, values):
                out = out | self.cube(cube)
        if len(self._range_cache) < 500_000:
            self._range_cache[key] = out
        return out

    def _n_blocks(self, field: str, values: IntervalSet) -> int:
        """How many blocks ``blocks`` gives for a field other than an address, without building them
        (a port range has up to 30, and the rule compiler only needs to know it is not one)."""
        key = (field, values)
        n = self._n_blocks_cache.get(key)
        if n is None:
            top = (1 << self.widths[field]) - 1
            n = sum(len(_aligned_blocks(max(lo, 0), min(hi, top), self.widths[field])) for lo, hi in values)
            if len(self._n_blocks_cache) < 500_000:
                self._n_blocks_cache[key] = n
        return n

    def _range(self, field: str, lo: int, hi: int) -> BDD:
        """lo <= field <= hi, built from the least significant bit up: one operation per bit."""
        width = self.widths[field]
        hi = min(hi, (1 << width) - 1)
        ge = le = self.true
        for i in range(width - 1, -1, -1):
            x = self._var_fn[self.vars[field][i]]
            bit = 1 << (width - 1 - i)
            ge = (x & ge) if lo & bit else (x | ge)
            le = (~x | le) if hi & bit else (~x & le)
        return ge & le

    def value(self, field: str, value: int) -> BDD:
        return self.values(field, IntervalSet.of(value))

    def compile(self, expr: Expr, cache: bool = True) -> BDD:
        """The exact set of packets a match expression selects (not yet restricted to valid packets).

        ``cache=False`` for one-off expressions (a whole rule): hashing them costs more than it saves.
        """
        if cache:
            hit = self._expr_cache.get(expr)
            if hit is not None:
                return hit
        if isinstance(expr, FieldIn):
            out = self.values(expr.field, expr.values)
        elif isinstance(expr, And):
            out = self._conjunction(expr)
        elif isinstance(expr, Or):
            out = self.false
            for part in expr.parts:
                out = out | self.compile(part)
        elif isinstance(expr, Not):
            out = ~self.compile(expr.part)
        else:  # pragma: no cover - the model has no other node
            raise TypeError(f"not a match expression: {expr!r}")
        if cache and len(self._expr_cache) < 200_000:
            self._expr_cache[expr] = out
        return out

    def _conjunction(self, expr: And) -> BDD:
        """A conjunction: every field test that is one aligned block goes into a single cube (one
        CUDD call for a typical rule), the rest is ANDed on."""
        cube: dict[str, bool] = {}
        seen: set[str] = set()
        rest: list[Expr] = []
        for part in expr.parts:
            if isinstance(part, FieldIn) and part.field not in seen:
                blocks = self.blocks(part.field, part.values)
                if not blocks:
                    return self.false
                if len(blocks) == 1:
                    seen.add(part.field)
                    cube.update(blocks[0])
                    continue
            rest.append(part)
        out = self.cube(cube) if cube else self.true
        for part in rest:
            out = out & self.compile(part)
            if out == self.false:
                break
        return out

    def rule_set(self, parts: Sequence[Expr], runs: Sequence[Run] = (), extra: Sequence[BDD] = ()) -> BDD:
        """The packets matching every one of ``parts`` (and the ``runs`` and ``extra`` sets),
        restricted to ``valid_shape``: one rule of a rule set. See ``rule_literals``."""
        got = self.rule_literals(parts, runs, extra)
        if got is None:
            return self.false
        return self.and_all(self.cube_of(got[0]), got[1])

    def and_all(self, u: BDD, sets: Sequence[BDD]) -> BDD:
        """``u`` ANDed with each of ``sets``, stopping once it is empty."""
        false = self.false
        for v in sets:
            u = u & v
            if u == false:
                break
        return u

    def rule_literals(self, parts: Sequence[Expr], runs: Sequence[Run] = (),
                      extra: Sequence[BDD] = ()) -> tuple[bytes, list[BDD]] | None:
        """One rule's match as a cube and the sets still to AND on: the cube as one byte per variable
        (0, 1, or 2 for free; the variables' index order), or None when the match is empty.

        Every field test that is one aligned block goes into the cube, one CUDD call for a
        typical rule (in C for a whole shard at once: ``cubes_of``). ``valid_shape`` goes into
        the cube too when it can: with one protocol fixed, it says only that the fields the
        protocol cannot use are zero and that both addresses are of one family, both plain
        literals. Otherwise it is ANDed on.
        """
        literals = bytearray(self.blank_row)
        for start, bits in runs:
            if not _merge(literals, start, bits):
                return None
        sets: list[BDD] = list(extra)
        seen: set[str] = set()  # fields whose one block is in the cube
        proto: int | None = None
        run_cache = self._run_cache
        for part in parts:
            if type(part) is FieldIn:
                name, values = part.field, part.values
                if name not in seen:
                    field_runs = run_cache.get((name, values))
                    if field_runs is None:
                        if name not in ADDRESS_FIELDS and self._n_blocks(name, values) > 1:
                            sets.append(self.values(name, values))  # a port range: no cubes needed
                            continue
                        field_runs = self.runs(name, values)
                    if not field_runs:
                        return None
                    if len(field_runs) == 1:
                        seen.add(name)
                        start, bits = field_runs[0]
                        if not _merge(literals, start, bits):
                            return None
                        if name == "proto" and len(bits) == self._proto_width:
                            proto = values.intervals[0][0]
                        continue
                sets.append(self.values(name, values))
            else:
                sets.append(self.compile(part))
        if proto is not None:
            for start, bits in self._proto_shape_runs(proto):
                if not _merge(literals, start, bits):
                    return None
        else:
            sets.append(self._ports_shape)
        src_fam, dst_fam = self._fam_index
        src_bit, dst_bit = literals[src_fam], literals[dst_fam]
        if src_bit == FREE and dst_bit == FREE:
            sets.append(self._same_family)
        elif src_bit == FREE:
            literals[src_fam] = dst_bit
        elif dst_bit == FREE:
            literals[dst_fam] = src_bit
        elif src_bit != dst_bit:
            return None
        return bytes(literals), sets

    def cube_of(self, literals: bytes) -> BDD:
        """The cube of one ``rule_literals`` row."""
        if self.ops is not None:
            return self.cubes_of(literals)[0]
        names = self._names_by_index
        return self.bdd.cube({names[i]: bool(v) for i, v in enumerate(literals) if v != FREE})

    def cubes_of(self, rows: bytes | bytearray) -> list[BDD]:
        """The cubes of consecutive ``rule_literals`` rows (one C call, the GIL released, when it can)."""
        n = len(rows) // self.n_vars
        if self.ops is None:
            return [self.cube_of(rows[k * self.n_vars:(k + 1) * self.n_vars]) for k in range(n)]
        out = array("Q", bytes(8 * n))
        self.ops.cubes(self.manager, rows, out)
        return kernel.wrap(self.ops, self.bdd, self.manager, out)

    def runs(self, field: str, values: IntervalSet) -> tuple[Run, ...]:
        """``blocks`` as runs of literals: (index of the first variable, one byte per fixed variable).

        A field's variables are consecutive, and a block fixes its first few (an address's family
        bit, then the top bits of the prefix), so each block is one run."""
        key = (field, values)
        hit = self._run_cache.get(key)
        if hit is None:
            start = self._first_index[field]
            hit = tuple((start, _literal_bytes(self.vars[field], block)) for block in self.blocks(field, values))
            self._run_cache[key] = hit
        return hit

    def _proto_shape_runs(self, proto: int) -> tuple[Run, ...]:
        """``valid_shape`` for one protocol, less the family part, as runs of literals: the fields the
        protocol cannot use are zero."""
        hit = self._shape_runs.get(proto)
        if hit is None:
            zero = []
            if proto not in PORT_PROTOS:
                zero += ["dport", "sport"]
            if proto not in ICMP_PROTOS:
                zero += ["icmp_type", "icmp_code"]
            hit = tuple((self._first_index[name], bytes(self.widths[name])) for name in zero)
            self._shape_runs[proto] = hit
        return hit

    def packet(self, p: Packet) -> BDD:
        """The set holding exactly one packet."""
        cube: dict[str, bool] = {}
        for name in FIELD_ORDER:
            (block,) = self.blocks(name, IntervalSet.of(p.get(name)))
            cube.update(block)
        return self.cube(cube) & self.valid

    def holds_packet(self, u: BDD, src: int, dst: int, proto: int, sport: int, dport: int) -> bool | None:
        """Whether ``u`` (a set that does not depend on the interface variables) holds the TCP/UDP packet with
        these fields. Such a packet fixes every packet variable (``valid`` zeroes an IPv4 address's low 96 bits and
        the ICMP fields), so this is one walk from the root at that assignment, in C: nothing is built, a few
        hundred nodes are read. None without the C module."""
        if self.ops is None or self._packet_layout is None:
            return None
        s6, shi, slo = _split128(src)
        d6, dhi, dlo = _split128(dst)
        return bool(self.ops.evaluate_packet(self.manager, int(u), self._packet_layout, s6, shi, slo, d6, dhi, dlo,
                                             proto, sport, dport))

    def holds_packets(self, u: BDD, v6: np.ndarray, src_hi: np.ndarray, src_lo: np.ndarray, dst_hi: np.ndarray,
                      dst_lo: np.ndarray, proto: np.ndarray, sport: np.ndarray, dport: np.ndarray) -> np.ndarray | None:
        """:meth:`holds_packet` for many TCP/UDP packets, in one call (a flow table's): per packet, whether ``u``
        holds it. Addresses in two 64-bit halves, an IPv4 address in the low half (as a flow table keeps them).
        None without the C module."""
        if self.ops is None or self._packet_layout is None:
            return None
        import numpy as np  # here: ``check`` never needs it

        six = np.asarray(v6, dtype=bool)
        u64 = np.uint64
        shi = np.where(six, src_hi, np.asarray(src_lo, dtype=u64) << u64(32)).astype(u64)
        dhi = np.where(six, dst_hi, np.asarray(dst_lo, dtype=u64) << u64(32)).astype(u64)
        slo = np.where(six, src_lo, 0).astype(u64)
        dlo = np.where(six, dst_lo, 0).astype(u64)
        out = np.zeros(len(six), np.uint8)
        i64 = np.int64
        self.ops.evaluate_packets(self.manager, int(u), self._packet_layout, six.astype(np.uint8), shi, slo, dhi, dlo,
                                  np.asarray(proto, i64), np.asarray(sport, i64), np.asarray(dport, i64), out)
        return out.astype(bool)

    @functools.cached_property
    def _packet_layout(self) -> bytes | None:
        """Every bit's variable index for :meth:`holds_packet`: src and dst (family bit, 128 bits), proto, sport,
        dport, most significant first. None when an index is beyond what the C walk handles (4,096)."""
        index = self.bdd._index_of_var
        layout = [index[v] for name in ("src", "dst", "proto", "sport", "dport") for v in self.vars[name]]
        if max(layout) >= 4096:
            return None
        return array("i", layout).tobytes()

    def depends_on_interfaces(self, u: BDD) -> bool:
        return not self._iface_vars.isdisjoint(self.bdd.support(u))

    def interface(self, direction: str, index: int) -> BDD:
        return self.values(direction, IntervalSet.of(index))

    def interfaces(self, direction: str, indices: Iterable[int]) -> BDD:
        return self.values(direction, IntervalSet.of(*indices))

    def restrict_interfaces(self, u: BDD, in_index: int, out_index: int) -> BDD:
        """The packet set ``u`` holds for one (ingress, egress) interface pair."""
        assignment: dict[str, bool] = {}
        for direction, index in (("in_if", in_index), ("out_if", out_index)):
            width = self.widths[direction]
            for i, var in enumerate(self.vars[direction]):
                assignment[var] = bool((index >> (width - 1 - i)) & 1)
        return self.bdd.let(assignment, u)

    def _valid_packets(self, exact: bool, family: bool = True) -> BDD:
        """Packets that can exist: both addresses of one family, ports only for port protocols,
        ICMP type/code only for ICMP. Every count and witness is taken inside this set."""
        def family(field: str, v6: bool) -> BDD:
            names = self.vars[field]
            cube = {names[0]: v6}
            if not v6 and exact:  # an IPv4 address uses the top 32 of the 128 bits; the rest are zero
                cube.update({n: False for n in names[1 + 32 :]})
            return self.cube(cube)

        same_family = (family("src", False) & family("dst", False)) | (family("src", True) & family("dst", True))
        port_protos = self.values("proto", PORT_PROTOS)
        no_ports = self.value("sport", 0) & self.value("dport", 0)
        icmp_protos = self.values("proto", ICMP_PROTOS)
        no_icmp = self.value("icmp_type", 0) & self.value("icmp_code", 0)
        shape = (port_protos | no_ports) & (icmp_protos | no_icmp)
        return same_family & shape if family else shape

    # --- CUDD's garbage collection ----------------------------------------------------------------

    @contextmanager
    def gc_deferred(self, budget_bytes: int = 1 << 30) -> Iterator[None]:
        """Run the block with CUDD's garbage collection off, until ``gc_checkpoint`` finds that
        the block's garbage has outgrown ``budget_bytes``. Nests: an inner block restores the
        outer one's budget.

        After a large compilation the unique table holds millions of live nodes, and every
        collection scans all of them: at 50k rules the analysis spent 3 of its 4 s in
        collections that each freed little. Its own garbage is small (the same peak memory with
        collection off, at 10k and 50k rules and on TUM_Net).
        """
        old = self.bdd.configure(garbage_collection=False)["garbage_collection"]
        outer = self._gc_budget, self._gc_next_look
        self._gc_budget = self._memory_in_use() + budget_bytes
        self._gc_next_look = (_peak_rss() or 0) + GC_LOOK_STEP
        try:
            yield
        finally:
            self._gc_budget, self._gc_next_look = outer
            self.bdd.configure(garbage_collection=old)

    def gc_checkpoint(self) -> None:
        """Switch CUDD's collection back on if the deferred garbage has outgrown its budget.

        CUDD's own count of its memory costs milliseconds (it scans its tables), so it is only
        read once the process's peak RSS has grown by ``GC_LOOK_STEP`` since the last look: cheap
        enough to call every few hundred rules while compiling.
        """
        if self._gc_budget is None:
            return
        peak = _peak_rss()
        if peak is not None and peak < self._gc_next_look:
            return
        self._gc_next_look = (peak or 0) + GC_LOOK_STEP
        if self._memory_in_use() > self._gc_budget:
            self.bdd.configure(garbage_collection=True)
            self._gc_budget = None

    def _memory_in_use(self) -> float:
        with warnings.catch_warnings():  # dd warns that the unit of 'mem' changed (now bytes)
            warnings.simplefilter("ignore")
            return float(self.bdd.statistics()["mem"])

    # --- reading sets --------------------------------------------------------------------------

    def meets(self, u: BDD, v: BDD) -> bool:
        """Whether ``u`` and ``v`` share an assignment, without building ``u & v``.

        CUDD's and-abstract over every variable yields a constant and stops at the first common
        path; testing ``(u & v) != false`` builds the whole intersection first (30 ms for a
        finding's packet set against ``valid``, against 0.3 ms here).
        """
        false = self.false
        if u == false or v == false:
            return False
        if self.ops is not None:  # u & v is empty exactly when u <= ~v: CUDD's Leq, in C
            return self.ops.meets(self.manager, int(u), int(v))
        return cudd.and_exists(u, v, self._all_vars) != false  # dd builds a cube of all the variables: 25 us

    def covers(self, u: BDD, v: BDD) -> bool:
        """Whether ``v`` is a subset of ``u``, without building ``v & ~u``."""
        return not self.meets(v, ~u)

    def is_empty(self, u: BDD) -> bool:
        return not self.meets(u, self.valid)

    def count(self, u: BDD, exact_limit: int = 5_000) -> tuple[int, bool]:
        """Number of valid packets in ``u`` (which must not depend on interface variables), and
        whether it is exact: exact up to ``exact_limit`` BDD nodes, above that CUDD's
        floating-point count (correct to about 15 significant digits).

        ``u & valid`` is several times larger than ``u & valid_shape`` (each IPv4 address carries
        96 forced-zero bits) and took most of the analysis time on large rule sets (0.4 s per
        finding at 50k rules). When the smaller set is already over the limit, so is the larger
        one, and ``_float_count`` gives CUDD's floating-point count of the larger one from the
        smaller one, to the last bit.
        """
        iface_vars = self.widths["in_if"] + self.widths["out_if"]
        shaped = u & self.valid_shape
        if shaped == self.false:
            return 0, True
        if shaped.dag_size > exact_limit:
            fast = self._float_count(shaped)
            if fast is not None:
                return int(fast) >> iface_vars, False
        u = u & self.valid
        if u == self.false:
            return 0, True
        if u.dag_size > exact_limit:
            return int(self.bdd.count(u, nvars=self.n_levels)) >> iface_vars, False
        top = self.n_levels if u == self.true else u.level
        return (self._sat(u, {}) << top) >> iface_vars, True

    def _sat(self, f: BDD, memo: dict[BDD, int]) -> int:
        """Satisfying assignments of f over the levels from f's own level to the bottom.

        A method with an explicit memo, not a recursive closure: a closure is a reference cycle,
        which (with the collector paused, see model/gcpause.py) would keep BDD handles alive
        until after their manager is gone.
        """
        n = self.n_levels
        if f == self.true:
            return 1
        if f.negated:
            return (1 << (n - f.level)) - self._sat(~f, memo)
        hit = memo.get(f)
        if hit is not None:
            return hit
        total = 0
        for child in (f.low, f.high):
            if child == self.false:
                continue
            child_level = n if child == self.true else child.level
            total += self._sat(child, memo) << (child_level - f.level - 1)
        memo[f] = total
        return total

    def _float_count(self, shaped: BDD) -> float | None:
        """CUDD's count of ``shaped & valid`` over all variables, from ``shaped`` (within
        ``valid_shape``), without building ``shaped & valid``; None when this does not apply.

        CUDD counts a node as half the sum of its children's counts. Every path of ``shaped``
        tests the destination family bit. Below an IPv4 branch, ``valid`` only adds chains of
        forced-zero bits, which halve a count exactly: the branch counts 2**-192 times what CUDD
        counts for it in ``shaped``, provided the branch does not depend on those bits (checked on
        its support). Above the family bit, the same halvings and sums are redone here in the
        same order, so the floating-point result is the same number.
        """
        if not self._witness_by_walk:  # the variable order is not the default one
            return None
        return self._float_count_at(shaped, {})

    def _float_count_at(self, f: BDD, memo: dict[BDD, float]) -> float | None:
        false = self.false
        if f == false:
            return 0.0
        if f == self.true:  # a path that skips the family bit: not a set within valid_shape
            return None
        hit = memo.get(f)
        if hit is not None:
            return hit
        fam_level = self._levels[self.vars["dst"][0]]
        if f.level > fam_level:
            return None
        low, high = (~f.low, ~f.high) if f.negated else (f.low, f.high)
        if f.level == fam_level:
            if low != false and not self._ipv4_low_bits.isdisjoint(self.bdd.support(low)):
                return None
            lo = 0.0 if low == false else self.bdd.count(low, nvars=self.n_levels) * 2.0 ** -192
            hi = 0.0 if high == false else self.bdd.count(high, nvars=self.n_levels)
        else:
            hi_c, lo_c = self._float_count_at(high, memo), self._float_count_at(low, memo)
            if hi_c is None or lo_c is None:
                return None
            hi, lo = hi_c, lo_c
        value = hi / 2.0 + lo / 2.0
        memo[f] = value
        return value

    def witness(
        self,
        u: BDD,
        prefer: Sequence[BDD] = (),
        targets: Mapping[str, int] | None = None,
    ) -> Packet | None:
        """A concrete packet of ``u``, or None when it is empty.

        ``prefer`` are sets tried in order (each kept only if something remains), so the caller
        can ask for a host address of the source segment or a well-known port. Then every field is
        fixed bit by bit, as close to its target value as the set allows: deterministic, and
        realistic (``10.2.0.1`` rather than ``10.2.0.0``, an ephemeral source port).

        The search runs inside ``valid_shape``, a diagram several times smaller than ``valid``
        (whose IPv4 addresses carry 96 forced-zero bits). For every set built from the model,
        whose IPv4 part never depends on those bits, it makes the same choices: each of those bits
        is free and its target is zero. The packet found is checked against ``u & valid``; should
        ``u`` be some other set, the search is repeated inside ``valid``.
        """
        if not self.meets(u, self.valid):
            return None
        found = self._witness(u & self.valid_shape, prefer, targets)
        if found is not None and self.meets(self.packet(found), u):
            return found
        return self._witness(u & self.valid, prefer, targets)

    def _witness(self, u: BDD, prefer: Sequence[BDD], targets: Mapping[str, int] | None) -> Packet | None:
        if u == self.false:
            return None
        for p in prefer:
            t = u & p
            if t != self.false:
                u = t
        targets = dict(targets or {})
        # Walking down the diagram makes the same choices as ANDing one literal at a time (a
        # cofactor is empty exactly when the AND is), in 1 ms instead of 50: possible when the
        # fields are fixed in the diagram's own order, with the interfaces above them.
        walk = self._witness_by_walk and (u == self.true or u.level >= self._levels[self.vars[FIELD_ORDER[0]][0]])
        values: dict[str, int] = {}
        levels = self._levels
        for name in FIELD_ORDER:
            width = self.widths[name]
            target = targets.get(name, 0)
            if name in ("src", "dst") and target < V4_SIZE:
                target <<= 96  # encoded form: family bit 0, the IPv4 address in the top 32 bits
            value = 0
            for i, var in enumerate(self.vars[name]):
                want = bool((target >> (width - 1 - i)) & 1)
                if walk:
                    if u != self.true and u.level == levels[var]:
                        low, high = (~u.low, ~u.high) if u.negated else (u.low, u.high)
                        t = high if want else low
                        if t == self.false:
                            want = not want
                            t = high if want else low
                        u = t
                else:
                    fn = self._var_fn[var]
                    t = u & (fn if want else ~fn)
                    if t == self.false:
                        want = not want
                        t = u & (fn if want else ~fn)
                    u = t
                value = (value << 1) | int(want)
            if name in ("src", "dst") and value < V6_BASE:
                value >>= 96
            values[name] = value
        return Packet(**values)


def _peak_rss() -> int | None:
    """The process's peak resident set in bytes (Linux reports kilobytes, macOS bytes: there the
    step is reached sooner, which costs time, never memory); None where unknown."""
    if resource is None:  # pragma: no cover - Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _aligned_blocks(lo: int, hi: int, width: int) -> list[tuple[int, int]]:
    """Split [lo, hi] into aligned power-of-two blocks: (start, number of fixed top bits)."""
    out: list[tuple[int, int]] = []
    a = lo
    while a <= hi:
        size = a & -a if a else 1 << width
        while size > hi - a + 1:
            size >>= 1
        out.append((a, width - (size.bit_length() - 1)))
        a += size
    return out


_BIT = {"0": False, "1": True}


def _literal_bytes(names: Sequence[str], block: dict[str, bool]) -> bytes:
    """A block (a cube on the first variables of one field) as its run of literal bytes."""
    bits = bytes(block[n] for n in names[:len(block)])
    if len(bits) != len(block):  # pragma: no cover - a block always fixes a field's first variables
        raise ValueError("not a run")
    return bits


def _merge(literals: bytearray, start: int, bits: bytes) -> bool:
    """AND a run into a row of literals; False when they clash (the cube is empty)."""
    end = start + len(bits)
    current = literals[start:end]
    if current.count(FREE) == len(current):
        literals[start:end] = bits
        return True
    for k, bit in enumerate(bits):
        have = current[k]
        if have == FREE:
            literals[start + k] = bit
        elif have != bit:
            return False
    return True


def _bits_cube(names: Sequence[str], value: int, fixed: int) -> dict[str, bool]:
    """The cube fixing the first ``fixed`` variables of ``names`` to the bits of ``value``."""
    if fixed == 0:
        return {}
    return dict(zip(names, map(_BIT.__getitem__, format(value, f"0{fixed}b")), strict=False))


def _split128(addr: int) -> tuple[bool, int, int]:
    """An address of the unified space as (IPv6, high 64, low 64) of its 128 bits; IPv4 in the top 32."""
    if addr >= V6_BASE:
        a = addr - V6_BASE
        return True, a >> 64, a & 0xFFFFFFFFFFFFFFFF
    return False, addr << 32, 0
