"""The iptables-save importer: real configurations, the verified tool's approximations, a reference
interpreter, and malformed input.

Every verdict is checked twice: with the first-match loop (``RuleSet.decide``) and with the BDD
engine (``compile_ruleset(...).hop``), which must agree.
"""

from __future__ import annotations

import ipaddress
import random
import re
import time
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importer_support import PROTOS, SPACE, bdd_allows, corpus_files, packet

from segverify.errors import InputError
from segverify.importers import get_importer, iptables
from segverify.importers.iptables import load
from segverify.model.addresses import ALL_V4, IntervalSet, addr_to_int, parse_prefix
from segverify.model.rules import FALSE, FieldIn, Packet, Rule, RuleSet, all_of
from segverify.packetspace.firewall import compile_ruleset

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "configs" / "iptables"
corpus_file = corpus_files(CORPUS)
pkt = packet


@cache
def imported(path: str, ifaces: tuple[str, ...]):
    ruleset = load(path, ifaces)
    return ruleset, compile_ruleset(SPACE, ruleset, list(ifaces))


def verdict(path: str, ifaces: tuple[str, ...], p: Packet, i: str, o: str) -> tuple[str, Rule | None]:
    ruleset, compiled = imported(path, ifaces)
    action, rule = ruleset.decide(p, i, o)
    assert bdd_allows(compiled, p, i, o) == (action == "allow"), f"BDD and first-match loop disagree on {p}"
    return action, rule


def load_text(tmp_path: Path, text: str, ifaces=("eth0", "eth1", "wan0"), name: str = "fw.rules") -> RuleSet:
    path = tmp_path / name
    path.write_text(text)
    return load(str(path), ifaces)


def decide(ruleset: RuleSet, p: Packet, i: str = "eth0", o: str = "eth1",
           ifaces=("eth0", "eth1", "wan0")) -> tuple[str, str | None]:
    action, rule = ruleset.decide(p, i, o)
    compiled = compile_ruleset(SPACE, ruleset, list(ifaces))
    assert bdd_allows(compiled, p, i, o) == (action == "allow")
    return action, (rule.id if rule else None)


def check_cases(path: Path, ifaces: tuple[str, ...], cases) -> None:
    for case in cases:
        i, o, p, want, rule_id = case
        action, rule = verdict(str(path), ifaces, p, i, o)
        got_id = rule.id if rule else None
        assert (action, got_id) == (want, rule_id), f"{case}: got {action} by {got_id}"


# --- oracle_ruleset20: every construct in it ---------------------------------------------------

ORACLE_IFACES = ("r-mn", "r-lg", "r-in")
ORACLE_CASES = [
    # MN_OUT: REJECT toward the Internet side, multiport (list and range) toward LG, UDP 53, ping
    ("r-mn", "r-lg", pkt("tcp", "10.200.10.5", "10.200.20.7", 443), "allow", "MN_OUT#2"),
    ("r-mn", "r-lg", pkt("tcp", "10.200.10.5", "10.200.20.7", 25), "allow", "MN_OUT#2"),
    ("r-mn", "r-lg", pkt("tcp", "10.200.10.5", "10.200.20.7", 8000), "allow", "MN_OUT#2"),
    ("r-mn", "r-lg", pkt("tcp", "10.200.10.5", "10.200.20.7", 8080), "allow", "MN_OUT#2"),
    ("r-mn", "r-lg", pkt("tcp", "10.200.10.5", "10.200.20.7", 8081), "deny", None),
    ("r-mn", "r-lg", pkt("tcp", "10.200.10.5", "10.200.20.200", 443), "deny", None),  # outside the /25
    ("r-mn", "r-lg", pkt("udp", "10.200.10.5", "10.200.20.7", 53), "allow", "MN_OUT#3"),
    ("r-mn", "r-lg", pkt("udp", "10.200.10.5", "10.200.20.7", 54), "deny", None),
    ("r-mn", "r-in", pkt("udp", "10.200.10.5", "8.8.8.8", 53), "deny", "MN_OUT#1"),
    ("r-mn", "r-in", pkt("icmp", "10.200.10.5", "8.8.8.8", icmp=(8, 0)), "deny", "MN_OUT#1"),
    ("r-mn", "r-lg", pkt("icmp", "10.200.10.5", "10.200.20.7", icmp=(8, 0)), "allow", "MN_OUT#4"),
    # a lone echo-reply is INVALID to conntrack: FORWARD#2 drops it before any chain
    ("r-mn", "r-lg", pkt("icmp", "10.200.10.5", "10.200.20.7", icmp=(0, 0)), "deny", "FORWARD#2"),
    ("r-in", "r-lg", pkt("icmp", "8.8.8.8", "10.200.20.9", icmp=(3, 1)), "deny", "FORWARD#2"),
    # LG_OUT: /31 source, iprange with a port range, DROP toward the Internet, negated source
    ("r-lg", "r-mn", pkt("tcp", "10.200.20.10", "10.200.10.5", 22), "allow", "LG_OUT#1"),
    ("r-lg", "r-mn", pkt("tcp", "10.200.20.11", "10.200.10.5", 22), "allow", "LG_OUT#1"),
    ("r-lg", "r-mn", pkt("tcp", "10.200.20.12", "10.200.10.5", 22), "deny", None),
    ("r-lg", "r-mn", pkt("tcp", "10.200.20.100", "10.200.10.5", 1024), "allow", "LG_OUT#2"),
    ("r-lg", "r-mn", pkt("tcp", "10.200.20.150", "10.200.10.5", 2048), "allow", "LG_OUT#2"),
    ("r-lg", "r-mn", pkt("tcp", "10.200.20.151", "10.200.10.5", 2048), "deny", None),
    ("r-lg", "r-mn", pkt("tcp", "10.200.20.100", "10.200.10.5", 2049), "deny", None),
    ("r-lg", "r-in", pkt("udp", "10.200.20.5", "8.8.8.8", 53), "deny", "LG_OUT#3"),
    ("r-lg", "r-mn", pkt("udp", "10.9.9.9", "10.200.10.5", 53), "deny", "LG_OUT#4"),
    ("r-lg", "r-mn", pkt("udp", "10.200.20.5", "10.200.10.5", 9999), "allow", "LG_OUT#5"),  # the hole
    ("r-lg", "r-lg", pkt("udp", "10.200.20.5", "10.200.20.6", 1), "allow", "LG_OUT#5"),
    # INET_IN: destination DROP, the ipset DROP (not taken as matching), web server, DNS/NTP replies
    ("r-in", "r-mn", pkt("tcp", "8.8.8.8", "10.200.10.7", 80), "deny", "INET_IN#1"),
    ("r-in", "r-lg", pkt("tcp", "8.8.8.8", "10.200.20.80", 80), "allow", "INET_IN#3"),
    ("r-in", "r-lg", pkt("tcp", "8.8.8.8", "10.200.20.81", 80), "deny", None),
    ("r-in", "r-lg", pkt("udp", "8.8.8.8", "10.200.20.9", 5000, sport=53), "allow", "INET_IN#4"),
    ("r-in", "r-lg", pkt("udp", "8.8.8.8", "10.200.20.9", 5000, sport=123), "allow", "INET_IN#4"),
    ("r-in", "r-lg", pkt("udp", "8.8.8.8", "10.200.20.9", 5000, sport=124), "deny", None),
    ("r-in", "r-lg", pkt("icmp", "8.8.8.8", "10.200.20.9", icmp=(8, 0)), "allow", "INET_IN#5"),
    # an interface the file never names: only the policy applies
    ("other", "r-lg", pkt("tcp", "8.8.8.8", "10.200.20.80", 80), "deny", None),
]


def test_oracle_ruleset20_verdicts():
    path = corpus_file("oracle_ruleset20.iptables")
    check_cases(path, ORACLE_IFACES + ("other",), ORACLE_CASES)


def test_oracle_ruleset20_rules_ids_names_and_approximations():
    path = corpus_file("oracle_ruleset20.iptables")
    ruleset, _ = imported(str(path), ORACLE_IFACES + ("other",))
    by_id = {r.id: r for r in ruleset.rules}
    # every deciding rule keeps its id, the conntrack ones included (they never match an initiation)
    wanted = {"FORWARD#1", "FORWARD#2", "MN_OUT#1", "MN_OUT#4", "LG_OUT#5", "INET_IN#2", "INET_IN#5"}
    assert wanted <= set(by_id)
    assert by_id["FORWARD#1"].match == FALSE
    assert by_id["MN_OUT#2"].source.line == 14 and by_id["MN_OUT#2"].source.path == str(path)
    assert by_id["LG_OUT#5"].name == "deliberate hole: any UDP LGWAN->MyNumber"
    # -m set in a DROP rule: taken as not matching, and said so
    assert by_id["INET_IN#2"].match == FALSE and "set" in by_id["INET_IN#2"].approximation
    assert by_id["MN_OUT#1"].action == "deny" and by_id["MN_OUT#1"].out_ifaces == frozenset({"r-in"})
    # IPv6: the file says nothing about it, so it is allowed on an approximated rule
    action, rule = verdict(str(path), ORACLE_IFACES + ("other",),
                           pkt("tcp", "fd00::1", "fd00::2", 22), "r-in", "r-mn")
    assert action == "allow" and rule.id == "(no ip6tables rules)" and "IPv6" in rule.approximation
    assert ruleset.default == "deny"
    approximated = sorted(r.id for r in ruleset.rules if r.approximation)
    assert approximated == ["(no ip6tables rules)", "INET_IN#2"]


def test_oracle_ruleset20_exact_counts():
    path = corpus_file("oracle_ruleset20.iptables")
    ifaces = ORACLE_IFACES
    _, compiled = imported(str(path), ifaces)
    hop = compiled.hop("r-lg", "r-mn")
    # LG → MN over IPv4, TCP: exactly two source sets and ports (the /31 to 22, the range to 1024-2048)
    tcp_v4 = SPACE.values("proto", IntervalSet.of(6)) & SPACE.values("src", ALL_V4)
    got = SPACE.count(hop & tcp_v4)[0]
    want = 2 * (1 << 32) * (1 << 16) * 1 + 51 * (1 << 32) * (1 << 16) * 1025
    assert got == want


# --- TUM_Net -----------------------------------------------------------------------------------

TUM = "TUM_Net_iptables-save-2015-09-03_15-56-50"


def ipassmt(path: Path) -> dict[str, IntervalSet]:
    """The verified tool's interface → address map (``all_but_those_ips`` is a complement)."""
    text = path.read_text()
    out: dict[str, IntervalSet] = {}
    for m in re.finditer(r"^(\S+) = (all_but_those_ips )?\[(.*?)\]", text, re.M | re.S):
        name, negate, body = m.group(1), m.group(2), m.group(3)
        parts = []
        for item in re.split(r"[,\s]+", body.strip()):
            if not item:
                continue
            if "-" in item:
                lo, hi = item.split("-")
                parts.append((addr_to_int(lo), addr_to_int(hi)))
            else:
                net = ipaddress.ip_network(item, strict=False)
                parts.append((int(net.network_address), int(net.broadcast_address)))
        values = IntervalSet(parts)
        out[name] = values.complement(0, (1 << 32) - 1) if negate else values
    return out


def tum_ifaces() -> tuple[str, ...]:
    return tuple(ipassmt(corpus_file("TUM_Net__ipassmt_tumi8")))


def test_tum_net_verdicts():
    path = corpus_file(TUM)
    cases = [
        # the loopback range is dropped early (FORWARD#6 → LOG_DROP)
        ("eth1.110", "eth1.96", pkt("tcp", "127.0.0.1", "131.159.14.36", 22), "deny", "LOG_DROP#2"),
        # raw NOTRACK makes these UNTRACKED: FORWARD#1 (RELATED,ESTABLISHED,UNTRACKED) accepts them
        ("eth1.1011", "eth1.110", pkt("tcp", "131.159.14.221", "8.8.8.8", 25), "allow", "FORWARD#1"),
        ("eth1.110", "eth1.96", pkt("udp", "8.8.8.8", "131.159.14.47", 53), "allow", "FORWARD#1"),
        ("eth1.110", "eth1.96", pkt("tcp", "8.8.8.8", "131.159.14.47", 53), "deny", "filter_DEFAULT#3"),
        # spoofed internal source on the uplink: NOTFROMHERE → LOG_DROP
        ("eth1.110", "eth1.96", pkt("tcp", "131.159.14.5", "131.159.14.36", 443), "deny", "LOG_DROP#2"),
        # the server's own multiport rule, and the chain's default for anything else
        ("eth1.110", "eth1.96", pkt("tcp", "8.8.8.8", "131.159.14.36", 443), "allow", "filter_96#8"),
        ("eth1.110", "eth1.96", pkt("tcp", "8.8.8.8", "131.159.14.36", 25), "deny", "filter_DEFAULT#3"),
        ("eth1.110", "eth1.96", pkt("icmp", "8.8.8.8", "131.159.14.36", icmp=(8, 0)), "allow",
         "filter_DEFAULT#1"),
        ("eth1.110", "eth1.96", pkt("tcp", "8.8.8.8", "131.159.14.26", 22), "allow", "FORWARD#16"),
        ("eth1.110", "eth1.96", pkt("esp", "8.8.8.8", "131.159.14.26"), "deny", "filter_DEFAULT#3"),
        # outbound: mac_96 (MAC unknown, taken as passing), ranges_96, then filter_0
        ("eth1.96", "eth1.110", pkt("tcp", "131.159.14.36", "8.8.8.8", 443), "allow", "filter_0#32"),
        ("eth1.96", "eth1.110", pkt("esp", "131.159.14.36", "8.8.8.8"), "allow", "filter_0#1"),
        # a source outside the VLAN's range: ranges_96 → LOG_DROP
        ("eth1.96", "eth1.110", pkt("tcp", "131.159.20.5", "8.8.8.8", 443), "deny", "LOG_DROP#2"),
        # IPv6 is not described by the file
        ("eth1.110", "eth1.96", pkt("tcp", "2001:db8::1", "2001:db8::2", 22), "allow",
         "(no ip6tables rules)"),
    ]
    check_cases(path, tum_ifaces(), cases)
    ruleset, _ = imported(str(path), tum_ifaces())
    assert ruleset.default == "allow"  # :FORWARD ACCEPT (the chain ends in LOG_DROP)
    mac_drops = [r for r in ruleset.rules if r.id.startswith("mac_") and r.action == "deny"]
    assert mac_drops and all(r.match == FALSE and "MAC" in r.approximation for r in mac_drops)


def test_tum_net_loads_quickly():
    path = corpus_file(TUM)
    start = time.perf_counter()
    ruleset = load(str(path), tum_ifaces())
    elapsed = time.perf_counter() - start
    assert len(ruleset.rules) > 4000
    assert elapsed < 15, f"TUM_Net took {elapsed:.1f}s"  # about 1 s on a quiet machine


def parse_listing(path: Path) -> RuleSet:
    """``iptables -L -n`` output of the FORWARD chain (the verified tool's simple rules) as a RuleSet."""
    rules: list[Rule] = []
    policy = "ACCEPT"
    in_forward = False
    for line in path.read_text().splitlines():
        if line.startswith("Chain "):
            in_forward = line.startswith("Chain FORWARD")
            if in_forward:
                policy = line.split("policy ")[1].rstrip(")")
            continue
        words = line.split()
        if not in_forward or not words or words[0] == "target":
            continue
        target, prot, _opt, src, dst, *extra = words
        parts = [FieldIn("src", IntervalSet.prefixes([parse_prefix(src if "/" in src else src + "/32")])),
                 FieldIn("dst", IntervalSet.prefixes([parse_prefix(dst if "/" in dst else dst + "/32")]))]
        if prot != "all":
            parts.append(FieldIn("proto", IntervalSet.of(int(prot) if prot.isdigit() else PROTOS[prot])))
        for word in extra:
            m = re.fullmatch(r"([ds])pts?:(\d+)(?::(\d+))?", word)
            if m:
                lo = int(m.group(2))
                hi = int(m.group(3) or lo)
                parts.append(FieldIn("dport" if m.group(1) == "d" else "sport", IntervalSet([(lo, hi)])))
            else:
                assert word in ("tcp", "udp"), f"unexpected listing word {word!r}"
        rules.append(Rule(f"L{len(rules) + 1}", "allow" if target == "ACCEPT" else "deny", all_of(*parts)))
    return RuleSet(tuple(rules), "allow" if policy == "ACCEPT" else "deny")


def untracked_rules(path: Path) -> str:
    """The raw table's NOTRACK rules as ACCEPT rules of a filter table, interfaces dropped: what
    they select is where conntrack (UNTRACKED), which segverify follows, and the verified tool's
    assumption that every packet is NEW part ways."""
    text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    table = None
    for line in path.read_text().splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "raw" and line.startswith("-A PREROUTING") and re.search("NOTRACK|--notrack", line):
            line = re.sub(r" -i \S+", "", line).replace("-A PREROUTING", "-A FORWARD")
            text += re.sub(r"-j (NOTRACK|CT --notrack)", "-j ACCEPT", line) + "\n"
    return text + "COMMIT\n"


def compare_with_verified_tool(name: str, ifaces: tuple[str, ...], pairs, exclude, tmp_path: Path, samples,
                               iface_of) -> None:
    """segverify ⊆ upper and lower ⊆ segverify, symbolically for every given interface pair (with
    the pair's source restriction), and on random packets with the first-match loop."""
    path = corpus_file(name)
    upper_rs = parse_listing(corpus_file(name + ".Ln.FWD.upper"))
    lower_rs = parse_listing(corpus_file(name + ".Ln.FWD.lower"))
    any_if = ifaces[0]
    upper = compile_ruleset(SPACE, upper_rs, list(ifaces)).hop(any_if, any_if)
    lower = compile_ruleset(SPACE, lower_rs, list(ifaces)).hop(any_if, any_if)
    ruleset, compiled = imported(str(path), ifaces)
    raw = tmp_path / "notrack.rules"
    raw.write_text(untracked_rules(path))
    untracked = compile_ruleset(SPACE, load(str(raw), ifaces), list(ifaces)).hop(any_if, any_if)
    # the verified tool assumes state NEW for every packet; conntrack makes lone ICMP messages other
    # than requests INVALID and NOTRACKed packets UNTRACKED: those are compared only with themselves
    v4 = SPACE.values("src", ALL_V4)
    icmp_new = SPACE.values("icmp_type", IntervalSet.of(8, 13, 15, 17))
    icmp_invalid = SPACE.values("proto", IntervalSet.of(1)) & ~icmp_new
    scope = v4 & ~icmp_invalid & ~untracked & ~exclude & SPACE.valid
    for i, o, srcs in pairs:
        hop = compiled.hop(i, o)
        extra = hop & scope & srcs & ~upper
        assert extra == SPACE.false, f"{i}->{o}: segverify allows {SPACE.witness(extra)}, upper does not"
        missing = lower & scope & srcs & ~hop
        assert missing == SPACE.false, f"{i}->{o}: lower allows {SPACE.witness(missing)}, segverify does not"
    # random packets: the first-match loop against the BDD, and against the listings' bounds; an
    # address behind several interfaces (the two uplinks) gets one of them at random
    rnd = random.Random(7)
    checked = allowed = 0
    for p in samples:
        one = SPACE.packet(p)
        if (one & scope) == SPACE.false:
            continue
        ins, outs = iface_of(p.src), iface_of(p.dst)
        if not ins or not outs:
            continue
        i, o = rnd.choice(ins), rnd.choice(outs)
        ours = ruleset.decide(p, i, o)[0] == "allow"
        assert ours == ((one & compiled.hop(i, o)) != SPACE.false)
        if (one & lower) != SPACE.false:
            assert ours, f"lower bound allows {p} on {i}->{o}, segverify does not"
        if ours:
            assert (one & upper) != SPACE.false, f"segverify allows {p} on {i}->{o}, the upper bound does not"
        checked += 1
        allowed += ours
    assert checked >= len(samples) // 2 and 0 < allowed < checked, (checked, allowed)


def random_packets(rnd: random.Random, hosts: list[int], nets: list[tuple[int, int]], n: int) -> list[Packet]:
    def address() -> int:
        roll = rnd.random()
        if roll < 0.4:
            return rnd.choice(hosts)
        if roll < 0.8:
            lo, hi = rnd.choice(nets)
            return rnd.randint(lo, hi)
        return rnd.randint(0, (1 << 32) - 1)

    out = []
    for _ in range(n):
        proto = rnd.choice((6, 6, 6, 17, 17, 1, 50))
        src, dst = address(), address()
        if proto in (6, 17):
            port = rnd.choice((22, 53, 80, 113, 443, 873, 1194, 3389, 5000, rnd.randint(1, 65535)))
            out.append(Packet(src, dst, proto, rnd.randint(1024, 65535), port))
        elif proto == 1:
            out.append(Packet(src, dst, proto, 0, 0, 8, 0))
        else:
            out.append(Packet(src, dst, proto))
    return out


def test_tum_net_between_the_verified_bounds(tmp_path):
    """TUM_Net against Iptables_Semantics' own over- (upper) and under- (lower) approximation.

    Upper and lower abstract interfaces away, so they bound segverify on every interface pair; the
    symbolic check covers all 23×23 pairs, the random packets use the ipassmt's interfaces for the
    packet's addresses (both candidates where an address sits behind two uplinks).
    """
    ifaces = tum_ifaces()
    full = ipassmt(corpus_file("TUM_Net__ipassmt_tumi8"))
    assmt = {k: v for k, v in full.items() if k not in ("eth0", "foo")}  # eth0: everything; foo: nothing
    every = SPACE.true
    pairs = [(i, o, every) for i in ifaces for o in ifaces]

    def iface_of(addr: int) -> list[str]:
        return [name for name, values in assmt.items() if addr in values]

    text = corpus_file(TUM).read_text()
    hosts = sorted({addr_to_int(a) for a in re.findall(r"-[sd] (\d+\.\d+\.\d+\.\d+)/32", text)})
    nets = [(lo, hi) for values in assmt.values() for lo, hi in values if hi - lo < 1 << 16]
    samples = random_packets(random.Random(2015), hosts, nets, 2000)
    compare_with_verified_tool(TUM, ifaces, pairs, SPACE.false, tmp_path, samples, iface_of)


MEDIUM = "medium-sized-company_iptables-save"


def test_medium_sized_company_verdicts():
    path = corpus_file(MEDIUM)
    ifaces = ("eth0", "ppp0", "lo")
    cases = [
        ("eth0", "ppp0", pkt("tcp", "172.16.2.50", "194.97.153.231", 443), "deny", "FW#1"),
        ("eth0", "ppp0", pkt("tcp", "172.16.2.50", "8.8.8.8", 443), "allow", "FW-OPEN#3"),
        ("eth0", "ppp0", pkt("tcp", "172.16.2.50", "8.8.8.8", 22), "deny", "FORWARD#512"),
        ("eth0", "ppp0", pkt("tcp", "172.16.2.5", "8.8.8.8", 22), "allow", "FW-OPEN#5"),
        # the nat PREROUTING DNAT comes first, as an approximated may-pass
        ("ppp0", "eth0", pkt("tcp", "1.2.3.4", "172.16.2.34", 4081), "allow", "nat:PREROUTING#1"),
        ("ppp0", "eth0", pkt("tcp", "1.2.3.4", "172.16.2.50", 80), "deny", "FORWARD#512"),
        ("ppp0", "eth0", pkt("udp", "192.168.255.5", "172.16.2.9", 80), "allow", "FW-OPEN#10"),
        ("eth0", "ppp0", pkt("icmp", "172.16.2.50", "8.8.8.8", icmp=(8, 0)), "allow", "FW-OPEN#4"),
        ("eth0", "ppp0", pkt("icmp", "172.16.2.50", "8.8.8.8", icmp=(0, 0)), "deny", "FORWARD#512"),
    ]
    check_cases(path, ifaces, cases)
    ruleset, _ = imported(str(path), ifaces)
    by_id = {r.id: r for r in ruleset.rules}
    assert "DNAT" in by_id["nat:PREROUTING#1"].approximation
    assert by_id["nat:PREROUTING#1"].in_ifaces == frozenset({"ppp0"})
    assert "rpfilter" in by_id["raw:PREROUTING#1"].approximation  # the raw DROP is not taken as dropping
    assert "FORWARD#1" not in by_id  # a rule without a target decides nothing


def test_medium_sized_company_between_the_verified_bounds(tmp_path):
    """The listings were made with eth0 = 172.16.2.0/24 (the upper bound turns ``-i eth0`` into that
    source range), everything else behind ppp0; FORWARD has no ``-o``, so every egress is checked.
    The DNAT on tcp/4081 is over-approximated here (any destination), so it is left out."""
    ifaces = ("eth0", "ppp0", "lo", "other")
    lan = IntervalSet.prefixes([parse_prefix("172.16.2.0/24")])
    lan_bdd = SPACE.values("src", lan)
    pairs = [(i, o, srcs) for i, srcs in (("eth0", lan_bdd), ("ppp0", ~lan_bdd)) for o in ifaces]
    dnat = SPACE.values("proto", IntervalSet.of(6)) & SPACE.values("dport", IntervalSet.of(4081))

    def iface_of(addr: int) -> list[str]:
        return ["eth0"] if addr in lan else ["ppp0"]

    text = corpus_file(MEDIUM).read_text()
    hosts = sorted({addr_to_int(a) for a in re.findall(r"-[sd] (\d+\.\d+\.\d+\.\d+)/32", text)})
    nets = [(addr_to_int("172.16.2.0"), addr_to_int("172.16.2.255")),
            (addr_to_int("192.168.255.0"), addr_to_int("192.168.255.255"))]
    samples = [p for p in random_packets(random.Random(2016), hosts, nets, 2000)
               if not (p.proto == 6 and p.dport == 4081)]

    compare_with_verified_tool(MEDIUM, ifaces, pairs, dnat, tmp_path, samples, iface_of)


# --- the other real files ----------------------------------------------------------------------


def test_home_user_verdicts():
    path = corpus_file("config_home_user_typical_home_user_iptables-save")
    ifaces = ("eth0.10", "eth0.11", "eth0.12", "eth0.13", "eth0.19", "eth0.22", "eth0.50", "eth1", "tun0",
              "lo")
    cases = [
        ("eth0.10", "eth1", pkt("tcp", "192.168.10.5", "8.8.8.8", 443), "allow", "FORWARD#16"),
        # the raw table's anti-spoofing drop (the DHCP RETURN before it is approximated)
        ("eth0.10", "eth1", pkt("tcp", "192.168.10.200", "8.8.8.8", 443), "deny", "raw:spoof_vlan_10#3"),
        ("eth0.50", "eth1", pkt("tcp", "192.168.50.4", "8.8.8.8", 443), "deny", "raw:spoof_vlan_50#1"),
        # the SSH forward is dead: raw invalid_ext drops 192.168.0.0/16 destinations from eth1
        ("eth1", "eth0.10", pkt("tcp", "8.8.8.8", "192.168.10.32", 22), "deny", "raw:invalid_ext#22"),
        ("eth1", "eth0.10", pkt("tcp", "8.8.8.8", "203.0.114.7", 24562), "allow", "nat:PREROUTING#1"),
        ("eth1", "eth0.10", pkt("tcp", "8.8.8.8", "203.0.114.7", 24563), "deny", None),
        ("eth0.10", "eth1", pkt("icmp", "192.168.10.5", "8.8.8.8", icmp=(0, 0)), "deny", "icmpv4-forward#5"),
        ("eth0.10", "eth1", pkt("icmp", "192.168.10.5", "8.8.8.8", icmp=(8, 0)), "allow", "FORWARD#16"),
        # lo is NOTRACKed in raw: an UNTRACKED ping does not pass the NEW-only RETURN
        ("lo", "eth1", pkt("icmp", "127.0.0.1", "8.8.8.8", icmp=(8, 0)), "deny", "icmpv4-forward#5"),
        ("eth0.22", "tun0", pkt("udp", "192.168.22.10", "10.8.0.1", 53), "allow", "FORWARD#24"),
        ("eth0.12", "eth0.10", pkt("tcp", "192.168.12.7", "192.168.10.9", 445), "allow", "FORWARD#5"),
        ("eth0.12", "eth0.10", pkt("tcp", "192.168.12.7", "192.168.10.9", 22), "deny", None),
        # --ctorigdst with a DNAT in the file: approximated
        ("eth0.19", "eth1", pkt("udp", "192.168.19.4", "131.159.20.148", 123), "allow", "FORWARD#25"),
        ("eth0.19", "eth1", pkt("tcp", "192.168.19.4", "131.159.20.148", 123), "deny", None),
    ]
    check_cases(path, ifaces, cases)
    ruleset, _ = imported(str(path), ifaces)
    fwd25 = next(r for r in ruleset.rules if r.id == "FORWARD#25")
    assert "ctorigdst" in fwd25.approximation


def test_shorewall_verdicts():
    path = corpus_file("configs_sqrl_shorewall_2014_sep_iptables-saveakachan")
    ifaces = ("lup", "lmd", "ldit", "lua", "wg", "vpriv", "vocb", "lo")
    cases = [
        ("lmd", "lup", pkt("tcp", "10.13.42.5", "8.8.8.8", 80), "allow", "loc-net#2"),
        ("lup", "lmd", pkt("tcp", "8.8.8.8", "10.13.42.5", 80), "deny", "net-loc#6"),
        ("lup", "lmd", pkt("tcp", "8.8.8.8", "10.13.42.5", 445), "deny", "Drop#9"),
        ("lup", "lmd", pkt("icmp", "8.8.8.8", "10.13.42.5", icmp=(3, 4)), "allow", "Drop#3"),
        ("lup", "lmd", pkt("icmp", "8.8.8.8", "10.13.42.5", icmp=(8, 0)), "deny", "net-loc#6"),
        ("lua", "lup", pkt("udp", "10.13.43.5", "8.8.8.8", 5000), "allow", "gst-net#2"),
        ("vocb", "lup", pkt("tcp", "10.9.9.9", "81.169.168.252", 80), "allow", "utvm-net#3"),
        # -j Reject, then -g reject: the verdict comes from the goto's chain
        ("vocb", "lup", pkt("tcp", "10.9.9.9", "1.1.1.1", 80), "deny", "reject#4"),
        ("vocb", "lup", pkt("udp", "10.9.9.9", "1.1.1.1", 80), "deny", "reject#5"),
        ("vocb", "vocb", pkt("udp", "10.9.9.9", "10.9.9.10", 5), "allow", "utvm_frwd#14"),
        ("lo", "lmd", pkt("tcp", "10.0.0.1", "10.13.42.5", 80), "deny", "reject#4"),
        # tcpflags: a SYN from port 0 is logged and dropped (-g logflags)
        ("lmd", "lup", pkt("tcp", "10.13.42.5", "8.8.8.8", 80, sport=0), "deny", "logflags#2"),
        # a multicast destination RETURNs out of net-loc, then FORWARD's Reject / reject
        ("lup", "lmd", pkt("tcp", "8.8.8.8", "224.0.0.5", 80), "deny", "reject#4"),
        ("lmd", "lua", pkt("tcp", "224.0.0.9", "10.13.43.5", 80), "deny", "smurflog#2"),
    ]
    check_cases(path, ifaces, cases)


def test_docker_verdicts():
    path = corpus_file("docker_topos_iptables-save.topos4.1")
    br = "br-b74b417b331f"
    ifaces = (br, "docker0", "eth0")
    cases = [
        (br, br, pkt("udp", "10.0.0.1", "10.0.0.42", 5432), "allow", "FORWARD#4"),
        (br, br, pkt("udp", "10.0.0.2", "10.0.0.1", 5432), "deny", None),
        ("eth0", "docker0", pkt("tcp", "8.8.8.8", "172.17.0.2", 22), "allow", "CUSTOM#5"),
        (br, "eth0", pkt("udp", "10.0.0.1", "8.8.8.8", 53), "allow", "FORWARD#11"),
        (br, "eth0", pkt("udp", "10.0.0.2", "8.8.8.8", 53), "deny", None),
        # ! --src-range 10.0.0.0-10.255.255.255
        ("eth0", br, pkt("udp", "8.8.8.8", "10.0.0.1", 53), "allow", "FORWARD#23"),
        ("eth0", br, pkt("udp", "10.5.5.5", "10.0.0.1", 53), "deny", None),
        ("docker0", "eth0", pkt("udp", "172.17.0.2", "1.1.1.1", 53), "allow", "FORWARD#25"),
        # FORWARD#1 is ESTABLISHED only: never an initiation
        ("eth0", br, pkt("tcp", "8.8.8.8", "10.0.0.4", 80), "deny", None),
        # the recent-list DROP is not taken as dropping
        ("eth0", "eth0", pkt("tcp", "8.8.8.8", "193.99.144.80", 80), "allow", "FORWARD#25"),
    ]
    check_cases(path, ifaces, cases)
    ruleset, _ = imported(str(path), ifaces)
    custom3 = next(r for r in ruleset.rules if r.id == "CUSTOM#3")
    assert custom3.match == FALSE and custom3.approximation.startswith("-m recent --update")


@pytest.mark.parametrize("name", [
    TUM, "config_home_user_typical_home_user_iptables-save",
    "configs_sqrl_shorewall_2014_sep_iptables-saveakachan",
    "docker_topos_iptables-save.topos4.1", MEDIUM, "oracle_ruleset20.iptables",
])
def test_every_corpus_file_parses_with_ids_and_sources(name):
    path = corpus_file(name)
    ruleset = load(str(path), ("eth0", "eth1"))
    lines = path.read_text().splitlines()
    for rule in ruleset.rules:
        if rule.source.line is None:
            continue
        assert rule.source.path == str(path)
        chain = rule.id.split(":")[-1].split("#")[0]
        assert f"-A {chain} " in lines[rule.source.line - 1] + " ", rule


# --- constructs, one at a time -----------------------------------------------------------------

HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"


def fw(body: str, policy: str = "DROP", chains: str = "") -> str:
    return HEAD.replace("FORWARD DROP", f"FORWARD {policy}") + chains + body + "COMMIT\n"


def test_registry_points_at_this_importer():
    assert get_importer("iptables-save") is load


def test_goto_does_not_return_but_jump_does(tmp_path):
    chains = ":A - [0:0]\n:B - [0:0]\n"
    body = ("-A FORWARD -j A\n-A FORWARD -p udp -j DROP\n"
            "-A A -p tcp -g B\n-A A -p tcp -j DROP\n"
            "-A B -p tcp --dport 22 -j DROP\n")
    rs = load_text(tmp_path, fw(body, "ACCEPT", chains))
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80)) == ("allow", None)  # back in FORWARD, policy
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 22)) == ("deny", "B#1")
    assert decide(rs, pkt("udp", "10.0.0.1", "10.0.0.2", 80)) == ("deny", "FORWARD#2")
    rs = load_text(tmp_path, fw(body.replace("-g B", "-j B"), "ACCEPT", chains))
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80)) == ("deny", "A#2")


def test_goto_into_a_chain_that_may_return_through_another_goto(tmp_path):
    # X decides everything it keeps, but its own goto into Y can fall through: then X returns too,
    # so the rest of C is skipped for those packets and FORWARD continues
    chains = ":C - [0:0]\n:X - [0:0]\n:Y - [0:0]\n"
    body = ("-A FORWARD -j C\n-A FORWARD -j ACCEPT\n"
            "-A C -g X\n-A C -j DROP\n"
            "-A X -p tcp -g Y\n-A X -j DROP\n"
            "-A Y -p tcp --dport 22 -j DROP\n")
    rs = load_text(tmp_path, fw(body, chains=chains))
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80)) == ("allow", "FORWARD#2")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 22)) == ("deny", "Y#1")
    assert decide(rs, pkt("udp", "10.0.0.1", "10.0.0.2", 80)) == ("deny", "X#2")


def test_return_in_forward_reaches_the_policy(tmp_path):
    rs = load_text(tmp_path, fw("-A FORWARD -s 10.0.0.0/8 -j RETURN\n-A FORWARD -j ACCEPT\n"))
    assert decide(rs, pkt("tcp", "10.1.1.1", "8.8.8.8", 80)) == ("deny", None)
    assert decide(rs, pkt("tcp", "11.1.1.1", "8.8.8.8", 80)) == ("allow", "FORWARD#2")


def test_return_with_interface_condition_splits_interfaces(tmp_path):
    chains = ":C - [0:0]\n"
    body = "-A FORWARD -j C\n-A C -i eth0 -p tcp -j RETURN\n-A C -j ACCEPT\n"
    rs = load_text(tmp_path, fw(body, chains=chains))
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80), "eth0", "eth1") == ("deny", None)
    assert decide(rs, pkt("udp", "10.0.0.1", "10.0.0.2", 80), "eth0", "eth1") == ("allow", "C#2")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80), "eth1", "eth0") == ("allow", "C#2")


def test_interfaces_wildcard_negation_and_unknown_names(tmp_path):
    body = ("-A FORWARD -i ppp7 -j ACCEPT\n"          # no such interface in the topology
            "-A FORWARD -i eth+ ! -o eth0 -p tcp -j ACCEPT\n"
            "-A FORWARD ! -i eth+ -p udp -j ACCEPT\n")
    rs = load_text(tmp_path, fw(body))
    assert rs.rules[0].in_ifaces == frozenset()
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80), "eth0", "eth1") == ("allow", "FORWARD#2")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80), "eth1", "eth0") == ("deny", None)
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80), "wan0", "eth1") == ("deny", None)
    assert decide(rs, pkt("udp", "10.0.0.1", "10.0.0.2", 80), "wan0", "eth1") == ("allow", "FORWARD#3")
    assert decide(rs, pkt("udp", "10.0.0.1", "10.0.0.2", 80), "eth1", "wan0") == ("deny", None)


def test_addresses_ports_and_protocols(tmp_path):
    body = ("-A FORWARD -s 10.0.0.0/255.255.255.0,10.9.0.0/16 -d 192.168.1.7 -p tcp --dport 1000: -j ACCEPT\n"
            "-A FORWARD ! -s 10.0.0.0/8 -p udp -m udp ! --sport :1023 -j ACCEPT\n"
            "-A FORWARD -p tcp -m multiport --ports 8080,9000:9001 -j ACCEPT\n"
            "-A FORWARD ! -p tcp -d 192.168.9.9 -j ACCEPT\n"
            "-A FORWARD -p 47 -j ACCEPT\n"
            "-A FORWARD -p tcp --dport ssh -j ACCEPT\n")
    rs = load_text(tmp_path, fw(body))
    assert decide(rs, pkt("tcp", "10.0.0.9", "192.168.1.7", 1000)) == ("allow", "FORWARD#1")
    assert decide(rs, pkt("tcp", "10.9.200.9", "192.168.1.7", 65535)) == ("allow", "FORWARD#1")
    assert decide(rs, pkt("tcp", "10.0.1.9", "192.168.1.7", 1000)) == ("deny", None)
    assert decide(rs, pkt("tcp", "10.0.0.9", "192.168.1.7", 999)) == ("deny", None)
    assert decide(rs, pkt("udp", "11.0.0.1", "1.1.1.1", 5, sport=1024)) == ("allow", "FORWARD#2")
    assert decide(rs, pkt("udp", "11.0.0.1", "1.1.1.1", 5, sport=1023)) == ("deny", None)
    assert decide(rs, pkt("udp", "10.0.0.1", "1.1.1.1", 5, sport=2000)) == ("deny", None)
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 5, sport=9001)) == ("allow", "FORWARD#3")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 8080, sport=1)) == ("allow", "FORWARD#3")
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 8080, sport=1)) == ("deny", None)
    assert decide(rs, pkt("udp", "10.1.1.1", "192.168.9.9", 1)) == ("allow", "FORWARD#4")
    assert decide(rs, pkt("tcp", "10.1.1.1", "192.168.9.9", 1)) == ("deny", None)
    assert decide(rs, pkt("gre", "10.1.1.1", "192.168.9.9")) == ("allow", "FORWARD#4")
    assert decide(rs, pkt("gre", "10.1.1.1", "192.168.9.8")) == ("allow", "FORWARD#5")
    assert decide(rs, pkt("tcp", "10.1.1.1", "192.168.9.8", 22)) == ("allow", "FORWARD#6")


def test_icmp_types_and_conntrack_states(tmp_path):
    body = ("-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
            "-A FORWARD -p icmp -m icmp --icmp-type 3/4 -j ACCEPT\n"
            "-A FORWARD -p icmp ! --icmp-type echo-request -s 10.0.0.1 -j ACCEPT\n"
            "-A FORWARD -p icmp --icmp-type ping -m state --state NEW -j ACCEPT\n"
            "-A FORWARD -p tcp -m conntrack ! --ctstate NEW -j ACCEPT\n"
            "-A FORWARD -p tcp --syn -d 10.0.0.5 -j ACCEPT\n"
            "-A FORWARD -p tcp ! --syn -j ACCEPT\n"
            "-A FORWARD -p tcp -m tcp --tcp-flags SYN,ACK SYN -d 10.0.0.6 -j ACCEPT\n"
            "-A FORWARD -f -j ACCEPT\n")
    rs = load_text(tmp_path, fw(body))
    # type 3 is an error message: INVALID on its own, dropped by rule 1 before rule 2
    assert decide(rs, pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(3, 4))) == ("deny", "FORWARD#1")
    assert decide(rs, pkt("icmp", "10.0.0.1", "2.2.2.2", icmp=(13, 0))) == ("allow", "FORWARD#3")
    assert decide(rs, pkt("icmp", "10.0.0.1", "2.2.2.2", icmp=(8, 0))) == ("allow", "FORWARD#4")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.0.0.5", 80)) == ("allow", "FORWARD#6")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.0.0.6", 80)) == ("allow", "FORWARD#8")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.0.0.7", 80)) == ("deny", None)
    ids = {r.id: r for r in rs.rules}
    assert all(ids[r].match == FALSE for r in ("FORWARD#5", "FORWARD#7", "FORWARD#9"))


def test_unknown_matches_and_targets_are_over_approximated(tmp_path):
    body = ("-A FORWARD -m set --match-set bad src -j DROP\n"
            "-A FORWARD -m set ! --match-set good src -j DROP\n"
            "-A FORWARD -p tcp --dport 80 -m limit --limit 5/min -j ACCEPT\n"
            "-A FORWARD -p tcp --dport 81 -m foo --bar 1 --baz -j ACCEPT\n"
            "-A FORWARD -p tcp --dport 82 -j NFQUEUE --queue-num 3\n"
            "-A FORWARD -p tcp --dport 83 -j TARPIT\n"
            "-A FORWARD -p tcp --dport 84 -m conntrack --ctstate DNAT -j ACCEPT\n"
            "-A FORWARD -p tcp -j LOG --log-prefix \"x y\"\n")
    rs = load_text(tmp_path, fw(body))
    ids = {r.id: r for r in rs.rules}
    assert ids["FORWARD#1"].match == FALSE and "ipset" in ids["FORWARD#1"].approximation
    assert ids["FORWARD#2"].match == FALSE and ids["FORWARD#2"].approximation
    for port, rule in ((80, "FORWARD#3"), (81, "FORWARD#4"), (82, "FORWARD#5"), (83, "FORWARD#6")):
        assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", port)) == ("allow", rule)
        assert ids[rule].approximation, rule
    # no nat table: nothing can have been DNATed, so --ctstate DNAT never holds (exactly)
    assert ids["FORWARD#7"].match == FALSE and not ids["FORWARD#7"].approximation
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 84)) == ("deny", None)
    assert "-m foo --bar 1 --baz" in ids["FORWARD#4"].approximation
    assert "NFQUEUE" in ids["FORWARD#5"].approximation
    assert "FORWARD#8" not in ids  # LOG decides nothing
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 85)) == ("deny", None)


def test_unknown_match_in_return_guard_widens_allows_and_narrows_denies(tmp_path):
    chains = ":C - [0:0]\n"
    body = ("-A FORWARD -j C\n-A FORWARD -p tcp -j ACCEPT\n"
            "-A C -s 10.0.0.0/8 -m mac --mac-source 00:11:22:33:44:55 -j RETURN\n"
            "-A C -s 10.0.0.0/8 -j DROP\n")
    rs = load_text(tmp_path, fw(body, chains=chains))
    # the DROP is taken as never reached for 10/8 (the MAC may match): allowed, with a reason
    assert decide(rs, pkt("tcp", "10.1.1.1", "2.2.2.2", 80)) == ("allow", "FORWARD#2")
    drop = next(r for r in rs.rules if r.id == "C#2")
    assert drop.match == FALSE and "MAC" in drop.approximation


def test_raw_notrack_makes_untracked_and_raw_drop_denies(tmp_path):
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -i wan0 -p udp --dport 53 -j NOTRACK\n"
            "-A PREROUTING -s 10.66.0.0/16 -j ACCEPT\n"
            "-A PREROUTING -s 10.0.0.0/8 -i wan0 -j DROP\n"
            "COMMIT\n" + fw("-A FORWARD -m state --state UNTRACKED -j ACCEPT\n"
                            "-A FORWARD -m state --state NEW -p udp -d 9.9.9.9 -j ACCEPT\n"))
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 53), "wan0", "eth0") == ("allow", "FORWARD#1")
    assert decide(rs, pkt("udp", "1.1.1.1", "2.2.2.2", 53), "eth1", "eth0") == ("deny", None)
    # NEW does not hold for an UNTRACKED packet
    assert decide(rs, pkt("udp", "1.1.1.1", "9.9.9.9", 53), "eth1", "eth0") == ("allow", "FORWARD#2")
    assert decide(rs, pkt("udp", "1.1.1.1", "9.9.9.9", 54), "wan0", "eth0") == ("allow", "FORWARD#2")
    # the raw DROP, except where the earlier raw ACCEPT ended the raw table
    assert decide(rs, pkt("udp", "10.1.1.1", "9.9.9.9", 54), "wan0", "eth0") == ("deny", "raw:PREROUTING#3")
    assert decide(rs, pkt("udp", "10.66.1.1", "9.9.9.9", 54), "wan0", "eth0") == ("allow", "FORWARD#2")


def test_nat_dnat_in_a_user_chain_and_mangle_drop(tmp_path):
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n:PORTFW - [0:0]\n"
            "-A PREROUTING -i wan0 -j PORTFW\n"
            "-A PORTFW -p tcp --dport 22 -j RETURN\n"
            "-A PORTFW -p tcp -m multiport --dports 80,443 -j DNAT --to-destination 10.0.0.80\n"
            "-A POSTROUTING -o wan0 -j MASQUERADE\n"
            "COMMIT\n"
            "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A FORWARD -d 10.0.0.99 -j DROP\n"
            "-A PREROUTING -j MARK --set-mark 1\n"
            "COMMIT\n" + fw("-A FORWARD -d 10.0.0.99 -j ACCEPT\n"
                            "-A FORWARD -p tcp --dport 8443 -m conntrack --ctstate DNAT -j ACCEPT\n"))
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "8.8.8.8", "10.0.0.7", 8443), "eth1", "eth0") == ("allow", "FORWARD#2")
    assert "DNAT" in next(r for r in rs.rules if r.id == "FORWARD#2").approximation
    action, rid = decide(rs, pkt("tcp", "8.8.8.8", "203.0.113.1", 443), "wan0", "eth0")
    assert (action, rid) == ("allow", "nat:PORTFW#2")
    dnat = next(r for r in rs.rules if r.id == "nat:PORTFW#2")
    assert "10.0.0.80" in dnat.approximation and dnat.in_ifaces == frozenset({"wan0"})
    assert decide(rs, pkt("tcp", "8.8.8.8", "203.0.113.1", 22), "wan0", "eth0") == ("deny", None)
    assert decide(rs, pkt("tcp", "8.8.8.8", "203.0.113.1", 443), "eth1", "eth0") == ("deny", None)
    assert decide(rs, pkt("tcp", "8.8.8.8", "10.0.0.99", 1), "eth1", "eth0") == ("deny", "mangle:FORWARD#1")


def test_ip6tables_file_and_icmpv6(tmp_path):
    text = ("# Generated by ip6tables-save v1.8.7 on Mon Jan  1 00:00:00 2024\n"
            + fw("-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j ACCEPT\n"
                 "-A FORWARD -s fd00:1::/64 ! -d fd00:2::/64 -p tcp -m tcp --dport 443 -j ACCEPT\n"
                 "-A FORWARD -m conntrack --ctstate NEW -j DROP\n"
                 "-A FORWARD -p icmpv6 -j ACCEPT\n"))
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("icmpv6", "fd00:1::1", "fd00:2::1", icmp=(128, 0))) == ("allow", "FORWARD#1")
    assert decide(rs, pkt("tcp", "fd00:1::1", "fd00:3::1", 443)) == ("allow", "FORWARD#2")
    assert decide(rs, pkt("tcp", "fd00:1::1", "fd00:2::1", 443)) == ("deny", "FORWARD#3")
    # neighbour solicitation is UNTRACKED, an echo-reply INVALID: neither is NEW
    assert decide(rs, pkt("icmpv6", "fd00:1::1", "fd00:2::1", icmp=(135, 0))) == ("allow", "FORWARD#4")
    assert decide(rs, pkt("icmpv6", "fd00:1::1", "fd00:2::1", icmp=(129, 0))) == ("allow", "FORWARD#4")
    # IPv4 is what this file does not describe
    action, rid = decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80))
    assert (action, rid) == ("allow", "(no iptables rules)")


def test_both_families_in_one_file(tmp_path):
    text = ("# Generated by iptables-save v1.8.7\n" + fw("-A FORWARD -p tcp --dport 22 -j ACCEPT\n")
            + "# Generated by ip6tables-save v1.8.7\n"
            + fw("-A FORWARD -p tcp --dport 22 -j DROP\n", "ACCEPT"))
    rs = load_text(tmp_path, text)
    assert not any(r.approximation for r in rs.rules)
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 22)) == ("allow", "FORWARD#1")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 80)) == ("deny", "FORWARD (policy, IPv4)")
    assert decide(rs, pkt("tcp", "fd00::1", "fd00::2", 22)) == ("deny", "FORWARD#1")
    assert decide(rs, pkt("tcp", "fd00::1", "fd00::2", 80)) == ("allow", None)


def test_insert_counters_comments_and_numbering(tmp_path):
    body = ("[5:300] -A FORWARD -p tcp --dport 1 -j ACCEPT\n"
            "-A FORWARD -c 7 400 -p tcp --dport 2 -m comment --comment \"two, quoted \\\"x\\\"\" -j ACCEPT\n"
            "-I FORWARD -p tcp --dport 3 -j ACCEPT\n"
            "-I FORWARD 3 -p tcp --dport 4 -j ACCEPT\n")
    rs = load_text(tmp_path, fw(body))
    by_id = {r.id: r for r in rs.rules}
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 3)) == ("allow", "FORWARD#1")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 1)) == ("allow", "FORWARD#2")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 4)) == ("allow", "FORWARD#3")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 2)) == ("allow", "FORWARD#4")
    assert by_id["FORWARD#4"].name == 'two, quoted "x"' and by_id["FORWARD#4"].source.line == 6


def test_family_only_rules_are_skipped_by_the_other_family(tmp_path):
    body = "-A FORWARD -6 -p tcp -j ACCEPT\n-A FORWARD -4 -p udp -j ACCEPT\n"
    rs = load_text(tmp_path, fw(body))
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.0.0.2", 1)) == ("deny", None)
    assert decide(rs, pkt("udp", "10.0.0.1", "10.0.0.2", 1)) == ("allow", "FORWARD#1")


def test_flattening_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(iptables, "MAX_FLAT_RULES", 50)
    chains = "".join(f":C{i} - [0:0]\n" for i in range(6))
    body = "".join(f"-A C{i} -j C{i + 1}\n-A C{i} -j C{i + 1}\n" for i in range(5)) + "-A FORWARD -j C0\n"
    with pytest.raises(InputError, match="more than 50 rules"):
        load_text(tmp_path, fw(body, chains=chains))


# --- malformed input ---------------------------------------------------------------------------

BAD = [
    ("-A FORWARD -j ACCEPT\n" + fw(""), 1, "outside any table"),
    (fw("-A NOPE -j ACCEPT\n"), 5, "not declared"),
    (fw("-A FORWARD -s\n"), 5, "needs an argument"),
    (fw("-A FORWARD -p tcp -s -j ACCEPT\n"), 5, "needs an argument"),
    (fw("-A FORWARD -s 10.0.0.300 -j ACCEPT\n"), 5, "cannot read address"),
    (fw("-A FORWARD -p tcp --dport 70000 -j ACCEPT\n"), 5, "out of range"),
    (fw("-A FORWARD -p tcp --dport 90:80 -j ACCEPT\n"), 5, "invalid port range"),
    (fw("-A FORWARD -p tcp --dport http-ish-nonsense -j ACCEPT\n"), 5, "cannot read port"),
    (fw("-A FORWARD -p nosuchproto -j ACCEPT\n"), 5, "unknown protocol"),
    (fw("-A FORWARD -m state --state BOGUS -j ACCEPT\n"), 5, "unknown conntrack state"),
    (fw("-A FORWARD --dport 22 -j ACCEPT\n"), 5, "unknown option"),
    (fw("-A FORWARD -p icmp --icmp-type bogus -j ACCEPT\n"), 5, "unknown ICMP type"),
    (fw("-A FORWARD -m comment --comment \"open -j ACCEPT\n"), 5, "cannot split"),
    (fw("-A FORWARD -g NOWHERE\n"), 5, "no such chain"),
    (fw("-A FORWARD -p tcp -j my_chain\n"), 5, "no such chain"),
    (fw("-A FORWARD -j ACCEPT -j DROP\n"), 5, "more than one target"),
    (fw("-A FORWARD ! -j ACCEPT\n"), 5, "cannot be negated"),
    (fw("-A FORWARD -j ACCEPT !\n"), 5, "negates nothing"),
    ("# Generated by iptables-save v1.8\n" + fw("-A FORWARD -s fd00::1 -j ACCEPT\n"), 6, "IPv6 address"),
    (fw("-A FORWARD -s 10.0.0.1 -j ACCEPT\n-A FORWARD -d fd00::1 -j ACCEPT\n"), 6, "in an iptables table"),
    (fw("junk line\n"), 5, "unexpected line"),
    (fw("-A A -j B\n-A B -j A\n", chains=":A - [0:0]\n:B - [0:0]\n"), 8, "chain loop"),
    (HEAD.replace("FORWARD DROP", "FORWARD MAYBE") + "COMMIT\n", 3, "unknown chain policy"),
    (HEAD + ":FORWARD DROP [0:0]\nCOMMIT\n", 5, "declared twice"),
    (HEAD + "-A FORWARD -j ACCEPT\n", 1, "not closed by COMMIT"),
    ("*bogus\nCOMMIT\n", 1, "unknown table"),
    (fw("") + fw(""), 6, "given twice"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[b[2] for b in BAD])
def test_malformed_input_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "fw.rules"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load(str(path), ("eth0",))
    err = info.value
    assert err.path == str(path) and err.line == line and message in err.message, str(err)


def test_empty_or_missing_file_is_an_input_error(tmp_path):
    path = tmp_path / "empty.rules"
    path.write_text("# nothing here\n")
    with pytest.raises(InputError, match="no table found"):
        load(str(path), ("eth0",))
    with pytest.raises(InputError, match="cannot read"):
        load(str(tmp_path / "missing.rules"), ("eth0",))


def test_cli_reports_the_line_and_exits_2(tmp_path):
    from segverify.cli import main

    (tmp_path / "fw.rules").write_text(fw("-A FORWARD -p tcp --dport 99999 -j ACCEPT\n"))
    (tmp_path / "topo.yaml").write_text(
        "version: 1\nname: t\nsegments:\n"
        "  - {name: lg, kind: lgwan, cidrs: [10.2.0.0/16]}\n"
        "  - {name: inet, kind: internet, cidrs: [10.3.0.0/16]}\n"
        "firewalls:\n  - name: fw\n    interfaces:\n"
        "      - {name: eth1, segment: lg}\n      - {name: eth2, segment: inet}\n"
        "    config: {format: iptables-save, file: fw.rules}\n")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "topo.yaml")])
    assert result.exit_code == 2
    assert "fw.rules:5:" in result.stderr and "out of range" in result.stderr


# --- against a reference interpreter -----------------------------------------------------------

IFACES = ("eth0", "eth1", "wan0")
PREFIXES = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "192.168.0.0/16", "192.168.1.7/32"]
ADDRS = ["10.1.2.3", "10.1.2.200", "10.1.9.9", "10.200.0.1", "192.168.1.7", "192.168.1.8", "8.8.8.8"]
PORTS = [22, 53, 80, 443, 1024, 8080]
USER_CHAINS = ["C1", "C2", "C3"]


def _negatable(inner):
    return st.tuples(inner, st.booleans())


@st.composite
def rules(draw, chain_index: int, with_unknown: bool):
    rule: dict = {}
    if draw(st.integers(0, 3)) == 0:
        rule["src"] = draw(_negatable(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2)))
    if draw(st.integers(0, 3)) == 0:
        rule["dst"] = draw(_negatable(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2)))
    if draw(st.integers(0, 5)) == 0:
        lo, hi = sorted(draw(st.lists(st.sampled_from(ADDRS), min_size=2, max_size=2)), key=addr_to_int)
        rule["range"] = (draw(st.sampled_from(["src", "dst"])), lo, hi, draw(st.booleans()))
    if draw(st.integers(0, 2)) == 0:
        proto = draw(st.sampled_from(["tcp", "udp", "icmp"]))
        negated = draw(st.integers(0, 4)) == 0
        rule["proto"] = (proto, negated)
        if not negated and proto in ("tcp", "udp") and draw(st.booleans()):
            if draw(st.booleans()):
                lo, hi = sorted(draw(st.lists(st.sampled_from(PORTS), min_size=2, max_size=2)))
                rule["port"] = (draw(st.sampled_from(["sport", "dport"])), lo, hi, draw(st.booleans()))
            else:
                rule["multiport"] = (draw(st.sampled_from(["sports", "dports", "ports"])),
                                     draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3)),
                                     draw(st.booleans()))
        if not negated and proto == "icmp" and draw(st.booleans()):
            rule["icmp"] = (draw(st.sampled_from([0, 3, 8])), draw(st.sampled_from([None, 0, 4])),
                            draw(st.booleans()))
    if draw(st.integers(0, 3)) == 0:
        states = draw(st.sets(st.sampled_from(["NEW", "ESTABLISHED", "RELATED", "INVALID"]), min_size=1))
        rule["state"] = (sorted(states), draw(st.booleans()), draw(st.sampled_from(["state", "conntrack"])))
    for key in ("in", "out"):
        if draw(st.integers(0, 3)) == 0:
            rule[key] = draw(_negatable(st.sampled_from(["eth0", "eth1", "wan0", "eth+", "ppp0"])))
    if with_unknown and draw(st.integers(0, 2)) == 0:
        rule["set"] = (draw(st.sampled_from(["s0", "s1"])), draw(st.booleans()))
    later = USER_CHAINS[chain_index:]
    targets = ["ACCEPT", "DROP", "REJECT", "RETURN", "LOG", None]
    target = draw(st.sampled_from(targets + (["jump", "goto"] if later else [])))
    if target in ("jump", "goto"):
        target = (target, draw(st.sampled_from(later)))
    rule["target"] = target
    return rule


@st.composite
def rulesets(draw, with_unknown: bool = False):
    chains = {"FORWARD": draw(st.lists(rules(0, with_unknown), max_size=6))}
    for k, name in enumerate(USER_CHAINS, start=1):
        chains[name] = draw(st.lists(rules(k, with_unknown), max_size=4))
    return chains, draw(st.sampled_from(["ACCEPT", "DROP"]))


def render(chains, policy) -> str:
    out = [f"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n"]
    out.extend(f":{name} - [0:0]\n" for name in USER_CHAINS)
    for name, chain in chains.items():
        for rule in chain:
            words = [f"-A {name}"]
            neg = lambda flag: "! " if flag else ""  # noqa: E731
            if "src" in rule:
                words.append(f"{neg(rule['src'][1])}-s {','.join(rule['src'][0])}")
            if "dst" in rule:
                words.append(f"{neg(rule['dst'][1])}-d {','.join(rule['dst'][0])}")
            for key, flag in (("in", "-i"), ("out", "-o")):
                if key in rule:
                    words.append(f"{neg(rule[key][1])}{flag} {rule[key][0]}")
            if "proto" in rule:
                words.append(f"{neg(rule['proto'][1])}-p {rule['proto'][0]}")
            if "range" in rule:
                which, lo, hi, flag = rule["range"]
                words.append(f"-m iprange {neg(flag)}--{which}-range {lo}-{hi}")
            if "port" in rule:
                which, lo, hi, flag = rule["port"]
                words.append(f"-m {rule['proto'][0]} {neg(flag)}--{which} {lo}:{hi}")
            if "multiport" in rule:
                which, ports, flag = rule["multiport"]
                words.append(f"-m multiport {neg(flag)}--{which} {','.join(map(str, ports))}")
            if "icmp" in rule:
                t, c, flag = rule["icmp"]
                words.append(f"-m icmp {neg(flag)}--icmp-type {t if c is None else f'{t}/{c}'}")
            if "state" in rule:
                states, flag, module = rule["state"]
                option = "--state" if module == "state" else "--ctstate"
                words.append(f"-m {module} {neg(flag)}{option} {','.join(states)}")
            if "set" in rule:
                words.append(f"-m set {neg(rule['set'][1])}--match-set {rule['set'][0]} src")
            target = rule["target"]
            if isinstance(target, tuple):
                words.append(f"{'-j' if target[0] == 'jump' else '-g'} {target[1]}")
            elif target is not None:
                words.append(f"-j {target}")
            out.append(" ".join(words) + "\n")
    out.append("COMMIT\n")
    return "".join(out)


def ref_state(p: Packet) -> str:
    if p.proto == 1 and p.icmp_type not in (8, 13, 15, 17):
        return "INVALID"
    return "NEW"


def ref_iface(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern


def ref_match(rule, p: Packet, i: str, o: str, members) -> bool:
    def in_prefixes(addr: int, prefixes) -> bool:
        return any(parse_prefix(x).lo <= addr <= parse_prefix(x).hi for x in prefixes)

    checks = []
    if "src" in rule:
        checks.append(in_prefixes(p.src, rule["src"][0]) != rule["src"][1])
    if "dst" in rule:
        checks.append(in_prefixes(p.dst, rule["dst"][0]) != rule["dst"][1])
    if "in" in rule:
        checks.append(ref_iface(rule["in"][0], i) != rule["in"][1])
    if "out" in rule:
        checks.append(ref_iface(rule["out"][0], o) != rule["out"][1])
    if "proto" in rule:
        checks.append((p.proto == PROTOS[rule["proto"][0]]) != rule["proto"][1])
    if "range" in rule:
        which, lo, hi, flag = rule["range"]
        addr = p.src if which == "src" else p.dst
        checks.append((addr_to_int(lo) <= addr <= addr_to_int(hi)) != flag)
    if "port" in rule:
        which, lo, hi, flag = rule["port"]
        checks.append((lo <= p.get(which) <= hi) != flag)
    if "multiport" in rule:
        which, ports, flag = rule["multiport"]
        hit = {"sports": p.sport in ports, "dports": p.dport in ports,
               "ports": p.sport in ports or p.dport in ports}[which]
        checks.append(hit != flag)
    if "icmp" in rule:
        t, c, flag = rule["icmp"]
        checks.append((p.icmp_type == t and (c is None or p.icmp_code == c)) != flag)
    if "state" in rule:
        states, flag, _ = rule["state"]
        checks.append((ref_state(p) in states) != flag)
    if "set" in rule:
        checks.append(members[rule["set"][0]] != rule["set"][1])
    return all(checks)


def ref_decide(chains, policy, p: Packet, i: str, o: str, members=None) -> str:
    """The iptables semantics, walked directly: -j returns, -g does not, RETURN pops a frame."""

    def run(name: str) -> str | None:
        for rule in chains[name]:
            if not ref_match(rule, p, i, o, members):
                continue
            target = rule["target"]
            if target == "ACCEPT":
                return "allow"
            if target in ("DROP", "REJECT"):
                return "deny"
            if target == "RETURN":
                return None
            if target in (None, "LOG"):
                continue
            kind, sub = target
            result = run(sub)
            if result is not None:
                return result
            if kind == "goto":
                return None
        return None

    return run("FORWARD") or ("allow" if policy == "ACCEPT" else "deny")


@st.composite
def packets(draw):
    proto = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    src, dst = draw(st.sampled_from(ADDRS)), draw(st.sampled_from(ADDRS))
    if proto == "icmp":
        p = pkt(proto, src, dst, icmp=(draw(st.sampled_from([0, 3, 8])), draw(st.sampled_from([0, 4]))))
    else:
        p = pkt(proto, src, dst, draw(st.sampled_from(PORTS)), sport=draw(st.sampled_from(PORTS)))
    return p, draw(st.sampled_from(IFACES)), draw(st.sampled_from(IFACES))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(ruleset=rulesets(), samples=st.lists(packets(), min_size=5, max_size=25))
def test_imported_rules_agree_with_a_reference_interpreter(tmp_path, ruleset, samples):
    chains, policy = ruleset
    rs = load_text(tmp_path, render(chains, policy), IFACES)
    compiled = compile_ruleset(SPACE, rs, list(IFACES))
    for p, i, o in samples:
        want = ref_decide(chains, policy, p, i, o)
        got = rs.decide(p, i, o)[0]
        assert got == want, f"{p} {i}->{o}\n{render(chains, policy)}"
        assert bdd_allows(compiled, p, i, o) == (got == "allow")
    assert not any(r.approximation for r in rs.rules if r.id != "(no ip6tables rules)")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(ruleset=rulesets(with_unknown=True),
       samples=st.lists(st.tuples(packets(), st.booleans(), st.booleans()), min_size=5, max_size=25))
def test_unknown_matches_never_make_a_verdict_optimistic(tmp_path, ruleset, samples):
    """Whatever the ipsets hold, a packet the firewall would accept is allowed by the import."""
    chains, policy = ruleset
    rs = load_text(tmp_path, render(chains, policy), IFACES)
    for (p, i, o), s0, s1 in samples:
        if ref_decide(chains, policy, p, i, o, {"s0": s0, "s1": s1}) == "allow":
            assert rs.decide(p, i, o)[0] == "allow", f"{p} {i}->{o}\n{render(chains, policy)}"


WORDS = ["-A", "FORWARD", "C1", "-s", "-d", "10.0.0.0/8", "fd00::/8", "!", "-p", "tcp", "udp", "icmp",
         "-i", "eth+", "-o", "-m", "multiport", "tcp", "iprange", "--dports", "--ports", "22,80:90",
         "--dport", "1:", "--src-range", "10.0.0.1-10.0.0.9", "-j", "-g", "ACCEPT", "DROP", "RETURN",
         "LOG", "--icmp-type", "8/0", "--state", "NEW,INVALID", "conntrack", "--ctstate", "set",
         "--match-set", "x", "src", "--syn", "--tcp-flags", "SYN,ACK", "SYN", "-f", "-c", "1", "2",
         "comment", "--comment", '"a', "[0:0]", "--sport", "99999", "-I", "3", "foo", "--bar", "COMMIT",
         "*nat", ":C1", "-", "REJECT", "DNAT"]


FUZZ_LINES = st.tuples(st.sampled_from(["-A FORWARD", "-A C1", "-I FORWARD", ""]),
                      st.lists(st.sampled_from(WORDS), max_size=12)).map(lambda t: " ".join([t[0], *t[1]]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(FUZZ_LINES, max_size=6))
def test_arbitrary_words_give_a_ruleset_or_an_input_error(tmp_path, lines):
    text = HEAD + ":C1 - [0:0]\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
    try:
        rs = load_text(tmp_path, text, IFACES)
    except InputError as err:
        assert err.path.endswith("fw.rules") and (err.line is None or 1 <= err.line <= len(lines) + 6)
        return
    compile_ruleset(SPACE, rs, list(IFACES))
