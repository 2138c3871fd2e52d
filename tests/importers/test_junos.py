"""The Junos (SRX) importer: the real configurations of the corpus, every construct in both forms,
malformed input, and random input.

Every verdict is checked twice: with the first-match loop (``RuleSet.decide``) and with the BDD
engine (``compile_ruleset(...).hop``), which must agree. Configurations written in the curly-brace
form are also rendered as ``set`` commands (the way ``| display set`` does, see ``curly_to_set``)
and must give the same rules.
"""

from __future__ import annotations

import random
import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importer_support import SPACE, bdd_allows, corpus_files, packet

import segverify.importers
from segverify.errors import InputError
from segverify.importers import junos
from segverify.importers.junos import load
from segverify.model.rules import Packet, Rule, RuleSet
from segverify.packetspace.firewall import compile_ruleset

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "configs" / "junos"
corpus_file = corpus_files(CORPUS)
pkt = packet


def decide(ruleset: RuleSet, ifaces: tuple[str, ...], p: Packet, i: str, o: str) -> tuple[str, str | None]:
    """The verdict and the deciding rule's id, with the BDD engine agreeing on the verdict."""
    action, rule = ruleset.decide(p, i, o)
    compiled = compiled_for(ruleset, ifaces)
    assert bdd_allows(compiled, p, i, o) == (action == "allow"), f"BDD and first-match loop disagree on {p}"
    return action, (rule.id if rule else None)


_COMPILED: dict[int, tuple[RuleSet, object]] = {}


def compiled_for(ruleset: RuleSet, ifaces: tuple[str, ...]):
    key = id(ruleset)
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not ruleset:
        hit = (ruleset, compile_ruleset(SPACE, ruleset, list(ifaces)))
        _COMPILED[key] = hit
    return hit[1]


@cache
def imported(path: str, ifaces: tuple[str, ...]) -> RuleSet:
    return load(path, ifaces)


def check_cases(path: Path, ifaces: tuple[str, ...], cases) -> None:
    ruleset = imported(str(path), ifaces)
    for i, o, p, want, rule_id in cases:
        got = decide(ruleset, ifaces, p, i, o)
        assert got == (want, rule_id), f"{i}->{o} {p.describe()}: got {got}, want {(want, rule_id)}"


def load_text(tmp_path: Path, text: str, ifaces=("trust", "untrust", "dmz"), name: str = "srx.conf") -> RuleSet:
    path = tmp_path / name
    path.write_text(text)
    return load(str(path), ifaces)


def rule(ruleset: RuleSet, rid: str) -> Rule:
    found = [r for r in ruleset.rules if r.id == rid]
    assert len(found) == 1, f"{rid}: {[r.id for r in ruleset.rules]}"
    return found[0]


# --- rendering the curly-brace form as set commands (like "| display set") ---------------------

_CURLY_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|/\*.*?\*/|#[^\n]*|[{};\[\]]|[^\s{};\[\]"]+', re.S)


def curly_to_set(text: str) -> str:
    """Each statement as ``set`` + the words of the blocks around it; ``inactive:`` as ``deactivate``."""
    out: list[str] = []
    deactivate: list[list[str | None]] = [[]]
    stack: list[list[str]] = [[]]
    words: list[str] = []
    inactive = False
    tokens = iter(_CURLY_TOKEN.findall(text))
    for tok in tokens:
        if tok.startswith(("#", "/*")):
            continue
        if tok == "inactive:" and not words:
            inactive = True
        elif tok == ";":
            if words:
                out.append("set " + " ".join(stack[-1] + words))
                if inactive:
                    out.append("deactivate " + " ".join(stack[-1] + words))
            words, inactive = [], False
        elif tok == "[":
            values = []
            for t in tokens:
                if t == "]":
                    break
                values.append(t)
            next(tokens)  # the ';'
            for v in values:
                out.append("set " + " ".join(stack[-1] + words + [v]))
            words, inactive = [], False
        elif tok == "{":
            stack.append(stack[-1] + words)
            deactivate.append([" ".join(stack[-1])] if inactive else [])
            words, inactive = [], False
        elif tok == "}":
            done = stack.pop()
            for path in deactivate.pop():
                out.append(f"deactivate {path}")
            if not any(line.startswith(f"set {' '.join(done)}") for line in out):
                out.append("set " + " ".join(done))
        else:
            words.append(tok)
    return "\n".join(out) + "\n"


def both_forms(tmp_path: Path, curly: str, ifaces=("trust", "untrust", "dmz")) -> tuple[RuleSet, RuleSet]:
    """The same configuration loaded from its curly-brace and its set form: identical rules."""
    a = load_text(tmp_path, curly, ifaces, "curly.conf")
    b = load_text(tmp_path, curly_to_set(curly), ifaces, "set.conf")
    assert "curly-brace form" in a.notes and "set-command form" in b.notes
    assert a.default == b.default
    assert [(r.id, r.action, r.match, r.in_ifaces, r.out_ifaces, r.name, r.approximation) for r in a.rules] == \
        [(r.id, r.action, r.match, r.in_ifaces, r.out_ifaces, r.name, r.approximation) for r in b.rules]
    return a, b


# --- the corpus --------------------------------------------------------------------------------

SRX1_IFACES = ("trust", "untrust", "hostos", "loopback", "junos-host")


def test_junos_srx_1_verdicts():
    path = corpus_file("junos-srx-1.cfg")
    check_cases(path, SRX1_IFACES, [
        ("trust", "trust", pkt("tcp", "10.0.12.5", "10.0.13.7", 22), "allow", "trust>trust:default-permit"),
        ("untrust", "loopback", pkt("udp", "10.12.0.2", "10.0.0.1", 53), "allow", "untrust>loopback:p"),
        ("untrust", "junos-host", pkt("tcp", "10.12.0.2", "10.12.0.1", 22), "deny", "untrust>junos-host:p"),
        ("loopback", "junos-host", pkt("tcp", "10.0.0.1", "10.12.0.1", 179), "deny", "loopback>junos-host:p"),
        ("untrust", "untrust", pkt("tcp", "10.12.0.2", "10.13.0.3", 80), "deny", "untrust>untrust:p"),
        # p denies junos-icmp-all (every ICMP type), p2 permits the rest
        ("junos-host", "untrust", pkt("icmp", "10.12.0.1", "10.12.0.2", icmp=(8, 0)), "deny", "junos-host>untrust:p"),
        ("junos-host", "untrust", pkt("icmp", "10.12.0.1", "10.12.0.2", icmp=(3, 1)), "deny", "junos-host>untrust:p"),
        ("junos-host", "untrust", pkt("tcp", "10.12.0.1", "10.12.0.2", 179), "allow", "junos-host>untrust:p2"),
        ("junos-host", "untrust", pkt("icmpv6", "fd00::1", "fd00::2", icmp=(128, 0)), "allow", "junos-host>untrust:p2"),
        # no policy for these pairs: default-policy deny-all; the reverse of a permitted pair too
        ("trust", "untrust", pkt("tcp", "10.0.12.5", "10.12.0.2", 443), "deny", None),
        ("loopback", "untrust", pkt("udp", "10.0.0.1", "10.12.0.2", 53), "deny", None),
        ("hostos", "hostos", pkt("tcp", "192.168.56.2", "192.168.56.3", 22), "deny", None),
    ])


def test_junos_srx_1_ids_lines_and_exactness():
    path = corpus_file("junos-srx-1.cfg")
    rs = imported(str(path), SRX1_IFACES)
    assert [r.id for r in rs.rules] == [
        "trust>trust:default-permit", "untrust>loopback:p", "untrust>junos-host:p", "loopback>junos-host:p",
        "untrust>untrust:p", "junos-host>untrust:p", "junos-host>untrust:p2"]
    assert [r.source.line for r in rs.rules] == [48, 52, 56, 60, 64, 68, 72]
    assert all(r.approximation is None for r in rs.rules)
    assert rs.default == "deny" and "set-command form" in rs.notes


def test_firewall_combined_policies_zone_pair_then_global_then_default():
    path = corpus_file("firewall-combined-policies")
    ifaces = ("trust", "untrust")
    check_cases(path, ifaces, [
        ("trust", "untrust", pkt("tcp", "1.2.3.1", "8.8.8.8", 80), "allow", "trust>untrust:P0"),
        ("trust", "untrust", pkt("tcp", "1.2.3.2", "8.8.8.8", 80), "deny", "trust>untrust:P1"),  # 1.2.3.1/30
        ("trust", "untrust", pkt("tcp", "1.2.3.0", "8.8.8.8", 80), "deny", "trust>untrust:P1"),
        ("trust", "untrust", pkt("udp", "1.2.3.5", "8.8.8.8", 53), "deny", "global:P1"),  # 1.2.3.1/29
        ("trust", "untrust", pkt("udp", "1.2.3.8", "8.8.8.8", 53), "allow", None),  # default permit-all
        ("untrust", "trust", pkt("tcp", "1.2.3.1", "1.2.3.4", 22), "deny", "global:P1"),  # global: every pair
        ("trust", "trust", pkt("tcp", "1.2.3.7", "1.2.3.4", 22), "deny", "global:P1"),
        ("untrust", "trust", pkt("tcp", "9.9.9.9", "1.2.3.4", 22), "allow", None),
    ])
    rs = imported(str(path), ifaces)
    assert [(r.id, r.source.line) for r in rs.rules] == [
        ("trust>untrust:P0", 9), ("trust>untrust:P1", 13), ("global:P1", 18)]
    assert rule(rs, "global:P1").in_ifaces is None and rs.default == "allow"


def test_firewall_global_address_book_wildcard_and_sets():
    path = corpus_file("firewall-global-address-book")
    ifaces = ("trust", "untrust")
    check_cases(path, ifaces, [
        ("trust", "untrust", pkt("tcp", "2.2.2.2", "8.8.8.8", 80), "allow", "trust>untrust:PNAME"),  # ADDR1
        # ADDR2: wildcard 1.3.3.4/255.254.255.255 is 1.2.3.4 and 1.3.3.4
        ("trust", "untrust", pkt("tcp", "1.3.3.4", "8.8.8.8", 80), "allow", "trust>untrust:PNAME"),
        ("trust", "untrust", pkt("tcp", "1.2.3.4", "8.8.8.8", 80), "allow", "trust>untrust:PNAME"),
        ("trust", "untrust", pkt("tcp", "1.4.3.4", "8.8.8.8", 80), "deny", None),
        ("trust", "untrust", pkt("tcp", "1.3.3.5", "8.8.8.8", 80), "deny", None),
        ("trust", "untrust", pkt("tcp", "5.5.5.6", "8.8.8.8", 80), "deny", None),  # ADDR3: not in the set
        ("untrust", "trust", pkt("tcp", "2.2.2.2", "8.8.8.8", 80), "deny", None),
    ])
    rs = imported(str(path), ifaces)
    assert [(r.id, r.source.line, r.approximation) for r in rs.rules] == [("trust>untrust:PNAME", 4, None)]


def test_application_set_nested():
    path = corpus_file("application-set-nested")
    ifaces = ("z1", "z2", "z3", "z4")
    cases = []
    for to in ("z2", "z3", "z4"):  # appset1, appset2 (a set of appset1), appset3 (appset2 named as application)
        cases += [
            ("z1", to, pkt("tcp", "10.0.0.1", "10.0.1.1", 80, sport=1), "allow", f"z1>{to}:p1"),
            ("z1", to, pkt("tcp", "10.0.0.1", "10.0.1.1", 80, sport=2), "deny", None),
            ("z1", to, pkt("udp", "10.0.0.1", "10.0.1.1", 80, sport=1), "deny", None),
        ]
    cases.append(("z2", "z1", pkt("tcp", "10.0.0.1", "10.0.1.1", 80, sport=1), "deny", None))
    check_cases(path, ifaces, cases)
    rs = imported(str(path), ifaces)
    assert [(r.id, r.source.line) for r in rs.rules] == [("z1>z2:p1", 10), ("z1>z3:p1", 12), ("z1>z4:p1", 14)]
    # these policies have no source-address/destination-address: Junos would not commit them
    assert all("no match source-address" in r.approximation for r in rs.rules)


@pytest.mark.parametrize("name", ["application-set-nested", "firewall-combined-policies",
                                  "firewall-global-address-book", "junos-srx-1.cfg"])
def test_every_corpus_file_parses_with_ids_and_sources(name):
    path = corpus_file(name)
    rs = load(str(path), ("trust", "untrust"))
    lines = path.read_text().splitlines()
    assert rs.rules
    for r in rs.rules:
        assert r.source.path == str(path)
        text = lines[r.source.line - 1]
        scope, _, policy = r.id.rpartition(":")
        assert f" policy {policy} " in text
        if scope == "global":
            assert " policies global " in text
        else:
            a, b = scope.split(">")
            assert f" from-zone {a} to-zone {b} " in text


@pytest.mark.parametrize("name", ["firewall-combined-policies", "firewall-global-address-book", "junos-srx-1.cfg"])
def test_corpus_files_in_curly_form_give_the_same_rules(tmp_path, name):
    """The corpus set commands rendered as a curly-brace hierarchy (one block per word group)."""
    path = corpus_file(name)
    text = path.read_text()
    tree: dict = {}
    for line in text.splitlines():
        if line.startswith("set security ") or line.startswith("set applications "):
            node = tree
            words = line.split()[1:]
            for w in words[:-1]:
                node = node.setdefault(w, {})
            node.setdefault(words[-1], None)

    # group the words the way Junos prints them: "from-zone A to-zone B {", "policy P {", leaves on one line
    def render(node: dict, depth: int = 0) -> list[str]:
        out = []
        pad = "    " * depth
        for word, sub in node.items():
            words = [word]
            while sub is not None and len(sub) == 1 and word in ("from-zone", "to-zone", "policy", "address",
                                                                 "address-set", "security-zone", "application",
                                                                 "application-set", "address-book"):
                (word, sub), = sub.items()
                words.append(word)
                if words[-2] in ("to-zone", "policy", "address", "address-set", "security-zone", "application",
                                 "application-set", "address-book") and len(words) > 1:
                    break
            if sub is None:
                out.append(f"{pad}{' '.join(words)};")
            elif all(v is None for v in sub.values()) and words[-1] in ("source-address", "destination-address",
                                                                        "application", "interfaces"):
                out.append(f"{pad}{' '.join(words)} [ {' '.join(sub)} ];")
            else:
                out.append(f"{pad}{' '.join(words)} {{")
                out += render(sub, depth + 1)
                out.append(f"{pad}}}")
        return out

    curly = "\n".join(render(tree)) + "\n"
    a = load(str(path), ("trust", "untrust"))
    b = load_text(tmp_path, curly, ("trust", "untrust"))
    assert "curly-brace form" in b.notes
    # the nesting above groups zone pairs by from-zone: the order between pairs changes, never within one
    assert sorted((r.id, r.action, str(r.match), r.in_ifaces, r.out_ifaces) for r in a.rules) == \
        sorted((r.id, r.action, str(r.match), r.in_ifaces, r.out_ifaces) for r in b.rules)
    for pair in {r.id.rpartition(":")[0] for r in a.rules}:
        assert [r.id for r in a.rules if r.id.startswith(pair + ":")] == \
            [r.id for r in b.rules if r.id.startswith(pair + ":")]
    assert a.default == b.default


# --- a configuration in both forms -------------------------------------------------------------

CITY = """\
## Last commit: 2024-04-01 09:00:00 JST by admin
version 21.4R3;
system {
    host-name city-srx;
}
security {
    address-book {
        global {
            address vb-server 10.3.0.10/32;
            address lg-net {
                description "LGWAN-connected segment";
                10.2.0.0/16;
            }
            address lg-v6 fd00:2::/48;
            address cloud range-address 203.0.113.16 to 203.0.113.23;
            address cloud2 {
                range-address 203.0.113.24 {
                    to {
                        203.0.113.31;
                    }
                }
            }
            address updates {
                dns-name update.example.com {
                    ipv4-only;
                }
            }
            address-set web-servers {
                address vb-server;
                address-set more-servers;
            }
            address-set more-servers {
                address cloud;
                address cloud2;
            }
        }
    }
    zones {
        security-zone trust {
            address-book {
                address mn-gw 10.1.0.5/32;
            }
            interfaces {
                ge-0/0/1.0;
            }
        }
        security-zone untrust {
            interfaces {
                ge-0/0/2.0;
            }
        }
        security-zone dmz;
    }
    policies {
        from-zone trust to-zone untrust {
            policy screen-transfer {
                description "virtual browser";
                match {
                    source-address [ lg-net lg-v6 ];
                    destination-address vb-server;
                    application [ junos-https rdp-tcp ];
                }
                then {
                    permit {
                        application-services {
                            idp;
                        }
                    }
                    log {
                        session-close;
                    }
                }
            }
            inactive: policy temporary-any {
                match {
                    source-address any;
                    destination-address any;
                    application any;
                }
                then {
                    permit;
                }
            }
            policy no-web {
                match {
                    source-address any;
                    destination-address web-servers;
                    application web;
                }
                then {
                    reject;
                }
            }
            policy mn-out {
                match {
                    source-address mn-gw;
                    destination-address any-ipv4;
                    application junos-ssh;
                }
                then {
                    permit;
                }
            }
            policy not-lg {
                match {
                    source-address lg-net;
                    source-address-excluded;
                    destination-address [ cloud cloud2 ];
                    application junos-dns-udp;
                }
                then {
                    permit;
                }
            }
        }
        from-zone trust to-zone trust {
            policy ping-inside {
                match {
                    source-address any;
                    destination-address any;
                    application junos-icmp-ping;
                }
                then {
                    permit;
                }
            }
        }
        global {
            policy g-deny-dmz {
                match {
                    source-address any;
                    destination-address any;
                    application any;
                    from-zone [ trust untrust ];
                    to-zone dmz;
                }
                then {
                    deny;
                }
            }
            policy g-ntp {
                match {
                    source-address any;
                    destination-address any;
                    application junos-ntp;
                }
                then {
                    permit;
                }
            }
        }
        default-policy {
            deny-all;
        }
    }
}
applications {
    application rdp-tcp {
        protocol tcp;
        destination-port 3389;
    }
    application web-8080 {
        term t1 protocol tcp destination-port 8080-8081;
        term t2 protocol udp source-port 1024-65535 destination-port 8443;
    }
    application-set web {
        application junos-http;
        application-set web-alt;
    }
    application-set web-alt {
        application web-8080;
    }
}
"""

CITY_CASES = [
    # the screen-transfer policy: LG (v4 and v6) to the virtual-browser server, https and rdp
    ("trust", "untrust", pkt("tcp", "10.2.5.5", "10.3.0.10", 3389), "allow", "trust>untrust:screen-transfer"),
    ("trust", "untrust", pkt("tcp", "10.2.5.5", "10.3.0.10", 443), "allow", "trust>untrust:screen-transfer"),
    ("trust", "untrust", pkt("tcp", "fd00:2::7", "2001:db8::10", 443), "deny", None),  # not the server
    ("trust", "untrust", pkt("udp", "10.2.5.5", "10.3.0.10", 3389), "deny", None),
    # the inactive any-any policy does not match; no-web rejects web to the nested set
    ("trust", "untrust", pkt("tcp", "10.2.5.5", "10.3.0.10", 80), "deny", "trust>untrust:no-web"),
    ("trust", "untrust", pkt("tcp", "10.9.5.5", "203.0.113.20", 8081), "deny", "trust>untrust:no-web"),
    ("trust", "untrust", pkt("udp", "10.9.5.5", "203.0.113.20", 8443, sport=2000), "deny", "trust>untrust:no-web"),
    ("trust", "untrust", pkt("udp", "10.9.5.5", "203.0.113.20", 8443, sport=1000), "deny", None),
    ("trust", "untrust", pkt("tcp", "10.9.5.5", "203.0.113.32", 80), "deny", None),
    # zone address book, any-ipv4
    ("trust", "untrust", pkt("tcp", "10.1.0.5", "198.51.100.1", 22), "allow", "trust>untrust:mn-out"),
    ("trust", "untrust", pkt("tcp", "10.1.0.5", "2001:db8::1", 22), "deny", None),
    ("trust", "untrust", pkt("tcp", "10.1.0.6", "198.51.100.1", 22), "deny", None),
    # source-address-excluded: anyone but LG
    ("trust", "untrust", pkt("udp", "10.1.0.9", "203.0.113.17", 53), "allow", "trust>untrust:not-lg"),
    ("trust", "untrust", pkt("udp", "10.1.0.9", "203.0.113.31", 53), "allow", "trust>untrust:not-lg"),
    ("trust", "untrust", pkt("udp", "10.2.0.9", "203.0.113.17", 53), "deny", None),
    # intra-zone traffic needs a policy of its own
    ("trust", "trust", pkt("icmp", "10.1.0.9", "10.2.0.9", icmp=(8, 0)), "allow", "trust>trust:ping-inside"),
    ("trust", "trust", pkt("icmp", "10.1.0.9", "10.2.0.9", icmp=(0, 0)), "deny", None),
    ("untrust", "untrust", pkt("icmp", "8.8.8.8", "8.8.4.4", icmp=(8, 0)), "deny", None),
    # global policies after the zone pairs, with from-zone/to-zone conditions
    ("trust", "dmz", pkt("udp", "10.2.0.9", "10.5.0.1", 123), "deny", "global:g-deny-dmz"),
    ("dmz", "trust", pkt("udp", "10.5.0.1", "10.2.0.9", 123), "allow", "global:g-ntp"),
    ("trust", "untrust", pkt("udp", "10.2.0.9", "10.5.0.1", 123), "allow", "global:g-ntp"),
    ("dmz", "untrust", pkt("udp", "10.5.0.1", "8.8.8.8", 124), "deny", None),
]


def test_city_configuration_in_both_forms(tmp_path):
    ifaces = ("trust", "untrust", "dmz")
    for rs in both_forms(tmp_path, CITY, ifaces):
        for i, o, p, want, rid in CITY_CASES:
            assert decide(rs, ifaces, p, i, o) == (want, rid), (i, o, p.describe())
        assert [r.id for r in rs.rules] == [
            "trust>untrust:screen-transfer", "trust>untrust:no-web", "trust>untrust:mn-out",
            "trust>untrust:not-lg", "trust>trust:ping-inside", "global:g-deny-dmz", "global:g-ntp"]
        st_rule = rule(rs, "trust>untrust:screen-transfer")
        assert st_rule.name == "virtual browser" and st_rule.approximation is None
        assert rule(rs, "global:g-deny-dmz").in_ifaces == frozenset({"trust", "untrust"})
        assert rule(rs, "global:g-deny-dmz").out_ifaces == frozenset({"dmz"})
    curly, _ = both_forms(tmp_path, CITY, ifaces)
    lines = CITY.splitlines()
    for r in curly.rules:
        assert lines[r.source.line - 1].strip() == f"policy {r.id.rpartition(':')[2]} {{"


def test_curly_to_set_renders_like_display_set():
    text = curly_to_set(CITY)
    assert "set security address-book global address cloud range-address 203.0.113.16 to 203.0.113.23" in text
    assert "set security address-book global address cloud2 range-address 203.0.113.24 to 203.0.113.31" in text
    assert "deactivate security policies from-zone trust to-zone untrust policy temporary-any" in text
    assert "set applications application web-8080 term t1 protocol tcp destination-port 8080-8081" in text


# --- constructs, one at a time -----------------------------------------------------------------


def policy(name: str, src="any", dst="any", app="any", action="permit", pair="from-zone trust to-zone untrust",
           extra: str = "") -> str:
    """A policy as set commands."""
    base = f"set security policies {pair} policy {name}"
    out = [f"{base} match source-address {s}" for s in src.split()]
    out += [f"{base} match destination-address {d}" for d in dst.split()]
    out += [f"{base} match application {a}" for a in app.split()]
    out += [f"{base} {line}" for line in extra.splitlines() if line]
    out.append(f"{base} then {action}")
    return "\n".join(out) + "\n"


IF3 = ("trust", "untrust", "dmz")


def test_first_match_in_file_order_and_insert(tmp_path):
    text = policy("a", app="junos-http", action="deny") + policy("b", app="junos-http")
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "trust", "untrust") == ("deny", "trust>untrust:a")
    text += "insert security policies from-zone trust to-zone untrust policy b before policy a\n"
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "trust", "untrust") == ("allow", "trust>untrust:b")
    assert [r.source.line for r in rs.rules] == [5, 1]  # where each policy is declared


def test_default_policy(tmp_path):
    rs = load_text(tmp_path, policy("a", app="junos-ssh"))
    assert rs.default == "deny"
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "trust", "untrust") == ("deny", None)
    rs = load_text(tmp_path, policy("a", app="junos-ssh", action="deny")
                   + "set security policies default-policy deny-all\nset security policies default-policy permit-all\n")
    assert rs.default == "allow"  # the last one set wins, as in the CLI
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "dmz", "dmz") == ("allow", None)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "trust", "untrust") == ("deny", "trust>untrust:a")


def test_then_actions_replace_each_other_and_permit_options(tmp_path):
    base = "set security policies from-zone trust to-zone untrust policy p"
    text = policy("p", app="junos-http") + f"{base} then deny\n"
    assert rule(load_text(tmp_path, text), "trust>untrust:p").action == "deny"
    text = (policy("p", app="junos-http") + f"{base} then permit application-services ssl-proxy profile-name x\n"
            + f"{base} then permit tunnel ipsec-vpn vpn1\n{base} then log session-init\n{base} then count\n")
    r = rule(load_text(tmp_path, text), "trust>untrust:p")
    assert r.action == "allow" and r.approximation is None
    r = rule(load_text(tmp_path, policy("p", action="reject")), "trust>untrust:p")
    assert r.action == "deny"
    r = rule(load_text(tmp_path, policy("p") + f"{base} then permit firewall-authentication pass-through\n"),
             "trust>untrust:p")
    assert r.action == "allow" and "firewall-authentication" in r.approximation


def test_policy_without_action_or_match_is_taken_as_permit(tmp_path):
    rs = load_text(tmp_path, "set security policies from-zone trust to-zone untrust policy p match application "
                             "junos-ssh\n")
    r = rule(rs, "trust>untrust:p")
    assert r.action == "allow" and "no action" in r.approximation and "no match source-address" in r.approximation
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "trust", "untrust")[0] == "allow"


def test_inactive_and_deactivate_in_both_forms(tmp_path):
    curly = """security {
    policies {
        from-zone trust to-zone untrust {
            policy p1 {
                match {
                    inactive: source-address net1;
                    source-address net2;
                    destination-address any;
                    application any;
                }
                then {
                    permit;
                }
            }
        }
        inactive: from-zone untrust to-zone trust {
            policy p2 {
                match {
                    source-address any;
                    destination-address any;
                    application any;
                }
                then {
                    permit;
                }
            }
        }
    }
    address-book {
        global {
            address net1 10.1.0.0/16;
            address net2 10.2.0.0/16;
        }
    }
}
"""
    for rs in both_forms(tmp_path, curly):
        assert [r.id for r in rs.rules] == ["trust>untrust:p1"]
        assert decide(rs, IF3, pkt("tcp", "10.2.0.1", "2.2.2.2", 22), "trust", "untrust")[0] == "allow"
        assert decide(rs, IF3, pkt("tcp", "10.1.0.1", "2.2.2.2", 22), "trust", "untrust")[0] == "deny"
        assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "10.2.0.1", 22), "untrust", "trust")[0] == "deny"
    # activate undoes deactivate
    text = curly_to_set(curly) + "activate security policies from-zone untrust to-zone trust\n"
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "10.2.0.1", 22), "untrust", "trust") == ("allow", "untrust>trust:p2")


def test_deactivated_address_is_not_defined(tmp_path):
    text = (policy("p", src="net1") + "set security address-book global address net1 10.1.0.0/16\n"
            + "deactivate security address-book global address net1\n")
    r = rule(load_text(tmp_path, text), "trust>untrust:p")
    assert "not defined" in r.approximation


def test_global_policies_after_zone_pairs_and_their_zones(tmp_path):
    text = (policy("z", app="junos-http", action="permit")
            + policy("g1", app="junos-http", action="deny", pair="global")
            + "set security policies global policy g2 match source-address any destination-address any "
              "application junos-ssh from-zone untrust to-zone dmz\n"
            + "set security policies global policy g2 then permit\n")
    rs = load_text(tmp_path, text)
    assert [r.id for r in rs.rules] == ["trust>untrust:z", "global:g1", "global:g2"]
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "trust", "untrust") == ("allow", "trust>untrust:z")
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "untrust", "trust") == ("deny", "global:g1")
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "untrust", "dmz") == ("allow", "global:g2")
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "trust", "dmz") == ("deny", None)
    g2 = rule(rs, "global:g2")
    assert g2.in_ifaces == frozenset({"untrust"}) and g2.out_ifaces == frozenset({"dmz"})


def test_zone_address_books_and_attached_books(tmp_path):
    text = (policy("p", src="inside", dst="outside")
            + "set security zones security-zone trust address-book address inside 10.1.0.0/16\n"
            + "set security address-book book2 address outside 192.0.2.0/24\n"
            + "set security address-book book2 attach zone untrust\n"
            + "set security address-book global address inside 10.99.0.0/16\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "10.1.2.3", "192.0.2.9", 1), "trust", "untrust")[0] == "allow"
    assert decide(rs, IF3, pkt("tcp", "10.99.2.3", "192.0.2.9", 1), "trust", "untrust")[0] == "deny"  # zone first
    assert rule(rs, "trust>untrust:p").approximation is None
    # a name no book of the zone holds: taken as any for allows, marked
    rs = load_text(tmp_path, policy("p", src="nowhere"))
    r = rule(rs, "trust>untrust:p")
    assert "'nowhere' is not defined" in r.approximation
    assert decide(rs, IF3, pkt("tcp", "10.1.2.3", "192.0.2.9", 1), "trust", "untrust")[0] == "allow"
    rs = load_text(tmp_path, policy("p", src="nowhere", action="deny"))
    assert decide(rs, IF3, pkt("tcp", "10.1.2.3", "192.0.2.9", 1), "trust", "untrust") == ("deny", None)


def test_address_forms(tmp_path):
    book = "set security address-book global "
    text = (policy("p", dst="s")
            + book + "address a1 10.1.1.1/24\n"  # host bits: the /24
            + book + "address a2 2001:db8::/32\n"
            + book + "address a3 range-address 10.5.0.250 to 10.5.1.5\n"
            + book + "address a4 wildcard-address 10.0.0.1/255.0.255.255\n"
            + book + "address a5 192.0.2.7\n"
            + book + "address-set s address a1\n" + book + "address-set s address a2\n"
            + book + "address-set s address a3\n" + book + "address-set s address-set s2\n"
            + book + "address-set s2 address a4\n" + book + "address-set s2 address a5\n")
    rs = load_text(tmp_path, text)
    allowed = ["10.1.1.200", "2001:db8:ffff::1", "10.5.0.250", "10.5.1.5", "10.77.0.1", "10.0.0.1", "192.0.2.7"]
    denied = ["10.1.2.1", "2001:db9::1", "10.5.0.249", "10.5.1.6", "10.77.0.2", "11.0.0.1", "192.0.2.8"]
    for dst in allowed:
        src = "fd00::9" if ":" in dst else "10.9.9.9"
        assert decide(rs, IF3, pkt("tcp", src, dst, 1), "trust", "untrust")[0] == "allow", dst
    for dst in denied:
        src = "fd00::9" if ":" in dst else "10.9.9.9"
        assert decide(rs, IF3, pkt("tcp", src, dst, 1), "trust", "untrust")[0] == "deny", dst
    assert rule(rs, "trust>untrust:p").approximation is None


def test_any_ipv4_any_ipv6_and_ipv6_policies(tmp_path):
    text = policy("v4", dst="any-ipv4", app="junos-http") + policy("v6", dst="any-ipv6", app="junos-https")
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "10.0.0.1", "8.8.8.8", 80), "trust", "untrust")[0] == "allow"
    assert decide(rs, IF3, pkt("tcp", "fd00::1", "2001:db8::1", 80), "trust", "untrust")[0] == "deny"
    assert decide(rs, IF3, pkt("tcp", "fd00::1", "2001:db8::1", 443), "trust", "untrust")[0] == "allow"
    assert decide(rs, IF3, pkt("tcp", "10.0.0.1", "8.8.8.8", 443), "trust", "untrust")[0] == "deny"


def test_dns_name_is_approximated_both_ways(tmp_path):
    book = "set security address-book global address upd dns-name update.example.com"
    rs = load_text(tmp_path, policy("p", dst="upd", app="junos-https") + book + "\n")
    r = rule(rs, "trust>untrust:p")
    assert "resolved at run time" in r.approximation
    assert decide(rs, IF3, pkt("tcp", "fd00::1", "2001:db8::5", 443), "trust", "untrust")[0] == "allow"
    rs = load_text(tmp_path, policy("p", dst="upd", app="junos-https") + book + " ipv4-only\n")
    assert decide(rs, IF3, pkt("tcp", "fd00::1", "2001:db8::5", 443), "trust", "untrust")[0] == "deny"
    assert decide(rs, IF3, pkt("tcp", "10.0.0.1", "93.184.216.34", 443), "trust", "untrust")[0] == "allow"
    # a deny toward a DNS name may not match: it does not hide the allow below it
    rs = load_text(tmp_path, policy("d", dst="upd", action="deny") + policy("p", app="junos-https") + book + "\n")
    assert decide(rs, IF3, pkt("tcp", "10.0.0.1", "93.184.216.34", 443), "trust", "untrust") == \
        ("allow", "trust>untrust:p")


def test_excluded_addresses_negate(tmp_path):
    extra = "match destination-address-excluded"
    text = policy("p", dst="net", extra=extra) + "set security address-book global address net 10.0.0.0/8\n"
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "10.2.3.4", 1), "trust", "untrust")[0] == "deny"
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "11.2.3.4", 1), "trust", "untrust")[0] == "allow"
    assert decide(rs, IF3, pkt("tcp", "fd00::1", "2001:db8::1", 1), "trust", "untrust")[0] == "allow"
    # excluded DNS name: a permit may match everything, a deny matches nothing for sure
    text = (policy("p", dst="upd", extra=extra, action="deny") + policy("q", app="junos-ssh")
            + "set security address-book global address upd dns-name x.example\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "10.2.3.4", 22), "trust", "untrust") == ("allow", "trust>untrust:q")


def test_custom_applications_terms_ports_and_icmp(tmp_path):
    app = "set applications application "
    text = (policy("p", app="a-ports a-terms a-icmp a-named a-proto")
            + app + "a-ports protocol udp\n" + app + "a-ports destination-port 5000-5010\n"
            + app + "a-ports source-port 53\n"
            + app + "a-terms term t1 protocol tcp destination-port 8080\n"
            + app + "a-terms term t2 protocol tcp\n" + app + "a-terms term t2 destination-port https\n"
            + app + "a-icmp protocol icmp icmp-type echo-request icmp-code 0\n"
            + app + "a-named protocol tcp destination-port ssh\n"
            + app + "a-proto protocol 50\n")
    rs = load_text(tmp_path, text)
    cases = [
        (pkt("udp", "1.1.1.1", "2.2.2.2", 5005, sport=53), "allow"),
        (pkt("udp", "1.1.1.1", "2.2.2.2", 5005, sport=54), "deny"),
        (pkt("udp", "1.1.1.1", "2.2.2.2", 5011, sport=53), "deny"),
        (pkt("tcp", "1.1.1.1", "2.2.2.2", 8080), "allow"),
        (pkt("tcp", "1.1.1.1", "2.2.2.2", 443), "allow"),
        (pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "allow"),
        (pkt("tcp", "1.1.1.1", "2.2.2.2", 8081), "deny"),
        (pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0)), "allow"),
        (pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 1)), "deny"),
        (pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(0, 0)), "deny"),
        (pkt("esp", "1.1.1.1", "2.2.2.2"), "allow"),
        (pkt("gre", "1.1.1.1", "2.2.2.2"), "deny"),
    ]
    for p, want in cases:
        assert decide(rs, IF3, p, "trust", "untrust")[0] == want, p.describe()
    assert rule(rs, "trust>untrust:p").approximation is None


@pytest.mark.parametrize(("app", "allowed", "denied"), [
    ("junos-http", [pkt("tcp", "1.1.1.1", "2.2.2.2", 80)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 8080),
                                                          pkt("udp", "1.1.1.1", "2.2.2.2", 80)]),
    ("junos-https", [pkt("tcp", "1.1.1.1", "2.2.2.2", 443)], [pkt("udp", "1.1.1.1", "2.2.2.2", 443)]),
    ("junos-ssh", [pkt("tcp", "1.1.1.1", "2.2.2.2", 22)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 23)]),
    ("junos-telnet", [pkt("tcp", "1.1.1.1", "2.2.2.2", 23)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 22)]),
    ("junos-dns-udp", [pkt("udp", "1.1.1.1", "2.2.2.2", 53)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 53)]),
    ("junos-dns-tcp", [pkt("tcp", "1.1.1.1", "2.2.2.2", 53)], [pkt("udp", "1.1.1.1", "2.2.2.2", 53)]),
    ("junos-smtp", [pkt("tcp", "1.1.1.1", "2.2.2.2", 25)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 587)]),
    ("junos-ftp", [pkt("tcp", "1.1.1.1", "2.2.2.2", 21)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 20)]),
    ("junos-ntp", [pkt("udp", "1.1.1.1", "2.2.2.2", 123)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 123)]),
    ("junos-icmp-all", [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(3, 3))], [pkt("icmpv6", "fd00::1", "fd00::2")]),
    ("junos-ping", [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0))], [pkt("tcp", "1.1.1.1", "2.2.2.2", 7)]),
    ("junos-icmp-ping", [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0))],
     [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(0, 0))]),
    ("junos-icmp6-echo-request", [pkt("icmpv6", "fd00::1", "fd00::2", icmp=(128, 0))],
     [pkt("icmpv6", "fd00::1", "fd00::2", icmp=(129, 0))]),
    ("junos-smb", [pkt("tcp", "1.1.1.1", "2.2.2.2", 139), pkt("tcp", "1.1.1.1", "2.2.2.2", 445)],
     [pkt("udp", "1.1.1.1", "2.2.2.2", 445)]),
    ("junos-cifs", [pkt("tcp", "1.1.1.1", "2.2.2.2", 445)], [pkt("tcp", "1.1.1.1", "2.2.2.2", 137)]),
    ("junos-sip", [pkt("udp", "1.1.1.1", "2.2.2.2", 5060), pkt("tcp", "1.1.1.1", "2.2.2.2", 5060)],
     [pkt("udp", "1.1.1.1", "2.2.2.2", 5061)]),
    ("junos-tcp-any", [pkt("tcp", "1.1.1.1", "2.2.2.2", 0), pkt("tcp", "1.1.1.1", "2.2.2.2", 65535)],
     [pkt("udp", "1.1.1.1", "2.2.2.2", 1)]),
    ("junos-gre", [pkt("gre", "1.1.1.1", "2.2.2.2")], [pkt("esp", "1.1.1.1", "2.2.2.2")]),
    ("junos-rdp", [pkt("tcp", "1.1.1.1", "2.2.2.2", 3389)], [pkt("udp", "1.1.1.1", "2.2.2.2", 3389)]),
    ("junos-vnc", [pkt("tcp", "1.1.1.1", "2.2.2.2", 5800), pkt("tcp", "1.1.1.1", "2.2.2.2", 5900)],
     [pkt("tcp", "1.1.1.1", "2.2.2.2", 5901)]),
    ("junos-smtps", [pkt("tcp", "1.1.1.1", "2.2.2.2", 465), pkt("tcp", "1.1.1.1", "2.2.2.2", 587)],
     [pkt("tcp", "1.1.1.1", "2.2.2.2", 25)]),
    ("junos-pingv6", [pkt("icmpv6", "fd00::1", "fd00::2", icmp=(128, 0)), pkt("icmpv6", "fd00::1", "fd00::2",
                                                                            icmp=(1, 4))],
     [pkt("icmp", "1.1.1.1", "2.2.2.2", icmp=(8, 0))]),
    ("junos-talk", [pkt("tcp", "1.1.1.1", "2.2.2.2", 517), pkt("udp", "1.1.1.1", "2.2.2.2", 517)],
     [pkt("udp", "1.1.1.1", "2.2.2.2", 518)]),
    ("junos-routing-inbound", [pkt("tcp", "1.1.1.1", "2.2.2.2", 179), pkt("udp", "1.1.1.1", "2.2.2.2", 646)],
     [pkt("tcp", "1.1.1.1", "2.2.2.2", 520)]),
])
def test_predefined_applications(tmp_path, app, allowed, denied):
    rs = load_text(tmp_path, policy("p", app=app))
    assert rule(rs, "trust>untrust:p").approximation is None
    for p in allowed:
        assert decide(rs, IF3, p, "trust", "untrust")[0] == "allow", (app, p.describe())
    for p in denied:
        assert decide(rs, IF3, p, "trust", "untrust")[0] == "deny", (app, p.describe())


def test_rpc_and_unknown_predefined_applications_are_approximated(tmp_path):
    for app, probe in (("junos-ms-rpc-tcp", pkt("tcp", "1.1.1.1", "2.2.2.2", 49152)),
                       ("junos-ms-rpc", pkt("udp", "1.1.1.1", "2.2.2.2", 49152)),
                       ("junos-ms-rpc-msexchange", pkt("tcp", "1.1.1.1", "2.2.2.2", 6001)),
                       ("junos-sun-rpc-nfs", pkt("udp", "1.1.1.1", "2.2.2.2", 2049)),
                       ("junos-nfs", pkt("udp", "1.1.1.1", "2.2.2.2", 2049)),
                       ("junos-not-a-real-app", pkt("tcp", "1.1.1.1", "2.2.2.2", 1))):
        rs = load_text(tmp_path, policy("p", app=app))
        r = rule(rs, "trust>untrust:p")
        assert r.approximation, app
        assert decide(rs, IF3, probe, "trust", "untrust")[0] == "allow", app
        # as a deny, only what certainly matches: the port-135 control connection for ms-rpc-tcp
        rs = load_text(tmp_path, policy("p", app=app, action="deny"))
        assert decide(rs, IF3, probe, "trust", "untrust") == ("deny", None), app
    rs = load_text(tmp_path, policy("p", app="junos-ms-rpc-tcp", action="deny"))
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 135), "trust", "untrust") == ("deny", "trust>untrust:p")


def test_application_sets_nest_deeply_without_recursion(tmp_path):
    lines = [policy("p", app="set0")]
    depth = 3000
    for k in range(depth):
        lines.append(f"set applications application-set set{k} application-set set{k + 1}\n")
    lines.append(f"set applications application-set set{depth} application junos-ssh\n")
    rs = load_text(tmp_path, "".join(lines))
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "trust", "untrust")[0] == "allow"
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 23), "trust", "untrust")[0] == "deny"
    lines = [policy("p", src="s0")] + [f"set security address-book global address-set s{k} address-set s{k + 1}\n"
                                      for k in range(depth)]
    lines.append(f"set security address-book global address-set s{depth} address a\n"
                 "set security address-book global address a 10.0.0.0/8\n")
    rs = load_text(tmp_path, "".join(lines))
    assert decide(rs, IF3, pkt("tcp", "10.1.1.1", "2.2.2.2", 22), "trust", "untrust")[0] == "allow"


def test_run_time_match_conditions_are_approximated(tmp_path):
    for extra in ("match dynamic-application junos:FACEBOOK-ACCESS", "match url-category Enhanced_Gambling",
                  "match source-identity role-a", "scheduler-name office-hours"):
        rs = load_text(tmp_path, policy("p", app="junos-https", extra=extra))
        r = rule(rs, "trust>untrust:p")
        assert r.approximation and r.action == "allow"
        assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 443), "trust", "untrust")[0] == "allow"
        rs = load_text(tmp_path, policy("p", app="junos-https", extra=extra, action="deny")
                       + policy("q", app="junos-https"))
        assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 443), "trust", "untrust") == \
            ("allow", "trust>untrust:q"), extra
    for extra in ("match dynamic-application any", "match dynamic-application none"):
        assert rule(load_text(tmp_path, policy("p", extra=extra)), "trust>untrust:p").approximation is None


def test_unknown_policy_statements_widen_allows_and_narrow_denies(tmp_path):
    base = "set security policies from-zone trust to-zone untrust policy p"
    text = policy("p", app="junos-ssh") + f"{base} match some-new-condition x application junos-http\n"
    rs = load_text(tmp_path, text)
    assert "unknown statement 'some-new-condition x" in rule(rs, "trust>untrust:p").approximation
    assert decide(rs, IF3, pkt("udp", "1.1.1.1", "2.2.2.2", 9), "trust", "untrust")[0] == "allow"
    text = policy("p", app="junos-ssh", action="deny") + f"{base} then some-new-action\n"
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "trust", "untrust") == ("deny", None)


def test_several_statements_on_one_set_line(tmp_path):
    text = ("set security policies from-zone trust to-zone untrust policy p match source-address any "
            "destination-address net application junos-http\n"
            "set security policies from-zone trust to-zone untrust policy p then permit\n"
            "set security address-book global address net 192.0.2.0/24\n"
            "set security policies from-zone trust to-zone untrust policy q match source-address [ a b ]\n"
            "set security policies from-zone trust to-zone untrust policy q match destination-address any\n"
            "set security policies from-zone trust to-zone untrust policy q match application any\n"
            "set security policies from-zone trust to-zone untrust policy q then deny\n"
            "set security address-book global address a 10.1.0.0/16\n"
            "set security address-book global address b 10.2.0.0/16\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "10.1.0.1", "192.0.2.9", 80), "trust", "untrust") == ("allow", "trust>untrust:p")
    assert decide(rs, IF3, pkt("tcp", "10.2.0.1", "192.0.3.9", 80), "trust", "untrust") == ("deny", "trust>untrust:q")
    assert decide(rs, IF3, pkt("tcp", "10.3.0.1", "192.0.3.9", 80), "trust", "untrust") == ("deny", None)
    assert all(r.approximation is None for r in rs.rules)


def test_edit_up_top_delete_rename_copy(tmp_path):
    text = """edit security policies from-zone trust to-zone untrust
set policy a match source-address any destination-address any application junos-http
set policy a then permit
set policy b match source-address any destination-address any application junos-ssh
set policy b then permit
up
set default-policy permit-all
top
delete security policies default-policy
copy security policies from-zone trust to-zone untrust policy a to policy c
delete security policies from-zone trust to-zone untrust policy c match application junos-http
set security policies from-zone trust to-zone untrust policy c match application junos-ftp
rename security policies from-zone trust to-zone untrust policy b to policy b2
delete security policies from-zone trust to-zone untrust policy a then
set security policies from-zone trust to-zone untrust policy a then deny
exit
"""
    rs = load_text(tmp_path, text)
    assert [r.id for r in rs.rules] == ["trust>untrust:a", "trust>untrust:b2", "trust>untrust:c"]
    assert rs.default == "deny"
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "trust", "untrust") == ("deny", "trust>untrust:a")
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "trust", "untrust") == ("allow", "trust>untrust:b2")
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 21), "trust", "untrust") == ("allow", "trust>untrust:c")


def test_groups_are_inherited_after_local_statements(tmp_path):
    text = """groups {
    common {
        security {
            policies {
                from-zone trust to-zone untrust {
                    policy from-group {
                        match {
                            source-address any;
                            destination-address any;
                            application junos-ssh;
                        }
                        then {
                            permit;
                        }
                    }
                    policy local {
                        then {
                            permit;
                        }
                    }
                }
            }
        }
    }
    logging {
        security {
            policies {
                from-zone <*> to-zone <*> {
                    policy <*> {
                        then {
                            log {
                                session-init;
                            }
                        }
                    }
                }
            }
        }
    }
    unused {
        security {
            policies {
                default-policy {
                    permit-all;
                }
            }
        }
    }
}
apply-groups [ common logging ];
security {
    policies {
        from-zone trust to-zone untrust {
            policy local {
                match {
                    source-address any;
                    destination-address any;
                    application junos-ssh;
                }
                then {
                    deny;
                }
            }
        }
    }
}
"""
    for rs in both_forms(tmp_path, text):
        assert [r.id for r in rs.rules] == ["trust>untrust:local", "trust>untrust:from-group"]
        assert rule(rs, "trust>untrust:local").action == "deny"  # the local action wins over the group's
        assert rs.default == "deny"  # "unused" is not applied
        assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "trust", "untrust") == \
            ("deny", "trust>untrust:local")
    assert rule(load_text(tmp_path, text), "trust>untrust:from-group").source.line == 6


def test_group_applied_below_the_top_and_except(tmp_path):
    text = ("set groups g security policies from-zone trust to-zone untrust policy gp match source-address any "
            "destination-address any application any\n"
            "set groups g security policies from-zone trust to-zone untrust policy gp then permit\n"
            "set groups g security policies from-zone untrust to-zone trust policy gq match source-address any "
            "destination-address any application any\n"
            "set groups g security policies from-zone untrust to-zone trust policy gq then permit\n"
            "set security policies apply-groups g\n"
            "set security policies from-zone trust to-zone untrust policy x match application junos-ssh\n"
            "set security policies from-zone untrust to-zone trust apply-groups-except g\n"
            "set security policies from-zone untrust to-zone trust policy y match application junos-ssh\n")
    rs = load_text(tmp_path, text)
    assert [r.id for r in rs.rules] == ["trust>untrust:x", "trust>untrust:gp", "untrust>trust:y"]
    rs = load_text(tmp_path, text + "set groups g apply-groups h\nset apply-groups nosuch\n")
    assert any("applies other groups" in n for n in rs.notes) and any("no such group" in n for n in rs.notes)


def test_junos_defaults_in_the_file_replace_the_table(tmp_path):
    text = (policy("p", app="junos-http")
            + "set groups junos-defaults applications application junos-http protocol tcp\n"
            + "set groups junos-defaults applications application junos-http destination-port 8000\n")
    rs = load_text(tmp_path, text)
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 8000), "trust", "untrust")[0] == "allow"
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 80), "trust", "untrust")[0] == "deny"


def test_destination_and_static_nat_are_approximated_allows_on_top(tmp_path):
    text = (policy("p", app="junos-https", action="deny", pair="from-zone untrust to-zone trust")
            + "set security nat destination pool web address 10.2.0.80/32\n"
            + "set security nat destination rule-set rs1 from zone untrust\n"
            + "set security nat destination rule-set rs1 rule r1 match destination-address 203.0.113.5/32\n"
            + "set security nat destination rule-set rs1 rule r1 match destination-port 443\n"
            + "set security nat destination rule-set rs1 rule r1 then destination-nat pool web\n"
            + "set security nat destination rule-set rs1 rule r2 match destination-address 203.0.113.6/32\n"
            + "set security nat destination rule-set rs1 rule r2 then destination-nat off\n"
            + "set security nat static rule-set st from interface ge-0/0/0.0\n"
            + "set security nat static rule-set st rule s1 match destination-address-name pub\n"
            + "set security nat static rule-set st rule s1 then static-nat prefix 10.2.0.9/32\n"
            + "set security nat source rule-set src from zone trust\n"
            + "set security address-book global address pub 203.0.113.9/32\n")
    rs = load_text(tmp_path, text)
    assert [r.id for r in rs.rules] == ["nat:destination:rs1:r1", "nat:static:st:s1", "untrust>trust:p"]
    assert decide(rs, IF3, pkt("tcp", "8.8.8.8", "203.0.113.5", 443), "untrust", "trust") == \
        ("allow", "nat:destination:rs1:r1")
    assert decide(rs, IF3, pkt("tcp", "8.8.8.8", "203.0.113.5", 443), "trust", "dmz") == ("deny", None)
    assert decide(rs, IF3, pkt("tcp", "8.8.8.8", "203.0.113.6", 443), "untrust", "trust") == \
        ("deny", "untrust>trust:p")
    assert decide(rs, IF3, pkt("udp", "8.8.8.8", "203.0.113.9", 53), "dmz", "trust") == ("allow", "nat:static:st:s1")
    assert all("NAT" in r.approximation for r in rs.rules[:2])


def test_logical_systems_are_noted_and_not_read(tmp_path):
    text = ("set logical-systems LS1 security policies from-zone a to-zone b policy p then permit\n"
            + policy("p", app="junos-ssh"))
    rs = load_text(tmp_path, text)
    assert [r.id for r in rs.rules] == ["trust>untrust:p"]
    assert any("logical-systems" in n for n in rs.notes)


def test_terminal_prompts_and_comments_are_skipped(tmp_path):
    curly = ("admin@srx> show configuration\n{primary:node0}[edit]\n[edit]\n/* annotation */\n"
             "security { policies { from-zone trust to-zone untrust { policy p { match { source-address any; "
             "destination-address any; application junos-ssh; } then { permit; } } } } } # end\n")
    rs = load_text(tmp_path, curly)
    assert [(r.id, r.source.line) for r in rs.rules] == [("trust>untrust:p", 5)]
    text = "admin@srx> show configuration | display set\n## Last changed\n" + policy("p", app="junos-ssh")
    rs = load_text(tmp_path, text)
    assert [(r.id, r.source.line) for r in rs.rules] == [("trust>untrust:p", 3)]


def test_zone_names_not_in_the_topology_never_apply(tmp_path):
    rs = load_text(tmp_path, policy("p", pair="from-zone other to-zone untrust"))
    assert decide(rs, IF3, pkt("tcp", "1.1.1.1", "2.2.2.2", 1), "trust", "untrust") == ("deny", None)


def test_end_to_end_through_a_topology(tmp_path, monkeypatch):
    from segverify.analysis.check import check
    from segverify.topology.loader import load_topology

    monkeypatch.setitem(segverify.importers.FORMATS, "junos", "junos")
    (tmp_path / "srx.conf").write_text(CITY)
    (tmp_path / "topo.yaml").write_text(
        "version: 1\nname: t\nsegments:\n"
        "  - {name: lg, kind: lgwan, cidrs: [10.2.0.0/16, 'fd00:2::/48']}\n"
        "  - {name: inet, kind: internet, cidrs: [10.3.0.0/16, 203.0.113.0/24]}\n"
        "  - {name: mn, kind: mynumber, cidrs: [10.1.0.0/16]}\n"
        "  - {name: dmz, kind: internet, cidrs: [10.5.0.0/16]}\n"
        "hosts:\n  - {name: vb1, addresses: [10.3.0.10]}\n"
        "firewalls:\n  - name: srx\n    interfaces:\n"
        "      - {name: trust, segment: lg}\n      - {name: untrust, segment: inet}\n"
        "      - {name: dmz, segment: dmz}\n"
        "    config: {format: junos, file: srx.conf}\n"
        "channels:\n  - {name: vb, kind: screen-transfer, protocol: rdp, clients: [lg], servers: [vb1],"
        " ports: [tcp/3389, tcp/443]}\n")
    topo = load_topology(str(tmp_path / "topo.yaml"))
    findings = check(topo).findings
    # g-ntp (a global policy) lets LG reach the Internet side on udp/123, which no channel covers
    lg_in = [f for f in findings if f.code == "LGWAN_INTERNET_UNSANITIZED"]
    assert lg_in
    rules_named = {r["rule"] for f in lg_in for r in (f.path or []) + (f.rules or [])}
    assert "global:g-ntp" in rules_named
    sources = {r["source"] for f in lg_in for r in (f.path or []) if r.get("rule") == "global:g-ntp"}
    assert sources <= {f"{tmp_path / 'srx.conf'}:{CITY.splitlines().index('            policy g-ntp {') + 1}"}
    # the screen-transfer policy is covered by the channel; every rule of this file is exact
    assert "trust>untrust:screen-transfer" not in rules_named
    assert not [f for f in findings if f.code == "UNSUPPORTED_RULE"]


# --- malformed input ---------------------------------------------------------------------------

P = "set security policies from-zone trust to-zone untrust policy p "

BAD = [
    ("security {\n  policies {\n", 2, "block not closed"),
    ("security {\n  policies }\n}\n", 2, "missing ';'"),
    ("security { }\n}\n", 2, "without a matching"),
    ("security { policies { default-policy { deny-all } } }\n", 1, "missing ';'"),
    ('security {\n description "abc;\n}\n', 2, "unterminated quoted string"),
    ("security {\n /* open\n}\n", 2, "unterminated /* comment"),
    ("{ x; }\n security;\n", 1, "without a statement name"),
    ("security { address-book { global { address a [ 1.1.1.1; } } }\n", 1, "unexpected ';'"),
    ("applications { application a { protocol tcp { x; } } }\n", 1, "does not take a block"),
    (P + "match source-address a\nset security address-book global address a 10.0.0.300/32\n", 2,
     "cannot read address"),
    (P + "match application a\nset applications application a protocol tcp\n"
         "set applications application a destination-port 70000\n", 3, "out of range"),
    (P + "match application a\nset applications application a destination-port 90-80\n", 2,
     "invalid port range"),
    (P + "match application a\nset applications application a destination-port webby\n", 2, "cannot read port"),
    (P + "match application a\nset applications application a protocol nosuch\n", 2, "unknown protocol"),
    (P + "match application a\nset applications application a icmp-type bogus\n", 2, "cannot read icmp-type"),
    (P + "match application a\nset applications application a protocol tcp\n"
         "set applications application a term t1 protocol udp\n", 2, "both terms"),
    (P + "match source-address s\nset security address-book global address-set s address-set t\n"
         "set security address-book global address-set t address-set s\n", 3, "contains itself"),
    (P + "match application s\nset applications application-set s application-set s\n", 2, "contains itself"),
    (P + "match source-address a\nset security address-book global address a range-address 10.0.0.9 to 10.0.0.1\n",
     2, "not a range"),
    (P + "match source-address a\nset security address-book global address a wildcard-address 10.0.0.1/1.2\n",
     2, "cannot read wildcard"),
    ("set security policies from-zone trust to-zon untrust policy p then permit\n", 1, "expects"),
    ("set security policies from-zone trust\n", 1, "needs a value"),
    ("set\n", 1, "needs a statement"),
    (P + "then permit\nfrobnicate security policies\n", 2, "unknown command"),
    (P + "then permit\nset security { policies; }\n", 2, "mixed forms"),
    (P + "then permit\ninsert security policies from-zone trust to-zone untrust policy p before policy zz\n",
     2, "'policy zz' is not configured"),
    (P + "then permit\ninsert security policies from-zone trust to-zone untrust policy p\n", 2, "expected 'before"),
    (P + "then permit\nrename security policies from-zone trust to-zone untrust policy q to policy r\n", 2,
     "is not configured"),
    (P + "then permit\nload merge terminal\n", 2, "cannot be replayed"),
    (P + "match source-address [ a b\n", 1, "must end the statement"),
    ("<configuration><security/></configuration>\n", 1, "XML configuration"),
    ('{"configuration": {}}\n', 1, "JSON configuration"),
    ("# only a comment\n\n", None, "no configuration statements"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[b[2] for b in BAD])
def test_malformed_input_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "srx.conf"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load(str(path), ("trust", "untrust"))
    err = info.value
    assert err.path == str(path) and err.line == line and message in err.message, str(err)


def test_missing_binary_and_deep_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load(str(tmp_path / "missing.conf"), ("trust",))
    (tmp_path / "bin.conf").write_bytes(b"set security\x00 policies\n")
    with pytest.raises(InputError, match="binary"):
        load(str(tmp_path / "bin.conf"), ("trust",))
    (tmp_path / "deep.conf").write_text("a {" * 500 + "}" * 500)
    with pytest.raises(InputError, match="nested more than"):
        load(str(tmp_path / "deep.conf"), ("trust",))
    (tmp_path / "groups.conf").write_text("set " + "groups g " * 200 + "security policies\n")
    with pytest.raises(InputError, match="nested more than"):
        load(str(tmp_path / "groups.conf"), ("trust",))


def test_cli_reports_the_line_and_exits_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from segverify.cli import main

    monkeypatch.setitem(segverify.importers.FORMATS, "junos", "junos")
    (tmp_path / "srx.conf").write_text(P + "match application a\nset applications application a "
                                           "destination-port 99999\n")
    (tmp_path / "topo.yaml").write_text(
        "version: 1\nname: t\nsegments:\n"
        "  - {name: lg, kind: lgwan, cidrs: [10.2.0.0/16]}\n"
        "  - {name: inet, kind: internet, cidrs: [10.3.0.0/16]}\n"
        "firewalls:\n  - name: fw\n    interfaces:\n"
        "      - {name: trust, segment: lg}\n      - {name: untrust, segment: inet}\n"
        "    config: {format: junos, file: srx.conf}\n")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "topo.yaml")])
    assert result.exit_code == 2
    assert "srx.conf:2:" in result.stderr and "out of range" in result.stderr


# --- random input ------------------------------------------------------------------------------

MUTATION_TOKENS = ["{", "}", ";", "[", "]", '"', "inactive:", "set", "deactivate", "delete", "policy", "match",
                   "source-address", "application", "then", "permit", "deny", "any", "junos-http", "10.0.0.0/8",
                   "term", "address-set", "groups", "apply-groups", "<*>", "from-zone", "to-zone", "#", "/*",
                   "insert", "before", "\n", "  ", "address", "range-address", "to", "wildcard-address",
                   "999999", "80-70", "edit", "up", "top", "global", "copy", "rename"]


def _mutate(text: str, rnd: random.Random, count: int) -> str:
    chars = list(text)
    for _ in range(count):
        pos = rnd.randrange(len(chars) + 1)
        op = rnd.randrange(4)
        if op == 0 and chars:
            del chars[min(pos, len(chars) - 1):min(pos, len(chars) - 1) + rnd.randrange(1, 20)]
        elif op == 1:
            chars[pos:pos] = list(" " + rnd.choice(MUTATION_TOKENS) + " ")
        elif op == 2 and chars:
            chars[pos:pos] = list(rnd.choice(text.splitlines() or [""]) + "\n")
        else:
            chars[pos:pos] = list(chr(rnd.randrange(32, 0x3100)))
    return "".join(chars)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 12), which=st.sampled_from(["set", "curly"]))
def test_mutated_real_files_load_or_raise_input_error(tmp_path, seed, count, which):
    if which == "set":
        path = CORPUS / "firewall-combined-policies"
        if not path.is_file():
            pytest.skip(f"corpus file {path} is not available")
        base = path.read_text()
    else:
        base = CITY
    text = _mutate(base, random.Random(seed), count)
    target = tmp_path / "mutated.conf"
    target.write_text(text)
    try:
        rs = load(str(target), IF3)
    except InputError as err:
        assert err.path == str(target)
        assert err.line is None or 1 <= err.line <= text.count("\n") + 1
        return
    compile_ruleset(SPACE, rs, list(IF3))


ADDRS = ["10.1.0.0/16", "10.1.2.0/24", "10.2.0.5/32", "fd00::/16", "192.0.2.0/25"]
APPS = ["any", "junos-http", "junos-ssh", "junos-dns-udp", "junos-icmp-ping", "app1", "set1"]
PROBE_ADDRS = ["10.1.2.3", "10.1.9.9", "10.2.0.5", "fd00::5", "192.0.2.100", "8.8.8.8"]


@st.composite
def configs(draw):
    """A small random configuration in curly-brace form."""
    n_addr = len(ADDRS)
    book = "\n".join(f"            address a{k} {a};" for k, a in enumerate(ADDRS))
    book += "\n            address-set s1 {\n" + "".join(
        f"                address a{k};\n" for k in sorted(draw(st.sets(st.integers(0, n_addr - 1), min_size=1))))
    book += "            }"
    pairs = []
    for pair in draw(st.lists(st.sampled_from(["trust untrust", "untrust trust", "trust trust", "dmz untrust"]),
                              min_size=1, max_size=3, unique=True)):
        a, b = pair.split()
        pols = []
        for k in range(draw(st.integers(1, 4))):
            src = draw(st.lists(st.sampled_from([f"a{i}" for i in range(n_addr)] + ["any", "s1", "any-ipv6"]),
                                min_size=1, max_size=2, unique=True))
            dst = draw(st.lists(st.sampled_from([f"a{i}" for i in range(n_addr)] + ["any", "s1"]),
                                min_size=1, max_size=2, unique=True))
            apps = draw(st.lists(st.sampled_from(APPS), min_size=1, max_size=2, unique=True))
            action = draw(st.sampled_from(["permit", "deny", "reject"]))
            excluded = "                    source-address-excluded;\n" if draw(st.booleans()) else ""
            inactive = "inactive: " if draw(st.integers(0, 5)) == 0 else ""
            pols.append(
                f"            {inactive}policy p{k} {{\n                match {{\n"
                f"                    source-address [ {' '.join(src)} ];\n{excluded}"
                f"                    destination-address [ {' '.join(dst)} ];\n"
                f"                    application [ {' '.join(apps)} ];\n"
                f"                }}\n                then {{\n                    {action};\n"
                f"                }}\n            }}")
        pairs.append(f"        from-zone {a} to-zone {b} {{\n" + "\n".join(pols) + "\n        }")
    default = draw(st.sampled_from(["permit-all", "deny-all"]))
    return ("security {\n    address-book {\n        global {\n" + book + "\n        }\n    }\n"
            "    policies {\n" + "\n".join(pairs) + f"\n        default-policy {{\n            {default};\n"
            "        }\n    }\n}\napplications {\n    application app1 {\n"
            "        term t1 protocol tcp destination-port 8000-8080;\n        term t2 protocol udp;\n    }\n"
            "    application-set set1 {\n        application app1;\n        application junos-ssh;\n    }\n}\n")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(curly=configs(), seed=st.integers(0, 2**32 - 1))
def test_random_configurations_decide_alike_in_both_forms(tmp_path, curly, seed):
    a, b = both_forms(tmp_path, curly)
    rnd = random.Random(seed)
    for _ in range(30):
        src = rnd.choice(PROBE_ADDRS)
        dst = rnd.choice([a for a in PROBE_ADDRS if (":" in a) == (":" in src)])
        proto = rnd.choice(["tcp", "udp", "icmp"])
        p = pkt(proto, src, dst, rnd.choice([22, 53, 80, 8000, 9000]), icmp=(rnd.choice([0, 8]), 0))
        i, o = rnd.choice(IF3), rnd.choice(IF3)
        assert decide(a, IF3, p, i, o) == decide(b, IF3, p, i, o)


def test_registry_format_points_here_when_registered(monkeypatch):
    monkeypatch.setitem(segverify.importers.FORMATS, "junos", "junos")
    assert segverify.importers.get_importer("junos") is load
    assert junos.PREDEFINED_APPS["junos-https"] == ("tcp/443",)
