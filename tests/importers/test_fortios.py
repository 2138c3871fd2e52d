"""The FortiOS importer: Batfish's FortiOS test configurations, every construct on its own, a reference
interpreter, malformed and mutated input, and the bundled あおば市 topology end to end.

Every verdict is checked twice: with the first-match loop (``RuleSet.decide``) and with the BDD
engine (``compile_ruleset(...).hop``), which must agree.
"""

from __future__ import annotations

import ipaddress
import random
import textwrap
import time
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importer_support import PROTOS, SPACE, bdd_allows, corpus_files, packet

import segverify.importers
from segverify.analysis.check import check
from segverify.errors import InputError
from segverify.importers import fortios
from segverify.importers.fortios import load
from segverify.model.rules import FALSE, Packet, Rule, RuleSet
from segverify.packetspace.firewall import compile_ruleset
from segverify.topology.loader import load_topology

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "configs" / "fortios"
corpus_file = corpus_files(CORPUS)
pkt = packet

PORTS5 = ("port1", "port2", "port3", "port4", "port5")


@cache
def imported(path: str, ifaces: tuple[str, ...]):
    ruleset = load(path, ifaces)
    return ruleset, compile_ruleset(SPACE, ruleset, list(ifaces))


def check_cases(path: Path | str, ifaces: tuple[str, ...], cases) -> None:
    """Each case: (in, out, packet, expected action, expected rule id or None for the default)."""
    ruleset, compiled = imported(str(path), ifaces)
    for case in cases:
        i, o, p, want, rule_id = case
        action, rule = ruleset.decide(p, i, o)
        assert bdd_allows(compiled, p, i, o) == (action == "allow"), f"BDD and first-match loop disagree: {case}"
        got = rule.id if rule else None
        assert (action, got) == (want, rule_id), f"{case}: got {action} by {got}"


IFACES = ("port1", "port2", "port3", "wan1")


def write(tmp_path: Path, text: str, name: str = "fw.conf") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, ifaces: tuple[str, ...] = IFACES, name: str = "fw.conf") -> RuleSet:
    return load(str(write(tmp_path, text, name)), ifaces)


def decide(ruleset: RuleSet, p: Packet, i: str = "port1", o: str = "port2",
           ifaces: tuple[str, ...] = IFACES) -> tuple[str, str | None]:
    action, rule = ruleset.decide(p, i, o)
    compiled = compile_ruleset(SPACE, ruleset, list(ifaces))
    assert bdd_allows(compiled, p, i, o) == (action == "allow"), f"BDD and first-match loop disagree on {p}"
    return action, (rule.id if rule else None)


def by_id(ruleset: RuleSet) -> dict[str, Rule]:
    return {r.id: r for r in ruleset.rules}


def policies(*bodies: str) -> str:
    """A ``config firewall policy`` block; each body is one policy's ``edit`` … ``next``."""
    return "config firewall policy\n" + "".join(textwrap.dedent(b) for b in bodies) + "end\n"


def policy(pid: str | int, *settings_: str) -> str:
    return f"    edit {pid}\n" + "".join(f"        {s}\n" for s in settings_) + "    next\n"


def allow_all(pid: str | int = 1, *extra: str, src="port1", dst="port2") -> str:
    return policy(pid, f"set srcintf {src}", f"set dstintf {dst}", "set srcaddr all", "set dstaddr all",
                  "set service ALL", "set action accept", *extra)


# --- Batfish's FortiOS test configurations -----------------------------------------------------


def test_firewall_policy_file_order_disabled_and_default_deny():
    path = corpus_file("firewall_policy")
    ruleset, _ = imported(str(path), PORTS5)
    # file order, not edit number; the disabled policy 0 is not emitted
    assert [r.id for r in ruleset.rules] == ["4294967294", "1", "2", "3"]
    rules = by_id(ruleset)
    assert rules["4294967294"].action == "deny"  # no 'set action': deny
    assert rules["4294967294"].source.line == 75 and rules["4294967294"].source.path == str(path)
    assert rules["4294967294"].name == "longest allowed firewall policy nam"
    assert rules["1"].name == "Permit Custom TCP Traffic" and rules["1"].source.line == 86
    assert rules["2"].in_ifaces is None and rules["2"].out_ifaces is None  # any/any
    assert ruleset.default == "deny" and not any(r.approximation for r in ruleset.rules)
    check_cases(path, PORTS5, [
        # 4294967294: addr1 → addr2, tcp/12 from source port 11, denied
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.2.5", 12, sport=11), "deny", "4294967294"),
        ("port1", "port1", pkt("tcp", "10.0.1.5", "10.0.2.5", 12, sport=11), "deny", "4294967294"),
        # the same from another source port: not 4294967294, not 1 (custom_tcp_12_from_11) → 2
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.2.5", 12, sport=12), "allow", "2"),
        # 1: both directions, appended interfaces, addresses and services
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.2.5", 11), "allow", "1"),
        ("port2", "port1", pkt("tcp", "10.0.2.5", "10.0.1.5", 11), "allow", "1"),
        ("port2", "port2", pkt("tcp", "10.0.2.5", "10.0.2.6", 12, sport=11), "allow", "1"),
        # the disabled policy 0 (deny addr1 → addr2 tcp/11) does not apply
        ("port1", "port2", pkt("tcp", "10.0.1.9", "10.0.2.9", 11, sport=1), "allow", "1"),
        # 2: any/any, service ALL (protocol IP): everything IPv4, zones included
        ("port3", "port4", pkt("udp", "10.0.3.5", "10.0.4.5", 53), "allow", "2"),
        ("port5", "port1", pkt("gre", "10.0.5.5", "8.8.8.8"), "allow", "2"),
        # IPv6: no policy has srcaddr6/dstaddr6 → the implicit deny
        ("port1", "port2", pkt("tcp", "fd00::1", "fd00::2", 11), "deny", None),
    ])


def test_firewall_policy_with_zone_names_in_the_topology():
    """The topology names the FortiGate's interfaces by zone: zone1..3 select what port3..5 did."""
    path = corpus_file("firewall_policy")
    ifaces = ("port1", "port2", "zone1", "zone2", "zone3")
    ruleset, _ = imported(str(path), ifaces)
    rules = by_id(ruleset)
    # policy 3: srcintf zone1 port2 zone3 + zone2, dstintf zone1 (set twice) + zone3
    assert rules["3"].in_ifaces == frozenset({"zone1", "port2", "zone3", "zone2"})
    assert rules["3"].out_ifaces == frozenset({"zone1", "zone3"})
    check_cases(path, ifaces, [
        ("zone1", "zone2", pkt("tcp", "10.0.3.5", "10.0.4.5", 443), "allow", "2"),
        ("zone3", "zone1", pkt("icmp", "10.0.5.5", "10.0.3.5", icmp=(8, 0)), "allow", "2"),
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.2.5", 11), "allow", "1"),
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.2.5", 12, sport=11), "deny", "4294967294"),
        ("zone2", "zone2", pkt("udp", "fd00::1", "fd00::2", 53), "deny", None),
    ])
    # policy 3 comes after the any/any policy 2: fully shadowed
    _, compiled = imported(str(path), ifaces)
    assert [ruleset.rules[i].id for i in compiled.shadowed()] == ["3"]


def test_firewall_vi_policy_zone_with_two_members():
    path = corpus_file("firewall_vi_policy")
    cases = [
        # 1: deny port1 → zone1 (port2, port3) to addr1 10.0.1.0/24
        ("port1", "port2", pkt("tcp", "10.0.9.9", "10.0.1.5", 80), "deny", "1"),
        ("port1", "port3", pkt("udp", "10.0.9.9", "10.0.1.200", 53), "deny", "1"),
        # 2: accept any → zone1 to addr2 10.0.0.0/16
        ("port1", "port2", pkt("tcp", "10.0.9.9", "10.0.2.5", 80), "allow", "2"),
        ("port2", "port3", pkt("tcp", "10.0.2.9", "10.0.3.5", 22), "allow", "2"),
        ("port3", "port3", pkt("tcp", "10.0.3.9", "10.0.3.5", 22), "allow", "2"),
        ("port1", "port2", pkt("tcp", "10.0.9.9", "10.1.0.5", 80), "deny", None),
        # nothing goes toward port1
        ("port2", "port1", pkt("tcp", "10.0.2.9", "10.0.1.5", 80), "deny", None),
    ]
    check_cases(path, ("port1", "port2", "port3"), cases)
    zone_cases = [
        ("port1", "zone1", pkt("tcp", "10.0.9.9", "10.0.1.5", 80), "deny", "1"),
        ("port1", "zone1", pkt("tcp", "10.0.9.9", "10.0.2.5", 80), "allow", "2"),
        ("zone1", "zone1", pkt("tcp", "10.0.2.9", "10.0.3.5", 22), "allow", "2"),
        ("zone1", "port1", pkt("tcp", "10.0.2.9", "10.0.1.5", 80), "deny", None),
        ("port1", "zone1", pkt("tcp", "10.0.9.9", "10.0.255.255", 65535), "allow", "2"),
    ]
    check_cases(path, ("port1", "zone1"), zone_cases)
    ruleset, _ = imported(str(path), ("port1", "zone1"))
    assert [(r.id, r.source.line) for r in ruleset.rules] == [("1", 42), ("2", 50)]


def test_firewall_policy_addrgrp_nested_with_exclusion():
    path = corpus_file("firewall_policy_addrgrp")
    # grp1_parent → grp1_child = 10.0.1.0/24 except addr1b 10.0.1.64/29; grp2 = 10.0.2.0/24; tcp/11
    check_cases(path, ("port1", "port2"), [
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.2.9", 11), "allow", "1"),
        ("port1", "port2", pkt("tcp", "10.0.1.63", "10.0.2.9", 11), "allow", "1"),
        ("port1", "port2", pkt("tcp", "10.0.1.64", "10.0.2.9", 11), "deny", None),
        ("port1", "port2", pkt("tcp", "10.0.1.71", "10.0.2.9", 11), "deny", None),
        ("port1", "port2", pkt("tcp", "10.0.1.72", "10.0.2.9", 11), "allow", "1"),
        ("port2", "port1", pkt("tcp", "10.0.1.5", "10.0.2.255", 11), "allow", "1"),
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.3.1", 11), "deny", None),
        ("port1", "port2", pkt("udp", "10.0.1.5", "10.0.2.9", 11), "deny", None),
        ("port1", "port2", pkt("tcp", "10.0.1.5", "10.0.2.9", 11, sport=0), "deny", None),  # sources 1-65535
    ])


def test_policy_move_changes_the_order():
    path = corpus_file("policy_move")
    ruleset, _ = imported(str(path), ("port1", "port2"))
    # edits 1..5, then 'move 5 before 1' and 'move 4 after 2'
    assert [r.id for r in ruleset.rules] == ["5", "1", "2", "4", "3"]
    assert [r.source.line for r in ruleset.rules] == [45, 17, 24, 38, 31]
    assert all(r.action == "deny" for r in ruleset.rules)  # no 'set action' anywhere
    check_cases(path, ("port1", "port2"), [
        ("port1", "port2", pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "deny", "5"),
        ("port2", "port1", pkt("tcp", "1.1.1.1", "2.2.2.2", 65535), "deny", "5"),
        ("port1", "port1", pkt("tcp", "1.1.1.1", "2.2.2.2", 1), "deny", "5"),
        ("port1", "port2", pkt("tcp", "1.1.1.1", "2.2.2.2", 0), "deny", None),  # ALL_TCP is 1-65535
        ("port1", "port2", pkt("udp", "1.1.1.1", "2.2.2.2", 53), "deny", None),
    ])
    _, compiled = imported(str(path), ("port1", "port2"))
    assert [ruleset.rules[i].id for i in compiled.shadowed()] == ["1", "2", "4", "3"]


def with_policies(tmp_path: Path, corpus_name: str, body: str) -> Path:
    """A copy of a corpus file that has objects but no policies, with policies that use them appended."""
    text = corpus_file(corpus_name).read_text() + policies(*body.split("#---\n"))
    out = tmp_path / corpus_name
    out.write_text(text)
    return out


def per_object_policies(names: list[str], key: str = "dstaddr", service: str = "ALL",
                        action: str = "accept") -> str:
    """One policy per object, each on its own ingress interface ``if<N>`` toward ``out``."""
    bodies = []
    for n, name in enumerate(names, 1):
        other = {"dstaddr": "set srcaddr all", "srcaddr": "set dstaddr all", "service": "set srcaddr all"}[key]
        value = f'"{name}"'
        lines = [f"set srcintf if{n}", "set dstintf out", other, f"set {key} {value}", f"set action {action}"]
        if key == "service":
            lines.append("set dstaddr all")
        else:
            lines.append(f"set service {service}")
        bodies.append(policy(n, *lines))
    return "#---\n".join(bodies)


ADDRESS_NAMES = ["ipmask", "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxy",
                 "undefined-refs", "iprange", "dynamic", "fqdn", "geography", "interface-subnet", "mac", "wildcard",
                 "ipmask-default", "iprange-default", "wildcard-default"]


def test_address_file_objects(tmp_path):
    path = with_policies(tmp_path, "address", per_object_policies(ADDRESS_NAMES))
    ifaces = tuple(f"if{n}" for n in range(1, len(ADDRESS_NAMES) + 1)) + ("out",)
    ruleset, _ = imported(str(path), ifaces)
    rules = by_id(ruleset)
    exact = {"1", "2", "4", "8", "11", "12", "13"}
    assert {r.id for r in ruleset.rules if not r.approximation} == exact
    assert "interface undefined_iface" in rules["3"].approximation
    assert "more than 4096 intervals" in rules["10"].approximation
    assert "dynamic" in rules["5"].approximation and "google.com" in rules["6"].approximation
    assert "AQ" in rules["7"].approximation and "MAC" in rules["9"].approximation

    def case(n: int, dst: str, want: str) -> tuple:
        return (f"if{n}", "out", pkt("tcp", "9.9.9.9", dst, 80), want, str(n) if want == "allow" else None)

    check_cases(path, ifaces, [
        case(1, "1.1.1.77", "allow"), case(1, "1.1.2.1", "deny"),  # ipmask with a netmask
        case(2, "1.1.1.0", "allow"), case(2, "1.1.0.255", "deny"),  # /24 form, longest name
        case(3, "198.51.100.1", "allow"),  # interface-subnet of an undefined interface: any, approximated
        case(4, "1.1.1.255", "allow"), case(4, "1.1.2.0", "deny"),  # iprange
        case(5, "203.0.113.1", "allow"), case(6, "142.250.0.1", "allow"), case(7, "1.2.3.4", "allow"),
        case(8, "1.1.1.1", "allow"), case(8, "1.1.0.1", "deny"),  # interface-subnet of port1 (1.1.1.1/24)
        case(9, "10.0.0.1", "allow"),
        # wildcard: the second 'config firewall address' block re-edits it to 2.2.2.2 255.0.0.255, i.e.
        # 2.x.y.2 for every x, y: 65536 intervals, taken as its span 2.0.0.2-2.255.255.2 in an accept
        case(10, "2.0.0.2", "allow"), case(10, "2.77.200.2", "allow"), case(10, "2.2.2.3", "allow"),
        case(10, "2.255.255.3", "deny"), case(10, "1.1.0.1", "deny"),
        case(11, "8.8.8.8", "allow"),  # no subnet: 0.0.0.0/0
        case(12, "0.0.0.0", "allow"), case(12, "1.1.1.1", "allow"), case(12, "1.1.1.2", "deny"),  # from 0.0.0.0
        case(13, "250.1.2.3", "allow"),  # wildcard 0.0.0.0 0.0.0.0: everything
        case(1, "fd00::1", "deny"),  # no IPv6 addresses in these policies
    ])


def test_address_file_objects_in_deny_policies_match_only_what_is_certain(tmp_path):
    path = with_policies(tmp_path, "address", per_object_policies(ADDRESS_NAMES, action="deny"))
    ruleset = load(str(path), ("if1", "out"))
    rules = by_id(ruleset)
    for n in ("3", "5", "6", "7", "9"):
        assert rules[n].match == FALSE and rules[n].approximation, n  # a deny that might not match: doesn't
    assert decide(ruleset, pkt("tcp", "9.9.9.9", "1.1.1.5", 80), "if1", "out", ("if1", "out")) == ("deny", "1")


def test_addrgrp_file_exclusions_and_nesting(tmp_path):
    body = per_object_policies(["grp1", "grp2", "this is longest possible firewall addrgrp group name that is "
                                "accepted by device"], key="srcaddr")
    path = with_policies(tmp_path, "addrgrp", body)
    ifaces = ("if1", "if2", "if3", "out")
    ruleset, _ = imported(str(path), ifaces)
    assert not any(r.approximation for r in ruleset.rules)
    # grp1 = (addr1 ∪ addr5) − (addr4 ∪ addr5): the exclude list after set/set/append, kept across
    # 'exclude disable' / 'exclude enable'
    # grp2 = addr4 ∪ grp1 (the member list replaced, then appended; its exclude disabled)
    check_cases(path, ifaces, [
        ("if1", "out", pkt("tcp", "1.1.1.9", "8.8.8.8", 80), "allow", "1"),
        ("if1", "out", pkt("tcp", "5.5.5.9", "8.8.8.8", 80), "deny", None),
        ("if1", "out", pkt("tcp", "2.2.2.9", "8.8.8.8", 80), "deny", None),
        ("if2", "out", pkt("tcp", "4.4.4.9", "8.8.8.8", 80), "allow", "2"),
        ("if2", "out", pkt("tcp", "1.1.1.9", "8.8.8.8", 80), "allow", "2"),
        ("if2", "out", pkt("tcp", "2.2.2.9", "8.8.8.8", 80), "deny", None),
        ("if2", "out", pkt("tcp", "3.3.3.9", "8.8.8.8", 80), "deny", None),
        ("if3", "out", pkt("tcp", "3.3.3.9", "8.8.8.8", 80), "allow", "3"),
        ("if3", "out", pkt("tcp", "4.4.4.9", "8.8.8.8", 80), "deny", None),
    ])


SERVICE_NAMES = ["longest possible firewall service custom service name that is accepted by devic", "custom_tcp",
                 "explicit_tcp", "src_port_defaults", "custom_icmp", "custom_icmp6", "custom_ip", "change_protocol",
                 "unset_icmp_1", "unset_icmp_2", "unset_icmp_3"]


def test_service_custom_file(tmp_path):
    path = with_policies(tmp_path, "service_custom", per_object_policies(SERVICE_NAMES, key="service"))
    ifaces = tuple(f"if{n}" for n in range(1, len(SERVICE_NAMES) + 1)) + ("out",)
    ruleset, _ = imported(str(path), ifaces)
    assert not any(r.approximation for r in ruleset.rules)
    a, b = "10.0.0.1", "10.0.0.2"

    def case(n: int, p: Packet, want: str) -> tuple:
        return (f"if{n}", "out", p, want, str(n) if want == "allow" else None)

    check_cases(path, ifaces, [
        case(1, pkt("esp", a, b), "allow"),  # protocol IP: everything
        case(2, pkt("tcp", a, b, 1), "allow"), case(2, pkt("tcp", a, b, 2), "deny"),
        case(2, pkt("udp", a, b, 1), "deny"),
        # explicit_tcp: tcp 1-2 from 3-4, 10-11 from any, 13 from 6-7; udp 100; sctp 200, 201 from 300
        case(3, pkt("tcp", a, b, 2, sport=3), "allow"), case(3, pkt("tcp", a, b, 2, sport=5), "deny"),
        case(3, pkt("tcp", a, b, 11, sport=60000), "allow"), case(3, pkt("tcp", a, b, 13, sport=7), "allow"),
        case(3, pkt("tcp", a, b, 13, sport=8), "deny"), case(3, pkt("tcp", a, b, 12, sport=3), "deny"),
        case(3, pkt("udp", a, b, 100), "allow"), case(3, pkt("udp", a, b, 101), "deny"),
        case(3, pkt("sctp", a, b, 200), "allow"), case(3, pkt("sctp", a, b, 201, sport=300), "allow"),
        case(3, pkt("sctp", a, b, 201, sport=301), "deny"),
        # src_port_defaults: dport 1 over tcp, udp and sctp, from source ports 1-65535
        case(4, pkt("udp", a, b, 1), "allow"), case(4, pkt("sctp", a, b, 1), "allow"),
        case(4, pkt("tcp", a, b, 1, sport=0), "deny"),
        # ICMP type 255 code 255; ICMPv6 any; protocol 254
        case(5, pkt("icmp", a, b, icmp=(255, 255)), "allow"), case(5, pkt("icmp", a, b, icmp=(255, 0)), "deny"),
        case(6, pkt("icmpv6", "fd00::1", "fd00::2", icmp=(128, 0)), "deny"),  # IPv4 addresses only
        case(6, pkt("icmpv6", a, b, icmp=(1, 4)), "allow"),
        case(7, pkt("p254", a, b), "allow"), case(7, pkt("tcp", a, b, 80), "deny"),
        # change_protocol: the last 'set protocol IP' cleared protocol-number 254: every protocol
        case(8, pkt("udp", a, b, 9), "allow"), case(8, pkt("gre", a, b), "allow"),
        # unset icmpcode → type 5, any code; unset icmptype clears the code, then type 3; no type at all
        case(9, pkt("icmp", a, b, icmp=(5, 3)), "allow"), case(9, pkt("icmp", a, b, icmp=(4, 1)), "deny"),
        case(10, pkt("icmp", a, b, icmp=(3, 13)), "allow"), case(10, pkt("icmp", a, b, icmp=(5, 1)), "deny"),
        case(11, pkt("icmp", a, b, icmp=(0, 0)), "allow"), case(11, pkt("tcp", a, b, 1), "deny"),
    ])


def test_service_group_file(tmp_path):
    names = ["grp1", "grp2", "this is longest possible firewall service group name that is accepted by device"]
    path = with_policies(tmp_path, "service_group", per_object_policies(names, key="service"))
    ifaces = ("if1", "if2", "if3", "out")
    a, b = "10.0.0.1", "10.0.0.2"
    check_cases(path, ifaces, [
        ("if1", "out", pkt("tcp", a, b, 3), "allow", "1"),
        ("if1", "out", pkt("tcp", a, b, 1), "deny", None),
        # grp2: 'set member custom_tcp1 custom_tcp2' replaced by 'set member custom_tcp3', then grp1 appended
        ("if2", "out", pkt("tcp", a, b, 3), "allow", "2"),
        ("if2", "out", pkt("tcp", a, b, 1), "deny", None),
        ("if2", "out", pkt("tcp", a, b, 2), "deny", None),
        ("if3", "out", pkt("tcp", a, b, 3), "allow", "3"),
        ("if3", "out", pkt("udp", a, b, 3), "deny", None),
    ])


def test_zone_file_intrazone():
    path = corpus_file("zone")
    # zone1 = port2 port1 (intrazone deny by default), zone2 = port3 (deny), the long zone = port4 port5 (allow)
    ruleset, _ = imported(str(path), PORTS5)
    (rule,) = ruleset.rules
    assert rule.id == "intrazone:longest possible valid name for zon" and rule.source.line == 43
    assert rule.in_ifaces == rule.out_ifaces == frozenset({"port4", "port5"}) and rule.approximation is None
    check_cases(path, PORTS5, [
        ("port4", "port5", pkt("tcp", "192.168.40.5", "192.168.50.5", 445), "allow", rule.id),
        ("port5", "port4", pkt("udp", "192.168.50.5", "192.168.40.5", 53), "allow", rule.id),
        ("port1", "port2", pkt("tcp", "192.168.10.5", "192.168.20.5", 445), "deny", None),
        ("port3", "port3", pkt("tcp", "192.168.30.5", "192.168.30.6", 22), "deny", None),
        ("port3", "port4", pkt("tcp", "192.168.30.5", "192.168.40.6", 22), "deny", None),
    ])
    long_zone = "longest possible valid name for zon"
    check_cases(path, ("zone1", "zone2", long_zone), [
        (long_zone, long_zone, pkt("tcp", "192.168.40.5", "192.168.50.5", 445), "allow", rule.id),
        ("zone1", "zone1", pkt("tcp", "192.168.10.5", "192.168.20.5", 445), "deny", None),
        ("zone2", long_zone, pkt("tcp", "192.168.30.5", "192.168.40.5", 445), "deny", None),
    ])


@pytest.mark.parametrize("name", ["address", "addrgrp", "firewall_policy", "firewall_policy_addrgrp",
                                  "firewall_vi_policy", "policy_move", "service_custom", "service_group", "zone"])
def test_every_corpus_file_parses_with_ids_and_sources(name):
    path = corpus_file(name)
    ruleset = load(str(path), PORTS5 + ("zone1",))
    lines = path.read_text().splitlines()
    assert ruleset.default == "deny"
    for rule in ruleset.rules:
        assert rule.source.path == str(path)
        text = lines[rule.source.line - 1].strip()
        if rule.id.startswith("intrazone:"):
            assert text.startswith(("set intrazone", "edit")), rule
        else:
            assert text == f"edit {rule.id}", rule


# --- constructs, one at a time -----------------------------------------------------------------


ADDRS = """
config firewall address
    edit "lan"
        set subnet 10.1.0.0 255.255.0.0
    next
    edit "srv"
        set subnet 10.2.0.10/32
    next
    edit "dmz"
        set subnet 10.2.0.0 255.255.255.0
    next
end
"""


def test_negation_of_sources_destinations_and_services(tmp_path):
    rs = load_text(tmp_path, ADDRS + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr lan", "set srcaddr-negate enable",
               "set dstaddr all", "set service ALL", "set action deny"),
        policy(2, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr dmz",
               "set dstaddr-negate enable", "set service ALL", "set action accept"),
        policy(3, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr all",
               "set service HTTP HTTPS", "set service-negate enable", "set action accept"),
    ))
    assert decide(rs, pkt("tcp", "10.9.0.1", "10.2.0.10", 22)) == ("deny", "1")  # source not in lan
    assert decide(rs, pkt("tcp", "10.1.0.1", "8.8.8.8", 80)) == ("allow", "2")  # destination not in dmz
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.2.0.10", 22)) == ("allow", "3")  # service not HTTP(S)
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.2.0.10", 443)) == ("deny", None)
    assert decide(rs, pkt("udp", "10.1.0.1", "10.2.0.10", 80)) == ("allow", "3")
    assert decide(rs, pkt("tcp", "fd00::1", "fd00::2", 22)) == ("deny", None)  # negation stays in the family
    assert not any(r.approximation for r in rs.rules)


def test_ipv6_addresses_policy6_and_family_separation(tmp_path):
    text = ADDRS + """
    config firewall address6
        edit "lan6"
            set ip6 fd00:1::/48
        next
        edit "range6"
            set type iprange
            set start-ip fd00:2::10
            set end-ip fd00:2::1f
        next
    end
    config firewall addrgrp6
        edit "g6"
            set member "lan6" "range6"
            set exclude enable
            set exclude-member "lan6"
        next
    end
    """ + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr lan", "set dstaddr srv",
               "set srcaddr6 lan6", "set dstaddr6 range6", "set service HTTPS", "set action accept"),
        policy(2, "set srcintf port1", "set dstintf port2", "set srcaddr6 all", "set dstaddr6 g6",
               "set service ALL", "set action deny"),
    ) + """
    config firewall policy6
        edit 1
            set srcintf "port1"
            set dstintf "port2"
            set srcaddr "all"
            set dstaddr "all"
            set action accept
            set service "PING6"
        next
    end
    """
    rs = load_text(tmp_path, text)
    assert [r.id for r in rs.rules] == ["1", "2", "policy6:1"]
    assert decide(rs, pkt("tcp", "10.1.2.3", "10.2.0.10", 443)) == ("allow", "1")
    assert decide(rs, pkt("tcp", "fd00:1::5", "fd00:2::10", 443)) == ("allow", "1")
    assert decide(rs, pkt("tcp", "fd00:1::5", "fd00:2::20", 443)) == ("deny", None)
    assert decide(rs, pkt("tcp", "fd00:9::5", "fd00:2::1f", 80)) == ("deny", "2")
    assert decide(rs, pkt("icmpv6", "fd00:9::5", "fd00:2::1f", icmp=(128, 0))) == ("deny", "2")
    assert decide(rs, pkt("icmpv6", "fd00:9::5", "fd00:3::1", icmp=(128, 0))) == ("allow", "policy6:1")
    assert decide(rs, pkt("icmp", "10.1.0.1", "10.2.0.1", icmp=(8, 0))) == ("deny", None)  # policy6 is IPv6 only
    # a v4 source with a v6 destination list: the IPv4 family is not matched
    assert decide(rs, pkt("tcp", "10.1.2.3", "10.2.0.11", 443)) == ("deny", None)


def test_srcaddr_negate_with_ipv6_takes_both_readings(tmp_path):
    rs = load_text(tmp_path, """
    config firewall address6
        edit "lan6"
            set ip6 fd00:1::/48
        next
    end
    """ + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr6 lan6", "set dstaddr6 all",
               "set srcaddr-negate enable", "set service ALL", "set action accept"),
        policy(2, "set srcintf port2", "set dstintf port1", "set srcaddr6 lan6", "set dstaddr6 all",
               "set srcaddr-negate enable", "set service ALL", "set action deny"),
        policy(3, "set srcintf port2", "set dstintf port1", "set srcaddr6 lan6", "set dstaddr6 all",
               "set srcaddr6-negate enable", "set service ALL", "set action deny"),
    ))
    rules = by_id(rs)
    assert "release" in rules["1"].approximation and rules["2"].match == FALSE
    assert rules["3"].approximation is None
    assert decide(rs, pkt("tcp", "fd00:1::1", "fd00:9::1", 1)) == ("allow", "1")
    assert decide(rs, pkt("tcp", "fd00:7::1", "fd00:9::1", 1)) == ("allow", "1")
    assert decide(rs, pkt("tcp", "fd00:7::1", "fd00:9::1", 1), "port2", "port1") == ("deny", "3")
    assert decide(rs, pkt("tcp", "fd00:1::1", "fd00:9::1", 1), "port2", "port1") == ("deny", None)


def test_predefined_services_and_addresses(tmp_path):
    """Names the file does not define: FortiOS's factory objects."""
    rs = load_text(tmp_path, policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr all",
               'set service "Windows AD" PING ALL_ICMP6 RLOGIN', "set action accept"),
        policy(2, "set srcintf port1", "set dstintf port3", "set srcaddr all", "set dstaddr none",
               "set service ALL", "set action accept"),
        policy(3, "set srcintf port1", "set dstintf port3", "set srcaddr all", "set dstaddr all",
               "set service DNS HTTP HTTPS SMTP SSH RDP SAMBA ALL_UDP", "set action accept"),
    ))
    assert not any(r.approximation for r in rs.rules)
    a, b = "10.0.0.1", "10.0.0.2"
    assert decide(rs, pkt("tcp", a, b, 445)) == ("allow", "1")  # SMB in Windows AD
    assert decide(rs, pkt("udp", a, b, 464)) == ("allow", "1")  # KERBEROS
    assert decide(rs, pkt("tcp", a, b, 443)) == ("deny", None)
    assert decide(rs, pkt("icmp", a, b, icmp=(8, 0))) == ("allow", "1")
    assert decide(rs, pkt("icmp", a, b, icmp=(0, 0))) == ("deny", None)
    assert decide(rs, pkt("tcp", a, b, 513, sport=1023)) == ("allow", "1")  # RLOGIN 513:512-1023
    assert decide(rs, pkt("tcp", a, b, 513, sport=1024)) == ("deny", None)
    assert decide(rs, pkt("esp", a, "0.0.0.0"), "port1", "port3") == ("allow", "2")  # 'none' is 0.0.0.0/32
    assert decide(rs, pkt("esp", a, "0.0.0.1"), "port1", "port3") == ("deny", None)
    for dport, proto in ((53, "udp"), (53, "tcp"), (139, "tcp"), (3389, "tcp"), (22, "tcp"), (25, "tcp"),
                         (9999, "udp")):
        assert decide(rs, pkt(proto, a, b, dport), "port1", "port3") == ("allow", "3"), dport
    assert decide(rs, pkt("tcp", a, b, 445), "port1", "port3") == ("deny", None)


def test_unknown_objects_are_approximated_by_polarity(tmp_path):
    rs = load_text(tmp_path, policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr all",
               "set service MY-APP", "set action deny"),
        policy(2, "set srcintf port1", "set dstintf port2", "set srcaddr nosuch", "set dstaddr all",
               "set service HTTP", "set action accept"),
    ))
    rules = by_id(rs)
    assert rules["1"].match == FALSE and "MY-APP" in rules["1"].approximation
    assert "nosuch" in rules["2"].approximation
    assert decide(rs, pkt("tcp", "1.2.3.4", "5.6.7.8", 80)) == ("allow", "2")
    assert decide(rs, pkt("tcp", "1.2.3.4", "5.6.7.8", 81)) == ("deny", None)


def test_service_destination_limits_and_unknown_object_keywords(tmp_path):
    rs = load_text(tmp_path, """
    config firewall service custom
        edit "web-to-srv"
            set tcp-portrange 80
            set iprange 10.2.0.10
        next
        edit "cloud-web"
            set tcp-portrange 443
            set fqdn "files.example.com"
        next
        edit "odd"
            set tcp-portrange 22
            set shiny-new-option 7
        next
    end
    """ + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr all",
               "set service web-to-srv cloud-web odd", "set action deny"),
        policy(2, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr all",
               "set service web-to-srv cloud-web odd", "set action accept"),
    ))
    deny, allow = rs.rules
    assert "proxy services" in deny.approximation and "files.example.com" in deny.approximation
    assert "shiny-new-option" in allow.approximation
    # the deny keeps only what is certain: tcp/80 to 10.2.0.10
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.2.0.10", 80)) == ("deny", "1")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.2.0.11", 80)) == ("allow", "2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "8.8.8.8", 443)) == ("allow", "2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "8.8.8.8", 22)) == ("allow", "2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "8.8.8.8", 23)) == ("deny", None)


def test_wildcards_and_interface_subnets(tmp_path):
    rs = load_text(tmp_path, """
    config system interface
        edit "port1"
            set ip 192.168.7.1 255.255.255.0
        next
    end
    config firewall address
        edit "w"
            set type wildcard
            set wildcard 10.0.0.5 255.0.255.255
        next
        edit "wide"
            set type wildcard
            set wildcard 10.0.0.5 255.0.0.255
        next
        edit "net1"
            set type interface-subnet
            set interface "port1"
        next
    end
    """ + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr net1", "set dstaddr w",
               "set service ALL", "set action accept"),
        policy(2, "set srcintf port1", "set dstintf port3", "set srcaddr all", "set dstaddr wide",
               "set service ALL", "set action accept"),
    ))
    assert rs.rules[0].approximation is None
    assert decide(rs, pkt("tcp", "192.168.7.9", "10.77.0.5", 1)) == ("allow", "1")
    assert decide(rs, pkt("tcp", "192.168.7.9", "10.77.1.5", 1)) == ("deny", None)
    assert decide(rs, pkt("tcp", "192.168.8.9", "10.77.0.5", 1)) == ("deny", None)
    # 2**16 intervals: approximated by its span in an accept
    assert "span" in rs.rules[1].approximation
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.3.4.5", 1), "port1", "port3") == ("allow", "2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.3.4.6", 1), "port1", "port3") == ("allow", "2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "11.0.0.5", 1), "port1", "port3") == ("deny", None)


def test_exclusion_of_an_uncertain_member_keeps_bounds_sound(tmp_path):
    rs = load_text(tmp_path, ADDRS + """
    config firewall address
        edit "cloud"
            set type fqdn
            set fqdn "files.example.com"
        next
    end
    config firewall addrgrp
        edit "g"
            set member "lan" "dmz"
            set exclude enable
            set exclude-member "cloud"
        next
    end
    """ + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr g",
               "set service ALL", "set action deny"),
        policy(2, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr g",
               "set service ALL", "set action accept"),
    ))
    # the deny matches nothing (the FQDN may cover anything); the accept matches lan ∪ dmz
    assert rs.rules[0].match == FALSE and rs.rules[0].approximation
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.1.5.5", 80)) == ("allow", "2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.3.5.5", 80)) == ("deny", None)


VIP_CONFIG = ADDRS + """
config firewall vip
    edit "web-vip"
        set extip 203.0.113.10
        set extintf "wan1"
        set portforward enable
        set extport 8443
        set mappedip "10.2.0.10"
        set mappedport 443
    next
    edit "nat-vip"
        set extip 203.0.113.20-203.0.113.21
        set mappedip "10.2.0.20-10.2.0.21"
    next
end
config firewall vipgrp
    edit "vips"
        set interface "wan1"
        set member "web-vip" "nat-vip"
    next
end
"""


def test_vip_policies_allow_both_sides_ahead_of_earlier_denies(tmp_path):
    rs = load_text(tmp_path, VIP_CONFIG + policies(
        policy(1, "set srcintf wan1", "set dstintf port2", "set srcaddr all", "set dstaddr dmz",
               "set service ALL", "set action deny"),
        policy(2, "set srcintf wan1", "set dstintf port2", "set srcaddr all", 'set dstaddr "vips" "lan"',
               "set service HTTPS", "set action accept"),
        policy(3, "set srcintf wan1", "set dstintf port3", "set srcaddr all", "set dstaddr nat-vip",
               "set service ALL", "set action deny"),
    ))
    first = rs.rules[0]
    assert first.id == "2" and first.action == "allow" and "web-vip" in first.approximation
    assert [r.id for r in rs.rules] == ["2", "1", "2", "3"]
    assert rs.rules[2].approximation is None  # the plain part (lan) is exact, in its place
    assert "nat-vip" in rs.rules[3].approximation and rs.rules[3].match == FALSE
    ext = ("wan1", "port2")
    assert decide(rs, pkt("tcp", "198.51.100.7", "203.0.113.10", 8443), *ext) == ("allow", "2")
    assert decide(rs, pkt("tcp", "198.51.100.7", "203.0.113.10", 443), *ext) == ("deny", None)
    assert decide(rs, pkt("tcp", "198.51.100.7", "10.2.0.10", 443), *ext) == ("allow", "2")  # mapped, ahead of 1
    assert decide(rs, pkt("tcp", "198.51.100.7", "10.2.0.10", 22), *ext) == ("deny", "1")
    assert decide(rs, pkt("tcp", "198.51.100.7", "203.0.113.21", 443), *ext) == ("allow", "2")
    assert decide(rs, pkt("tcp", "198.51.100.7", "10.2.0.20", 443), *ext) == ("allow", "2")
    assert decide(rs, pkt("tcp", "198.51.100.7", "10.2.0.20", 80), *ext) == ("deny", "1")
    assert decide(rs, pkt("tcp", "198.51.100.7", "10.1.0.20", 443), *ext) == ("allow", "2")
    assert decide(rs, pkt("tcp", "198.51.100.7", "10.2.0.20", 443), "wan1", "port3") == ("deny", None)


def test_schedules_identities_isdb_and_unknown_keywords(tmp_path):
    rs = load_text(tmp_path, ADDRS + """
    config firewall schedule recurring
        edit "office-hours"
            set start 08:30
            set end 17:15
            set day monday tuesday wednesday thursday friday
        next
        edit "always"
            set day sunday monday tuesday wednesday thursday friday saturday
        next
    end
    """ + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr lan", "set dstaddr all",
               "set service SSH", "set action deny", 'set schedule "office-hours"'),
        policy(2, "set srcintf port1", "set dstintf port2", "set srcaddr lan", "set dstaddr all",
               "set service SSH", "set action accept", 'set groups "staff"', 'set schedule "always"'),
        policy(3, "set srcintf port1", "set dstintf port3", "set srcaddr lan", "set internet-service enable",
               'set internet-service-name "Microsoft-Office365"', "set action accept"),
        policy(4, "set srcintf port2", "set dstintf port1", "set srcaddr all", "set dstaddr all",
               "set service ALL", "set action deny", "set frobnicate yes"),
        policy(5, "set srcintf port2", "set dstintf port1", "set srcaddr all", "set dstaddr lan",
               "set service ALL", "set action accept", "set tos-mask 0xf0", "set tos 0x10",
               "set logtraffic all", "set nat enable", "set utm-status enable", 'set av-profile "default"'),
    ))
    rules = by_id(rs)
    assert rules["1"].match == FALSE and "office-hours" in rules["1"].approximation
    assert "groups staff" in rules["2"].approximation
    assert "Internet Service" in rules["3"].approximation
    assert rules["4"].match == FALSE and "frobnicate" in rules["4"].approximation
    assert "TOS" in rules["5"].approximation and "nat" not in rules["5"].approximation
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.2.0.1", 22)) == ("allow", "2")
    assert decide(rs, pkt("udp", "10.1.0.1", "13.107.6.152", 443), "port1", "port3") == ("allow", "3")
    assert decide(rs, pkt("udp", "10.1.0.1", "13.107.6.152", 443), "port1", "wan1") == ("deny", None)
    assert decide(rs, pkt("tcp", "10.9.0.1", "10.1.0.1", 3389), "port2", "port1") == ("allow", "5")


def test_status_action_and_interfaces(tmp_path):
    rs = load_text(tmp_path, policies(
        allow_all(1, "set status disable"),
        policy(2, "set srcintf port1", "set dstintf port2", "set srcaddr all", "set dstaddr all",
               "set service ALL"),  # no action: deny
        allow_all(3, "set action ipsec", 'set vpntunnel "to-branch"', src="port2", dst="port1"),
        allow_all(4, src="any", dst="nosuch-interface"),
        allow_all(5, src="port3", dst="any"),
    ))
    rules = by_id(rs)
    assert "1" not in rules and rules["2"].action == "deny"
    assert rules["4"].out_ifaces == frozenset() and rules["5"].out_ifaces is None
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 1)) == ("deny", "2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 1), "port2", "port1") == ("allow", "3")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 1), "port3", "port3") == ("allow", "5")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 1), "wan1", "port3") == ("deny", None)


ZONES = """
config system zone
    edit "LAN"
        set interface "port1" "port2"
        set intrazone allow
        set description "staff"
    next
    edit "DMZ"
        set interface "port3"
        set intrazone allow
    next
end
"""


def test_intrazone_allow_comes_after_explicit_policies(tmp_path):
    """Fortinet KB 264457: an explicit deny matching intra-zone traffic wins over 'intrazone allow'."""
    text = ZONES + policies(
        policy(1, "set srcintf LAN", "set dstintf LAN", "set srcaddr all", "set dstaddr all", "set service SMB",
               "set action deny"),
    )
    rs = load_text(tmp_path, text, ("port1", "port2", "port3", "wan1"))
    rules = by_id(rs)
    assert [r.id for r in rs.rules] == ["1", "intrazone:LAN", "intrazone:DMZ"]
    assert rules["intrazone:LAN"].name == "staff" and rules["intrazone:LAN"].approximation is None
    assert "one member" in rules["intrazone:DMZ"].approximation  # before 7.4.4 a one-member zone is not covered
    ifaces = ("port1", "port2", "port3", "wan1")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.1.1", 445), "port1", "port2", ifaces) == ("deny", "1")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.1.1", 80), "port1", "port2", ifaces) == ("allow", "intrazone:LAN")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.1.1", 80), "port2", "port2", ifaces) == ("allow", "intrazone:LAN")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.1.1", 80), "port1", "port3", ifaces) == ("deny", None)
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.1.1", 80), "port3", "port3", ifaces) == ("allow", "intrazone:DMZ")
    # the topology may name the zone instead of its members
    rs = load_text(tmp_path, text, ("LAN", "DMZ"))
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.1.1", 445), "LAN", "LAN", ("LAN", "DMZ")) == ("deny", "1")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.1.1", 80), "LAN", "LAN", ("LAN", "DMZ")) == ("allow",
                                                                                              "intrazone:LAN")
    # a backup from 7.4.4 or later: exact
    rs = load_text(tmp_path, "#config-version=FG100F-7.4.4-FW-build2662-240514:opmode=0:vdom=0\n" + text)
    assert by_id(rs)["intrazone:DMZ"].approximation is None


def test_policy_naming_a_zone_member_is_approximated(tmp_path):
    text = ZONES + policies(
        allow_all(1, src="port1", dst="port3"),
        policy(2, "set srcintf port2", "set dstintf port3", "set srcaddr all", "set dstaddr all",
               "set service ALL", "set action deny"),
    )
    rs = load_text(tmp_path, text, ("LAN", "DMZ"))
    rules = by_id(rs)
    assert rules["1"].in_ifaces == frozenset({"LAN"}) and "member of zone LAN" in rules["1"].approximation
    assert rules["2"].in_ifaces == frozenset() and rules["2"].out_ifaces == frozenset()


def test_acl_drops_before_the_policies(tmp_path):
    rs = load_text(tmp_path, ADDRS + """
    config firewall acl
        edit 1
            set interface "port1"
            set srcaddr "all"
            set dstaddr "srv"
            set service "SSH"
        next
    end
    """ + policies(allow_all(1)))
    assert [r.id for r in rs.rules] == ["acl:1", "1"]
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.2.0.10", 22)) == ("deny", "acl:1")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.2.0.10", 23)) == ("allow", "1")


def test_multicast_nat46_and_ngfw_tables_are_over_approximated(tmp_path):
    rs = load_text(tmp_path, """
    config firewall multicast-policy
        edit 1
            set srcintf "port1"
            set dstintf "port2"
            set srcaddr "all"
            set dstaddr "all"
        next
    end
    config firewall policy46
        edit 1
            set srcintf "port3"
            set dstintf "port2"
            set srcaddr "all"
            set dstaddr "vip46"
            set action accept
            set service "ALL"
        next
    end
    config firewall security-policy
        edit 1
            set srcintf "port1"
            set dstintf "port3"
            set action deny
        next
    end
    config firewall DoS-policy
        edit 1
            set interface "port1"
        next
    end
    """ + policies(allow_all(1, src="port1", dst="port3")))
    rules = by_id(rs)
    assert rules["multicast-policy:1"].approximation and rules["policy46:1"].approximation
    assert "security policies" in rules["1"].approximation
    assert any("dos-policy" in n for n in rs.notes)
    assert decide(rs, pkt("udp", "10.0.0.1", "239.1.1.1", 5000)) == ("allow", "multicast-policy:1")
    assert decide(rs, pkt("udp", "10.0.0.1", "10.0.0.2", 5000)) == ("deny", None)
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 1), "port3", "port2") == ("allow", "policy46:1")


MULTI_VDOM = """
#config-version=FG200F-7.2.5-FW-build1517-230606:opmode=0:vdom=1:user=admin
config vdom
edit root
next
edit dmz
next
end
config global
config system interface
    edit "port1"
        set vdom "root"
    next
    edit "port2"
        set vdom "root"
    next
    edit "port3"
        set vdom "dmz"
    next
    edit "port4"
        set vdom "dmz"
    next
end
end
config vdom
edit root
config firewall policy
    edit 1
        set srcintf "any"
        set dstintf "any"
        set srcaddr "all"
        set dstaddr "all"
        set action accept
        set service "ALL"
    next
end
next
edit dmz
config firewall policy
    edit 1
        set srcintf "port3"
        set dstintf "port4"
        set srcaddr "all"
        set dstaddr "all"
        set action accept
        set service "HTTPS"
    next
    edit 2
        set srcintf "any"
        set dstintf "any"
        set srcaddr "all"
        set dstaddr "all"
        set service "ALL"
    next
end
next
end
"""


def test_multi_vdom_scopes_any_to_the_vdom(tmp_path):
    ifaces = ("port1", "port2", "port3", "port4", "mystery")
    rs = load_text(tmp_path, MULTI_VDOM, ifaces)
    rules = {(r.id, r.action): r for r in rs.rules}
    assert [r.id for r in rs.rules] == ["root:1", "dmz:1", "dmz:2"]
    assert rules[("root:1", "allow")].in_ifaces == frozenset({"port1", "port2", "mystery"})
    assert "mystery" in rules[("root:1", "allow")].approximation
    assert rules[("dmz:2", "deny")].in_ifaces == frozenset({"port3", "port4"})  # a deny never takes the unknown
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "port1", "port2", ifaces) == ("allow", "root:1")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 443), "port3", "port4", ifaces) == ("allow", "dmz:1")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "port3", "port4", ifaces) == ("deny", "dmz:2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "port1", "port3", ifaces) == ("deny", None)  # no link
    linked = MULTI_VDOM.replace('    edit "port4"\n        set vdom "dmz"\n    next\n',
                                '    edit "port4"\n        set vdom "dmz"\n    next\n'
                                '    edit "npu0_vlink0"\n        set vdom "root"\n    next\n')
    rs = load_text(tmp_path, linked, ifaces)
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "port1", "port3", ifaces) == (
        "allow", "(inter-VDOM root->dmz)")


def test_cli_commands_edit_the_tree_as_the_device_does(tmp_path):
    rs = load_text(tmp_path, ADDRS + """
    config firewall address
        edit "tmp"
            set subnet 10.9.0.0/16
        next
        rename "lan" to "office"
        clone "srv" to "srv2"
    end
    config firewall address
        edit "srv2"
            set subnet 10.2.0.11/32
        next
        delete "tmp"
    end
    config firewall policy
        edit 1
            set srcintf port1
            set dstintf port2
            set srcaddr lan
            set dstaddr srv2
            set service HTTP
            append service HTTPS SSH
            unselect service SSH
            set action accept
        next
        edit 2
            set srcintf port1
            set dstintf port2
            set srcaddr all
            set dstaddr all
            set service ALL
            set action deny
        next
        edit 3
            set srcintf port1
            set dstintf port2
            set srcaddr all
            set dstaddr all
            set service ALL
            set action accept
            set comments "to be purged"
        end
    config firewall policy
        move 2 before 1
        edit 4
            set comments 'single-quoted, with a \\' quote'
            set srcintf port2
            set dstintf port1
            set srcaddr all
            set dstaddr all
            set service ALL
            set action accept
            unset comments
            set name "multi
    line \\"name\\""
        next
    end
    """)
    assert [r.id for r in rs.rules] == ["2", "1", "3", "4"]
    name = by_id(rs)["4"].name  # a quoted word spans lines; \" is a quote
    assert name.startswith("multi\n") and name.endswith('line "name"')
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.2.0.11", 443)) == ("deny", "2")
    rs = load_text(tmp_path, ADDRS + """
    config firewall policy
        edit 1
            set srcintf port1
            set dstintf port2
            set srcaddr lan
            set dstaddr srv
            set service HTTP HTTPS SSH
            unselect service SSH
            set action accept
        next
        edit 2
            set srcintf port1
            set dstintf port2
            set srcaddr all
            set dstaddr all
            set service ALL
        next
        move 1 after 2
        move 1 before 2
    end
    """)
    assert [r.id for r in rs.rules] == ["1", "2"]
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.2.0.10", 443)) == ("allow", "1")
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.2.0.10", 22)) == ("deny", "2")


def test_purge_and_comments(tmp_path):
    rs = load_text(tmp_path, """
    #config-version=FG100F-7.2.8-FW-build1639-240313:opmode=0:vdom=0:user=admin
    # a comment with an apostrophe: it's not a quote
    config firewall policy
    """ + allow_all(1) + """
        purge
    """ + allow_all(2, src="port2", dst="port1") + "end\n")
    assert [r.id for r in rs.rules] == ["2"]


def test_windows_line_ends_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "fw.conf"
    path.write_bytes(("\ufeff#config-version=FG100F-7.2.8-FW-build1639-240313:opmode=0\n" + policies(allow_all(7)))
                     .replace("\n", "\r\n").encode("utf-8"))
    rs = load(str(path), IFACES)
    assert [(r.id, r.source.line) for r in rs.rules] == [("7", 3)]


def test_rename_keeps_references(tmp_path):
    rs = load_text(tmp_path, ADDRS + policies(
        policy(1, "set srcintf port1", "set dstintf port2", "set srcaddr lan", "set dstaddr all",
               "set service HTTP", "set action accept")) + """
    config firewall address
        rename "lan" to "office"
    end
    """)
    assert rs.rules[0].approximation is None
    assert decide(rs, pkt("tcp", "10.1.0.1", "1.1.1.1", 80)) == ("allow", "1")


def test_sdwan_zone_members(tmp_path):
    rs = load_text(tmp_path, """
    config system sdwan
        set status enable
        config zone
            edit "virtual-wan-link"
            next
        end
        config members
            edit 1
                set interface "wan1"
            next
            edit 2
                set interface "port3"
            next
        end
    end
    """ + policies(allow_all(1, src="port1", dst="virtual-wan-link")))
    assert rs.rules[0].out_ifaces == frozenset({"wan1", "port3"})


def test_loading_a_large_configuration_is_quick(tmp_path):
    rng = random.Random(7)
    parts = ["config firewall address\n"]
    for i in range(2000):
        parts.append(f'    edit "h{i}"\n        set subnet 10.{i // 250}.{i % 250}.{rng.randrange(256)}/32\n    next\n')
    parts.append("end\nconfig firewall addrgrp\n")
    for g in range(100):
        members = " ".join(f'"h{rng.randrange(2000)}"' for _ in range(20))
        parts.append(f'    edit "g{g}"\n        set member {members}\n    next\n')
    parts.append("end\nconfig firewall policy\n")
    for i in range(3000):
        parts.append(policy(i + 1, f"set srcintf port{1 + i % 3}", f"set dstintf port{1 + (i + 1) % 3}",
                            f'set srcaddr "g{rng.randrange(100)}"', f'set dstaddr "h{rng.randrange(2000)}"',
                            f"set service {rng.choice(['HTTP', 'HTTPS', 'SSH', 'DNS', 'RDP'])}",
                            f"set action {rng.choice(['accept', 'deny'])}"))
    parts.append("end\n")
    start = time.perf_counter()
    rs = load_text(tmp_path, "".join(parts))
    elapsed = time.perf_counter() - start
    assert len(rs.rules) == 3000
    assert elapsed < 10, f"took {elapsed:.1f}s"  # well under a second on a quiet machine


# --- against a reference interpreter -----------------------------------------------------------

REF_IFACES = ("port1", "port2", "port3", "port4")
REF_ZONE = ("port3", "port4")  # zone "Z"
REF_PREFIXES = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.1.0/24", "192.168.1.7/32"]
REF_ADDRS = ["10.1.2.3", "10.1.9.9", "10.200.0.1", "192.168.1.7", "192.168.1.8", "8.8.8.8"]
REF_SERVICES = {"HTTP": [("tcp", 80)], "HTTPS": [("tcp", 443)], "DNS": [("tcp", 53), ("udp", 53)],
                "SSH": [("tcp", 22)], "ALL": None}
REF_PORTS = [22, 53, 80, 443, 8080]


@st.composite
def ref_configs(draw):
    addrs = draw(st.lists(st.sampled_from(REF_PREFIXES), min_size=3, max_size=3))
    group = draw(st.tuples(st.lists(st.sampled_from(["a0", "a1", "a2"]), min_size=1, max_size=3, unique=True),
                           st.lists(st.sampled_from(["a0", "a1", "a2"]), max_size=2, unique=True)))
    intrazone = draw(st.sampled_from(["allow", "deny"]))
    pols = []
    for _ in range(draw(st.integers(1, 6))):
        pols.append({
            "src_if": draw(st.lists(st.sampled_from(["port1", "port2", "Z", "any"]), min_size=1, max_size=2,
                                    unique=True)),
            "dst_if": draw(st.lists(st.sampled_from(["port1", "port2", "Z", "any"]), min_size=1, max_size=2,
                                    unique=True)),
            "src": draw(st.lists(st.sampled_from(["a0", "a1", "a2", "g", "all"]), min_size=1, max_size=2,
                                 unique=True)),
            "dst": draw(st.lists(st.sampled_from(["a0", "a1", "a2", "g", "all"]), min_size=1, max_size=2,
                                 unique=True)),
            "svc": draw(st.lists(st.sampled_from(sorted(REF_SERVICES)), min_size=1, max_size=2, unique=True)),
            "src_neg": draw(st.booleans()), "dst_neg": draw(st.booleans()), "svc_neg": draw(st.booleans()),
            "action": draw(st.sampled_from(["accept", "deny", None])),
            "status": draw(st.sampled_from(["enable", "enable", "disable"])),
        })
    return addrs, group, intrazone, pols


def ref_render(config) -> str:
    addrs, group, intrazone, pols = config
    out = ["config system zone\n", '    edit "Z"\n', '        set interface "port3" "port4"\n',
           f"        set intrazone {intrazone}\n", "    next\nend\n", "config firewall address\n"]
    for i, prefix in enumerate(addrs):
        out.append(f'    edit "a{i}"\n        set subnet {prefix}\n    next\n')
    out.append("end\nconfig firewall addrgrp\n")
    out.append(f'    edit "g"\n        set member {" ".join(group[0])}\n')
    if group[1]:
        out.append(f"        set exclude enable\n        set exclude-member {' '.join(group[1])}\n")
    out.append("    next\nend\nconfig firewall policy\n")
    for n, p in enumerate(pols, 1):
        lines = [f"set srcintf {' '.join(p['src_if'])}", f"set dstintf {' '.join(p['dst_if'])}",
                 f"set srcaddr {' '.join(p['src'])}", f"set dstaddr {' '.join(p['dst'])}",
                 f"set service {' '.join(p['svc'])}", f"set status {p['status']}"]
        if p["action"]:
            lines.append(f"set action {p['action']}")
        for key in ("src", "dst", "svc"):
            if p[f"{key}_neg"]:
                lines.append(f"set {dict(src='srcaddr', dst='dstaddr', svc='service')[key]}-negate enable")
        out.append(policy(n, *lines))
    out.append("end\n")
    return "".join(out)


def ref_decide(config, p: Packet, i: str, o: str) -> str:
    """FortiOS's semantics, walked directly: policies in order, intrazone, the implicit deny."""
    addrs, group, intrazone, pols = config
    v4 = p.src < 2**32

    def in_prefix(addr: int, prefix: str) -> bool:
        return ipaddress.ip_address(addr) in ipaddress.ip_network(prefix)

    def member(addr: int, name: str) -> bool:
        if name == "all":
            return True
        if name == "g":
            return any(member(addr, m) for m in group[0]) and not any(member(addr, m) for m in group[1])
        return in_prefix(addr, addrs[int(name[1])])

    def iface(name: str, names: list[str]) -> bool:
        return "any" in names or name in names or (name in REF_ZONE and "Z" in names)

    def service(names: list[str]) -> bool:
        for n in names:
            spec = REF_SERVICES[n]
            if spec is None or any(PROTOS[proto] == p.proto and port == p.dport and p.sport >= 1
                                   for proto, port in spec):
                return True
        return False

    for pol in pols:
        if pol["status"] == "disable" or not v4:
            continue
        if not (iface(i, pol["src_if"]) and iface(o, pol["dst_if"])):
            continue
        if any(member(p.src, n) for n in pol["src"]) == pol["src_neg"]:
            continue
        if any(member(p.dst, n) for n in pol["dst"]) == pol["dst_neg"]:
            continue
        if service(pol["svc"]) == pol["svc_neg"]:
            continue
        return "allow" if pol["action"] == "accept" else "deny"
    if intrazone == "allow" and i in REF_ZONE and o in REF_ZONE:
        return "allow"
    return "deny"


@st.composite
def ref_packets(draw):
    proto = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    src, dst = draw(st.sampled_from(REF_ADDRS)), draw(st.sampled_from(REF_ADDRS))
    if proto == "icmp":
        p = pkt(proto, src, dst, icmp=(8, 0))
    else:
        p = pkt(proto, src, dst, draw(st.sampled_from(REF_PORTS)), sport=draw(st.sampled_from([0, 1, 40000])))
    return p, draw(st.sampled_from(REF_IFACES)), draw(st.sampled_from(REF_IFACES))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(config=ref_configs(), samples=st.lists(ref_packets(), min_size=5, max_size=25))
def test_imported_rules_agree_with_a_reference_interpreter(tmp_path, config, samples):
    text = ref_render(config)
    rs = load_text(tmp_path, text, REF_IFACES)
    assert not any(r.approximation for r in rs.rules), text
    compiled = compile_ruleset(SPACE, rs, list(REF_IFACES))
    for p, i, o in samples:
        want = ref_decide(config, p, i, o)
        got = rs.decide(p, i, o)[0]
        assert got == want, f"{p} {i}->{o}\n{text}"
        assert bdd_allows(compiled, p, i, o) == (got == "allow")


# --- malformed input ---------------------------------------------------------------------------

GOOD_POLICY = policies(allow_all(1))

BAD = [
    ("set hostname x\n", 1, "outside a config block"),
    ("edit 1\nnext\n", 1, "'edit' outside a config block"),
    ("config firewall policy\nnext\nend\n", 2, "'next' without an open 'edit'"),
    ("config firewall policy\n    edit 1\n", 2, "is not closed"),
    ("config firewall policy\n", 1, "is not closed"),
    ("end\n", 1, "'end' without an open 'config'"),
    ("config firewall policy\n    edit 1 2\n    next\nend\n", 2, "takes one name"),
    ("config\nend\n", 1, "needs a path"),
    ("config firewall policy\n    edit 1\n        set\n    next\nend\n", 3, "needs a keyword"),
    ("config firewall address\n    edit a\n        set comment \"open\n    next\nend\n", 3, "unterminated"),
    ("config firewall policy\n    show\nend\n", 2, "unknown command 'show'"),
    ("config firewall policy\n    move 1 before 2\nend\n", 2, "no entry '1'"),
    ("config firewall policy\n    edit 1\n    next\n    move 1 above 1\nend\n", 4, "before|after"),
    ("config firewall policy\n    delete 7\nend\n", 2, "no entry '7'"),
    ("config firewall policy\n    edit 1\n    next\n    edit 2\n    next\n    rename 1 to 2\nend\n", 6,
     "already exists"),
    ("config firewall policy\n    edit 1\n        unset a b\n    next\nend\n", 3, "takes one keyword"),
    ("config firewall policy\n    edit 1\n        append service\n    next\nend\n", 3, "needs values"),
    ("config firewall address\n    edit a\n        set subnet 10.0.0.300 255.0.0.0\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr a", "set dstaddr all", "set service ALL")),
     2, "address a:"),
    ("config firewall address\n    edit a\n        set subnet 10.0.0.0 255.0.255.0\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr a", "set dstaddr all", "set service ALL")),
     2, "contiguous"),
    ("config firewall address\n    edit a\n        set type iprange\n        set start-ip 10.0.0.9\n"
     "        set end-ip 10.0.0.1\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr a", "set dstaddr all", "set service ALL")),
     2, "above end-ip"),
    ("config firewall service custom\n    edit s\n        set tcp-portrange 90-80\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service s")),
     2, "low above high"),
    ("config firewall service custom\n    edit s\n        set udp-portrange 70000\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service s")),
     2, "out of range"),
    ("config firewall service custom\n    edit s\n        set tcp-portrange http\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service s")),
     2, "cannot read port range"),
    ("config firewall service custom\n    edit s\n        set protocol ICMP\n        set icmptype 300\n"
     "    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service s")),
     2, "ICMP type"),
    ("config firewall service custom\n    edit s\n        set protocol GRE\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service s")),
     2, "unknown protocol"),
    ("config firewall addrgrp\n    edit g1\n        set member g2\n    next\n    edit g2\n        set member g1\n"
     "    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr g1", "set dstaddr all", "set service ALL")),
     6, "address group loop"),
    ("config firewall service group\n    edit g1\n        set member g1\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service g1")),
     3, "service group loop"),
    (policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service ALL",
                     "set action allow")), 8, "unknown action"),
    (policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service ALL",
                     "set status maybe")), 8, "status must be"),
    (policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all", "set service ALL",
                     "set srcaddr-negate yes")), 8, "must be enable or disable"),
    (policies(policy(1, "set dstintf b", "set srcaddr all", "set dstaddr all", "set service ALL")), 2,
     "has no srcintf"),
    (policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr all")), 2,
     "has no service"),
    (policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set service ALL")), 2,
     "no source and destination"),
    ("config system zone\n    edit z1\n        set interface port1\n    next\n    edit z2\n"
     "        set interface port1\n    next\nend\n", 6, "is in zone z1 and zone z2"),
    ("config system zone\n    edit z1\n        set intrazone sometimes\n    next\nend\n", 3, "intrazone must be"),
    ("config firewall vip\n    edit v\n        set extip 1.2.3.4\n        set mappedip 10.0.0.1-10.0.0.0\n"
     "    next\nend\n" + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr v",
                                      "set service ALL", "set action accept")), 2, "invalid address range"),
    ("config firewall vipgrp\n    edit vg\n        set member nope\n    next\nend\n"
     "config firewall vip\n    edit v\n        set extip 1.2.3.4\n        set mappedip 10.0.0.1\n    next\nend\n"
     + policies(policy(1, "set srcintf a", "set dstintf b", "set srcaddr all", "set dstaddr vg",
                       "set service ALL", "set action accept")), 3, "no VIP"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[b[2] for b in BAD])
def test_malformed_input_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "fw.conf"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load(str(path), ("a", "b"))
    err = info.value
    assert err.path == str(path) and err.line == line and message in err.message, str(err)


def test_empty_missing_or_huge_file_is_an_input_error(tmp_path, monkeypatch):
    path = tmp_path / "empty.conf"
    path.write_text("# nothing here\n\n")
    with pytest.raises(InputError, match="no configuration found"):
        load(str(path), ("a",))
    with pytest.raises(InputError, match="cannot read"):
        load(str(tmp_path / "missing.conf"), ("a",))
    monkeypatch.setattr(fortios, "MAX_BYTES", 100)
    path.write_text(GOOD_POLICY * 10)
    with pytest.raises(InputError, match="larger than"):
        load(str(path), ("a",))


def test_deep_nesting_is_an_input_error(tmp_path):
    deep = "config a\n" * 40 + "end\n" * 40
    with pytest.raises(InputError, match="nested more than"):
        load_text(tmp_path, deep)
    chain = "config firewall addrgrp\n" + "".join(
        f"    edit g{i}\n        set member g{i + 1}\n    next\n" for i in range(100)) + "end\n"
    chain += "config firewall address\n    edit g100\n    next\nend\n"
    with pytest.raises(InputError, match="nested more than 64"):
        load_text(tmp_path, chain + policies(policy(1, "set srcintf port1", "set dstintf port2",
                                                      "set srcaddr g0", "set dstaddr all", "set service ALL")))


def mutate(text: str, rng: random.Random, steps: int) -> str:
    lines = text.splitlines()
    words = ["set", "edit", "next", "end", "config", "unset", "append", "move", "before", "after", "delete",
             '"', "'", "all", "ALL", "any", "accept", "deny", "enable", "disable", "10.0.0.0/8", "1-65535",
             "65536", "90-80", "port1", "zone1", "grp1", "#", "\\", "exclude-member", "srcaddr-negate"]
    for _ in range(steps):
        if not lines:
            break
        i = rng.randrange(len(lines))
        op = rng.randrange(5)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            toks = lines[i].split()
            if toks:
                toks[rng.randrange(len(toks))] = rng.choice(words)
            lines[i] = "    " + " ".join(toks)
        else:
            lines[i] = lines[i] + " " + rng.choice(words)
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["firewall_policy", "firewall_policy_addrgrp", "firewall_vi_policy", "policy_move",
                             "address", "service_custom", "zone", "addrgrp"]),
       seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 6))
def test_random_mutations_of_real_files_load_or_raise_input_error(tmp_path, name, seed, steps):
    original = corpus_file(name).read_text()
    text = mutate(original, random.Random(seed), steps)
    path = tmp_path / "mutant.conf"
    path.write_text(text)
    try:
        rs = load(str(path), PORTS5 + ("zone1",))
    except InputError as err:
        assert err.path == str(path) and (err.line is None or 1 <= err.line <= len(text.splitlines()) + 1)
        return
    compile_ruleset(SPACE, rs, list(PORTS5 + ("zone1",)))


# --- the bundled あおば市 topology, end to end --------------------------------------------------

VENDOR_CITY = ROOT / "topologies" / "vendor-city.yaml"


@pytest.fixture
def fortios_registered(monkeypatch):
    monkeypatch.setitem(segverify.importers.FORMATS, "fortios", "fortios")


def test_vendor_city_firewall_reads_as_written():
    path = ROOT / "topologies" / "vendor-city" / "fw-inet.conf"
    ifaces = ("LG", "INET", "port4")
    ruleset, _ = imported(str(path), ifaces)
    assert [r.id for r in ruleset.rules] == ["10", "20", "21", "30", "31", "99", "intrazone:LG"]
    assert not any(r.approximation for r in ruleset.rules)
    rules = by_id(ruleset)
    assert rules["10"].name == "VB-RDP" and rules["10"].source.line == 261
    check_cases(path, ifaces, [
        ("LG", "INET", pkt("tcp", "10.120.10.11", "10.130.0.10", 3389), "allow", "10"),
        ("LG", "INET", pkt("tcp", "10.120.11.200", "10.130.0.11", 3389), "allow", "10"),
        ("LG", "INET", pkt("tcp", "10.120.1.25", "10.130.0.10", 3389), "deny", "99"),  # not a staff subnet
        ("LG", "INET", pkt("tcp", "10.120.10.11", "10.130.0.10", 443), "deny", "99"),  # old-web is disabled
        ("INET", "port4", pkt("tcp", "10.130.0.11", "10.140.0.10", 443), "allow", "20"),
        ("LG", "port4", pkt("tcp", "10.120.10.11", "10.140.0.10", 443), "allow", "21"),
        ("INET", "port4", pkt("tcp", "10.130.1.25", "10.140.0.25", 25), "allow", "30"),
        ("port4", "LG", pkt("tcp", "10.140.0.25", "10.120.1.25", 25), "allow", "31"),
        ("port4", "LG", pkt("tcp", "10.140.0.10", "10.120.1.25", 25), "deny", None),
        ("INET", "LG", pkt("tcp", "10.130.0.10", "10.120.10.11", 445), "deny", None),
        ("LG", "LG", pkt("tcp", "10.120.10.11", "10.120.1.25", 445), "allow", "intrazone:LG"),
        ("LG", "INET", pkt("tcp", "fd00:120:0:10::11", "fd00:130::1", 3389), "deny", None),
    ])


def test_vendor_city_is_compliant_end_to_end(fortios_registered):
    result = check(load_topology(str(VENDOR_CITY)))
    assert result.status == "compliant" and result.findings == []
    assert [Path(p).name for p in result.inputs] == ["vendor-city.yaml", "fw-core.rules", "fw-inet.conf"]


def test_vendor_city_cli_exit_status(fortios_registered, monkeypatch):
    from segverify.cli import main

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check", "topologies/vendor-city.yaml"])
    assert result.exit_code == 0, result.output
    assert "COMPLIANT" in result.output


def test_vendor_city_with_the_old_web_policy_enabled_is_a_violation(fortios_registered, tmp_path):
    src = ROOT / "topologies"
    (tmp_path / "vendor-city").mkdir()
    (tmp_path / "vendor-city" / "fw-core.rules").write_text((src / "vendor-city" / "fw-core.rules").read_text())
    conf = (src / "vendor-city" / "fw-inet.conf").read_text()
    (tmp_path / "vendor-city" / "fw-inet.conf").write_text(conf.replace("        set status disable\n", "", 1))
    (tmp_path / "vendor-city.yaml").write_text(VENDOR_CITY.read_text())
    result = check(load_topology(str(tmp_path / "vendor-city.yaml")))
    assert result.status == "violations"
    (finding,) = [f for f in result.findings if f.code == "LGWAN_INTERNET_UNSANITIZED"]
    assert (finding.src_segment, finding.dst_segment) == ("lg", "inet")
    (hop,) = finding.path
    line = conf.splitlines().index("    edit 5") + 1
    assert hop["firewall"] == "fw-inet" and hop["rule"] == "5" and hop["source"].endswith(f"fw-inet.conf:{line}")
    assert finding.witness["dport"] in (80, 443)
