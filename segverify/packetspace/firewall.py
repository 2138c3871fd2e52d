"""A firewall's ordered rules as one exact decision: which packets it lets through, per interface pair.

First match wins: the set a rule really decides is its match minus everything matched above it.
Those effective sets are kept per rule, so the analysis can tell which rule lets a packet through,
which rules can never match (fully shadowed), and which rules a violation depends on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.addresses import IntervalSet
from ..model.rules import And, Expr, FieldIn, Rule, RuleSet
from .space import BDD, PacketSpace


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

        One AND per candidate rule, each between a rule's (small) effective set and the region;
        rules that cannot apply to the interface pair are skipped without a BDD operation.
        (A tree of unions over the rules was tried: its upper nodes are as large as the whole
        rule base, and testing them against a large region cost four times more.)
        """
        false = self.space.false
        region_io = region & self.interfaces(in_iface, out_iface)
        return [i for i in self.candidates(in_iface, out_iface, action) if (self.effective[i] & region_io) != false]

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
        """An earlier rule that alone covers rule ``index`` (the usual cause of shadowing), if any."""
        false = self.space.false
        mine = self.matches[index]
        for j in range(index - 1, max(-1, index - 1 - limit), -1):
            if (mine & ~self.matches[j]) == false:
                return j
        return None


def rule_match(space: PacketSpace, rule: Rule, iface_index: dict[str, int]) -> BDD:
    """A rule's match including its interface conditions (one cube for a typical rule)."""
    parts: list[Expr] = []
    for field_name, names in (("in_if", rule.in_ifaces), ("out_if", rule.out_ifaces)):
        if names is not None:
            parts.append(FieldIn(field_name, IntervalSet.of(*(iface_index[n] for n in names if n in iface_index))))
    if not parts:
        return space.compile(rule.match)
    if isinstance(rule.match, And):
        return space.compile(And((*parts, *rule.match.parts)), cache=False)
    return space.compile(And((*parts, rule.match)), cache=False)


def compile_ruleset(space: PacketSpace, ruleset: RuleSet, interfaces: list[str]) -> CompiledRuleSet:
    """First match, rule by rule: each rule decides its match minus everything decided above it.

    (A balanced tree of unions was measured too: no faster at 10k rules, 30% slower at 50k.)
    """
    iface_index = {name: i for i, name in enumerate(interfaces)}
    if len(iface_index) > 1 << space.widths["in_if"]:
        raise ValueError(f"too many interfaces ({len(iface_index)}) for the packet space")
    decided = space.false
    allowed = space.false
    effective: list[BDD] = []
    matches: list[BDD] = []
    for rule in ruleset.rules:
        # Restricted to real packets, a rule's effective set is empty exactly when it is shadowed.
        m = rule_match(space, rule, iface_index) & space.valid_shape
        matches.append(m)
        eff = m & ~decided
        if rule.action == "allow":
            allowed = allowed | eff
        decided = decided | m
        effective.append(eff)
    if ruleset.default == "allow":
        allowed = allowed | ~decided
    return CompiledRuleSet(space, ruleset, iface_index, allowed, effective, decided, matches)
