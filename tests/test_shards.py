"""Sharded compilation and the compiled CUDD loops give exactly the decision of one manager and dd's calls.

Large rule sets are cut into cells (interface pair x protocol, and the rest) compiled in separate
managers, and the hot loops run in C on dd's managers (``packetspace/_cuddops.c``). Here the shard
sizes are forced down to a few rules so that small random rule sets split into many shards, with
general rules (any interface, several or no protocols) crossing them; every answer the analysis asks
of a compiled rule set must be the one of the plain compilation and of the naive first-match loop.
"""

from __future__ import annotations

import json
import os
import random
from array import array
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_packetspace import IFACES, SPACE, address_sets, contains, exprs, packets, port_sets

from segverify.cli import main
from segverify.model.addresses import IntervalSet
from segverify.model.rules import And, FieldIn, Rule, RuleSet
from segverify.packetspace import firewall, kernel
from segverify.packetspace.firewall import compile_ruleset
from segverify.packetspace.space import PacketSpace

NO_NATIVE = {"SEGVERIFY_NO_NATIVE": "1"}
SPACE_DD = None  # built on first use, with the compiled loops off


def dd_space() -> PacketSpace:
    global SPACE_DD
    if SPACE_DD is None:
        with mock.patch.dict(os.environ, NO_NATIVE):
            SPACE_DD = PacketSpace()
    assert SPACE_DD.ops is None
    return SPACE_DD


@contextmanager
def sharded(rules_per_shard: int = 2):
    """Shard every rule set, a couple of rules per shard."""
    with mock.patch.object(firewall, "SHARD_MIN_RULES", 1), mock.patch.object(firewall, "SHARD_RULES", rules_per_shard):
        yield


def unsharded():
    return mock.patch.object(firewall, "SHARD_MIN_RULES", 10**9)


# Rules that mostly name one interface pair and one protocol (one cell each), with general ones among them.
protocols = st.sampled_from([6, 17, 1, 58])
specific = st.builds(
    lambda i, action, proto, src, dst, dport, fi, to: Rule(
        str(i), action, And((FieldIn("proto", IntervalSet.of(proto)), FieldIn("src", src), FieldIn("dst", dst))
                            + ((FieldIn("dport", dport),) if proto in (6, 17) and dport is not None else ())),
        frozenset({fi}), frozenset({to})),
    st.integers(0, 10_000), st.sampled_from(["allow", "deny"]), protocols, address_sets(), address_sets(),
    st.none() | port_sets(), st.sampled_from(IFACES), st.sampled_from(IFACES),
)
general = st.builds(
    lambda i, action, match, fi, to: Rule(str(i), action, match, fi, to),
    st.integers(0, 10_000), st.sampled_from(["allow", "deny"]), exprs,
    st.none() | st.sets(st.sampled_from(IFACES), min_size=1).map(frozenset),
    st.none() | st.sets(st.sampled_from(IFACES), min_size=1).map(frozenset),
)
rule_lists = st.lists(st.one_of(specific, specific, specific, general), min_size=1, max_size=14)
# Rules that bind no interface (an iptables rule set without -i/-o): cells by protocol alone.
unbound = specific.map(lambda r: Rule(r.id, r.action, r.match))
unbound_lists = st.lists(st.one_of(unbound, unbound, unbound, general), min_size=2, max_size=14)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists, st.sampled_from(["allow", "deny"]), st.lists(packets(), min_size=1, max_size=12))
def test_sharded_compilation_is_first_match(rule_list, default, pkts):
    """Per packet and interface pair: the hop verdict, the one rule whose effective set holds it, and
    the rules ``rules_touching`` finds are the naive loop's."""
    ruleset = RuleSet(tuple(rule_list), default)
    with sharded():
        compiled = compile_ruleset(SPACE, ruleset, IFACES)
    for p in pkts:
        for i, o in (("p1", "p2"), ("p3", "p1"), ("p2", "p2")):
            action, first = ruleset.decide(p, i, o)
            assert contains(compiled.hop(i, o), p) == (action == "allow"), (p, i, o)
            for k, rule in enumerate(ruleset.rules):
                assert contains(compiled.rule_hop(k, i, o), p) == (first is rule), (k, p, i, o)
            found = compiled.rules_touching(SPACE.packet(p), i, o)
            assert [ruleset.rules[k] for k in found] == ([first] if first is not None else [])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists, st.sampled_from(["allow", "deny"]), st.integers(1, 5))
def test_sharded_equals_one_manager(rule_list, default, per_shard):
    """The same sets, the same shadowed rules and the same shadowing rules, whatever the shard size."""
    ruleset = RuleSet(tuple(rule_list), default)
    with unsharded():
        plain = compile_ruleset(SPACE, ruleset, IFACES)
    with sharded(per_shard):
        split = compile_ruleset(SPACE, ruleset, IFACES)
    assert split.allowed == plain.allowed
    assert split.decided == plain.decided
    assert split.shadowed() == plain.shadowed()
    for k in split.shadowed():
        assert split.shadowing_rule(k) == plain.shadowing_rule(k)
    for k in range(len(ruleset.rules)):
        assert split.rule_hop(k, "p1", "p3") == plain.rule_hop(k, "p1", "p3")
    region = plain.hop("p2", "p1")
    assert split.rules_touching(region, "p2", "p1", "allow") == plain.rules_touching(region, "p2", "p1", "allow")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists, st.sampled_from(["allow", "deny"]), st.booleans())
def test_compiled_loops_equal_dd(rule_list, default, split):
    """The C loops (cubes, first match in chunks, copies between managers) and dd's own calls give the same
    sets, sharded or not."""
    ruleset = RuleSet(tuple(rule_list), default)
    with sharded(3) if split else unsharded(), mock.patch.object(firewall, "C_CHUNK", 2):
        native = compile_ruleset(SPACE, ruleset, IFACES)
        with mock.patch.dict(os.environ, NO_NATIVE):
            plain = compile_ruleset(dd_space(), ruleset, IFACES)
    # Compare in the dd space: dd copies the native sets over.
    assert dd_space().bring([native.allowed], SPACE)[0] == plain.allowed
    assert dd_space().bring([native.decided], SPACE)[0] == plain.decided
    assert native.shadowed() == plain.shadowed()
    for k in range(len(ruleset.rules)):
        assert dd_space().bring([native.rule_hop(k, "p3", "p2")], SPACE)[0] == plain.rule_hop(k, "p3", "p2")


def test_compiled_loops_are_built_and_usable():
    """CI installs the C extension: the fast path must be the one under test, not silently the fallback."""
    assert kernel.ops() is not None
    assert SPACE.ops is not None
    with mock.patch.dict(os.environ, NO_NATIVE):
        assert kernel.ops() is None
        assert PacketSpace().ops is None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([v for vs in SPACE.vars.values() for v in vs]), st.booleans(), max_size=60))
def test_cube_is_dds_cube(assignment):
    assert SPACE.cube(assignment) == SPACE.bdd.cube(assignment)


def test_transfer_round_trip_shares_nodes():
    """Sets copied to a sibling manager and back are the same sets; shared nodes are copied once."""
    rng = random.Random(5)
    sets = []
    for _ in range(40):
        u = SPACE.false
        for _ in range(rng.randint(1, 6)):
            lo = rng.randrange(0, 1 << 32)
            u = u | (SPACE.values("dst", IntervalSet.interval(lo, lo + rng.randrange(1 << 20)))
                     & SPACE.values("dport", IntervalSet.interval(rng.randrange(100), rng.randrange(100, 3000))))
        sets.append(u)
    sets += [SPACE.true, SPACE.false, ~sets[0]]
    other = SPACE.sibling()
    there = other.bring(sets, SPACE)
    assert [u.dag_size for u in there] == [u.dag_size for u in sets]
    assert SPACE.bring(there, other) == sets
    # and dd's own copy agrees
    import dd.cudd

    assert [dd.cudd.copy_bdd(u, other.bdd) for u in sets] == there


def test_kernel_rejects_buffers_of_the_wrong_size():
    ops = kernel.ops()
    with pytest.raises(ValueError):
        ops.first_match(SPACE.manager, array("Q", [kernel.node(SPACE.true)]), b"\x01\x00", array("Q", [0]), None)
    with pytest.raises(ValueError):
        ops.transfer(SPACE.manager, SPACE.manager, array("Q", [kernel.node(SPACE.true)]), array("Q"))
    with pytest.raises(TypeError):
        ops.manager(object())


def _bench_topology(path: Path, n: int) -> None:
    """The check benchmark's generator (bench/bench_check.py) at a size that shards."""
    import importlib.util

    source = Path(__file__).parent.parent / "bench" / "bench_check.py"
    spec = importlib.util.spec_from_file_location("bench_check", source)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    path.write_text(bench.generate(n, seed=11))


def test_check_report_is_the_same_sharded_or_not(tmp_path):
    """End to end on a generated 2,500-rule firewall: the report (findings, witnesses, rules, shadowed
    rules) is byte for byte the one of the plain compilation, and of dd's own calls."""
    topo = tmp_path / "bench.yaml"
    _bench_topology(topo, 2500)

    def report(env: dict[str, str], shard_min: int) -> str:
        out = tmp_path / f"r-{len(env)}-{shard_min}.json"
        with mock.patch.dict(os.environ, env), mock.patch.object(firewall, "SHARD_MIN_RULES", shard_min):
            result = CliRunner().invoke(main, ["check", str(topo), "--format", "json", "-o", str(out)])
        assert result.exit_code == 1, result.output
        return out.read_text()

    sharded_native = report({}, 2000)
    assert sharded_native == report({}, 10**9)
    assert sharded_native == report(NO_NATIVE, 2000)
    findings = json.loads(sharded_native)["findings"]
    assert {f["code"] for f in findings} >= {"MYNUMBER_ISOLATION", "LGWAN_INTERNET_UNSANITIZED", "RULE_SHADOWED"}


def test_plan_cuts_cells_and_places_general_rules_in_each():
    """Rules naming one pair and one protocol stay whole in their cell's shard; a rule on any interface
    has a part in every shard its cells reach, the rest's included; the analysis manager gets the decision."""
    tcp, udp = (FieldIn("proto", IntervalSet.of(p)) for p in (6, 17))
    rules = [Rule(f"s{k}", "allow" if k % 2 else "deny", tcp if k % 3 else udp,
                  frozenset({IFACES[k % 3]}), frozenset({IFACES[(k + 1) % 3]})) for k in range(12)]
    rules.insert(5, Rule("any", "deny", tcp))
    with sharded(2):
        compiled = compile_ruleset(SPACE, RuleSet(tuple(rules), "allow"), IFACES)
    assert len(compiled.shards) >= 4
    assert all(shard.space is not SPACE for shard in compiled.shards)
    assert len(compiled.placement[5]) >= 2  # the general rule, cut
    assert all(len(compiled.placement[k]) == 1 for k in range(len(rules)) if k != 5)
    assert sum(shard.pairs is None for shard in compiled.shards) == 1  # one shard holds the rest
    # Every tcp rule after "any" is shadowed (by it or a nearer copy); so are repeats of a pair and protocol.
    shadowed = {rules[k].id: rules[compiled.shadowing_rule(k)].id for k in compiled.shadowed()}
    assert set(shadowed) == {r.id for r in rules[6:] if r.match is tcp} | {"s3", "s4", "s6", "s9"}
    assert shadowed["s5"] == "any" and shadowed["s3"] == "s0"
    with unsharded():
        plain = compile_ruleset(SPACE, RuleSet(tuple(rules), "allow"), IFACES)
    assert shadowed == {rules[k].id: rules[plain.shadowing_rule(k)].id for k in plain.shadowed()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unbound_lists, st.sampled_from(["allow", "deny"]), st.lists(packets(), min_size=1, max_size=10))
def test_rules_without_interfaces_shard_by_protocol(rule_list, default, pkts):
    ruleset = RuleSet(tuple(rule_list), default)
    with unsharded():
        plain = compile_ruleset(SPACE, ruleset, IFACES)
    with sharded(2):
        split = compile_ruleset(SPACE, ruleset, IFACES)
    # (Which scheme cuts it, by pair or by protocol, is the one with fewer parts: a rule set of mostly unbound
    # rules may still be cut by pair, by one part. test_plan_prefers_fewer_parts_and_gives_up_beyond_the_budget
    # checks the choice; here, that either cut decides exactly as one manager does.)
    assert split.allowed == plain.allowed
    assert split.shadowed() == plain.shadowed()
    for p in pkts:
        action, first = ruleset.decide(p, "p1", "p2")
        assert contains(split.hop("p1", "p2"), p) == (action == "allow")
        found = split.rules_touching(SPACE.packet(p), "p1", "p2")
        assert [ruleset.rules[k] for k in found] == ([first] if first is not None else [])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(address_sets(), port_sets()), min_size=1, max_size=4),
       st.lists(st.tuples(address_sets(), port_sets()), min_size=1, max_size=4), st.booleans())
def test_meets_in_c_is_and_exists(a, b, negate):
    """``meets`` (CUDD's Leq against the complement, in C) answers as dd's and-exists over every variable."""
    import dd.cudd

    def build(parts):
        u = SPACE.false
        for dst, ports in parts:
            u = u | (SPACE.values("dst", dst) & SPACE.values("dport", ports))
        return u

    u, v = build(a), build(b)
    v = ~v if negate else v
    expected = dd.cudd.and_exists(u, v, SPACE._all_vars) != SPACE.false
    assert SPACE.meets(u, v) == expected == ((u & v) != SPACE.false)
    assert not SPACE.meets(u, ~u) and SPACE.meets(u, u) == (u != SPACE.false)


def test_plan_prefers_fewer_parts_and_gives_up_beyond_the_budget():
    """Rules on one ingress and any egress would be cut into a part per egress by pair: by protocol they stay
    whole. With a budget below what either scheme needs, the rule set compiles in one manager."""
    udp = FieldIn("proto", IntervalSet.of(17))
    rules = [Rule(f"s{k}", "allow" if k % 3 else "deny", udp, frozenset({IFACES[k % 3]}),
                  frozenset({IFACES[(k + 1) % 3]}) if k % 4 == 0 else None) for k in range(24)]
    ruleset = RuleSet(tuple(rules), "deny")
    with sharded(4):
        split = compile_ruleset(SPACE, ruleset, IFACES)
    cells = {c for shard in split.shards for c in shard.cells or ()}
    assert cells and all(c[0] == firewall.ANY for c in cells if c != firewall.REST)
    assert all(len(p) == 1 for p in split.placement)  # nothing cut
    with sharded(4), mock.patch.object(firewall, "MAX_PARTS", 0):
        whole = compile_ruleset(SPACE, ruleset, IFACES)
    assert len(whole.shards) == 1 and whole.shards[0].space is SPACE
    assert whole.allowed == split.allowed
