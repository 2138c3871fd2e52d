"""A firewall's ordered rules as one exact decision: which packets it lets through, per interface pair.

First match wins: the set a rule really decides is its match minus everything matched above it.
Those effective sets are kept per rule, so the analysis can tell which rule lets a packet through,
which rules can never match (fully shadowed), and which rules a violation depends on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.addresses import IntervalSet
from ..model.rules import And, Expr, Rule, RuleSet
from .space import BDD, PacketSpace

# Regions larger than this (BDD nodes) are tested with ``PacketSpace.meets``, smaller ones with an AND.
MEETS_ABOVE = 2_000
# ``compile_ruleset`` calls ``PacketSpace.gc_checkpoint`` once every 256 rules (a mask on the index).
GC_CHECK_MASK = 255


@dataclass
class CompiledRuleSet:
    space: PacketSpace
    ruleset: RuleSet
    iface_index: dict[str, int]
    allowed: BDD  # over interface and packet variables
    effective: list[BDD]  # per rule: what it decides (its match minus all above), interfaces included
    decided: BDD  # everything some rule matches; the rest falls to the default
    matches: list[BDD]  # per rule: its own match (interfaces included), restricted to real packets
    _hops: dict[tuple[str, str], BDD] = field(default_factory=dict)
    _candidates: dict[tuple[str, str, str | None], list[int]] = field(default_factory=dict)

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
        return self.space.restrict_interfaces(
            self.effective[index], self.iface_index[in_iface], self.iface_index[out_iface]
        )

    def rules_touching(self, region: BDD, in_iface: str, out_iface: str, action: str | None = None) -> list[int]:
        """Indices of the rules whose effective set meets ``region`` on one interface pair.

        One intersection test per candidate rule; rules that cannot apply to the interface pair
        are skipped without a BDD operation. Against a large region the test is
        ``PacketSpace.meets`` (no BDD built, stops at the first common packet: 6x faster than an
        AND on the 10k-rule bench); against a small one a plain AND, which costs a microsecond
        where ``meets`` has a fixed 25 us (TUM_Net: 700k tests, 18 s with ``meets`` alone).
        (A tree of unions over the rules was tried: its upper nodes are as large as the whole
        rule base, and testing them against a large region cost four times more.)
        """
        false = self.space.false
        region_io = region & self.interfaces(in_iface, out_iface)
        effective = self.effective
        candidates = self.candidates(in_iface, out_iface, action)
        if region_io.dag_size > MEETS_ABOVE:
            meets = self.space.meets
            return [i for i in candidates if meets(effective[i], region_io)]
        return [i for i in candidates if (effective[i] & region_io) != false]

    def candidates(self, in_iface: str, out_iface: str, action: str | None = None) -> list[int]:
        """Rules that apply to this interface pair (with this action) and decide something at all."""
        key = (in_iface, out_iface, action)
        hit = self._candidates.get(key)
        if hit is None:
            false = self.space.false
            hit = [
                i for i, rule in enumerate(self.ruleset.rules)
                if (action is None or rule.action == action) and rule.applies(in_iface, out_iface)
                and self.effective[i] != false
            ]
            self._candidates[key] = hit
        return hit

    def shadowed(self) -> list[int]:
        """Indices of rules that could match some packet but never get to: earlier rules take all of it.

        A rule whose own match is empty (one that only accepts replies, say) is not shadowed: it
        matches no initiating packet by design. See ``never_matching``.
        """
        false = self.space.false
        return [i for i, eff in enumerate(self.effective) if eff == false and self.matches[i] != false]

    def shadowing_rule(self, index: int, limit: int = 2000) -> int | None:
        """An earlier rule that alone covers rule ``index`` (the usual cause of shadowing), if any.

        Rules bound to other interfaces than rule ``index`` cannot cover it and are skipped
        without a BDD operation (rule matches are small: a plain AND is the cheapest test).
        """
        rules = self.ruleset.rules
        mine_rule = rules[index]
        mine = self.matches[index]
        false = self.space.false
        skip = mine != false  # an empty match is covered by anything: test every rule
        for j in range(index - 1, max(-1, index - 1 - limit), -1):
            if skip and _disjoint_ifaces(mine_rule, rules[j]):
                continue
            if (mine & ~self.matches[j]) == false:
                return j
        return None


def _disjoint_ifaces(a: Rule, b: Rule) -> bool:
    """True when no interface pair is bound by both rules, so neither can cover the other's (non-empty) match."""
    for x, y in ((a.in_ifaces, b.in_ifaces), (a.out_ifaces, b.out_ifaces)):
        if x is not None and y is not None and x.isdisjoint(y):
            return True
    return False


def rule_match(space: PacketSpace, rule: Rule, iface_index: dict[str, int],
               iface_blocks: dict[tuple[str, frozenset[str]], tuple[dict[str, bool], ...]] | None = None) -> BDD:
    """A rule's match including its interface conditions, restricted to ``valid_shape``
    (one cube for a typical rule).

    ``iface_blocks`` caches the blocks of each interface list (rule sets repeat a few of them).
    """
    cubes: list[dict[str, bool]] = []
    extra: list[BDD] = []
    for field_name, names in (("in_if", rule.in_ifaces), ("out_if", rule.out_ifaces)):
        if names is None:
            continue
        key = (field_name, names)
        blocks = iface_blocks.get(key) if iface_blocks is not None else None
        values = None
        if blocks is None:
            values = IntervalSet.of(*(iface_index[n] for n in names if n in iface_index))
            blocks = space.blocks(field_name, values)
            if iface_blocks is not None:
                iface_blocks[key] = blocks
        if not blocks:
            return space.false
        if len(blocks) == 1:
            cubes.append(blocks[0])
        else:
            values = values or IntervalSet.of(*(iface_index[n] for n in names if n in iface_index))
            extra.append(space.values(field_name, values))
    match = rule.match
    parts: tuple[Expr, ...] = match.parts if isinstance(match, And) else (match,)
    return space.rule_set(parts, cubes, extra)


def compile_ruleset(space: PacketSpace, ruleset: RuleSet, interfaces: list[str]) -> CompiledRuleSet:
    """First match, rule by rule: each rule decides its match minus everything decided above it.

    Two BDD operations per rule against the growing union (the effective set, then the union
    itself); a rule whose effective set is empty changes nothing and costs nothing more. Runs of
    consecutive allow rules are merged into ``allowed`` once per run: their effective sets are
    disjoint and small, so their union is cheap, and one operation against the large ``allowed``
    replaces one per rule.
    (Measured and rejected: a balanced tree of unions, no faster at 10k rules and 30% slower at
    50k; building the decision bottom-up with one ITE per rule, 2x slower than the union here;
    merging a run with one ITE over the unions before and after it, 5x slower.)
    """
    iface_index = {name: i for i, name in enumerate(interfaces)}
    if len(iface_index) > 1 << space.widths["in_if"]:
        raise ValueError(f"too many interfaces ({len(iface_index)}) for the packet space")
    false = space.false
    decided = false
    allowed = false
    run = false  # effective sets of the current run of allow rules, not yet in ``allowed``
    effective: list[BDD] = []
    matches: list[BDD] = []
    iface_blocks: dict[tuple[str, frozenset[str]], tuple[dict[str, bool], ...]] = {}
    for index, rule in enumerate(ruleset.rules):
        if not index & GC_CHECK_MASK:
            space.gc_checkpoint()  # within ``PacketSpace.gc_deferred``: keep its budget
        # Restricted to real packets, a rule's effective set is empty exactly when it is shadowed.
        m = rule_match(space, rule, iface_index, iface_blocks)
        matches.append(m)
        eff = m & ~decided
        effective.append(eff)
        if eff == false:
            continue
        if rule.action == "allow":
            run = run | eff
        elif run != false:
            allowed = allowed | run
            run = false
        decided = decided | eff
    if run != false:
        allowed = allowed | run
    if ruleset.default == "allow":
        allowed = allowed | ~decided
    return CompiledRuleSet(space, ruleset, iface_index, allowed, effective, decided, matches)
