"""Exact sets of packets as binary decision diagrams (CUDD through ``dd``), as Batfish does.

Every packet field is a vector of BDD variables, most significant bit first. A set of packets is
one BDD; union, intersection and difference are exact, and emptiness is a constant-time test.
Interface variables (which port of a firewall a packet enters and leaves by) sit on top, so one
BDD can hold a whole firewall's decision for every interface pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dd import cudd

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

BDD = Any  # dd.cudd.Function; dd ships no type stubs

# Order of fields from the root down. Protocol first: it splits rule sets into small, independent
# halves (tcp, udp, icmp …); destination before source, as most rule sets branch on the server.
FIELD_ORDER = ("proto", "dst", "src", "dport", "sport", "icmp_type", "icmp_code")
IFACE_FIELDS = ("in_if", "out_if")
MEMORY_ESTIMATE = 2 << 30
CACHE_SIZE = 1 << 18


class PacketSpace:
    """One BDD manager and the encoding of packets (and firewall interfaces) into its variables."""

    def __init__(self, iface_bits: int = 6, order: Sequence[str] | None = None) -> None:
        self.bdd = cudd.BDD(memory_estimate=MEMORY_ESTIMATE, initial_cache_size=CACHE_SIZE)
        # Reordering would make timings and picked witnesses depend on the run: keep the order fixed.
        self.bdd.configure(reordering=False)
        self.widths: dict[str, int] = {"in_if": iface_bits, "out_if": iface_bits}
        self.widths.update(FIELD_BITS)
        self.vars: dict[str, list[str]] = {}
        for name in order or IFACE_FIELDS + FIELD_ORDER:
            names = [f"{name}_{i}" for i in range(self.widths[name])]
            self.vars[name] = names
            self.bdd.declare(*names)
        self.true: BDD = self.bdd.true
        self.false: BDD = self.bdd.false
        self._var_fn: dict[str, BDD] = {v: self.bdd.var(v) for vs in self.vars.values() for v in vs}
        self._levels = {v: self.bdd.level_of_var(v) for v in self._var_fn}
        self.n_levels = len(self._var_fn)
        self._range_cache: dict[tuple[str, IntervalSet], BDD] = {}
        self._block_cache: dict[tuple[str, IntervalSet], tuple[dict[str, bool], ...]] = {}
        self._expr_cache: dict[Expr, BDD] = {}
        self.valid = self._valid_packets(exact=True)
        # Every set built from the model leaves the unused low 96 bits of IPv4 addresses free, so
        # for emptiness tests this smaller set is equivalent to ``valid`` and far cheaper to AND.
        self.valid_shape = self._valid_packets(exact=False)

    # --- building sets -------------------------------------------------------------------------

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
        blocks = self.blocks(field, values)
        if len(blocks) > 2 and field not in ("src", "dst"):
            # A port range splits into up to 30 blocks; two comparator chains are far cheaper.
            for lo, hi in values:
                out = out | self._range(field, lo, hi)
        else:
            for cube in blocks:
                out = out | self.bdd.cube(cube)
        if len(self._range_cache) < 500_000:
            self._range_cache[key] = out
        return out

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
        out = self.bdd.cube(cube) if cube else self.true
        for part in rest:
            out = out & self.compile(part)
            if out == self.false:
                break
        return out

    def packet(self, p: Packet) -> BDD:
        """The set holding exactly one packet."""
        cube: dict[str, bool] = {}
        for name in FIELD_ORDER:
            (block,) = self.blocks(name, IntervalSet.of(p.get(name)))
            cube.update(block)
        return self.bdd.cube(cube) & self.valid

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

    def _valid_packets(self, exact: bool) -> BDD:
        """Packets that can exist: both addresses of one family, ports only for port protocols,
        ICMP type/code only for ICMP. Every count and witness is taken inside this set."""
        def family(field: str, v6: bool) -> BDD:
            names = self.vars[field]
            cube = {names[0]: v6}
            if not v6 and exact:  # an IPv4 address uses the top 32 of the 128 bits; the rest are zero
                cube.update({n: False for n in names[1 + 32 :]})
            return self.bdd.cube(cube)

        same_family = (family("src", False) & family("dst", False)) | (family("src", True) & family("dst", True))
        port_protos = self.values("proto", PORT_PROTOS)
        no_ports = self.value("sport", 0) & self.value("dport", 0)
        icmp_protos = self.values("proto", ICMP_PROTOS)
        no_icmp = self.value("icmp_type", 0) & self.value("icmp_code", 0)
        return same_family & (port_protos | no_ports) & (icmp_protos | no_icmp)

    # --- reading sets --------------------------------------------------------------------------

    def is_empty(self, u: BDD) -> bool:
        return (u & self.valid) == self.false

    def count(self, u: BDD, exact_limit: int = 5_000) -> tuple[int, bool]:
        """Number of valid packets in ``u`` (which must not depend on interface variables), and
        whether it is exact: exact up to ``exact_limit`` BDD nodes, above that CUDD's
        floating-point count (correct to about 15 significant digits)."""
        u = u & self.valid
        iface_vars = self.widths["in_if"] + self.widths["out_if"]
        if u == self.false:
            return 0, True
        if u.dag_size > exact_limit:
            return int(self.bdd.count(u, nvars=self.n_levels)) >> iface_vars, False
        memo: dict[BDD, int] = {}
        n = self.n_levels

        def sat(f: BDD) -> int:
            # Satisfying assignments of f over the levels from f's own level to the bottom.
            if f == self.true:
                return 1
            if f.negated:
                return (1 << (n - f.level)) - sat(~f)
            hit = memo.get(f)
            if hit is not None:
                return hit
            total = 0
            for child in (f.low, f.high):
                if child == self.false:
                    continue
                child_level = n if child == self.true else child.level
                total += sat(child) << (child_level - f.level - 1)
            memo[f] = total
            return total

        top = n if u == self.true else u.level
        return (sat(u) << top) >> iface_vars, True

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
        """
        u = u & self.valid
        if u == self.false:
            return None
        for p in prefer:
            t = u & p
            if t != self.false:
                u = t
        targets = dict(targets or {})
        values: dict[str, int] = {}
        for name in FIELD_ORDER:
            width = self.widths[name]
            target = targets.get(name, 0)
            if name in ("src", "dst") and target < V4_SIZE:
                target <<= 96  # encoded form: family bit 0, the IPv4 address in the top 32 bits
            value = 0
            for i, var in enumerate(self.vars[name]):
                want = bool((target >> (width - 1 - i)) & 1)
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


def _bits_cube(names: Sequence[str], value: int, fixed: int) -> dict[str, bool]:
    """The cube fixing the first ``fixed`` variables of ``names`` to the bits of ``value``."""
    if fixed == 0:
        return {}
    return dict(zip(names, (c == "1" for c in format(value, f"0{fixed}b")), strict=False))
