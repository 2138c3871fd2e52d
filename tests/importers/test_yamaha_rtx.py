"""The Yamaha RTX importer: the real RTX1210 configuration, every construct, a reference evaluator
of the two secure filter lists, and malformed input.

Every verdict is checked twice: with the first-match loop (``RuleSet.decide``) and with the BDD
engine (``compile_ruleset(...).hop``), which must agree.
"""

from __future__ import annotations

import ipaddress
import random
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importer_support import SPACE, bdd_allows, corpus_files, packet

import segverify.importers
from segverify.errors import InputError
from segverify.importers import yamaha_rtx
from segverify.importers.yamaha_rtx import load
from segverify.model.rules import Packet, Rule, RuleSet
from segverify.packetspace.firewall import compile_ruleset

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "configs" / "yamaha-rtx"
corpus_file = corpus_files(CORPUS)
pkt = packet
RTX1210 = "rtx1210_masked.txt"

IFACES = ("lan1", "lan2", "pp1", "tunnel1")


@cache
def imported(path: str, ifaces: tuple[str, ...]):
    ruleset = load(path, ifaces)
    return ruleset, compile_ruleset(SPACE, ruleset, list(ifaces))


def verdict(path: str, ifaces: tuple[str, ...], p: Packet, i: str, o: str) -> tuple[str, Rule | None]:
    ruleset, compiled = imported(path, ifaces)
    action, rule = ruleset.decide(p, i, o)
    assert bdd_allows(compiled, p, i, o) == (action == "allow"), f"BDD and first-match loop disagree on {p}"
    return action, rule


def load_text(tmp_path: Path, text: str, ifaces=IFACES, name: str = "rtx.txt") -> RuleSet:
    path = tmp_path / name
    path.write_text(text)
    return load(str(path), ifaces)


def decide(ruleset: RuleSet, p: Packet, i: str = "lan1", o: str = "lan2", ifaces=IFACES) -> tuple[str, str | None]:
    action, rule = ruleset.decide(p, i, o)
    compiled = compile_ruleset(SPACE, ruleset, list(ifaces))
    assert bdd_allows(compiled, p, i, o) == (action == "allow")
    return action, (rule.id if rule else None)


def rule_named(ruleset: RuleSet, rule_id: str) -> Rule:
    found = [r for r in ruleset.rules if r.id == rule_id]
    assert found, f"no rule {rule_id!r}"
    return found[0]


# --- the real RTX1210 configuration --------------------------------------------------------------

CITY_IFACES = ("lan1", "lan2", "tunnel1", "bridge1", "anonymous")
V4_LAN, V4_OUT, V6_LAN, V6_OUT = "192.168.1.20", "203.0.113.9", "2001:db8:1::20", "2001:db8:ff::9"
RTX1210_CASES = [
    # lan2 (the au WAN) in: NetBIOS/SMB/DCE-RPC rejected both ways, by the filters in their list order
    ("lan2", "bridge1", pkt("tcp", V4_OUT, V4_LAN, 445), "deny", "lan2 in: filter 200025", 164),
    ("lan2", "lan1", pkt("tcp", V4_OUT, V4_LAN, 80, sport=445), "deny", "lan2 in: filter 200024", 163),
    ("lan2", "lan1", pkt("udp", V4_OUT, V4_LAN, 137), "deny", "lan2 in: filter 200023", 162),
    ("lan2", "lan1", pkt("udp", V4_OUT, V4_LAN, 5000, sport=138), "deny", "lan2 in: filter 200022", 161),
    ("lan2", "lan1", pkt("tcp", V4_OUT, V4_LAN, 135), "deny", "lan2 in: filter 200021", 160),
    ("lan2", "lan1", pkt("udp", V4_OUT, V4_LAN, 140), "allow", "lan2 in: filter 200099", 168),  # just past 139
    # 200103 (DHCP both ports) comes before the passes in the list, although numbered after them
    ("lan2", "lan1", pkt("udp", V4_OUT, V4_LAN, 68, sport=67), "deny", "lan2 in: filter 200103", 172),
    ("lan2", "lan1", pkt("udp", V4_OUT, V4_LAN, 53, sport=67), "allow", "lan2 in: filter 200099", 168),
    ("lan2", "lan1", pkt("tcp", V4_OUT, V4_LAN, 80), "allow", "lan2 in: filter 200104", 173),
    ("lan2", "lan1", pkt("tcp", V4_OUT, V4_LAN, 3389), "allow", "lan2 in: filter 200099", 168),
    # the masquerade static entries on lan2 become approximated allows on top
    ("lan2", "lan1", pkt("udp", V4_OUT, V4_LAN, 500), "allow", "nat descriptor 1000 masquerade static 2", 204),
    ("lan2", "lan1", pkt("tcp", V4_OUT, V4_LAN, 55000), "allow", "nat descriptor 1000 masquerade static 900", 207),
    ("lan2", "lan1", pkt("esp", V4_OUT, V4_LAN), "allow", "nat descriptor 1000 masquerade static 1", 203),
    # lan2 out: the same rejects, then pass all; the dynamic filters after it are never reached
    ("bridge1", "lan2", pkt("tcp", V4_LAN, V4_OUT, 139), "deny", "lan2 out: filter 200023", 162),
    ("lan1", "lan2", pkt("udp", V4_LAN, V4_OUT, 53, sport=135), "deny", "lan2 out: filter 200020", 159),
    ("lan1", "lan2", pkt("tcp", V4_LAN, V4_OUT, 443), "allow", "lan2 out: filter 200099", 168),
    ("lan1", "lan2", pkt("icmp", V4_LAN, V4_OUT, icmp=(8, 0)), "allow", "lan2 out: filter 200099", 168),
    # hairpin on lan2: its in list and then its out list
    ("lan2", "lan2", pkt("tcp", V4_OUT, "198.51.100.1", 445), "deny", "lan2 in: filter 200025", 164),
    ("lan2", "lan2", pkt("tcp", V4_OUT, "198.51.100.1", 8080), "allow",
     "lan2 in: filter 200099 → lan2 out: filter 200099", 168),
    # tunnel1 (L2TPv3, a bridge1 member): DHCP kept off the tunnel, the rest passes
    ("tunnel1", "lan1", pkt("udp", "192.168.1.30", "255.255.255.255", 67, sport=68), "deny",
     "tunnel1 in: filter 200028", 167),
    ("tunnel1", "lan2", pkt("tcp", "192.168.1.30", V4_OUT, 443), "allow",
     "tunnel1 in: filter 200099 → lan2 out: filter 200099", 168),
    ("tunnel1", "lan2", pkt("tcp", "192.168.1.30", V4_OUT, 445), "deny",
     "tunnel1 in: filter 200099 → lan2 out: filter 200025", 164),
    ("lan1", "tunnel1", pkt("udp", V4_LAN, "192.168.1.30", 67, sport=68), "allow", "(no secure filter)", None),
    # IPv6 has lists of its own on lan2
    ("lan2", "lan1", pkt("icmpv6", V6_OUT, V6_LAN, icmp=(128, 0)), "allow", "lan2 in: ipv6 filter 101000", 214),
    ("lan2", "lan1", pkt("udp", V6_OUT, V6_LAN, 546, sport=547), "allow", "lan2 in: ipv6 filter 101002", 215),
    ("lan2", "lan1", pkt("tcp", V6_OUT, V6_LAN, 445), "allow", "lan2 in: ipv6 filter 101099", 217),
    ("lan1", "lan2", pkt("tcp", V6_LAN, V6_OUT, 445), "allow", "lan2 out: ipv6 filter 101099", 217),
]


@pytest.mark.parametrize("case", RTX1210_CASES, ids=lambda c: f"{c[0]}>{c[1]} {c[4]} {c[5]}")
def test_rtx1210_verdicts(case):
    i, o, p, want, rule_id, line = case
    path = corpus_file(RTX1210)
    action, rule = verdict(str(path), CITY_IFACES, p, i, o)
    assert (action, rule.id if rule else None) == (want, rule_id)
    assert rule is not None and rule.source.path == str(path) and rule.source.line == line


def test_rtx1210_structure():
    path = corpus_file(RTX1210)
    rs, _ = imported(str(path), CITY_IFACES)
    # the restrict filters match only FIN / RST segments: never an initiating packet, so not emitted
    assert not any("200026" in r.id or "200027" in r.id for r in rs.rules)
    # only the NAT rules are approximations
    approximated = {r.id for r in rs.rules if r.approximation}
    assert approximated == {f"nat descriptor 1000 masquerade static {n}" for n in (1, 2, 3, 4, 900)}
    assert "nat descriptor masquerade static" not in rule_named(rs, "lan2 in: filter 200025").name
    assert rule_named(rs, "lan2 in: filter 200025").name == "ip lan2 secure filter in (line 46) #6"
    assert rule_named(rs, "lan2 out: filter 200023").name.endswith("ip lan2 secure filter out (line 47) #4")
    notes = "\n".join(rs.notes)
    assert "ethernet filters" in notes and "190, 193, 194, 197, 198" in notes
    assert "ip filter source-route" in notes
    # every interface pair of each family is decided by a rule: the default is never reached
    for i in CITY_IFACES:
        for o in CITY_IFACES:
            for p in (pkt("tcp", V4_LAN, V4_OUT, 1), pkt("gre", V6_LAN, V6_OUT)):
                assert rs.decide(p, i, o)[1] is not None


def test_rtx1210_with_fewer_interfaces():
    """tunnel1 out of the topology: its list is noted, and every other verdict stands."""
    path = corpus_file(RTX1210)
    rs = load(str(path), ["lan2", "bridge1"])
    assert any("tunnel1 secure filter in applies to tunnel1, which is none" in n for n in rs.notes)
    assert decide(rs, pkt("tcp", V4_OUT, V4_LAN, 139), "lan2", "bridge1", ("lan2", "bridge1")) == (
        "deny", "lan2 in: filter 200023")


# --- addresses ---------------------------------------------------------------------------------

HEAD = "ip lan1 secure filter out 1 2 3 4 5 6 7 8 9\n"


def one_filter(tmp_path, spec: str, action: str = "pass") -> RuleSet:
    return load_text(tmp_path, f"ip filter 1 {action} {spec}\nip lan2 secure filter out 1\n")


@pytest.mark.parametrize("spec,inside,outside", [
    ("10.0.0.0/8 *", ["10.255.0.1"], ["11.0.0.1"]),
    ("10.1.2.3 *", ["10.1.2.3"], ["10.1.2.4"]),
    ("10.1.0.0/255.255.0.0 *", ["10.1.9.9"], ["10.2.0.1"]),
    ("10.1.0.0/0xffff0000 *", ["10.1.9.9"], ["10.2.0.1"]),
    ("10.1.2.77/24 *", ["10.1.2.1"], ["10.1.3.1"]),  # host bits are masked off
    ("192.168.*.1 *", ["192.168.0.1", "192.168.200.1"], ["192.168.0.2", "192.169.0.1"]),
    ("10.*.*.* *", ["10.9.8.7"], ["11.0.0.0"]),
    ("10.0.0.5-10.0.0.9 *", ["10.0.0.5", "10.0.0.9"], ["10.0.0.4", "10.0.0.10"]),
    ("-10.0.0.9 *", ["0.0.0.1", "10.0.0.9"], ["10.0.0.10"]),
    ("10.0.0.9- *", ["10.0.0.9", "255.255.255.255"], ["10.0.0.8"]),
    ("10.0.0.1,172.16.0.0/12 *", ["10.0.0.1", "172.31.0.1"], ["10.0.0.2"]),
    ("10.0.0.0/0x00ff0000 *", ["0.0.0.0", "200.0.7.1"], ["0.1.0.0"]),  # a non-contiguous mask
])
def test_source_addresses(tmp_path, spec, inside, outside):
    rs = one_filter(tmp_path, spec)
    for a in inside:
        assert decide(rs, pkt("tcp", a, "8.8.8.8", 80))[0] == "allow", a
    for a in outside:
        assert decide(rs, pkt("tcp", a, "8.8.8.8", 80)) == ("deny", "lan2 out: no filter matched"), a
    assert not any(r.approximation for r in rs.rules)


def test_destination_defaults_to_everything(tmp_path):
    rs = one_filter(tmp_path, "10.0.0.0/8")
    assert decide(rs, pkt("udp", "10.0.0.1", "1.2.3.4", 9))[0] == "allow"
    assert decide(rs, pkt("gre", "10.0.0.1", "1.2.3.4")) == ("allow", "lan2 out: filter 1")


def test_fqdn_addresses_are_approximated_by_polarity(tmp_path):
    text = ("ip filter 1 reject * www.example.com\nip filter 2 pass * map-e tcp\nip filter 3 pass 10.0.0.0/8\n"
            "ip lan2 secure filter out 1 2 3\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "192.0.2.1", "8.8.8.8", 80)) == ("allow", "lan2 out: filter 2")  # may be map-e
    assert decide(rs, pkt("udp", "10.0.0.1", "8.8.8.8", 53)) == ("allow", "lan2 out: filter 3")  # reject not taken
    assert rule_named(rs, "lan2 out: filter 2").approximation.startswith("'map-e' is resolved")
    assert not any(r.id == "lan2 out: filter 1" for r in rs.rules)  # a reject that may match nothing


def test_huge_non_contiguous_mask_is_a_covering_prefix(tmp_path):
    rs = one_filter(tmp_path, "*.*.*.7 *")
    assert decide(rs, pkt("tcp", "9.9.9.9", "8.8.8.8", 80))[0] == "allow"
    assert "too many gaps" in rule_named(rs, "lan2 out: filter 1").approximation
    rs = one_filter(tmp_path, "*.*.*.7 *", "reject")
    assert not any(r.id == "lan2 out: filter 1" for r in rs.rules)


# --- protocols and ports -----------------------------------------------------------------------


@pytest.mark.parametrize("spec,allowed,denied", [
    ("* * tcp * www", [pkt("tcp", "1.1.1.1", "2.2.2.2", 80)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 443),
                                                              pkt("udp", "1.1.1.1", "2.2.2.2", 80)]),
    ("* * udp,tcp * netbios_ns-netbios_ssn", [pkt("udp", "1.1.1.1", "2.2.2.2", 137),
                                              pkt("tcp", "1.1.1.1", "2.2.2.2", 139)],
     [pkt("tcp", "1.1.1.1", "2.2.2.2", 140), pkt("icmp", "1.1.1.1", "2.2.2.2")]),
    ("* * udp dhcps,dhcpc dhcps,dhcpc", [pkt("udp", "1.1.1.1", "2.2.2.2", 68, sport=67)],
     [pkt("udp", "1.1.1.1", "2.2.2.2", 53, sport=67)]),
    ("* * tcp 1024- 22,ftp,domain", [pkt("tcp", "1.1.1.1", "2.2.2.2", 20), pkt("tcp", "1.1.1.1", "2.2.2.2", 21),
                                      pkt("tcp", "1.1.1.1", "2.2.2.2", 53)],
     [pkt("tcp", "1.1.1.1", "2.2.2.2", 22, sport=1023), pkt("tcp", "1.1.1.1", "2.2.2.2", 23)]),
    ("* * tcp -1023 *", [pkt("tcp", "1.1.1.1", "2.2.2.2", 9, sport=1023)],
     [pkt("tcp", "1.1.1.1", "2.2.2.2", 9, sport=1024)]),
    # `*` and lists with TCP/UDP: ports compare TCP and UDP only; other protocols match without them
    ("* * * * 80", [pkt("tcp", "1.1.1.1", "2.2.2.2", 80), pkt("icmp", "1.1.1.1", "2.2.2.2"),
                    pkt("esp", "1.1.1.1", "2.2.2.2")], [pkt("udp", "1.1.1.1", "2.2.2.2", 81)]),
    ("* * tcp,icmp * 80", [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(3, 3))], [pkt("tcp", "1.1.1.1", "2.2.2.2", 81)]),
    # `icmp` alone: the port slots are ICMP type and code
    ("* * icmp 8 0", [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0))],
     [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(0, 0)), pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 1))]),
    ("* * icmp 3-5", [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(4, 9))],
     [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0))]),
    ("* * esp,gre,ah", [pkt("esp", "1.1.1.1", "2.2.2.2"), pkt("gre", "1.1.1.1", "2.2.2.2")],
     [pkt("tcp", "1.1.1.1", "2.2.2.2", 1)]),
    ("* * 47", [pkt("gre", "1.1.1.1", "2.2.2.2")], [pkt("esp", "1.1.1.1", "2.2.2.2")]),
    # an initiating TCP packet is a SYN
    ("* * tcpsyn", [pkt("tcp", "1.1.1.1", "2.2.2.2", 1)], []),
    ("* * established", [], [pkt("tcp", "1.1.1.1", "2.2.2.2", 1)]),
    ("* * tcpfin,tcprst * www", [], [pkt("tcp", "1.1.1.1", "2.2.2.2", 80)]),
    ("* * tcpflag=0x0002/0x0017 * www", [pkt("tcp", "1.1.1.1", "2.2.2.2", 80)], []),
    ("* * tcpflag=0x0010/0x0010", [], [pkt("tcp", "1.1.1.1", "2.2.2.2", 80)]),
    ("* * tcpflag!=0x0010/0x0010", [pkt("tcp", "1.1.1.1", "2.2.2.2", 80)], []),
])
def test_services(tmp_path, spec, allowed, denied):
    rs = one_filter(tmp_path, spec)
    for p in allowed:
        assert decide(rs, p) == ("allow", "lan2 out: filter 1"), p
    for p in denied:
        assert decide(rs, p) == ("deny", "lan2 out: no filter matched"), p
    assert not any(r.approximation for r in rs.rules)


@pytest.mark.parametrize("spec,reason,maybe,surely", [
    ("* * icmp-error", "ICMP types of icmp-error", pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0)),
     pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(3, 1))),
    ("* * icmp-info", "ICMP types of icmp-info", pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(3, 1)),
     pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0))),
    ("* * sctp", "unknown protocol name 'sctp'", pkt("gre", "1.1.1.1", "2.2.2.2"), None),
    ("* * tcp * kerberos", "unknown port name 'kerberos'", pkt("tcp", "1.1.1.1", "2.2.2.2", 88), None),
    ("* * tcpflag=0x0040/0x0040", "ECN bits", pkt("tcp", "1.1.1.1", "2.2.2.2", 88), None),
])
def test_undetermined_services_by_polarity(tmp_path, spec, reason, maybe, surely):
    """A pass filter is taken as matching what it may match, a reject filter as matching only what it
    surely matches (filter 2 passes everything after it)."""
    for action, want_maybe in (("pass", "allow"), ("reject", "allow")):
        rs = load_text(tmp_path, f"ip filter 1 {action} {spec}\nip filter 2 pass *\nip lan2 secure filter out 1 2\n",
                       name=f"{action}.txt")
        first = "lan2 out: filter 1" if action == "pass" else "lan2 out: filter 2"
        assert decide(rs, maybe) == (want_maybe, first)
        if surely is not None:
            assert decide(rs, surely) == ("allow", "lan2 out: filter 1") if action == "pass" else (
                "deny", "lan2 out: filter 1")
        own = [r for r in rs.rules if r.id == "lan2 out: filter 1"]
        assert not own or reason in own[0].approximation


def test_icmp6_type_and_code(tmp_path):
    text = "ipv6 filter 1 pass * * icmp6 128 *\nipv6 lan2 secure filter out 1\n"
    rs = load_text(tmp_path, text)
    echo = pkt("icmpv6", "2001:db8::1", "2001:db8::2", icmp=(128, 0))
    assert decide(rs, echo) == ("allow", "lan2 out: ipv6 filter 1")
    # whether ipv6 filters compare type and code is not documented: the pass may match any type
    assert decide(rs, pkt("icmpv6", "2001:db8::1", "2001:db8::2", icmp=(1, 0)))[0] == "allow"
    assert "ICMPv6 type and code" in rule_named(rs, "lan2 out: ipv6 filter 1").approximation


def test_restrict_is_an_approximated_pass(tmp_path):
    rs = one_filter(tmp_path, "* * udp * ntp", "restrict-log")
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 123)) == ("allow", "lan2 out: filter 1")
    assert "restrict" in rule_named(rs, "lan2 out: filter 1").approximation


# --- lists, interfaces, the two-list semantics ---------------------------------------------------


def test_list_order_is_the_written_order_not_the_numbers(tmp_path):
    text = "ip filter 10 pass * * tcp\nip filter 5 reject * * tcp * 22\nip lan2 secure filter out 10 5\n"
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 22)) == ("allow", "lan2 out: filter 10")
    assert rule_named(rs, "lan2 out: filter 10").source.line == 1


def test_no_list_passes_and_an_unmatched_list_discards(tmp_path):
    text = "ip filter 1 pass * * tcp * 443\nip lan2 secure filter in 1\n"
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 53), "lan1", "pp1") == ("allow", "(no secure filter)")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 443), "lan2", "lan1") == ("allow", "lan2 in: filter 1")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "lan2", "lan1") == ("deny", "lan2 in: no filter matched")
    assert rule_named(rs, "lan2 in: no filter matched").source.line == 2
    # the IPv4 list says nothing about IPv6
    assert decide(rs, pkt("tcp", "2001:db8::1", "2001:db8::2", 80), "lan2", "lan1") == ("allow", "(no secure filter)")


def test_egress_list_denies_what_ingress_passed(tmp_path):
    text = ("ip filter 1 pass 10.0.0.0/8 * tcp\nip filter 2 reject * 192.168.9.0/24\nip filter 3 pass * *\n"
            "ip lan1 secure filter in 1\nip lan2 secure filter out 2 3\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "10.0.0.1", "192.168.9.9", 80)) == ("deny", "lan1 in: filter 1 → lan2 out: filter 2")
    assert decide(rs, pkt("tcp", "10.0.0.1", "192.168.8.8", 80)) == ("allow", "lan1 in: filter 1 → lan2 out: filter 3")
    assert decide(rs, pkt("udp", "10.0.0.1", "192.168.8.8", 80)) == ("deny", "lan1 in: no filter matched")
    assert decide(rs, pkt("tcp", "10.0.0.1", "192.168.9.9", 80), "lan1", "pp1") == ("allow", "lan1 in: filter 1")
    assert decide(rs, pkt("udp", "172.16.0.1", "192.168.9.9", 80), "pp1", "lan2") == ("deny", "lan2 out: filter 2")
    rule = rule_named(rs, "lan1 in: filter 1 → lan2 out: filter 2")
    assert rule.source.line == 2 and rule.name == ("ip lan1 secure filter in (line 4) #1; "
                                                   "ip lan2 secure filter out (line 5) #1")


def test_pp_and_tunnel_contexts(tmp_path):
    text = ("ip filter 1 reject * * tcp * 23\nip filter 2 pass * *\n"
            "pp select 1\n ip pp secure filter in 1 2\n pp enable 1\n"
            "tunnel select 3\n ip tunnel secure filter out 1 2\n tunnel enable 3\ntunnel select none\n"
            "pp select anonymous\n ip pp secure filter in 1\n")
    rs = load_text(tmp_path, text, ("LAN1", "PP 1", "tunnel3", "pp-anonymous"))
    ifaces = ("LAN1", "PP 1", "tunnel3", "pp-anonymous")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 23), "PP 1", "LAN1", ifaces) == ("deny", "pp1 in: filter 1")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "PP 1", "LAN1", ifaces)[0] == "allow"
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 23), "LAN1", "tunnel3", ifaces) == (
        "deny", "tunnel3 out: filter 1")
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 9), "pp-anonymous", "LAN1", ifaces) == (
        "deny", "anonymous in: no filter matched")


def test_vlan_interfaces(tmp_path):
    text = "ip filter 1 reject * * udp\nip filter 2 pass * *\nip lan1.2 secure filter in 1 2\n"
    rs = load_text(tmp_path, text, ("lan1", "lan1.2"))
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 53), "lan1.2", "lan1", ("lan1", "lan1.2")) == (
        "deny", "lan1.2 in: filter 1")
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 53), "lan1", "lan1.2", ("lan1", "lan1.2"))[0] == "allow"


def test_ipv6_lists(tmp_path):
    text = ("ipv6 filter 1 pass * 2001:db8:1::/48 tcp * 443\nipv6 filter 2 reject 2001:db8::1-2001:db8::9\n"
            "ipv6 filter 3 pass *\nipv6 lan2 secure filter in 2 1\nipv6 lan2 secure filter out 3\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "2001:db8::5", "2001:db8:1::1", 443), "lan2", "lan1") == (
        "deny", "lan2 in: ipv6 filter 2")
    assert decide(rs, pkt("tcp", "2001:db8::a", "2001:db8:1::1", 443), "lan2", "lan1") == (
        "allow", "lan2 in: ipv6 filter 1")
    assert decide(rs, pkt("tcp", "2001:db8::a", "2001:db8:2::1", 443), "lan2", "lan1") == (
        "deny", "lan2 in: no filter matched")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 1), "lan2", "lan1") == ("allow", "(no secure filter)")


def test_undefined_filters_match_nothing_and_are_noted(tmp_path):
    rs = load_text(tmp_path, "ip filter 2 pass * * udp\nip lan2 secure filter out 1 2 dynamic 7\n")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 80)) == ("deny", "lan2 out: no filter matched")
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 80)) == ("allow", "lan2 out: filter 2")
    notes = "\n".join(rs.notes)
    assert "filter 1 is in a secure filter list but not defined" in notes
    assert "ip filter dynamic 7 is in a secure filter list but not defined" in notes


def test_later_definitions_replace_earlier_ones(tmp_path):
    text = "ip filter 1 reject * *\nip filter 1 pass * *\nip lan2 secure filter out 1\n"
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 80)) == ("allow", "lan2 out: filter 1")
    assert any("defined twice" in n for n in rs.notes)


def test_topology_interfaces_the_file_does_not_name(tmp_path):
    rs = load_text(tmp_path, "ip lan1 address 192.168.0.1/24\n", ("lan1", "lan3"))
    assert any(n.startswith("interface lan3 is not mentioned") for n in rs.notes)
    assert not any(n.startswith("interface lan1") for n in rs.notes)


def test_filter_sets_are_approximated_as_passing(tmp_path):
    rs = load_text(tmp_path, "ip filter 1 reject * *\nip lan2 secure filter name wan-set\n")
    action, rid = decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "lan2", "lan1")
    assert (action, rid) == ("allow", "lan2 in: filter set wan-set")
    assert "filter sets are not modelled" in rule_named(rs, rid).approximation


# --- dynamic filters -----------------------------------------------------------------------------


def test_dynamic_filters_pass_after_the_static_ones(tmp_path):
    text = ("ip filter 1 reject * * tcp * 8443\nip filter dynamic 10 * * www syslog=off\n"
            "ip filter dynamic 11 192.168.0.0/16 * domain timeout=5\nip filter dynamic 12 * * tcp\n"
            "ip lan2 secure filter out 1 dynamic 10 11\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "10.0.0.1", "2.2.2.2", 443)) == ("allow", "lan2 out: dynamic filter 10")
    assert decide(rs, pkt("tcp", "10.0.0.1", "2.2.2.2", 80)) == ("allow", "lan2 out: dynamic filter 10")
    assert decide(rs, pkt("udp", "192.168.1.1", "2.2.2.2", 53)) == ("allow", "lan2 out: dynamic filter 11")
    assert decide(rs, pkt("udp", "10.0.0.1", "2.2.2.2", 53)) == ("deny", "lan2 out: no filter matched")
    assert decide(rs, pkt("tcp", "10.0.0.1", "2.2.2.2", 22)) == ("deny", "lan2 out: no filter matched")
    assert rule_named(rs, "lan2 out: dynamic filter 10").source.line == 2
    # a static reject wins over a dynamic filter listed after it
    text2 = text.replace("dynamic 10 11", "dynamic 12")
    rs2 = load_text(tmp_path, text2, name="two.txt")
    assert decide(rs2, pkt("tcp", "10.0.0.1", "2.2.2.2", 8443)) == ("deny", "lan2 out: filter 1")
    assert decide(rs2, pkt("tcp", "10.0.0.1", "2.2.2.2", 8444)) == ("allow", "lan2 out: dynamic filter 12")
    assert not any(r.approximation for r in rs.rules + rs2.rules)


def test_dynamic_second_form(tmp_path):
    text = ("ip filter 10 reject 1.2.3.4 * tcp * 6000\nip filter 11 pass * * udp * 7001\n"
            "ip filter 12 pass * * udp * 7002\nip filter dynamic 1 * 172.33.0.1 filter 10 in 12 out 11\n"
            "ip lan2 secure filter in 200\nip lan2 secure filter out dynamic 1\n")
    rs = load_text(tmp_path, text)
    # the trigger: its filters' addresses and actions are ignored, the dynamic filter's own apply
    assert decide(rs, pkt("tcp", "10.0.0.1", "172.33.0.1", 6000)) == ("allow", "lan2 out: dynamic filter 1")
    assert decide(rs, pkt("tcp", "10.0.0.1", "172.33.0.2", 6000)) == ("deny", "lan2 out: no filter matched")
    assert decide(rs, pkt("udp", "10.0.0.1", "172.33.0.1", 7001)) == (
        "allow", "lan2 out: dynamic filter 1 (out connections)")
    # the reverse connections come in through lan2, from the trigger's destination
    assert decide(rs, pkt("udp", "172.33.0.1", "10.0.0.1", 7002), "lan2", "lan1") == (
        "allow", "lan2 out: dynamic filter 1 (in connections)")
    assert decide(rs, pkt("udp", "172.33.0.9", "10.0.0.1", 7002), "lan2", "lan1")[0] == "deny"
    assert rule_named(rs, "lan2 out: dynamic filter 1 (in connections)").approximation
    assert rule_named(rs, "lan2 out: dynamic filter 1 (out connections)").approximation
    assert rule_named(rs, "lan2 out: dynamic filter 1").approximation is None


def test_unknown_dynamic_application(tmp_path):
    rs = load_text(tmp_path, "ip filter dynamic 1 * * quake\nip lan2 secure filter out dynamic 1\n")
    assert decide(rs, pkt("gre", "1.1.1.1", "2.2.2.2")) == ("allow", "lan2 out: dynamic filter 1")
    assert "'quake' is not known" in rule_named(rs, "lan2 out: dynamic filter 1").approximation


def test_ipv6_dynamic_filters(tmp_path):
    text = ("ipv6 filter 1 pass * * icmp6\nipv6 filter dynamic 1 * * ping6\nipv6 filter dynamic 2 * * https\n"
            "ipv6 lan2 secure filter out dynamic 2 1\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("icmpv6", "2001:db8::1", "2001:db8::2", icmp=(128, 0))) == (
        "allow", "lan2 out: ipv6 dynamic filter 1")
    assert decide(rs, pkt("icmpv6", "2001:db8::1", "2001:db8::2", icmp=(129, 0)))[0] == "deny"
    assert decide(rs, pkt("tcp", "2001:db8::1", "2001:db8::2", 443)) == ("allow", "lan2 out: ipv6 dynamic filter 2")


# --- bridges ------------------------------------------------------------------------------------


def test_bridge_member_and_bridge_lists(tmp_path):
    text = ("bridge member bridge1 lan1 tunnel1\n"
            "ip filter 1 reject * * udp * 67-68\nip filter 2 pass * *\nip filter 3 reject * 10.9.0.0/16\n"
            "tunnel select 1\n ip tunnel secure filter in 1 2\n"
            "ip bridge1 secure filter in 3 2\n")
    ifaces = ("lan1", "tunnel1", "bridge1", "lan2")
    rs = load_text(tmp_path, text, ifaces)
    # routed from the tunnel member: its own list, then the bridge's
    assert decide(rs, pkt("udp", "10.1.0.1", "8.8.8.8", 67), "tunnel1", "lan2", ifaces) == (
        "deny", "tunnel1 in: filter 1")
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.9.0.1", 80), "tunnel1", "lan2", ifaces) == (
        "deny", "tunnel1 in: filter 2 → bridge1 in: filter 3")
    assert decide(rs, pkt("tcp", "10.1.0.1", "8.8.8.8", 80), "tunnel1", "lan2", ifaces) == (
        "allow", "tunnel1 in: filter 2 → bridge1 in: filter 2")
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.9.0.1", 80), "lan1", "lan2", ifaces) == (
        "deny", "bridge1 in: filter 3")
    # bridged between members: the members' lists only
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.9.0.1", 80), "tunnel1", "lan1", ifaces) == (
        "allow", "tunnel1 in: filter 2")
    assert decide(rs, pkt("udp", "10.1.0.1", "10.9.0.1", 68), "tunnel1", "lan1", ifaces) == (
        "deny", "tunnel1 in: filter 1")
    assert decide(rs, pkt("tcp", "10.1.0.1", "10.9.0.1", 80), "lan1", "tunnel1", ifaces) == (
        "allow", "(no secure filter)")
    assert not any(r.approximation for r in rs.rules)


def test_bridge_whose_members_all_filter(tmp_path):
    text = ("bridge member bridge1 lan1 lan3\nip filter 1 reject * * tcp\nip filter 2 pass * *\n"
            "ip lan1 secure filter in 1 2\nip lan3 secure filter in 1 2\n")
    rs = load_text(tmp_path, text, ("bridge1", "lan2"))
    action, rid = decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "bridge1", "lan2", ("bridge1", "lan2"))
    assert action == "allow" and "member it uses" in rule_named(rs, rid).approximation


# --- NAT ----------------------------------------------------------------------------------------


def test_static_nat_rules_on_top(tmp_path):
    text = ("ip lan2 address 203.0.113.2/29\nip lan2 nat descriptor 1 2\n"
            "nat descriptor type 1 masquerade\nnat descriptor address outer 1 primary\n"
            "nat descriptor masquerade static 1 1 192.168.0.10 tcp 8080=80\n"
            "nat descriptor type 2 nat\nnat descriptor address outer 2 203.0.113.6-203.0.113.7\n"
            "nat descriptor static 2 1 203.0.113.4=192.168.0.4 2\n"
            "nat descriptor masquerade incoming 2 forward 192.168.0.99\n"
            "nat descriptor masquerade static 3 1 192.168.0.10 tcp 22\n"
            "nat descriptor masquerade incoming 3 forward 192.168.0.98\nip pp nat descriptor 3\n"
            "ip filter 1 reject * *\nip lan2 secure filter in 1\n")
    rs = load_text(tmp_path, text.replace("ip pp nat", "pp select 1\nip pp nat"))
    assert decide(rs, pkt("tcp", "8.8.8.8", "203.0.113.2", 8080), "lan2", "lan1") == (
        "allow", "nat descriptor 1 masquerade static 1")
    assert decide(rs, pkt("tcp", "8.8.8.8", "203.0.113.2", 80), "lan2", "lan1") == ("deny", "lan2 in: filter 1")
    assert decide(rs, pkt("tcp", "8.8.8.8", "203.0.113.3", 8080), "lan2", "lan1") == ("deny", "lan2 in: filter 1")
    assert decide(rs, pkt("udp", "8.8.8.8", "203.0.113.5", 53), "lan2", "lan1") == (
        "allow", "nat descriptor 2 static 1")
    assert decide(rs, pkt("gre", "8.8.8.8", "203.0.113.7"), "lan2", "lan1") == ("allow", "nat descriptor 2 incoming")
    assert decide(rs, pkt("gre", "8.8.8.8", "203.0.113.1"), "lan2", "lan1") == ("deny", "lan2 in: filter 1")
    # descriptor 3 (on pp1) has no outer address in the file (ipcp): taken for any destination
    assert decide(rs, pkt("tcp", "8.8.8.8", "198.51.100.1", 22), "pp1", "lan1") == (
        "allow", "nat descriptor 3 masquerade static 1")
    assert decide(rs, pkt("esp", "8.8.8.8", "198.51.100.1"), "pp1", "lan1") == ("allow", "nat descriptor 3 incoming")
    assert decide(rs, pkt("tcp", "8.8.8.8", "198.51.100.1", 22), "lan2", "lan1") == ("deny", "lan2 in: filter 1")
    rule = rule_named(rs, "nat descriptor 1 masquerade static 1")
    assert rule.source.line == 5 and "taken as passing" in rule.approximation
    assert rule.in_ifaces == frozenset({"lan2"}) and rule.out_ifaces is None


# --- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,line,fragment", [
    ("ip filter 1 allow * *\n", 1, "not a filter action"),
    ("ip filter 0 pass * *\n", 1, "not a filter number"),
    ("ip filter 1 pass\n", 1, "needs an action and a source"),
    ("\nip filter 1 pass 300.1.1.1 *\n", 2, "not an IPv4 address"),
    ("ip filter 1 pass 10.0.0.9-10.0.0.1 *\n", 1, "not an IPv4 address"),
    ("ip filter 1 pass 10.0.0.0/33 *\n", 1, "not an IPv4 address"),
    ("ipv6 filter 1 pass 2001:db8::zz *\n", 1, "not an IPv6 address"),
    ("ip filter 1 pass * * tcp 70000\n", 1, "not a port"),
    ("ip filter 1 pass * * tcp 90-80\n", 1, "not a port"),
    ("ip filter 1 pass * * icmp 300\n", 1, "not a ICMP type"),
    ("ip filter 1 pass * * 256\n", 1, "not a protocol number"),
    ("ip filter 1 pass * * tcp,,udp\n", 1, "not a protocol list"),
    ("ip filter 1 pass * * tcpflag=0x2\n", 1, "tcpflag=VALUE/MASK"),
    ("ip filter 1 pass * * tcp * * extra\n", 1, "unexpected 'extra'"),
    ("ip filter dynamic 1 * *\n", 1, "needs source, destination"),
    ("ip filter dynamic 1 * * filter\n", 1, "at least one filter"),
    ("ip filter dynamic 1 * * www ftp\n", 1, "unexpected 'ftp'"),
    ("ip lan1 secure filter in\n", 1, "needs a direction and filter numbers"),
    ("ip lan1 secure filter sideways 1\n", 1, "not in, out or name"),
    ("ip lan1 secure filter in 1 x\n", 1, "not a filter number"),
    ("ip lan1 secure filter in 1 dynamic 2 dynamic 3\n", 1, "appears twice"),
    ("ip pp secure filter in 1\n", 1, "outside `pp select N`"),
    ("tunnel select 1\ntunnel select none\nip tunnel secure filter in 1\n", 3, "outside `tunnel select N`"),
    ("pp select one\n", 1, "not a pp number"),
    ("ip eth0 secure filter in 1\n", 1, "not an RTX interface name"),
    ("ip lan1 secure filter in 200020 200021\n 200022\n", 2, "wrapped"),
    ("nat descriptor static 1 1 10.0.0.1\n", 1, "not OUTER=INNER"),
    ("nat descriptor masquerade static 1 1 10.0.0.1\n", 1, "masquerade static DESCRIPTOR"),
    ("nat descriptor masquerade static 1 1 10.0.0.1 tcp\n", 1, "needs a port"),
    ("nat descriptor masquerade static 1 1 10.0.0.1 esp 80\n", 1, "a port with protocol"),
    ("ip lan2 nat descriptor x\n", 1, "not a descriptor number"),
    ("bridge member bridge1\n", 1, "bridge member needs"),
])
def test_malformed_input(tmp_path, text, line, fragment):
    with pytest.raises(InputError) as info:
        load_text(tmp_path, text)
    assert info.value.line == line and fragment in info.value.message, str(info.value)
    assert info.value.path.endswith("rtx.txt")


def test_unreadable_and_binary_files(tmp_path):
    with pytest.raises(InputError):
        load(str(tmp_path / "missing.txt"), IFACES)
    (tmp_path / "bin.txt").write_bytes(b"ip filter 1 pass * *\x00\n")
    with pytest.raises(InputError) as info:
        load(str(tmp_path / "bin.txt"), IFACES)
    assert "binary" in info.value.message


def test_shift_jis_descriptions(tmp_path):
    (tmp_path / "sjis.txt").write_bytes("description lan1 庁内LAN\nip filter 1 reject * *\n"
                                        "ip lan1 secure filter in 1\n".encode("cp932"))
    rs = load(str(tmp_path / "sjis.txt"), IFACES)
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 1), "lan1", "lan2") == ("deny", "lan1 in: filter 1")


def test_flattening_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(yamaha_rtx, "MAX_RULES", 20)
    filters = "".join(f"ip filter {n} pass * * tcp * {n}\n" for n in range(1, 30))
    with pytest.raises(InputError) as info:
        load_text(tmp_path, filters + "ip lan1 secure filter in " + " ".join(map(str, range(1, 30))) + "\n")
    assert "too large" in info.value.message


def test_unknown_commands_are_noted(tmp_path):
    rs = load_text(tmp_path, "frobnicate everything\nip lan1 intrusion detection in on\nsyslog host 1.2.3.4\n")
    notes = "\n".join(rs.notes)
    assert "unknown command 'frobnicate' (line 1)" in notes
    assert "intrusion detection" in notes and "(line 2)" in notes
    assert "syslog" not in notes


# --- the two-list semantics against a direct evaluator ----------------------------------------------

R_ADDRS = ["*", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "10.1.0.0-10.1.127.255", "10.1.*.*",
           "172.16.0.0/12,10.1.2.3", "192.168.1.0/255.255.255.0"]
R_PROTOS = ["*", "tcp", "udp", "icmp", "tcp,udp", "esp", "established", "tcpsyn", "udp,icmp"]
R_PORTS = ["*", "80", "www", "1-1024", "22,80", "netbios_ns-netbios_ssn", "1024-", "53"]
R_APPS = {"tcp": [(6, None)], "udp": [(17, None)], "www": [(6, {80, 443})], "domain": [(17, {53}), (6, {53})],
          "ftp": [(6, {21})]}
R_PACKET_ADDRS = ["10.1.2.3", "10.1.200.1", "10.2.0.1", "172.16.5.5", "192.168.1.1", "8.8.8.8"]
R_PACKET_PORTS = [22, 53, 80, 137, 139, 443, 1024, 5000]


def r_addr(spec: str, a: int) -> bool:
    for e in spec.split(","):
        if e == "*":
            return True
        if "-" in e:
            lo, hi = (int(ipaddress.IPv4Address(x)) for x in e.split("-"))
            if lo <= a <= hi:
                return True
        elif "*" in e:
            if all(w == "*" or int(w) == int(v) for w, v in zip(e.split("."), str(ipaddress.IPv4Address(a)).split("."),
                                                                  strict=True)):
                return True
        elif ipaddress.IPv4Address(a) in ipaddress.IPv4Network(e.replace("/255.255.255.0", "/24")):
            return True
    return False


def r_port(spec: str, v: int) -> bool:
    names = {"www": 80, "netbios_ns": 137, "netbios_ssn": 139}
    for e in spec.split(","):
        if e == "*":
            return True
        if "-" in e and not e.startswith("netbios"):
            lo, hi = e.split("-")
            if int(lo or 0) <= v <= int(hi or 65535):
                return True
        elif e.startswith("netbios"):
            if 137 <= v <= 139:
                return True
        elif int(names.get(e, e)) == v:
            return True
    return False


def r_static(f, p: Packet) -> bool:
    _action, src, dst, proto, sport, dport = f
    if not (r_addr(src, p.src) and r_addr(dst, p.dst)):
        return False
    elements = proto.split(",")
    ports_ok = r_port(sport, p.sport) and r_port(dport, p.dport)
    for e in elements:
        if e == "*" and (ports_ok or p.proto not in (6, 17)):
            return True
        if e in ("tcp", "tcpsyn") and p.proto == 6 and ports_ok:
            return True
        if e == "udp" and p.proto == 17 and ports_ok:
            return True
        if e == "icmp" and p.proto == 1 and (
                len(elements) > 1 or (r_port(sport, p.icmp_type) and r_port(dport, p.icmp_code))):
            return True
        if e == "esp" and p.proto == 50:
            return True
    return False


def r_dynamic(d, p: Packet) -> bool:
    src, dst, app = d
    return r_addr(src, p.src) and r_addr(dst, p.dst) and any(
        p.proto == proto and (ports is None or p.dport in ports) for proto, ports in R_APPS[app])


def r_list(spec, statics, dynamics, p: Packet) -> bool:
    if spec is None:
        return True
    static, dynamic = spec
    for n in static:
        if n in statics and r_static(statics[n], p):
            return statics[n][0].startswith("pass")
    return any(n in dynamics and r_dynamic(dynamics[n], p) for n in dynamic)


def r_decide(cfg, p: Packet, i: str, o: str) -> str:
    statics, dynamics, lists = cfg
    passes = r_list(lists[(i, "in")], statics, dynamics, p) and r_list(lists[(o, "out")], statics, dynamics, p)
    return "allow" if passes else "deny"


@st.composite
def rtx_configs(draw):
    numbers = draw(st.lists(st.integers(1, 40), min_size=1, max_size=10, unique=True))
    statics = {}
    for n in numbers:
        proto = draw(st.sampled_from(R_PROTOS))
        ports = ("*", "*") if proto == "icmp" else (draw(st.sampled_from(R_PORTS)), draw(st.sampled_from(R_PORTS)))
        if proto == "icmp" and draw(st.booleans()):
            ports = ("8", draw(st.sampled_from(["*", "0"])))
        statics[n] = (draw(st.sampled_from(["pass", "reject", "pass-log", "reject-nolog"])),
                      draw(st.sampled_from(R_ADDRS)), draw(st.sampled_from(R_ADDRS)), proto, *ports)
    dynamics = {n: (draw(st.sampled_from(R_ADDRS)), draw(st.sampled_from(R_ADDRS)), draw(st.sampled_from(list(R_APPS))))
                for n in draw(st.lists(st.integers(1, 5), max_size=3, unique=True))}
    lists = {}
    for iface in IFACES:
        for direction in ("in", "out"):
            if draw(st.booleans()):
                lists[(iface, direction)] = None
                continue
            static = draw(st.lists(st.sampled_from([*numbers, 99]), max_size=6))
            dynamic = draw(st.lists(st.sampled_from([1, 2, 3, 4, 5]), max_size=3)) if dynamics else []
            lists[(iface, direction)] = None if not static and not dynamic else (static, dynamic)
    return statics, dynamics, lists


def r_render(cfg) -> str:
    statics, dynamics, lists = cfg
    out = [f"ip filter {n} {' '.join(f)}" for n, f in statics.items()]
    out += [f"ip filter dynamic {n} {' '.join(d)} syslog=off" for n, d in dynamics.items()]
    for (iface, direction), spec in lists.items():
        if spec is None:
            continue
        numbers = " ".join(map(str, spec[0])) + (" dynamic " + " ".join(map(str, spec[1])) if spec[1] else "")
        if iface == "pp1":
            out += ["pp select 1", f" ip pp secure filter {direction} {numbers}"]
        elif iface == "tunnel1":
            out += ["tunnel select 1", f" ip tunnel secure filter {direction} {numbers}"]
        else:
            out.append(f"ip {iface} secure filter {direction} {numbers}")
    return "\n".join(out) + "\n"


@st.composite
def r_packets(draw):
    proto = draw(st.sampled_from(["tcp", "udp", "icmp", "esp"]))
    src, dst = draw(st.sampled_from(R_PACKET_ADDRS)), draw(st.sampled_from(R_PACKET_ADDRS))
    if proto == "icmp":
        p = pkt(proto, src, dst, icmp=(draw(st.sampled_from([0, 8])), draw(st.sampled_from([0, 1]))))
    elif proto == "esp":
        p = pkt(proto, src, dst)
    else:
        p = pkt(proto, src, dst, draw(st.sampled_from(R_PACKET_PORTS)), sport=draw(st.sampled_from(R_PACKET_PORTS)))
    return p, draw(st.sampled_from(IFACES)), draw(st.sampled_from(IFACES))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(cfg=rtx_configs(), samples=st.lists(r_packets(), min_size=5, max_size=25))
def test_flattening_agrees_with_a_direct_two_list_evaluator(tmp_path, cfg, samples):
    rs = load_text(tmp_path, r_render(cfg))
    compiled = compile_ruleset(SPACE, rs, list(IFACES))
    for p, i, o in samples:
        want = r_decide(cfg, p, i, o)
        got, rule = rs.decide(p, i, o)
        assert got == want, f"{p} {i}->{o} by {rule.id if rule else None}\n{r_render(cfg)}"
        assert bdd_allows(compiled, p, i, o) == (got == "allow")
    assert not any(r.approximation for r in rs.rules)


# --- hostile variations of the real file --------------------------------------------------------------

MUTATION_WORDS = ["*", "-", "/", ",", "dynamic", "pass", "reject", "restrict", "in", "out", "tcp", "udp,tcp",
                  "icmp", "tcpflag=0x2/0x2", "10.0.0.0/8", "1.2.3.4-", "2001:db8::/32", "ra-prefix@lan2::/64",
                  "www", "netbios_ns-", "65536", "0", "99999999999", "secure", "filter", "pp", "tunnel", "select",
                  "anonymous", "none", "nat", "descriptor", "static", "masquerade", "1=2", "bridge1", "lan9",
                  "eth0", "ipv6", "ip", "#", "\u00e9", "foo.example.com", "0x00ff0000"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), edits=st.integers(1, 6))
def test_mutations_of_the_real_file_load_or_raise_input_error(tmp_path, seed, edits):
    lines = corpus_file(RTX1210).read_text().splitlines()
    rng = random.Random(seed)
    for _ in range(edits):
        k = rng.randrange(len(lines))
        tokens = lines[k].split()
        kind = rng.randrange(5)
        if kind == 0:
            del lines[k]
        elif kind == 1:
            lines.insert(rng.randrange(len(lines)), lines[k])
        elif kind == 2 and tokens:
            tokens[rng.randrange(len(tokens))] = rng.choice(MUTATION_WORDS)
            lines[k] = " ".join(tokens)
        elif kind == 3 and tokens:
            lines[k] = " ".join(tokens[: rng.randrange(len(tokens))])
        else:
            tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(MUTATION_WORDS))
            lines[k] = " ".join(tokens)
    try:
        rs = load_text(tmp_path, "\n".join(lines) + "\n", CITY_IFACES)
    except InputError as err:
        assert err.path.endswith("rtx.txt") and (err.line is None or 1 <= err.line <= len(lines))
        return
    compile_ruleset(SPACE, rs, list(CITY_IFACES))


# --- end to end: a topology whose firewall is this RTX ---------------------------------------------

TOPOLOGY = """\
version: 1
name: Yamaha test city
segments:
  - {name: lg, kind: lgwan, cidrs: [192.168.0.0/16]}
  - {name: inet, kind: internet, cidrs: [203.0.113.0/24]}
firewalls:
  - name: rtx
    interfaces:
      - {name: bridge1, segment: lg}
      - {name: lan2, segment: inet}
    config: {format: yamaha-rtx, file: rtx.txt}
"""


def run_check(tmp_path, monkeypatch, config: str):
    from segverify.analysis.check import check
    from segverify.topology.loader import load_topology

    monkeypatch.setitem(segverify.importers.FORMATS, "yamaha-rtx", "yamaha_rtx")
    (tmp_path / "rtx.txt").write_text(config)
    (tmp_path / "city.yaml").write_text(TOPOLOGY)
    return check(load_topology(str(tmp_path / "city.yaml")))


def test_end_to_end_real_file_is_a_violation(tmp_path, monkeypatch):
    result = run_check(tmp_path, monkeypatch, corpus_file(RTX1210).read_text())
    unsanitized = [f for f in result.findings if f.code == "LGWAN_INTERNET_UNSANITIZED"]
    assert unsanitized
    rules = {step["rule"] for f in unsanitized for step in f.path or []}
    assert rules & {"lan2 out: filter 200099", "lan2 in: filter 200099", "lan2 in: filter 200104"}
    assert any(f.code == "UNSUPPORTED_RULE" for f in result.findings)  # the masquerade static entries


def test_end_to_end_closed_config_is_compliant(tmp_path, monkeypatch):
    config = ("ip filter 1 reject * *\nip filter 2 pass * 192.168.0.0/16 icmp\n"
              "ip lan2 secure filter in 1\nip lan2 secure filter out 1\n"
              "ipv6 filter 1 reject *\nipv6 lan2 secure filter in 1\nipv6 lan2 secure filter out 1\n")
    result = run_check(tmp_path, monkeypatch, config)
    assert [f.code for f in result.findings if f.severity in ("critical", "high")] == []
