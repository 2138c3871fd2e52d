"""The Cisco ASA importer: Batfish's ASA test configurations, every construct on its own, the
flattening against a direct evaluator of the ASA's three checks, and malformed input.

Every verdict is checked twice: with the first-match loop (``RuleSet.decide``) and with the BDD
engine (``compile_ruleset(...).hop``), which must agree.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importer_support import PROTOS, SPACE, bdd_allows, corpus_files, packet

import segverify.importers
from segverify.errors import InputError
from segverify.importers import cisco_asa
from segverify.importers.cisco_asa import acl_ruleset, load
from segverify.model.addresses import IntervalSet, addr_to_int, parse_prefix
from segverify.model.rules import FALSE, TRUE, Packet, Rule, RuleSet
from segverify.packetspace.firewall import compile_ruleset

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "configs" / "cisco-asa"
corpus_file = corpus_files(CORPUS)
pkt = partial(packet, icmp=(8, 0))


@cache
def compiled_for(ruleset: RuleSet, ifaces: tuple[str, ...]):
    return compile_ruleset(SPACE, ruleset, list(ifaces))


def decide(ruleset: RuleSet, ifaces: tuple[str, ...], p: Packet, i: str, o: str) -> tuple[str, str | None]:
    """The verdict and deciding rule id, after checking that the BDD engine agrees."""
    action, rule = ruleset.decide(p, i, o)
    assert bdd_allows(compiled_for(ruleset, ifaces), p, i, o) == (action == "allow"), f"BDD disagrees on {p}"
    return action, (rule.id if rule else None)


def check_cases(ruleset: RuleSet, ifaces: tuple[str, ...], cases) -> None:
    for i, o, p, want, rule_id in cases:
        got = decide(ruleset, ifaces, p, i, o)
        assert got == (want, rule_id), f"{i}->{o} {p.describe()}: got {got}"


def write(tmp_path: Path, text: str, name: str = "asa.cfg") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def by_id(ruleset: RuleSet) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for r in ruleset.rules:
        out.setdefault(r.id, r)
    return out


IFACES3 = "\n".join([
    "ASA Version 9.12(4)",
    "interface GigabitEthernet0/0", " nameif inside", " security-level 100", " ip address 10.1.0.1 255.255.0.0",
    "interface GigabitEthernet0/1", " nameif dmz", " security-level 50", " ip address 10.5.0.1 255.255.255.0",
    "interface GigabitEthernet0/2", " nameif outside", " security-level 0", " ip address 203.0.113.1 255.255.255.0",
    " ipv6 address 2001:db8:f::1/64",
    "!", "",
])
T3 = ("inside", "dmz", "outside")


def synth(tmp_path: Path, body: str, ifaces: tuple[str, ...] = T3, head: str = IFACES3) -> RuleSet:
    return load(write(tmp_path, head + body), ifaces)


# --- Batfish's ASA test configurations ----------------------------------------------------------

FILTERS_IFACES = ("name1", "name2", "name3", "name4", "name5")


def test_asa_filters_verdicts_ids_and_sources():
    path = corpus_file("asa-filters")
    rs = load(str(path), FILTERS_IFACES)
    ntp = pkt("tcp", "192.168.1.10", "192.168.5.20", 123)
    web = pkt("tcp", "192.168.1.10", "192.168.5.20", 80)
    ospf = pkt("ospf", "192.168.2.10", "192.168.1.20")
    cases = [
        # name1 (50, inbound permit ip any any) → name5 (0, outbound tcp/123 only): both ACLs must permit
        ("name1", "name5", ntp, "allow", "FILTER_IN line 1"),
        ("name1", "name5", web, "deny", "FILTER_OUT5 (implicit deny)"),
        # name1 → name2 (0): FILTER_UNDEF is not defined, so no outbound ACL on name2
        ("name1", "name2", web, "allow", "FILTER_IN line 1"),
        # name2 (0, no inbound ACL) → name1 (50): the outbound ACL of name1 drops non-NTP first ...
        ("name2", "name1", ospf, "deny", "FILTER_OUT (implicit deny)"),
        # ... and what it permits, the security levels drop (low to high without an inbound ACL)
        ("name2", "name1", pkt("tcp", "192.168.2.10", "192.168.1.20", 123), "deny", "(security-level)"),
        # name4 (0, inbound tcp/123) → name3 (50): the inbound ACL lifts the security-level restriction
        ("name4", "name3", pkt("tcp", "192.168.4.10", "192.168.3.20", 123), "allow", "FILTER_IN4 line 1"),
        ("name4", "name3", pkt("udp", "192.168.4.10", "192.168.3.20", 123), "deny", "FILTER_IN4 (implicit deny)"),
        # name3 (50, no ACL) → lower levels: the implicit permit
        ("name3", "name4", web, "allow", "(security-level)"),
        ("name3", "name2", ospf, "allow", "(security-level)"),
        # equal security levels, and hairpinning, without same-security-traffic
        ("name1", "name3", ntp, "deny", "(same-security-traffic)"),
        ("name4", "name5", ntp, "deny", "(same-security-traffic)"),
        ("name3", "name3", web, "deny", "(same-security-traffic)"),
    ]
    check_cases(rs, FILTERS_IFACES, cases)
    rules = by_id(rs)
    lines = path.read_text().splitlines()
    assert rules["FILTER_IN line 1"].source.line == 38
    assert lines[37] == "access-list FILTER_IN extended permit ip any any"
    assert rules["FILTER_IN line 1"].in_ifaces == frozenset({"name1"})
    assert rules["FILTER_OUT5 (implicit deny)"].source.line == 35  # its access-group line
    assert rules["FILTER_OUT5 (implicit deny)"].out_ifaces == frozenset({"name5"})
    undefined = rules["FILTER_UNDEF (undefined)"]
    assert undefined.match == FALSE and "does not define" in undefined.approximation
    assert [r.id for r in rs.rules if r.approximation] == ["FILTER_UNDEF (undefined)"]
    assert rs.default == "deny"


def test_asa_filters_global_verdicts():
    path = corpus_file("asa-filters-global")
    ifaces = ("name1", "name2")
    rs = load(str(path), ifaces)
    cases = [
        ("name1", "name2", pkt("tcp", "192.168.1.5", "192.168.2.5", 123), "allow", "FILTER_GLOBAL line 1"),
        ("name2", "name1", pkt("tcp", "192.168.2.5", "192.168.1.5", 123), "allow", "FILTER_GLOBAL line 1"),
        # a global ACL ends in an implicit deny for every interface: high to low is no longer implied
        ("name1", "name2", pkt("tcp", "192.168.1.5", "192.168.2.5", 80), "deny", "FILTER_GLOBAL (implicit deny)"),
        ("name2", "name1", pkt("udp", "192.168.2.5", "192.168.1.5", 123), "deny", "FILTER_GLOBAL (implicit deny)"),
        ("name1", "name2", pkt("icmp", "192.168.1.5", "192.168.2.5"), "deny", "FILTER_GLOBAL (implicit deny)"),
        ("name1", "name1", pkt("tcp", "192.168.1.5", "192.168.1.6", 123), "deny", "(same-security-traffic)"),
    ]
    check_cases(rs, ifaces, cases)
    rule = by_id(rs)["FILTER_GLOBAL line 1"]
    assert rule.in_ifaces is None and rule.out_ifaces is None and rule.source.line == 19


def test_asa_security_level_permit_inter_verdicts():
    path = corpus_file("asa-security-level-permit-inter")
    ifaces = ("name1", "name2", "mgmt")
    rs = load(str(path), ifaces)
    cases = [
        ("name1", "name2", pkt("tcp", "3.0.0.5", "3.0.1.5", 445), "allow", "(security-level)"),
        ("name2", "name1", pkt("udp", "3.0.1.5", "3.0.0.5", 53), "allow", "(security-level)"),
        ("name2", "name1", pkt("gre", "3.0.1.5", "3.0.0.5"), "allow", "(security-level)"),
        # inter-interface is permitted, intra-interface is not
        ("name1", "name1", pkt("tcp", "3.0.0.5", "3.0.0.6", 22), "deny", "(same-security-traffic)"),
        ("name2", "name2", pkt("icmp", "3.0.1.5", "3.0.1.6"), "deny", "(same-security-traffic)"),
        # a topology interface the file does not have: allowed, and said so
        ("mgmt", "name1", pkt("tcp", "9.9.9.9", "3.0.0.5", 22), "allow", "(mgmt: no such nameif)"),
        ("name1", "mgmt", pkt("tcp", "3.0.0.5", "9.9.9.9", 22), "allow", "(mgmt: no such nameif)"),
    ]
    check_cases(rs, ifaces, cases)
    rules = by_id(rs)
    assert rules["(security-level)"].source.line == 8  # name1's security-level line
    assert "not a nameif" in rules["(mgmt: no such nameif)"].approximation or \
        "no nameif" in rules["(mgmt: no such nameif)"].approximation


def test_asa_acl_object_as_acls_and_applied():
    path = corpus_file("asa-acl-object")
    acl1 = acl_ruleset(str(path), "acl1")
    cases = [
        (pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0)), "allow", "acl1 line 1"),
        (pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 3)), "allow", "acl1 line 1"),  # any code
        (pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(0, 0)), "deny", "acl1 (implicit deny)"),
        (pkt("icmp", "2.2.2.2", "1.1.1.1", icmp=(8, 0)), "deny", "acl1 (implicit deny)"),
        (pkt("icmp", "3.3.3.3", "2.2.2.2", icmp=(8, 0)), "deny", "acl1 (implicit deny)"),
        (pkt("tcp", "1.1.1.1", "2.2.2.2", 65535, sport=65535), "deny", "acl1 (implicit deny)"),
    ]
    for p, want, rid in cases:
        assert decide(acl1, ("x",), p, "x", "x") == (want, rid)
    assert acl1.rules[0].source.line == 21 and acl1.rules[0].approximation is None
    # acl2 names three undefined objects: a permit that might match is taken as matching anything
    acl2 = acl_ruleset(str(path), "acl2")
    assert acl2.rules[0].match == TRUE and "'osfake' is not defined" in acl2.rules[0].approximation
    assert decide(acl2, ("x",), pkt("udp", "8.8.8.8", "9.9.9.9", 53), "x", "x") == ("allow", "acl2 line 1")
    # unapplied, the ACLs are in the notes; a topology interface the file lacks is allowed and marked
    rs = load(str(path), ("inside", "outside"))
    assert any("acl1 is applied by no access-group" in n for n in rs.notes)
    assert all(r.approximation for r in rs.rules)


def test_asa_acl_object_applied_inbound(tmp_path):
    text = corpus_file("asa-acl-object").read_text() + "\n" + "\n".join([
        "interface Gi0/0", " nameif outside", " security-level 0",
        "interface Gi0/1", " nameif inside", " security-level 100",
        "access-group acl1 in interface outside", ""])
    rs = load(write(tmp_path, text), ("outside", "inside"))
    ifaces = ("outside", "inside")
    check_cases(rs, ifaces, [
        ("outside", "inside", pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0)), "allow", "acl1 line 1"),
        ("outside", "inside", pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(0, 0)), "deny", "acl1 (implicit deny)"),
        ("inside", "outside", pkt("tcp", "2.2.2.2", "1.1.1.1", 443), "allow", "(security-level)"),
        ("outside", "inside", pkt("tcp", "1.1.1.1", "2.2.2.2", 443), "deny", "acl1 (implicit deny)"),
        ("outside", "outside", pkt("icmp", "1.1.1.1", "2.2.2.2"), "deny", "(same-security-traffic)"),
    ])


NESTED_NET_ACL = "\n".join([
    "interface Gi0/0", " nameif outside", " security-level 0",
    "interface Gi0/1", " nameif inside", " security-level 100",
    "access-list T extended deny ip object-group mixed_group host 9.9.9.9",
    "access-list T extended permit ip object-group it host 9.9.9.9",
    "access-list T extended permit ip object-group eng host 9.9.9.9",
    "access-list T extended permit tcp object-group admin host 8.8.8.8 eq www",
    "access-group T in interface outside", ""])


def test_asa_nested_network_object_group(tmp_path):
    text = corpus_file("asa-nested-network-object-group").read_text() + "\n" + NESTED_NET_ACL
    ifaces = ("outside", "inside")
    rs = load(write(tmp_path, text), ifaces)
    check_cases(rs, ifaces, [
        # mixed_group = 10.2.3.5 + group it (10.2.3.4) + an undefined group: a deny matches the known part
        ("outside", "inside", pkt("tcp", "10.2.3.5", "9.9.9.9", 80), "deny", "T line 1"),
        ("outside", "inside", pkt("tcp", "10.2.3.4", "9.9.9.9", 80), "deny", "T line 1"),
        ("outside", "inside", pkt("udp", "10.1.1.9", "9.9.9.9", 53), "allow", "T line 3"),
        ("outside", "inside", pkt("udp", "10.1.1.89", "9.9.9.9", 53), "allow", "T line 3"),
        ("outside", "inside", pkt("udp", "10.1.2.8", "9.9.9.9", 53), "deny", "T (implicit deny)"),
        # admin = eng + hr + finance + an undefined group: a permit that might match is taken as matching
        ("outside", "inside", pkt("tcp", "1.2.3.4", "8.8.8.8", 80), "allow", "T line 4"),
        ("outside", "inside", pkt("tcp", "1.2.3.4", "8.8.8.8", 81), "deny", "T (implicit deny)"),
    ])
    rules = by_id(rs)
    assert "UNDEFINED_GROUP_MIXED" in rules["T line 1"].approximation
    assert "taken as not matching" in rules["T line 1"].approximation
    assert "UNDEFINED_GROUP" in rules["T line 4"].approximation
    assert rules["T line 3"].approximation is None
    # exactly the three hosts of eng reach 9.9.9.9 by line 3 (IPv4, any protocol)
    eff = compiled_for(rs, ifaces).rule_hop(rs.rules.index(rules["T line 3"]), "outside", "inside")
    src_only = SPACE.values("dst", IntervalSet.of(addr_to_int("9.9.9.9"))) & SPACE.values("proto", IntervalSet.of(47))
    assert SPACE.count(eff & src_only)[0] == 3


NESTED_SVC_ACL = "\n".join([
    "interface Gi0/0", " nameif outside", " security-level 0",
    "interface Gi0/1", " nameif inside", " security-level 100",
    "access-list S extended deny object-group services_undef any any",
    "access-list S extended permit object-group services any host 9.9.9.9",
    "access-list S extended permit tcp any host 8.8.8.8 object-group service3",
    "access-list S extended permit object-group mixed_group any host 7.7.7.7",
    "access-group S in interface outside", ""])


def test_asa_nested_service_object_group(tmp_path):
    text = corpus_file("asa-nested-service-object-group").read_text() + "\n" + NESTED_SVC_ACL
    ifaces = ("outside", "inside")
    rs = load(write(tmp_path, text), ifaces)
    o, i = "outside", "inside"
    check_cases(rs, ifaces, [
        # services = service1 (tcp-udp domain) + service2 (udp 1234, 2345) + service3 (tcp 2345-2445)
        (o, i, pkt("udp", "1.1.1.1", "9.9.9.9", 53), "allow", "S line 2"),
        (o, i, pkt("tcp", "1.1.1.1", "9.9.9.9", 53), "allow", "S line 2"),
        (o, i, pkt("udp", "1.1.1.1", "9.9.9.9", 1234), "allow", "S line 2"),
        (o, i, pkt("tcp", "1.1.1.1", "9.9.9.9", 1234), "deny", "S (implicit deny)"),
        (o, i, pkt("tcp", "1.1.1.1", "9.9.9.9", 2400), "allow", "S line 2"),
        (o, i, pkt("udp", "1.1.1.1", "9.9.9.9", 2400), "deny", "S (implicit deny)"),
        (o, i, pkt("udp", "1.1.1.1", "9.9.9.9", 2345), "allow", "S line 2"),
        # service3 as a port group
        (o, i, pkt("tcp", "1.1.1.1", "8.8.8.8", 2445), "allow", "S line 3"),
        (o, i, pkt("tcp", "1.1.1.1", "8.8.8.8", 2446), "deny", "S (implicit deny)"),
        # mixed_group holds an undefined group: the permit is taken as matching any service
        (o, i, pkt("gre", "1.1.1.1", "7.7.7.7"), "allow", "S line 4"),
    ])
    rules = by_id(rs)
    # a deny on an undefined group matches nothing, and says so
    assert rules["S line 1"].match == FALSE and "UNDEFINED_GROUP" in rules["S line 1"].approximation
    assert "without a protocol" in rules["S line 4"].approximation
    assert rules["S line 2"].approximation is None


def test_asa_service_object_inline():
    path = corpus_file("asa-service-object-inline")
    icmp = acl_ruleset(str(path), "ACL_ICMP")
    ospf = acl_ruleset(str(path), "ACL_OSPF")
    x = ("x",)
    assert decide(icmp, x, pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0)), "x", "x") == ("allow", "ACL_ICMP line 1")
    assert decide(icmp, x, pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(0, 0)), "x", "x") == (
        "deny", "ACL_ICMP (implicit deny)")
    assert decide(icmp, x, pkt("tcp", "1.1.1.1", "2.2.2.2", 8), "x", "x") == ("deny", "ACL_ICMP (implicit deny)")
    assert decide(ospf, x, pkt("ospf", "1.1.1.1", "2.2.2.2"), "x", "x") == ("allow", "ACL_OSPF line 1")
    assert decide(ospf, x, pkt("udp", "1.1.1.1", "2.2.2.2", 89), "x", "x") == ("deny", "ACL_OSPF (implicit deny)")
    assert decide(ospf, x, pkt("ospf", "fd00::1", "fd00::2"), "x", "x") == ("allow", "ACL_OSPF line 1")
    assert icmp.rules[0].source.line == 6 and ospf.rules[0].source.line == 7


@pytest.mark.parametrize("name", [
    "asa-acl-object", "asa-filters", "asa-filters-global", "asa-nested-network-object-group",
    "asa-nested-service-object-group", "asa-security-level-permit-inter", "asa-service-object-inline",
])
def test_every_corpus_file_parses_with_ids_and_sources(name):
    path = corpus_file(name)
    ifaces = ("name1", "name2", "name3", "name4", "name5", "inside")
    rs = load(str(path), ifaces)
    compile_ruleset(SPACE, rs, list(ifaces))
    lines = path.read_text().splitlines()
    for rule in rs.rules:
        assert rule.source is not None and rule.source.path == str(path)
        if " line " in rule.id:
            acl = rule.id.split(" line ")[0]
            assert lines[rule.source.line - 1].startswith(f"access-list {acl} "), rule


# --- constructs, one at a time -----------------------------------------------------------------


def test_addresses_every_form(tmp_path):
    body = "\n".join([
        "name 10.9.9.9 legacy-server",
        "object network web", " host 10.5.0.10",
        "object network lan", " subnet 10.1.2.0 255.255.255.0",
        "object network pool", " range 10.1.3.10 10.1.3.20",
        "object network v6net", " subnet 2001:db8:1::/48",
        "object-group network inner", " network-object host 10.1.4.1", " network-object 10.1.5.0 255.255.255.128",
        "object-group network outer", " group-object inner", " network-object object web",
        " network-object 2001:db8:2::/64", " network-object host 2001:db8:3::1",
        "access-list IN extended permit tcp object lan object web eq 80",
        "access-list IN extended permit tcp object pool any4 eq 81",
        "access-list IN extended permit tcp object-group outer any eq 82",
        "access-list IN extended permit tcp host 10.1.6.1 host legacy-server eq 83",
        "access-list IN extended permit tcp 10.1.7.0 255.255.255.0 any6 eq 84",
        "access-list IN extended permit tcp 2001:db8:1::/48 object v6net eq 85",
        "access-list IN extended permit tcp any interface outside eq 86",
        "access-list IN extended permit tcp host 2001:db8:3::1 any eq 87",
        "access-group IN in interface inside", ""])
    rs = synth(tmp_path, body)
    i, o = "inside", "outside"
    check_cases(rs, T3, [
        (i, o, pkt("tcp", "10.1.2.77", "10.5.0.10", 80), "allow", "IN line 1"),
        (i, o, pkt("tcp", "10.1.2.77", "10.5.0.11", 80), "deny", "IN (implicit deny)"),
        (i, o, pkt("tcp", "10.1.3.20", "8.8.8.8", 81), "allow", "IN line 2"),
        (i, o, pkt("tcp", "10.1.3.21", "8.8.8.8", 81), "deny", "IN (implicit deny)"),
        (i, o, pkt("tcp", "2001:db8:1::1", "2001:db8::9", 81), "deny", "IN (implicit deny)"),  # any4
        (i, o, pkt("tcp", "10.1.4.1", "8.8.8.8", 82), "allow", "IN line 3"),
        (i, o, pkt("tcp", "10.1.5.127", "8.8.8.8", 82), "allow", "IN line 3"),
        (i, o, pkt("tcp", "10.1.5.128", "8.8.8.8", 82), "deny", "IN (implicit deny)"),
        (i, o, pkt("tcp", "10.5.0.10", "8.8.8.8", 82), "allow", "IN line 3"),
        (i, o, pkt("tcp", "2001:db8:2::5", "2001:db8::9", 82), "allow", "IN line 3"),
        (i, o, pkt("tcp", "10.1.6.1", "10.9.9.9", 83), "allow", "IN line 4"),
        (i, o, pkt("tcp", "10.1.7.1", "8.8.8.8", 84), "deny", "IN (implicit deny)"),  # any6 only
        (i, o, pkt("tcp", "2001:db8:1::1", "2001:db8:1::2", 85), "allow", "IN line 6"),
        (i, o, pkt("tcp", "10.1.0.9", "203.0.113.1", 86), "allow", "IN line 7"),
        (i, o, pkt("tcp", "2001:db8:1::9", "2001:db8:f::1", 86), "allow", "IN line 7"),
        (i, o, pkt("tcp", "10.1.0.9", "203.0.113.2", 86), "deny", "IN (implicit deny)"),
        (i, o, pkt("tcp", "2001:db8:3::1", "2001:db8::9", 87), "allow", "IN line 8"),
    ])
    assert not any(r.approximation for r in rs.rules)


def test_fqdn_and_undefined_objects_are_approximated_by_action(tmp_path):
    body = "\n".join([
        "object network cloud", " fqdn v4 files.example.com",
        "access-list IN extended deny tcp any object cloud eq 443",
        "access-list IN extended permit tcp any object cloud eq 8443",
        "access-list IN extended deny udp any object nowhere",
        "access-group IN in interface outside", ""])
    rs = synth(tmp_path, body)
    rules = by_id(rs)
    assert rules["IN line 1"].match == FALSE and "FQDN" in rules["IN line 1"].approximation
    assert "resolved at run time" in rules["IN line 2"].approximation
    assert rules["IN line 3"].match == FALSE and "'nowhere' is not defined" in rules["IN line 3"].approximation
    o, i = "outside", "inside"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 443), "deny", "IN (implicit deny)"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 8443), "allow", "IN line 2"),  # any destination
        (o, i, pkt("tcp", "2001:db8:9::8", "2001:db8::5", 8443), "allow", "IN line 2"),
    ])


def test_ports_operators_and_names(tmp_path):
    body = "\n".join([
        "access-list IN extended permit tcp any any eq www",
        "access-list IN extended permit tcp any any eq https",
        "access-list IN extended permit tcp any any range ftp-data ftp",
        "access-list IN extended permit udp any any eq domain",
        "access-list IN extended permit tcp any any lt 10",
        "access-list IN extended permit udp any any gt 65000",
        "access-list IN extended permit tcp any eq ssh any neq smtp",
        "access-list IN extended permit udp any any eq kerberos",
        "access-list IN extended permit tcp any any eq 3389",
        "access-list IN extended permit sctp any any eq 5000",
        "access-list IN extended permit tcp-udp any any eq sip",
        "access-group IN in interface outside", ""])
    rs = synth(tmp_path, body)
    o, i = "outside", "inside"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 80), "allow", "IN line 1"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 443), "allow", "IN line 2"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 20), "allow", "IN line 3"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 21), "allow", "IN line 3"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 53), "allow", "IN line 4"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 53), "deny", "IN (implicit deny)"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 9), "allow", "IN line 5"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 65001), "allow", "IN line 6"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 65000), "deny", "IN (implicit deny)"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 26, sport=22), "allow", "IN line 7"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 25, sport=22), "deny", "IN (implicit deny)"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 750), "allow", "IN line 8"),  # ASA's kerberos is 750
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 88), "deny", "IN (implicit deny)"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 3389), "allow", "IN line 9"),
        (o, i, Packet(addr_to_int("8.8.8.8"), addr_to_int("10.1.0.5"), 132, 1, 5000), "allow", "IN line 10"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 5060), "allow", "IN line 11"),
    ])


def test_unknown_port_protocol_and_icmp_names_are_approximated(tmp_path):
    body = "\n".join([
        "access-list IN extended deny tcp any any eq fancy-new-port",
        "access-list IN extended permit tcp any any eq other-new-port",
        "access-list IN extended permit newproto any any",
        "access-list IN extended permit icmp any any shiny-type",
        "access-group IN in interface outside", ""])
    rs = synth(tmp_path, body)
    rules = by_id(rs)
    assert rules["IN line 1"].match == FALSE and "fancy-new-port" in rules["IN line 1"].approximation
    assert "other-new-port" in rules["IN line 2"].approximation
    o, i = "outside", "inside"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 4711), "allow", "IN line 2"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 4711), "allow", "IN line 3"),  # any protocol
        (o, i, pkt("icmp", "8.8.8.8", "10.1.0.5", icmp=(42, 0)), "allow", "IN line 3"),
    ])
    assert "shiny-type" in rules["IN line 4"].approximation


def test_service_objects_groups_protocol_and_icmp_groups(tmp_path):
    body = "\n".join([
        "object service rdp", " service tcp destination eq 3389",
        "object service dnsfrom", " service udp source eq 53 destination range 1024 65535",
        "object service pingv6", " service icmp6 echo",
        "object-group service web tcp", " port-object eq www", " port-object eq https",
        "object-group service mixed", " service-object object rdp", " service-object esp",
        " service-object tcp-udp destination eq 4500", " service-object icmp echo 0", " group-object web",
        "object-group protocol tunnels", " protocol-object gre", " protocol-object 50",
        "object-group icmp-type pings", " icmp-object echo", " icmp-object 13",
        "access-list IN extended permit object rdp any host 10.1.0.5",
        "access-list IN extended permit object dnsfrom any any",
        "access-list IN extended permit object-group mixed any host 10.1.0.6",
        "access-list IN extended permit object-group tunnels any host 10.1.0.7",
        "access-list IN extended permit icmp any host 10.1.0.8 object-group pings",
        "access-list IN extended permit object pingv6 any6 any6",
        "access-list IN extended permit tcp any host 10.1.0.9 object-group web",
        "access-list IN extended permit icmp any host 10.1.0.10 unreachable 4",
        "access-group IN in interface outside", ""])
    rs = synth(tmp_path, body)
    o, i = "outside", "inside"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 3389), "allow", "IN line 1"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 3389), "deny", "IN (implicit deny)"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.1", 5353, sport=53), "allow", "IN line 2"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.1", 5353, sport=54), "deny", "IN (implicit deny)"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.6", 3389), "allow", "IN line 3"),
        (o, i, pkt("esp", "8.8.8.8", "10.1.0.6"), "allow", "IN line 3"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.6", 4500), "allow", "IN line 3"),
        (o, i, pkt("icmp", "8.8.8.8", "10.1.0.6", icmp=(8, 0)), "allow", "IN line 3"),
        (o, i, pkt("icmp", "8.8.8.8", "10.1.0.6", icmp=(8, 1)), "deny", "IN (implicit deny)"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.6", 443), "allow", "IN line 3"),
        (o, i, pkt("gre", "8.8.8.8", "10.1.0.7"), "allow", "IN line 4"),
        (o, i, pkt("esp", "8.8.8.8", "10.1.0.7"), "allow", "IN line 4"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.7", 80), "deny", "IN (implicit deny)"),
        (o, i, pkt("icmp", "8.8.8.8", "10.1.0.8", icmp=(13, 0)), "allow", "IN line 5"),
        (o, i, pkt("icmp", "8.8.8.8", "10.1.0.8", icmp=(0, 0)), "deny", "IN (implicit deny)"),
        (o, i, pkt("icmp6", "2001:db8::1", "2001:db8:1::1", icmp=(128, 0)), "allow", "IN line 6"),
        (o, i, pkt("icmp", "2001:db8::1", "2001:db8:1::1", icmp=(128, 0)), "deny", "IN (implicit deny)"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.9", 443), "allow", "IN line 7"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.9", 8443), "deny", "IN (implicit deny)"),
        (o, i, pkt("icmp", "8.8.8.8", "10.1.0.10", icmp=(3, 4)), "allow", "IN line 8"),
        (o, i, pkt("icmp", "8.8.8.8", "10.1.0.10", icmp=(3, 3)), "deny", "IN (implicit deny)"),
    ])
    assert not any(r.approximation for r in rs.rules)


def test_remarks_inactive_log_and_line_numbers(tmp_path):
    body = "\n".join([
        "access-list IN remark web servers",
        "access-list IN remark (owned by the web team)",
        "access-list IN extended permit tcp any host 10.1.0.5 eq www log informational interval 300",
        "access-list IN extended permit tcp any host 10.1.0.5 eq 22 inactive",
        "access-list IN extended deny ip any any log",
        "access-list IN line 3 extended permit udp any host 10.1.0.5 eq 53",
        "access-group IN in interface outside", ""])
    path = write(tmp_path, IFACES3 + body)
    rs = load(path, T3)
    o, i = "outside", "inside"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 80), "allow", "IN line 4"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 53), "allow", "IN line 3"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 22), "deny", "IN line 6"),  # inactive: no match
    ])
    rules = by_id(rs)
    # show access-list numbers remarks too; the inactive entry keeps its number but is not emitted
    assert "IN line 5" not in rules
    # the remarks stand above line 3 now, as show access-list would list them
    assert rules["IN line 3"].name == "web servers / (owned by the web team)" and rules["IN line 4"].name is None
    text = Path(path).read_text().splitlines()
    assert text[rules["IN line 3"].source.line - 1].startswith("access-list IN line 3 extended permit udp")
    assert text[rules["IN line 6"].source.line - 1] == "access-list IN extended deny ip any any log"


def test_remarks_excluded_from_numbering_when_configured(tmp_path, monkeypatch):
    monkeypatch.setattr(cisco_asa, "REMARKS_COUNT", False)
    rs = synth(tmp_path, "access-list IN remark x\naccess-list IN extended permit ip any any\n"
                         "access-group IN in interface outside\n")
    assert "IN line 1" in by_id(rs)


def test_time_range_and_identity_conditions(tmp_path):
    body = "\n".join([
        "access-list IN extended deny tcp any any eq 22 time-range office-hours",
        "access-list IN extended permit tcp user CORP\\alice any any eq 3389",
        "access-list IN extended deny tcp security-group tag 5 any any eq 23",
        "access-list IN extended permit tcp any any eq 22 time-range office-hours",
        "access-group IN in interface outside", ""])
    rs = synth(tmp_path, body)
    rules = by_id(rs)
    assert rules["IN line 1"].match == FALSE and "time-range" in rules["IN line 1"].approximation
    assert rules["IN line 3"].match == FALSE and "TrustSec" in rules["IN line 3"].approximation
    o, i = "outside", "inside"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 22), "allow", "IN line 4"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 3389), "allow", "IN line 2"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 23), "deny", "IN (implicit deny)"),
    ])
    assert "identity" in rules["IN line 2"].approximation


def test_outbound_deny_stops_what_the_inbound_acl_permitted(tmp_path):
    body = "\n".join([
        "access-list IN extended permit ip any any",
        "access-list OUT extended permit tcp any host 10.1.0.5 eq 80",
        "access-list OUT extended deny tcp any 10.1.0.0 255.255.0.0",
        "access-list OUT extended permit tcp any any",
        "access-list OUT extended deny udp any any eq 53",
        "access-list OUT extended permit udp any any",
        "access-group IN in interface outside",
        "access-group OUT out interface inside", ""])
    rs = synth(tmp_path, body)
    o, i, d = "outside", "inside", "dmz"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 80), "allow", "IN line 1"),
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 81), "deny", "OUT line 2"),
        (o, i, pkt("tcp", "8.8.8.8", "10.2.0.5", 81), "allow", "IN line 1"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 53), "deny", "OUT line 4"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 54), "allow", "IN line 1"),
        (o, i, pkt("gre", "8.8.8.8", "10.1.0.5"), "deny", "OUT (implicit deny)"),
        # the outbound ACL applies whatever the ingress: security levels first let dmz reach inside? no
        (d, i, pkt("tcp", "10.5.0.9", "10.2.0.5", 81), "deny", "(security-level)"),
        (i, d, pkt("gre", "10.1.0.9", "10.5.0.5"), "allow", "(security-level)"),
        (o, d, pkt("tcp", "8.8.8.8", "10.5.0.5", 81), "allow", "IN line 1"),
    ])
    rules = by_id(rs)
    # the deny of line 2 is restricted to packets line 1 does not permit; line 4's to those 1 and 3 do not
    assert rules["OUT line 2"].out_ifaces == frozenset({"inside"}) and rules["OUT line 2"].in_ifaces is None
    assert "OUT line 1" not in rules and "OUT line 3" not in rules  # permits act only as guards


def test_global_acl_after_interface_acls(tmp_path):
    body = "\n".join([
        "access-list IN extended deny tcp any any eq 23",
        "access-list IN extended permit tcp any any eq 22",
        "access-list GLOBAL extended permit tcp any any eq 23",
        "access-list GLOBAL extended permit udp any any eq 53",
        "access-group IN in interface outside",
        "access-group GLOBAL global", ""])
    rs = synth(tmp_path, body)
    o, i, d = "outside", "inside", "dmz"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 23), "deny", "IN line 1"),  # interface ACL first
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 22), "allow", "IN line 2"),
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 53), "allow", "GLOBAL line 2"),  # falls through to global
        (o, i, pkt("udp", "8.8.8.8", "10.1.0.5", 54), "deny", "GLOBAL (implicit deny)"),
        (i, o, pkt("tcp", "10.1.0.5", "8.8.8.8", 23), "allow", "GLOBAL line 1"),
        (i, o, pkt("tcp", "10.1.0.5", "8.8.8.8", 80), "deny", "GLOBAL (implicit deny)"),
        (d, i, pkt("udp", "10.5.0.5", "10.1.0.5", 53), "allow", "GLOBAL line 2"),
    ])


def test_same_security_traffic_and_default_levels(tmp_path):
    head = "\n".join([
        "interface Gi0/0", " nameif inside",  # no security-level: 100 for inside
        "interface Gi0/1", " nameif lab",  # no security-level: 0
        "interface Gi0/2", " nameif guest", " security-level 0",
        "same-security-traffic permit inter-interface",
        "same-security-traffic permit intra-interface", ""])
    ifaces = ("inside", "lab", "guest")
    rs = load(write(tmp_path, head), ifaces)
    check_cases(rs, ifaces, [
        ("inside", "lab", pkt("tcp", "10.0.0.1", "10.9.0.1", 80), "allow", "(security-level)"),
        ("lab", "inside", pkt("tcp", "10.9.0.1", "10.0.0.1", 80), "deny", "(security-level)"),
        ("lab", "guest", pkt("tcp", "10.9.0.1", "10.8.0.1", 80), "allow", "(security-level)"),
        ("guest", "guest", pkt("tcp", "10.8.0.1", "10.8.0.2", 80), "allow", "(security-level)"),
    ])
    # with an inbound ACL, same-security traffic still needs the command
    rs2 = load(write(tmp_path, head.replace("same-security-traffic permit inter-interface\n", "")
                     + "access-list L extended permit ip any any\naccess-group L in interface lab\n"), ifaces)
    check_cases(rs2, ifaces, [
        ("lab", "guest", pkt("tcp", "10.9.0.1", "10.8.0.1", 80), "deny", "(same-security-traffic)"),
        ("lab", "inside", pkt("tcp", "10.9.0.1", "10.0.0.1", 80), "allow", "L line 1"),
        ("lab", "lab", pkt("tcp", "10.9.0.1", "10.9.0.2", 80), "allow", "L line 1"),
    ])


def test_access_group_options_and_undefined_acls(tmp_path):
    body = "\n".join([
        "access-list IN extended deny ip any any",
        "access-list MGMT extended permit tcp any any eq 22",
        "access-list ETH ethertype permit bpdu",
        "access-group IN in interface outside per-user-override",
        "access-group MGMT in interface dmz control-plane",
        "access-group ETH in interface inside",
        "access-group NOPE out interface dmz",
        "access-list FTD advanced permit ip ifc inside any ifc outside any rule-id 268435457",
        "access-group FTD out interface outside",
        "access-group IN in interface nosuch", ""])
    rs = synth(tmp_path, body)
    rules = by_id(rs)
    assert "per-user-override" in rules["IN (per-user-override)"].approximation
    assert rules["NOPE (undefined)"].match == FALSE and rules["NOPE (undefined)"].out_ifaces == frozenset({"dmz"})
    assert rules["FTD (advanced)"].match == FALSE and "does not read" in rules["FTD (advanced)"].approximation
    assert any("control-plane" in n for n in rs.notes)
    assert any("ethertype ACL" in n for n in rs.notes)
    assert any("'nosuch'" in n for n in rs.notes)
    o, i, d = "outside", "inside", "dmz"
    check_cases(rs, T3, [
        (o, i, pkt("tcp", "8.8.8.8", "10.1.0.5", 80), "allow", "IN (per-user-override)"),
        (d, o, pkt("tcp", "10.5.0.5", "8.8.8.8", 80), "allow", "(security-level)"),  # control-plane: not transit
        (i, d, pkt("udp", "10.1.0.5", "10.5.0.5", 53), "allow", "(security-level)"),  # ethertype ACL: no IP filter
    ])


def test_notes_name_unmodelled_commands_and_pre_9_files(tmp_path):
    body = "\n".join([
        "object network web", " host 10.5.0.10", " nat (dmz,outside) static 203.0.113.10",
        "nat (inside,outside) dynamic interface",
        "sysopt connection permit-vpn",
        "frobnicate everything",
        "policy-map global_policy", " class inspection_default", "  inspect ftp", ""])
    rs = synth(tmp_path, body)
    text = " | ".join(rs.notes)
    assert "nat: NAT is not followed" in text and "sysopt" in text and "frobnicate: command not modelled" in text
    assert "policy-map" in text
    old = synth(tmp_path, "access-list IN extended deny ip any any\naccess-group IN in interface inside\n",
                head=IFACES3.replace("ASA Version 9.12(4)", "ASA Version 8.4(7)"))
    assert decide(old, T3, pkt("tcp", "2001:db8::1", "2001:db8:1::1", 80), "inside", "outside") == (
        "allow", "(IPv6 before 9.0)")
    assert decide(old, T3, pkt("tcp", "10.1.0.1", "8.8.8.8", 80), "inside", "outside") == ("deny", "IN line 1")


def test_group_loop_and_deep_nesting_are_input_errors(tmp_path):
    text = IFACES3 + "object-group network A\n group-object B\nobject-group network B\n group-object A\n"
    with pytest.raises(InputError) as info:
        load(write(tmp_path, text), T3)
    assert "loop" in info.value.message and info.value.line == 19  # B's group-object A
    deep = IFACES3 + "".join(f"object-group network G{k}\n group-object G{k + 1}\n" for k in range(80))
    deep += "object-group network G80\n network-object host 10.0.0.1\n"
    with pytest.raises(InputError, match="nested deeper"):
        load(write(tmp_path, deep), T3)


def test_work_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(cisco_asa, "MAX_WORK", 200)
    body = "".join(f"access-list IN extended permit tcp any any eq {k}\n" for k in range(300))
    with pytest.raises(InputError, match="too large"):
        synth(tmp_path, body)


def test_a_large_configuration_loads_quickly(tmp_path):
    import time

    rnd = random.Random(7)
    lines = []
    for k in range(3000):
        action = "deny" if k % 7 == 0 else "permit"
        lines.append(f"access-list BIG extended {action} tcp 10.{k % 200}.{k % 100}.0 255.255.255.0 "
                     f"host 10.1.{rnd.randrange(256)}.{rnd.randrange(1, 255)} eq {1000 + k}")
    for k in range(300):
        action = "deny" if k % 3 == 0 else "permit"
        lines.append(f"access-list OUTB extended {action} udp any host 10.5.0.{k % 250 + 1} eq {2000 + k}")
    body = "\n".join(lines) + "\naccess-group BIG in interface outside\naccess-group OUTB out interface dmz\n"
    start = time.perf_counter()
    rs = synth(tmp_path, body)
    compile_ruleset(SPACE, rs, list(T3))
    assert time.perf_counter() - start < 20
    assert len(rs.rules) > 3000


# --- malformed input -----------------------------------------------------------------------------

BAD = [
    ("access-list X extended permit tcp any\n", 1, "expected at the end of the line"),
    ("access-list X extended permit tcp host 10.0.0.300 any\n", 1, "cannot read address"),
    ("access-list X extended permit tcp 10.0.0.0 255.0.255.0 any\n", 1, "not contiguous"),
    ("access-list X extended permit tcp 10.0.0.1 255.255.255.0 any\n", 1, "bits outside netmask"),
    ("access-list X extended permit tcp any any eq 70000\n", 1, "out of range"),
    ("access-list X extended permit tcp any any range 90 80\n", 1, "invalid port range"),
    ("access-list X extended permit ip any eq 80 any\n", 1, "protocol without ports"),
    ("access-list X extended permit tcp any any eq 80 bogus\n", 1, "unexpected 'bogus'"),
    ("access-list X extended allow tcp any any\n", 1, "permit or deny"),
    ("access-list X frobnicate\n", 1, "unknown access-list form"),
    ("access-list X line 5 extended permit ip any any\n", 1, "beyond the end"),
    ("access-list X extended permit 300 any any\n", 1, "protocol number 300"),
    ("access-list X extended permit tcp any any eq 8%0\n", 1, "cannot read port"),
    ("access-group X sideways interface inside\n", 1, "access-group NAME"),
    ("same-security-traffic permit everything\n", 1, "same-security-traffic"),
    ("interface Gi0/0\n nameif a\n security-level 101\n", 3, "0 to 100"),
    ("interface Gi0/0\n nameif a\ninterface Gi0/1\n nameif a\n", 4, "also given to"),
    ("object network o\n host 10.0.0.1\n frob 1\n", 3, "unknown network object line"),
    ("object network o\n range 10.0.0.9 10.0.0.1\n", 2, "empty or mixes"),
    ("object service s\n service tcp destination eq 80 extra\n", 2, "unexpected"),
    ("object-group service g sctp\n", 1, "unknown service group protocol"),
    ("object network n\n host 10.0.0.1\nobject-group network n\n", 3, "already"),
    ("object-group network g\n network-object 10.0.0.0 255.255.255.0 x\n", 2, "cannot read"),
    ("object network n\n host 10.0.0.1\naccess-list X extended permit object n any any\n", 3, "not a service"),
    ("object-group network g\n network-object host 10.0.0.1\n"
     "access-list X extended permit object-group g any any\n", 3, "not a protocol or service group"),
    ("object-group network g\n network-object host 10.0.0.1\n"
     "access-list X extended permit tcp any object-group g object-group g\n", 3, "unexpected 'object-group'"),
    ("hostname fw\n", None, "no ASA configuration found"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[b[2] for b in BAD])
def test_malformed_input_names_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load(path, ("inside",))
    err = info.value
    assert err.path == path and err.line == line and message in err.message, str(err)


def test_missing_and_binary_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load(str(tmp_path / "missing.cfg"), ("inside",))
    path = tmp_path / "bin.cfg"
    path.write_bytes(b"ASA Version 9.9\n\x00\x01")
    with pytest.raises(InputError, match="binary"):
        load(str(path), ("inside",))


def test_mutations_of_real_files_load_or_raise_input_errors(tmp_path):
    """Hostile edits of a real file: a RuleSet that compiles, or an InputError, never anything else."""
    texts = [corpus_file(n).read_text().splitlines() for n in
             ("asa-filters", "asa-nested-service-object-group", "asa-acl-object")]
    words = ["any", "host", "10.0.0.1", "255.255.255.0", "eq", "range", "www", "object-group", "object",
             "permit", "deny", "tcp", "icmp", "echo", "inactive", "log", "group-object", "services", "name1",
             "interface", "in", "out", "global", "extended", "remark", "line", "1", "99999", "fd00::/8", "-",
             " nameif", " security-level", "access-list", "access-group", "service-object", "port-object"]
    _mutations(tmp_path, texts, words)


def _mutations(tmp_path, texts, words):
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(which=st.integers(0, len(texts) - 1),
           edits=st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["replace", "insert", "delete", "dup"]),
                                    st.integers(0, 12), st.sampled_from(words)), min_size=1, max_size=6))
    def run(which, edits):
        lines = list(texts[which])
        for pos, op, tok_index, word in edits:
            if not lines:
                lines.append(word)
                continue
            k = pos % len(lines)
            toks = lines[k].split(" ")
            if op == "replace":
                toks[tok_index % len(toks)] = word
                lines[k] = " ".join(toks)
            elif op == "insert":
                toks.insert(tok_index % (len(toks) + 1), word)
                lines[k] = " ".join(toks)
            elif op == "delete":
                del lines[k]
            else:
                lines.insert(k, lines[k])
        path = write(tmp_path, "\n".join(lines) + "\n", "mut.cfg")
        try:
            rs = load(path, ("name1", "name2", "name5"))
        except InputError as err:
            assert err.path == path and (err.line is None or 1 <= err.line <= len(lines))
            return
        compile_ruleset(SPACE, rs, ["name1", "name2", "name5"])

    run()


# --- the flattening against a direct evaluator of the ASA's checks ------------------------------

REF_IFACES = ("inside", "dmz", "outside")
REF_TOPO = REF_IFACES + ("ghost",)  # "ghost" is no nameif: always allowed (approximated)
NETS = {"n1": "10.1.0.0 255.255.0.0", "n2": "10.1.2.0 255.255.255.0", "n3": "192.168.0.0 255.255.0.0"}
HOSTS = ["10.1.2.3", "10.1.9.9", "192.168.1.1", "8.8.8.8"]
GROUP_G = ["10.1.2.3", "192.168.0.0/16"]  # object-group G
V6_HOSTS = ["2001:db8::1", "2001:db8::2"]
PORTS = [22, 53, 80, 443, 1024]


@dataclass
class Entry:
    action: str
    proto: str  # ip tcp udp icmp
    src: tuple[str, str]  # (kind, value)
    dst: tuple[str, str]
    sport: tuple[str, int, int] | None = None  # (op, a, b)
    dport: tuple[str, int, int] | None = None
    icmp: int | None = None
    inactive: bool = False
    remark: bool = False


@dataclass
class Config:
    levels: dict[str, int | None]
    inter: bool
    intra: bool
    acls: dict[str, list[Entry]]
    inbound: dict[str, str] = field(default_factory=dict)
    outbound: dict[str, str] = field(default_factory=dict)
    global_acl: str | None = None


ADDR_KINDS = st.one_of(
    st.just(("any", "")), st.just(("any", "")), st.just(("any", "")), st.just(("any4", "")), st.just(("any6", "")),
    st.sampled_from(HOSTS[:2] + V6_HOSTS[:1]).map(lambda h: ("host", h)),
    st.sampled_from(sorted(NETS)).map(lambda n: ("net", n)),
    st.just(("group", "G")),
)
ADDR_KINDS_U = st.one_of(ADDR_KINDS, st.just(("group", "U")), st.just(("group", "U")))


@st.composite
def port_specs(draw):
    op = draw(st.sampled_from(["eq", "neq", "lt", "gt", "range"]))
    a, b = sorted(draw(st.lists(st.sampled_from(PORTS), min_size=2, max_size=2)))
    return (op, a, b)


@st.composite
def entries(draw, addrs=ADDR_KINDS):
    proto = draw(st.sampled_from(["ip", "tcp", "udp", "icmp"]))
    e = Entry(draw(st.sampled_from(["permit", "deny"])), proto, draw(addrs), draw(addrs),
              inactive=draw(st.integers(0, 6)) == 0, remark=draw(st.integers(0, 4)) == 0)
    if proto in ("tcp", "udp"):
        if draw(st.integers(0, 2)) == 0:
            e.sport = draw(port_specs())
        if draw(st.booleans()):
            e.dport = draw(port_specs())
    if proto == "icmp" and draw(st.booleans()):
        e.icmp = draw(st.sampled_from([0, 3, 8]))
    return e


@st.composite
def configs(draw, addrs=ADDR_KINDS):
    levels = {n: draw(st.sampled_from([None, 0, 50, 100])) for n in REF_IFACES}
    acls = {name: draw(st.lists(entries(addrs), max_size=5)) for name in ("A1", "A2", "A3")}
    cfg = Config(levels, draw(st.booleans()), draw(st.booleans()), acls)
    names = ["A1", "A2", "A3", "UNDEF"]
    for n in REF_IFACES:
        if draw(st.booleans()):
            cfg.inbound[n] = draw(st.sampled_from(names))
        if draw(st.booleans()):
            cfg.outbound[n] = draw(st.sampled_from(names))
    if draw(st.integers(0, 2)) == 0:
        cfg.global_acl = draw(st.sampled_from(names))
    return cfg


def render_addr(a: tuple[str, str]) -> str:
    kind, value = a
    if kind in ("any", "any4", "any6"):
        return kind
    if kind == "host":
        return f"host {value}"
    if kind == "net":
        return NETS[value]
    return f"object-group {value}"


def render_ports(spec) -> str:
    if spec is None:
        return ""
    op, a, b = spec
    return f" range {a} {b}" if op == "range" else f" {op} {a}"


def render(cfg: Config) -> str:
    out = ["ASA Version 9.14(1)"]
    for k, n in enumerate(REF_IFACES):
        out += [f"interface GigabitEthernet0/{k}", f" nameif {n}"]
        if cfg.levels[n] is not None:
            out.append(f" security-level {cfg.levels[n]}")
    out.append("object-group network G")
    out += [f" network-object {m}" if "/" in m else f" network-object host {m}" for m in GROUP_G]
    out += ["object-group network U", " network-object host 10.1.9.9", " group-object MISSING"]
    if cfg.inter:
        out.append("same-security-traffic permit inter-interface")
    if cfg.intra:
        out.append("same-security-traffic permit intra-interface")
    for name, es in cfg.acls.items():
        for e in es:
            if e.remark:
                out.append(f"access-list {name} remark about the next line")
            line = (f"access-list {name} extended {e.action} {e.proto} {render_addr(e.src)}{render_ports(e.sport)} "
                    f"{render_addr(e.dst)}{render_ports(e.dport)}")
            if e.icmp is not None:
                line += f" {e.icmp}"
            if e.inactive:
                line += " inactive"
            out.append(line)
    for n, acl in cfg.inbound.items():
        out.append(f"access-group {acl} in interface {n}")
    for n, acl in cfg.outbound.items():
        out.append(f"access-group {acl} out interface {n}")
    if cfg.global_acl:
        out.append(f"access-group {cfg.global_acl} global")
    return "\n".join(out) + "\n"


def ref_addr(a: tuple[str, str], addr: int, missing: frozenset[int] = frozenset()) -> bool:
    """``missing``: what the undefined group inside object-group U would hold on the device."""
    kind, value = a
    if value == "U":
        return addr == addr_to_int("10.1.9.9") or addr in missing
    v6 = addr >= 1 << 128
    if kind == "any":
        return True
    if kind == "any4":
        return not v6
    if kind == "any6":
        return v6
    if kind == "host":
        return addr == addr_to_int(value)
    if kind == "net":
        net, mask = NETS[value].split()
        p = parse_prefix(f"{net}/{bin(addr_to_int(mask)).count('1')}")
        return p.lo <= addr <= p.hi
    return any(parse_prefix(m if "/" in m else m + "/32").lo <= addr <= parse_prefix(m if "/" in m else m + "/32").hi
               for m in GROUP_G)


def ref_port(spec, port: int) -> bool:
    if spec is None:
        return True
    op, a, b = spec
    return {"eq": port == a, "neq": port != a, "lt": port < a, "gt": port > a, "range": a <= port <= b}[op]


def ref_entry(e: Entry, p: Packet, missing: frozenset[int] = frozenset()) -> bool:
    if e.inactive:
        return False
    if e.proto != "ip" and p.proto != PROTOS[e.proto]:
        return False
    if not (ref_addr(e.src, p.src, missing) and ref_addr(e.dst, p.dst, missing)):
        return False
    if not (ref_port(e.sport, p.sport) and ref_port(e.dport, p.dport)):
        return False
    return e.icmp is None or p.icmp_type == e.icmp


def ref_first(es: list[Entry], p: Packet, missing: frozenset[int] = frozenset()) -> str | None:
    for e in es:
        if ref_entry(e, p, missing):
            return e.action
    return None


def ref_decide(cfg: Config, p: Packet, a: str, b: str, missing: frozenset[int] = frozenset()) -> str:
    """The ASA's checks, one after the other, as the configuration guide describes them."""
    if a not in REF_IFACES or b not in REF_IFACES:
        return "allow"  # no such nameif: approximated as allowed
    level = {n: (lv if lv is not None else (100 if n == "inside" else 0)) for n, lv in cfg.levels.items()}
    if a == b and not cfg.intra:
        return "deny"
    if a != b and level[a] == level[b] and not cfg.inter:
        return "deny"
    def defined(name: str | None) -> bool:  # an ACL without entries is not in the file at all
        return bool(name and cfg.acls.get(name))

    in_acl = cfg.inbound.get(a) if defined(cfg.inbound.get(a)) else None
    glob = cfg.global_acl if defined(cfg.global_acl) else None
    if in_acl or glob:
        chain = (cfg.acls[in_acl] if in_acl else []) + (cfg.acls[glob] if glob else [])
        if ref_first(chain, p, missing) != "permit":
            return "deny"
    elif level[a] < level[b]:
        return "deny"
    out_acl = cfg.outbound.get(b) if defined(cfg.outbound.get(b)) else None
    if out_acl and ref_first(cfg.acls[out_acl], p, missing) != "permit":
        return "deny"
    return "allow"


@st.composite
def packets(draw):
    proto = draw(st.sampled_from(["tcp", "tcp", "udp", "icmp", "gre"]))
    v6 = draw(st.integers(0, 5)) == 0
    pool = V6_HOSTS if v6 else HOSTS + ["10.1.2.99"]
    src, dst = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    if proto == "icmp":
        return pkt(proto, src, dst, icmp=(draw(st.sampled_from([0, 3, 8])), 0))
    if proto == "gre":
        return pkt(proto, src, dst)
    return pkt(proto, src, dst, draw(st.sampled_from(PORTS + [23])), sport=draw(st.sampled_from(PORTS)))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(cfg=configs(), samples=st.lists(packets(), min_size=5, max_size=15))
def test_flattening_agrees_with_the_asa_checks(tmp_path, cfg, samples):
    """Every packet, on every ordered pair of interfaces (hairpins and a non-nameif included)."""
    text = render(cfg)
    rs = load(write(tmp_path, text, "ref.cfg"), REF_TOPO)
    compiled = compile_ruleset(SPACE, rs, list(REF_TOPO))
    for p in samples:
        for a in REF_TOPO:
            for b in REF_TOPO:
                want = ref_decide(cfg, p, a, b)
                got = rs.decide(p, a, b)[0]
                assert got == want, f"{p.describe()} {a}->{b}\n{text}"
                assert bdd_allows(compiled, p, a, b) == (got == "allow")
    # nothing in these configurations needs approximating, except the absent nameif and undefined ACLs
    for r in rs.rules:
        assert r.approximation is None or r.id.startswith("(ghost") or r.id.endswith("(undefined)"), r


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(cfg=configs(ADDR_KINDS_U), samples=st.lists(packets(), min_size=5, max_size=10),
       missing=st.sets(st.sampled_from(HOSTS + V6_HOSTS)))
def test_unknown_members_never_make_a_verdict_optimistic(tmp_path, cfg, samples, missing):
    """Whatever the undefined group holds on the device, a packet it lets through is allowed here."""
    text = render(cfg)
    rs = load(write(tmp_path, text, "ref.cfg"), REF_TOPO)
    holds = frozenset(addr_to_int(h) for h in missing)
    for p in samples:
        for a in REF_TOPO:
            for b in REF_TOPO:
                if ref_decide(cfg, p, a, b, holds) == "allow":
                    assert rs.decide(p, a, b)[0] == "allow", f"{p.describe()} {a}->{b}\n{text}"


# --- end to end --------------------------------------------------------------------------------


def test_end_to_end_check_through_a_topology(tmp_path, monkeypatch):
    from segverify.analysis.check import check
    from segverify.topology.loader import load_topology

    monkeypatch.setitem(segverify.importers.FORMATS, "cisco-asa", "cisco_asa")
    (tmp_path / "asa.cfg").write_text("\n".join([
        "ASA Version 9.16(2)",
        "interface Gi0/0", " nameif lgwan", " security-level 100",
        "interface Gi0/1", " nameif inet", " security-level 0",
        "object network vb1", " host 10.3.0.10",
        "object network cloud", " fqdn v4 portal.example.jp",
        "access-list LG_IN remark virtual browser only",
        "access-list LG_IN extended permit tcp 10.2.0.0 255.255.0.0 object vb1 eq 3389",
        "access-list LG_IN extended deny ip any any log",
        "access-group LG_IN in interface lgwan", ""]))
    topo_text = "\n".join([
        "version: 1", "name: t", "segments:",
        "  - {name: lg, kind: lgwan, cidrs: [10.2.0.0/16]}",
        "  - {name: inet, kind: internet, cidrs: [10.3.0.0/16]}",
        "hosts:", "  - {name: vb1, addresses: [10.3.0.10]}",
        "firewalls:", "  - name: asa", "    interfaces:",
        "      - {name: lgwan, segment: lg}", "      - {name: inet, segment: inet}",
        "    config: {format: cisco-asa, file: asa.cfg}",
        "channels:",
        "  - {name: vb, kind: screen-transfer, protocol: rdp, clients: [lg], servers: [vb1], ports: [tcp/3389]}",
        ""])
    (tmp_path / "topo.yaml").write_text(topo_text)
    result = check(load_topology(str(tmp_path / "topo.yaml")))
    codes = sorted(f.code for f in result.findings)
    assert "LGWAN_INTERNET_UNSANITIZED" not in codes, [f.message for f in result.findings]
    # now open SMB toward the Internet side: a violation whose path names the ASA's own rule
    cfg = (tmp_path / "asa.cfg").read_text().replace(
        "access-list LG_IN extended deny ip any any log",
        "access-list LG_IN extended permit tcp any any eq 445\naccess-list LG_IN extended deny ip any any log")
    (tmp_path / "asa.cfg").write_text(cfg)
    result = check(load_topology(str(tmp_path / "topo.yaml")))
    bad = [f for f in result.findings if f.code == "LGWAN_INTERNET_UNSANITIZED"]
    assert bad and any(step["rule"] == "LG_IN line 3" for f in bad for step in f.path or [])
    assert any(step["source"].endswith("asa.cfg:14") for f in bad for step in f.path or [])
