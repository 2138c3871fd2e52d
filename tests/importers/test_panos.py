"""The PAN-OS importer: the real corpus file, every construct on small configurations, a reference
interpreter, malformed and hostile input.

Every verdict is checked twice: with the first-match loop (``RuleSet.decide``) and with the BDD
engine (``compile_ruleset(...).hop``), which must agree.
"""

from __future__ import annotations

import random
import re
import textwrap
from functools import cache, partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importer_support import SPACE, bdd_allows, corpus_files, packet

import segverify.importers
from segverify.analysis.check import check
from segverify.errors import InputError
from segverify.importers import panos
from segverify.importers.panos import load
from segverify.model.addresses import IntervalSet, addr_to_int, parse_prefix
from segverify.model.rules import FALSE, Packet, RuleSet
from segverify.packetspace.firewall import compile_ruleset
from segverify.topology.loader import load_topology

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "configs" / "panos"
corpus_file = corpus_files(CORPUS)
pkt = partial(packet, icmp=(8, 0))
SAMPLE = "aerleon_sample_paloalto.xml"


@cache
def imported(path: str, ifaces: tuple[str, ...]):
    ruleset = load(path, ifaces)
    return ruleset, compile_ruleset(SPACE, ruleset, list(ifaces))


def verdict(ruleset: RuleSet, ifaces: tuple[str, ...], p: Packet, i: str, o: str, compiled=None):
    compiled = compiled or compile_ruleset(SPACE, ruleset, list(ifaces))
    action, rule = ruleset.decide(p, i, o)
    assert bdd_allows(compiled, p, i, o) == (action == "allow"), f"BDD and first-match loop disagree on {p}"
    return action, (rule.id if rule else None)


# --- the corpus file ---------------------------------------------------------------------------

SAMPLE_IFACES = ("internal", "external", "dmz")
INTERNAL = ["10.1.2.3", "172.20.0.1", "192.168.7.7"]

SAMPLE_CASES = [
    # dns-gdns (tcp/53 to Google DNS) is shadowed by ping-gdns: application icmp with application-default
    # is a may-pass for any port, so everything INTERNAL → GOOGLE_DNS goes by ping-gdns
    ("internal", "external", pkt("tcp", "10.1.2.3", "8.8.8.8", 53), "allow", "ping-gdns"),
    ("internal", "external", pkt("udp", "192.168.7.7", "8.8.4.4", 53), "allow", "ping-gdns"),
    ("internal", "external", pkt("icmp", "172.20.0.1", "8.8.8.8"), "allow", "ping-gdns"),
    # allow-web-outbound: INTERNAL → any, tcp/80,443 only
    ("internal", "external", pkt("tcp", "10.1.2.3", "93.184.216.34", 443), "allow", "allow-web-outbound"),
    ("internal", "external", pkt("tcp", "172.20.0.1", "93.184.216.34", 80), "allow", "allow-web-outbound"),
    ("internal", "external", pkt("tcp", "10.1.2.3", "93.184.216.34", 22), "deny", "interzone-default"),
    ("internal", "external", pkt("udp", "10.1.2.3", "93.184.216.34", 443), "deny", "interzone-default"),
    ("internal", "external", pkt("tcp", "8.8.8.8", "93.184.216.34", 443), "deny", "interzone-default"),
    ("internal", "external", pkt("tcp", "10.1.2.3", "8.8.8.9", 53), "deny", "interzone-default"),
    # external → internal: any-ipv4 on both sides, applications → may-pass
    ("external", "internal", pkt("tcp", "1.2.3.4", "10.0.0.5", 3389), "allow", "allow-icmp"),
    ("external", "internal", pkt("udp", "1.2.3.4", "10.0.0.5", 161), "allow", "allow-icmp"),
    # IPv6 is outside any-ipv4: the default denies it
    ("external", "internal", pkt("tcp", "2001:db8::1", "fd00::5", 443), "deny", "interzone-default"),
    ("internal", "external", pkt("tcp", "fd00::5", "2001:db8::1", 443), "deny", "interzone-default"),
    # the default rules: intrazone allow, interzone deny; a zone the file never names
    ("internal", "internal", pkt("tcp", "10.1.2.3", "10.9.9.9", 445), "allow", "intrazone-default"),
    ("external", "external", pkt("udp", "1.1.1.1", "9.9.9.9", 53), "allow", "intrazone-default"),
    ("dmz", "external", pkt("tcp", "10.1.2.3", "93.184.216.34", 443), "deny", "interzone-default"),
    ("internal", "dmz", pkt("tcp", "10.1.2.3", "8.8.8.8", 53), "deny", "interzone-default"),
    ("dmz", "dmz", pkt("tcp", "10.1.2.3", "8.8.8.8", 53), "allow", "intrazone-default"),
]


def test_sample_verdicts():
    path = str(corpus_file(SAMPLE))
    ruleset, compiled = imported(path, SAMPLE_IFACES)
    for i, o, p, want, rule_id in SAMPLE_CASES:
        assert verdict(ruleset, SAMPLE_IFACES, p, i, o, compiled) == (want, rule_id), (i, o, p)


def test_sample_ids_lines_and_approximations():
    path = str(corpus_file(SAMPLE))
    ruleset, _ = imported(path, SAMPLE_IFACES)
    lines = {r.id: r.source.line for r in ruleset.rules if r.id not in ("intrazone-default", "interzone-default")}
    assert lines == {"ping-gdns": 44, "dns-gdns": 66, "allow-web-outbound": 88, "allow-icmp": 110,
                     "allow-pan-app-01": 132, "allow-pan-app-02": 154, "allow-pan-app-03": 176}
    assert all(r.source.path == path for r in ruleset.rules)
    by_id = {r.id: r for r in ruleset.rules}
    assert by_id["ping-gdns"].in_ifaces == frozenset({"internal"})
    assert by_id["ping-gdns"].out_ifaces == frozenset({"external"})
    approx = {r.id for r in ruleset.rules if r.approximation}
    assert approx == {"ping-gdns", "allow-icmp", "allow-pan-app-01", "allow-pan-app-02", "allow-pan-app-03"}
    assert "application-default" in by_id["ping-gdns"].approximation
    assert "application icmp" in by_id["ping-gdns"].approximation
    assert "application-default" not in by_id["allow-pan-app-02"].approximation  # any-tcp is a real service
    assert ruleset.default == "deny"
    # intrazone-default: one rule per zone of the topology
    intra = [r for r in ruleset.rules if r.id == "intrazone-default"]
    assert [next(iter(r.in_ifaces)) for r in intra] == list(SAMPLE_IFACES)


def test_sample_exact_parts():
    """What the exact rules leave out, symbolically: INTERNAL → outside Google DNS on tcp/22 and udp."""
    path = str(corpus_file(SAMPLE))
    ruleset, compiled = imported(path, SAMPLE_IFACES)
    internal = SPACE.values("src", IntervalSet.prefixes(
        parse_prefix(p) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")))
    google = SPACE.values("dst", IntervalSet.of(addr_to_int("8.8.8.8"), addr_to_int("8.8.4.4")))
    tcp22 = SPACE.values("proto", IntervalSet.of(6)) & SPACE.values("dport", IntervalSet.of(22))
    udp = SPACE.values("proto", IntervalSet.of(17))
    hop = compiled.hop("internal", "external")
    assert (hop & internal & tcp22 & ~google) == SPACE.false
    assert (hop & internal & udp & ~google) == SPACE.false
    assert (hop & internal & udp & google) != SPACE.false  # ping-gdns: a may-pass
    # outbound, only INTERNAL sources pass at all
    assert (hop & ~internal & SPACE.values("src", IntervalSet([(0, (1 << 32) - 1)]))) == SPACE.false
    # allow-pan-app-02: any TCP port inbound (service any-tcp is 0-65535)
    assert ruleset.decide(pkt("tcp", "1.2.3.4", "10.0.0.5", 0), "external", "internal")[0] == "allow"


def test_sample_through_a_topology(tmp_path, monkeypatch):
    """End to end: the file behind a firewall between LGWAN and the Internet is a violation, and the
    approximated rules are reported with their file and line."""
    monkeypatch.setitem(segverify.importers.FORMATS, "panos", "panos")
    path = corpus_file(SAMPLE)
    topo = tmp_path / "t.yaml"
    topo.write_text(textwrap.dedent(f"""\
        version: 1
        name: t
        segments:
          - {{name: lg, kind: lgwan, cidrs: [10.0.0.0/8]}}
          - {{name: inet, kind: internet, cidrs: [8.0.0.0/8, 93.0.0.0/8]}}
        firewalls:
          - name: pa
            interfaces:
              - {{name: internal, segment: lg}}
              - {{name: external, segment: inet}}
            config: {{format: panos, file: "{path}"}}
        """))
    result = check(load_topology(str(topo)))
    codes = {f.code for f in result.findings}
    assert "LGWAN_INTERNET_UNSANITIZED" in codes and "UNSUPPORTED_RULE" in codes
    crossing = [f for f in result.findings if f.code == "LGWAN_INTERNET_UNSANITIZED"]
    allow_ids = {"ping-gdns", "dns-gdns", "allow-web-outbound", "allow-icmp", "allow-pan-app-01",
                 "allow-pan-app-02", "allow-pan-app-03"}
    for f in crossing:
        assert f.path and all(step["firewall"] == "pa" and step["rule"] in allow_ids for step in f.path)
        assert all(f"{SAMPLE}:" in step["source"] for step in f.path)
    unsupported = next(f for f in result.findings if f.code == "UNSUPPORTED_RULE")
    assert {r["rule"] for r in unsupported.rules} == {"ping-gdns", "allow-icmp", "allow-pan-app-01",
                                                       "allow-pan-app-02", "allow-pan-app-03"}
    assert any(r["source"].endswith(f"{SAMPLE}:44") for r in unsupported.rules)


# --- synthetic configurations ------------------------------------------------------------------

IFACES = ("trust", "untrust", "dmz")


def members(value) -> str:
    values = value if isinstance(value, (list, tuple)) else [value]
    return "".join(f"<member>{v}</member>" for v in values)


def rule(name: str, frm="trust", to="untrust", src="any", dst="any", svc="any", app="any", action="allow",
         extra: str = "") -> str:
    return (f'<entry name="{name}"><from>{members(frm)}</from><to>{members(to)}</to>'
            f"<source>{members(src)}</source><destination>{members(dst)}</destination>"
            f"<service>{members(svc)}</service><application>{members(app)}</application>"
            f"<action>{action}</action>{extra}</entry>\n")


def config(rules: str = "", objects: str = "", shared: str = "", vsys_extra: str = "", more_vsys: str = "",
           top: str = "") -> str:
    return (
        '<?xml version="1.0"?>\n<config version="10.1.0">\n'
        f"<shared>{shared}</shared>\n"
        '<devices><entry name="localhost.localdomain"><vsys><entry name="vsys1">\n'
        f"{objects}\n"
        f"<rulebase><security><rules>\n{rules}</rules></security>{vsys_extra}</rulebase>\n"
        f"</entry>{more_vsys}</vsys></entry></devices>\n{top}</config>\n"
    )


def load_text(tmp_path: Path, text: str, ifaces=IFACES, name: str = "fw.xml") -> RuleSet:
    path = tmp_path / name
    path.write_text(text)
    return load(str(path), ifaces)


def decide(ruleset: RuleSet, p: Packet, i: str = "trust", o: str = "untrust", ifaces=IFACES):
    return verdict(ruleset, ifaces, p, i, o)


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_address_objects_groups_and_literals(tmp_path):
    objects = """
    <address>
      <entry name="net"><ip-netmask>10.1.1.7/24</ip-netmask></entry>
      <entry name="host"><ip-netmask>192.0.2.5</ip-netmask></entry>
      <entry name="range"><ip-range>10.2.0.10-10.2.0.20</ip-range></entry>
      <entry name="wild"><ip-wildcard>10.3.0.1/0.0.254.0</ip-wildcard></entry>
      <entry name="v6"><ip-netmask>fd00:1::/64</ip-netmask><description>x</description>
        <tag><member>t</member></tag></entry>
    </address>
    <address-group>
      <entry name="inner"><static><member>host</member><member>range</member></static></entry>
      <entry name="outer"><static><member>inner</member><member>net</member><member>v6</member></static></entry>
    </address-group>"""
    rules = (rule("to-outer", dst="outer", svc="service-https")
             + rule("to-wild", dst="wild", svc="service-https")
             + rule("to-literals", dst=["198.51.100.0/25", "203.0.113.9", "203.0.113.20-203.0.113.30", "2001:db8::1"],
                    svc="service-https"))
    rs = load_text(tmp_path, config(rules, objects))
    assert not any(r.approximation for r in rs.rules)
    cases = [
        ("10.1.1.200", "to-outer"),  # host bits of ip-netmask ignored, as PAN-OS does
        ("192.0.2.5", "to-outer"), ("192.0.2.6", None), ("10.2.0.10", "to-outer"), ("10.2.0.20", "to-outer"),
        ("10.2.0.21", None), ("fd00:1::ffff", "to-outer"), ("fd00:2::1", None),
        ("10.3.0.1", "to-wild"), ("10.3.2.1", "to-wild"), ("10.3.254.1", "to-wild"), ("10.3.1.1", None),
        ("10.3.0.2", None), ("198.51.100.127", "to-literals"), ("198.51.100.128", None),
        ("203.0.113.9", "to-literals"), ("203.0.113.25", "to-literals"), ("203.0.113.31", None),
        ("2001:db8::1", "to-literals"),
    ]
    for dst, want in cases:
        src = "fd00:9::1" if ":" in dst else "10.0.0.1"
        action, rid = decide(rs, pkt("tcp", src, dst, 443))
        assert (rid if action == "allow" else None) == want, dst


def test_negation(tmp_path):
    objects = '<address><entry name="any-ipv4"><ip-range>0.0.0.0-255.255.255.255</ip-range></entry></address>'
    rules = (rule("not-internal", src="10.0.0.0/8", dst="any-ipv4",
                  extra="<negate-source>yes</negate-source><negate-destination>yes</negate-destination>")
             + rule("rest", action="deny", extra="<negate-source>no</negate-source>"))
    rs = load_text(tmp_path, config(rules, objects))
    assert decide(rs, pkt("tcp", "fd00::1", "2001:db8::1", 80)) == ("allow", "not-internal")
    assert decide(rs, pkt("tcp", "11.0.0.1", "8.8.8.8", 80)) == ("deny", "rest")  # destination is IPv4
    assert decide(rs, pkt("tcp", "10.0.0.1", "8.8.8.8", 80)) == ("deny", "rest")


def test_services_groups_and_predefined(tmp_path):
    objects = """
    <service>
      <entry name="web"><protocol><tcp><port>80,8000-8010</port></tcp></protocol></entry>
      <entry name="dns"><protocol><udp><port>53</port><source-port>1024-65535</source-port></udp></protocol></entry>
      <entry name="sig"><protocol><sctp><port>2905</port></sctp></protocol></entry>
      <entry name="ssh"><protocol><tcp><port>22</port><override><no/></override></tcp></protocol></entry>
    </service>
    <service-group>
      <entry name="inner"><members><member>dns</member><member>service-https</member></members></entry>
      <entry name="outer"><members><member>inner</member><member>web</member><member>sig</member></members></entry>
    </service-group>"""
    rules = rule("grp", svc="outer") + rule("http", frm="dmz", svc="service-http") + rule("ssh", frm="dmz",
                                                                                        svc="ssh")
    rs = load_text(tmp_path, config(rules, objects))
    assert not any(r.approximation for r in rs.rules)
    for p, want in [
        (pkt("tcp", "10.0.0.1", "1.1.1.1", 80), "allow"), (pkt("tcp", "10.0.0.1", "1.1.1.1", 8005), "allow"),
        (pkt("tcp", "10.0.0.1", "1.1.1.1", 8011), "deny"), (pkt("tcp", "10.0.0.1", "1.1.1.1", 443), "allow"),
        (pkt("udp", "10.0.0.1", "1.1.1.1", 53, sport=5000), "allow"),
        (pkt("udp", "10.0.0.1", "1.1.1.1", 53, sport=53), "deny"),  # source port outside 1024-65535
        (pkt("tcp", "10.0.0.1", "1.1.1.1", 53), "deny"), (pkt("sctp", "10.0.0.1", "1.1.1.1", 2905), "allow"),
        (pkt("icmp", "10.0.0.1", "1.1.1.1"), "deny"),
    ]:
        assert decide(rs, p)[0] == want, p
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 8080), "dmz") == ("allow", "http")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 8081), "dmz") == ("deny", "interzone-default")
    assert decide(rs, pkt("tcp", "1.1.1.1", "2.2.2.2", 22), "dmz") == ("allow", "ssh")


def test_applications_and_application_default(tmp_path):
    rules = (rule("deny-bt", app="bittorrent", action="deny")
             + rule("deny-web-default", svc="application-default", action="drop")
             + rule("web", svc="service-https", app=["ssl", "web-browsing"])
             + rule("default-ports", frm="dmz", svc="application-default", app="dns"))
    rs = load_text(tmp_path, config(rules))
    by_id = {r.id: r for r in rs.rules}
    # a deny with applications may not match: taken as matching nothing, and said so
    assert by_id["deny-bt"].match == FALSE and "bittorrent" in by_id["deny-bt"].approximation
    assert by_id["deny-web-default"].match == FALSE and "application-default" in by_id["deny-web-default"].approximation
    # an allow with applications matches its service (the first packets pass before identification)
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 443)) == ("allow", "web")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 444)) == ("deny", "interzone-default")
    assert "ssl" in by_id["web"].approximation
    # application-default in an allow: any port, any protocol
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 3389), "dmz") == ("allow", "default-ports")
    assert decide(rs, pkt("esp", "10.0.0.1", "1.1.1.1"), "dmz") == ("allow", "default-ports")


def test_disabled_actions_and_description(tmp_path):
    rules = (rule("off", action="allow", extra="<disabled>yes</disabled>")
             + rule("on", svc="service-http", action="reset-both",
                    extra="<disabled>no</disabled><description>block web</description>")
             + rule("drop", svc="service-https", action="drop")
             + rule("rc", frm="dmz", action="reset-client")
             + rule("rs", frm="untrust", to="trust", action="reset-server")
             + rule("all"))
    text = config(rules)
    rs = load_text(tmp_path, text)
    ids = [r.id for r in rs.rules]
    assert "off" not in ids
    by_id = {r.id: r for r in rs.rules}
    assert by_id["on"].name == "block web" and by_id["on"].source.line == line_of(text, 'name="on"')
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 80)) == ("deny", "on")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 443)) == ("deny", "drop")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 22)) == ("allow", "all")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 22), "dmz") == ("deny", "rc")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 22), "untrust", "trust") == ("deny", "rs")


def test_rule_types_and_any_zones(tmp_path):
    rules = (rule("intra", frm="any", to="any", svc="service-http", action="deny",
                  extra="<rule-type>intrazone</rule-type>")
             + rule("inter", frm=["trust", "dmz"], to=["trust", "dmz", "untrust"], svc="service-https",
                    extra="<rule-type>interzone</rule-type>")
             + rule("univ", frm="any", to="dmz", svc="service-https", action="deny",
                    extra="<rule-type>universal</rule-type>"))
    rs = load_text(tmp_path, config(rules))
    http, https = pkt("tcp", "10.0.0.1", "10.0.0.2", 80), pkt("tcp", "10.0.0.1", "10.0.0.2", 443)
    assert decide(rs, http, "trust", "trust") == ("deny", "intra")
    assert decide(rs, http, "dmz", "dmz") == ("deny", "intra")
    assert decide(rs, http, "trust", "dmz") == ("deny", "interzone-default")
    assert decide(rs, https, "trust", "dmz") == ("allow", "inter")
    assert decide(rs, https, "dmz", "trust") == ("allow", "inter")
    assert decide(rs, https, "trust", "untrust") == ("allow", "inter")
    assert decide(rs, https, "trust", "trust") == ("allow", "intrazone-default")  # interzone: not same zone
    assert decide(rs, https, "dmz", "dmz") == ("deny", "univ")
    assert decide(rs, https, "untrust", "dmz") == ("deny", "univ")
    # a topology zone the rules never name is still covered by "any"
    rs2 = load_text(tmp_path, config(rules), IFACES + ("guest",))
    assert decide(rs2, http, "guest", "guest", IFACES + ("guest",)) == ("deny", "intra")


def test_default_rule_overrides(tmp_path):
    overrides = """<default-security-rules><rules>
      <entry name="intrazone-default"><action>deny</action><log-end>yes</log-end></entry>
      <entry name="interzone-default"><action>allow</action></entry>
    </rules></default-security-rules>"""
    text = config(rule("block", svc="service-http", action="deny"), vsys_extra=overrides)
    rs = load_text(tmp_path, text)
    assert rs.default == "allow"
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 80)) == ("deny", "block")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 22)) == ("allow", "interzone-default")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 22), "dmz", "dmz") == ("deny", "intrazone-default")
    inter = next(r for r in rs.rules if r.id == "interzone-default")
    assert inter.source.line == line_of(text, 'name="interzone-default"') and not inter.approximation
    # the vsys and Panorama disagree: taken as allow, and said so
    shared = ('<post-rulebase><default-security-rules><rules><entry name="interzone-default"><action>deny</action>'
              "</entry></rules></default-security-rules></post-rulebase>")
    rs = load_text(tmp_path, config(rule("block", svc="service-http", action="deny"), shared=shared,
                                    vsys_extra=overrides))
    inter = next(r for r in rs.rules if r.id == "interzone-default")
    assert inter.action == "allow" and "both ways" in inter.approximation


def test_panorama_pre_and_post_rulebases(tmp_path):
    shared = f"""
    <address><entry name="mgmt"><ip-netmask>10.9.0.0/16</ip-netmask></entry></address>
    <service><entry name="rdp"><protocol><tcp><port>3389</port></tcp></protocol></entry></service>
    <pre-rulebase><security><rules>
    {rule("shared-pre", src="mgmt", svc="rdp")}</rules></security></pre-rulebase>
    <post-rulebase><security><rules>
    {rule("shared-post", svc="rdp", action="deny")}{rule("shared-post-ssh", svc="ssh-obj")}</rules></security>
    </post-rulebase>"""
    panorama = f"""<panorama>
    <service><entry name="ssh-obj"><protocol><tcp><port>22</port></tcp></protocol></entry></service>
    <pre-rulebase><security><rules>
    {rule("pano-pre", svc="ssh-obj", action="deny")}</rules></security></pre-rulebase>
    <post-rulebase><security><rules>
    {rule("pano-post", svc="service-http")}</rules></security></post-rulebase></panorama>
    """
    local = rule("local-ssh", svc="local-ssh") + rule("local-rdp", svc="rdp")
    objects = '<service><entry name="local-ssh"><protocol><tcp><port>22</port></tcp></protocol></entry></service>'
    text = config(local, objects, shared=shared, top=panorama)
    rs = load_text(tmp_path, text)
    ids = [r.id for r in rs.rules if not r.id.endswith("-default")]
    assert ids == ["shared-pre", "pano-pre", "local-ssh", "local-rdp", "pano-post", "shared-post", "shared-post-ssh"]
    assert decide(rs, pkt("tcp", "10.9.1.1", "1.1.1.1", 3389)) == ("allow", "shared-pre")
    assert decide(rs, pkt("tcp", "10.8.1.1", "1.1.1.1", 3389)) == ("allow", "local-rdp")  # vsys sees shared's rdp
    assert decide(rs, pkt("tcp", "10.8.1.1", "1.1.1.1", 22)) == ("deny", "pano-pre")
    assert decide(rs, pkt("tcp", "10.8.1.1", "1.1.1.1", 80)) == ("allow", "pano-post")
    by_id = {r.id: r for r in rs.rules}
    # shared rules see Panorama's objects (ssh-obj), not the vsys's
    assert not by_id["shared-post-ssh"].approximation
    assert by_id["shared-pre"].source.line == line_of(text, 'name="shared-pre"')
    # the same name in the pre-rulebase and the vsys is refused
    bad = config(rule("shared-pre"), shared=shared, top=panorama)
    with pytest.raises(InputError, match="defined twice") as info:
        load_text(tmp_path, bad)
    assert info.value.line == line_of(bad, '<entry name="shared-pre"><from><member>trust</member></from><to>'
                                           "<member>untrust</member></to><source><member>any</member></source>"
                                           "<destination><member>any</member></destination><service><member>any")


def test_pushed_policy_document(tmp_path):
    text = f"""<policy><panorama><pre-rulebase><security><rules>
{rule("only", svc="service-https")}</rules></security></pre-rulebase></panorama></policy>"""
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 443)) == ("allow", "only")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 80)) == ("deny", "interzone-default")


def test_api_response_and_panorama_device_group(tmp_path):
    inner = config(rule("wrapped", svc="service-https"))
    inner = inner.replace('<?xml version="1.0"?>\n', "")
    rs = load_text(tmp_path, f'<response status="success"><result>{inner}</result></response>')
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 443)) == ("allow", "wrapped")
    dg = f"""<config><devices><entry name="localhost.localdomain"><device-group><entry name="city-hall">
    <address><entry name="srv"><ip-netmask>10.4.0.0/16</ip-netmask></entry></address>
    <pre-rulebase><security><rules>{rule("dg-pre", dst="srv", svc="service-https")}</rules></security></pre-rulebase>
    </entry></device-group></entry></devices></config>"""
    rs = load_text(tmp_path, dg)
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.4.1.1", 443)) == ("allow", "dg-pre")
    assert decide(rs, pkt("tcp", "10.0.0.1", "10.5.1.1", 443)) == ("deny", "interzone-default")
    assert any("city-hall" in n for n in rs.notes)
    two = dg.replace("</device-group>", '<entry name="other"/></device-group>')
    with pytest.raises(InputError, match="2 device groups"):
        load_text(tmp_path, two)


def test_unknowns_are_approximated_by_polarity(tmp_path):
    objects = """
    <address><entry name="site"><fqdn>www.example.jp</fqdn></entry></address>
    <address-group>
      <entry name="quarantine"><dynamic><filter>'infected'</filter></dynamic></entry>
    </address-group>
    <external-list><entry name="edl"><type><ip><url>https://x/y</url></ip></type></entry></external-list>"""
    rules = (rule("deny-dyn", src="quarantine", action="deny")
             + rule("deny-user", svc="service-http", action="deny",
                    extra="<source-user><member>corp\\bob</member></source-user>")
             + rule("allow-fqdn", dst="site", svc="service-http")
             + rule("allow-edl", dst="edl", svc="service-https")
             + rule("allow-jp", frm="dmz", dst="JP", svc="service-https")
             + rule("allow-undefined", frm="dmz", dst="nowhere-obj", svc="nowhere-svc")
             + rule("sched", frm="untrust", to="trust", extra="<schedule>office-hours</schedule>")
             + rule("future", frm="untrust", to="dmz", extra="<shiny-new-match>x</shiny-new-match>")
             + rule("users-any", frm="dmz", to="trust", extra="<source-user><member>any</member></source-user>"
                                                             "<category><member>any</member></category>"))
    rs = load_text(tmp_path, config(rules, objects))
    by_id = {r.id: r for r in rs.rules}
    assert by_id["deny-dyn"].match == FALSE and "dynamic address group" in by_id["deny-dyn"].approximation
    assert by_id["deny-user"].match == FALSE and "source-user" in by_id["deny-user"].approximation
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 80)) == ("allow", "allow-fqdn")
    assert "FQDN" in by_id["allow-fqdn"].approximation
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 443)) == ("allow", "allow-edl")
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 443), "dmz") == ("allow", "allow-jp")
    assert "region JP" in by_id["allow-jp"].approximation
    assert decide(rs, pkt("udp", "10.0.0.1", "1.1.1.1", 9), "dmz") == ("allow", "allow-undefined")
    assert "not defined" in by_id["allow-undefined"].approximation
    assert decide(rs, pkt("udp", "1.1.1.1", "10.0.0.1", 9), "untrust", "trust") == ("allow", "sched")
    assert "schedule" in by_id["sched"].approximation
    assert "shiny-new-match" in by_id["future"].approximation
    assert by_id["users-any"].approximation is None


def test_ip_wildcard_too_scattered_is_bounded(tmp_path):
    objects = '<address><entry name="w"><ip-wildcard>10.0.0.0/0.255.255.254</ip-wildcard></entry></address>'
    rs = load_text(tmp_path, config(rule("a", dst="w") + rule("d", frm="dmz", dst="w", action="deny"), objects))
    by_id = {r.id: r for r in rs.rules}
    assert "too many ranges" in by_id["a"].approximation
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.7.8.9", 1))[0] == "allow"  # odd: not in the set, may-pass
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.0.0.0", 1), "dmz") == ("deny", "d")  # surely in it
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.7.8.8", 1), "dmz") == ("deny", "interzone-default")


def test_zones_multi_vsys_and_inter_vsys(tmp_path):
    zones1 = """<zone><entry name="trust"><network><layer3><member>ethernet1/1</member></layer3></network></entry>
      <entry name="untrust"><network><layer3><member>ethernet1/2</member></layer3></network></entry></zone>"""
    vsys2 = f"""<entry name="vsys2"><zone><entry name="dmz"><network><layer3><member>ethernet1/3</member></layer3>
      </network></entry><entry name="guest"><network><layer3><member>ethernet1/4</member></layer3></network></entry>
      </zone><rulebase><security><rules>{rule("v2-any", frm="any", to="any", svc="service-https",
                                               extra="<rule-type>interzone</rule-type>")}
      </rules></security></rulebase></entry>"""
    ifaces = ("trust", "untrust", "dmz", "guest", "ethernet1/1", "stray")
    rules = rule("v1-any", frm="any", to="any", svc="service-http")
    rs = load_text(tmp_path, config(rules, zones1, more_vsys=vsys2), ifaces)
    http, https = pkt("tcp", "10.0.0.1", "1.1.1.1", 80), pkt("tcp", "10.0.0.1", "1.1.1.1", 443)
    assert decide(rs, http, "trust", "untrust", ifaces) == ("allow", "vsys1/v1-any")
    assert decide(rs, http, "dmz", "guest", ifaces) == ("deny", "vsys2/interzone-default")
    assert decide(rs, https, "dmz", "guest", ifaces) == ("allow", "vsys2/v2-any")
    assert decide(rs, https, "guest", "guest", ifaces) == ("allow", "vsys2/intrazone-default")
    # between vsys without an external zone: denied
    assert decide(rs, http, "trust", "dmz", ifaces) == ("deny", "vsys1/(inter-vsys)")
    assert decide(rs, https, "dmz", "trust", ifaces) == ("deny", "vsys2/(inter-vsys)")
    # zones no vsys has: no traffic
    assert decide(rs, http, "stray", "trust", ifaces) == ("deny", None)
    assert any("ethernet1/1 is an interface of zone trust" in n for n in rs.notes)
    assert any("zone stray" in n for n in rs.notes)
    # with an external zone, traffic between vsys is taken as allowed (approximated)
    ext = '<entry name="to-v2"><network><external><member>vsys2</member></external></network></entry></zone>'
    rs = load_text(tmp_path, config(rules, zones1.replace("</zone>", ext), more_vsys=vsys2), ifaces)
    action, rid = decide(rs, http, "trust", "dmz", ifaces)
    assert (action, rid) == ("allow", "vsys1/(inter-vsys)")
    assert "external zones" in next(r for r in rs.rules if r.id == rid).approximation


def test_zone_in_two_vsys_does_not_deny(tmp_path):
    vsys2 = f"""<entry name="vsys2"><zone><entry name="trust"><network><layer3/></network></entry></zone>
      <rulebase><security><rules>{rule("v2-block", frm="trust", to="untrust", action="deny")}
      </rules></security></rulebase></entry>"""
    zones1 = '<zone><entry name="trust"/><entry name="untrust"/></zone>'
    rs = load_text(tmp_path, config(rule("v1-web", svc="service-http"), zones1, more_vsys=vsys2))
    assert decide(rs, pkt("tcp", "10.0.0.1", "1.1.1.1", 80)) == ("allow", "vsys1/v1-web")
    block = next(r for r in rs.rules if r.id == "vsys2/v2-block")
    assert "several vsys" in block.approximation and "trust" not in block.in_ifaces


def test_destination_nat_is_a_may_pass(tmp_path):
    objects = '<address><entry name="web-srv"><ip-netmask>10.5.0.10</ip-netmask></entry></address>'
    nat = """<nat><rules>
      <entry name="pub-web"><from><member>untrust</member></from><to><member>untrust</member></to>
        <source><member>any</member></source><destination><member>203.0.113.10</member></destination>
        <service>service-https</service>
        <destination-translation><translated-address>web-srv</translated-address></destination-translation>
      </entry>
      <entry name="off"><disabled>yes</disabled><from><member>untrust</member></from><to><member>untrust</member></to>
        <source><member>any</member></source><destination><member>any</member></destination><service>any</service>
        <destination-translation><translated-address>10.5.0.99</translated-address></destination-translation>
      </entry>
      <entry name="hide"><from><member>trust</member></from><to><member>untrust</member></to>
        <source><member>any</member></source><destination><member>any</member></destination><service>any</service>
        <source-translation><dynamic-ip-and-port><interface-address><interface>ethernet1/2</interface>
        </interface-address></dynamic-ip-and-port></source-translation></entry>
    </rules></nat>"""
    text = config(rule("web-in", frm="untrust", to="trust", dst="203.0.113.10", svc="service-https"), objects,
                  vsys_extra=nat)
    rs = load_text(tmp_path, text)
    assert rs.rules[0].id == "nat:pub-web" and rs.rules[0].source.line == line_of(text, 'name="pub-web"')
    assert "destination-translation" in rs.rules[0].approximation
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.5.0.10", 443), "untrust", "dmz") == ("allow", "nat:pub-web")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.5.0.10", 80), "untrust", "dmz") == ("deny", "interzone-default")
    assert decide(rs, pkt("tcp", "1.1.1.1", "10.5.0.99", 443), "untrust", "dmz") == ("deny", "interzone-default")
    assert decide(rs, pkt("tcp", "1.1.1.1", "203.0.113.10", 443), "untrust", "trust") == ("allow", "web-in")
    assert any("source NAT" in n for n in rs.notes)


def test_other_rulebases_are_noted(tmp_path):
    extra = "<decryption><rules/></decryption><pbf><rules/></pbf>"
    rs = load_text(tmp_path, config(rule("a"), vsys_extra=extra))
    assert sum("cannot allow what the security rules deny" in n for n in rs.notes) == 2


# --- malformed and hostile input ---------------------------------------------------------------

BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n<config>&lol2;</config>\n')
EXTERNAL = '<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<config>&x;</config>\n'


def bad_rule(body: str) -> str:
    return config('<entry name="r">\n' + body + "\n</entry>\n")


RULE_LINE = 8  # the line of the body in bad_rule()

BAD = [
    (BOMB, 2, "DOCTYPE"),
    (EXTERNAL, 2, "DOCTYPE"),
    ("<config>\n<devices>\n</config>\n", 3, "not well-formed"),
    ("<config>&nope;</config>\n", 1, "undefined entity"),
    ("", 1, "not well-formed"),
    ("<?xml version='1.0'?>\n<fortios/>\n", 2, "root element"),
    ("<config>\n<devices/>\n</config>\n", 1, "no vsys"),
    (bad_rule("<action>permit</action>"), RULE_LINE, "unknown action"),
    (bad_rule("<rule-type>sideways</rule-type>"), RULE_LINE, "unknown rule-type"),
    (bad_rule("<disabled>maybe</disabled>"), RULE_LINE, "yes or no"),
    (bad_rule("<negate-source>1</negate-source>"), RULE_LINE, "yes or no"),
    (bad_rule("<action>allow</action><action>deny</action>"), RULE_LINE, "given twice"),
    (bad_rule("<from><zone>trust</zone></from>"), RULE_LINE, "expected <member>"),
    (bad_rule("<source><member></member></source>"), RULE_LINE, "empty <member>"),
    (config("<entry>\n<action>allow</action></entry>\n"), 7, "without a name"),
    (config("<rule name='x'/>\n"), 7, "expected <entry>"),
    (config(rule("a") + rule("a")), 8, "defined twice"),
    (config("", '<address>\n<entry name="x"><ip-netmask>10.0.0.300/8</ip-netmask></entry></address>'), 6,
     "cannot read ip-netmask"),
    (config("", '<address>\n<entry name="x"><ip-range>10.0.0.9-10.0.0.1</ip-range></entry></address>'), 6,
     "cannot read ip-range"),
    (config("", '<address>\n<entry name="x"><ip-range>10.0.0.1</ip-range></entry></address>'), 6,
     "cannot read ip-range"),
    (config("", '<address>\n<entry name="x"><ip-wildcard>10.0.0.1</ip-wildcard></entry></address>'), 6,
     "cannot read ip-wildcard"),
    (config("", '<address>\n<entry name="x"><description/></entry></address>'), 6, "has no ip-netmask"),
    (config("", '<address>\n<entry name="x"><ip-netmask>10.0.0.1</ip-netmask></entry>\n'
                '<entry name="x"><ip-netmask>10.0.0.2</ip-netmask></entry></address>'), 7, "defined twice"),
    (config("", '<service>\n<entry name="s"><protocol><tcp><port>99999</port></tcp></protocol></entry></service>'),
     6, "out of range"),
    (config("", '<service>\n<entry name="s"><protocol><tcp><port>80,http</port></tcp></protocol></entry>'
                "</service>"), 6, "cannot read port"),
    (config("", '<service>\n<entry name="s"><protocol><udp><source-port>53</source-port></udp></protocol>'
                "</entry></service>"), 6, "no destination port"),
    (config("", '<service>\n<entry name="s"/></service>'), 6, "no protocol"),
    (config("", '<address-group>\n<entry name="g"><description/></entry></address-group>'), 6,
     "neither static nor dynamic"),
    (config(rule("x", frm="trust", to="untrust", action="bogus")), 7, "unknown action"),
    (config("", vsys_extra='<default-security-rules><rules>\n<entry name="other-default"/></rules>'
                           "</default-security-rules>"), 8, "unknown default rule"),
    (config("").replace('name="vsys1"', ""), 4, "without a name"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_malformed_input_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "fw.xml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load(str(path), IFACES)
    err = info.value
    assert err.path == str(path) and err.line == line and message in err.message, str(err)


def test_group_loops_are_input_errors(tmp_path):
    """Loops are refused wherever they are, even in groups no rule uses."""
    groups = """<address-group>
      <entry name="a"><static><member>b</member></static></entry>
      <entry name="b"><static><member>a</member></static></entry></address-group>"""
    text = config(rule("r"), groups)
    with pytest.raises(InputError, match="address group loop") as info:
        load_text(tmp_path, text)
    assert info.value.line in (line_of(text, 'name="a"'), line_of(text, 'name="b"'))
    services = '<service-group>\n<entry name="s"><members><member>s</member></members></entry></service-group>'
    text = config(rule("r"), services)
    with pytest.raises(InputError, match="service group loop") as info:
        load_text(tmp_path, text)
    assert info.value.line == line_of(text, 'name="s"')


def test_a_deep_diamond_of_groups_is_linear(tmp_path):
    """Each group names the previous one twice: 2**40 paths, resolved once per group."""
    groups = ['<entry name="g0"><static><member>10.0.0.1</member></static></entry>']
    groups += [f'<entry name="g{k}"><static><member>g{k - 1}</member><member>g{k - 1}</member>'
               f"<member>10.0.{k}.1</member></static></entry>" for k in range(1, 41)]
    text = config(rule("r", src="g40"), "<address-group>" + "\n".join(groups) + "</address-group>")
    rs = load_text(tmp_path, text)
    assert decide(rs, pkt("tcp", "10.0.40.1", "1.1.1.1", 1)) == ("allow", "r")
    assert decide(rs, pkt("tcp", "10.0.41.1", "1.1.1.1", 1)) == ("deny", "interzone-default")


def test_missing_file_and_size_limits(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="cannot read"):
        load(str(tmp_path / "missing.xml"), IFACES)
    monkeypatch.setattr(panos, "MAX_DEPTH", 5)
    with pytest.raises(InputError, match="nested more than 5") as info:
        load_text(tmp_path, "<config>\n<a><b><c><d><e><f/></e></d></c></b></a></config>")
    assert info.value.line == 2
    monkeypatch.setattr(panos, "MAX_BYTES", 100)
    with pytest.raises(InputError, match="larger than"):
        load_text(tmp_path, config(rule("a")))


MUTATIONS = ["<", ">", "/", '"', "&", "<entry>", "</entry>", "<member>any</member>", "yes", "no", "-", ",",
             "65536", "10.0.0.0/33", "<rule-type>intrazone</rule-type>", "<negate-source>yes</negate-source>",
             "application-default", "<disabled>yes</disabled>", "<static><member>INTERNAL</member></static>",
             "<!DOCTYPE x>", "\x00", "é", "<![CDATA[x]]>", "<!-- c -->", "0-65535", "any"]


TEXT_VALUES = MUTATIONS + ["10.0.0.0/8", "1-2", "0", "vsys1", "", " ", "a,b", "80-70", "::/0", "deny", "drop",
                           "1.2.3.4-1.2.3.1", "intrazone", "interzone", "GOOGLE_DNS", "INTERNAL", "any-tcp"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_sample_loads_or_is_an_input_error(tmp_path, data):
    """Random edits of the real file: raw ones (mostly broken XML) and ones that keep the XML
    well-formed (a text value replaced, an element line duplicated or dropped)."""
    text = corpus_file(SAMPLE).read_text()
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "retext", "retext",
                                          "line-twice", "line-gone"]))
        if kind in ("retext", "line-twice", "line-gone"):
            if kind == "retext":
                spans = [m.span(1) for m in re.finditer(r">([^<>]+)<", text)]
                if spans:
                    a, b = data.draw(st.sampled_from(spans))
                    text = text[:a] + data.draw(st.sampled_from(TEXT_VALUES)) + text[b:]
                continue
            lines = text.split("\n")
            k = data.draw(st.integers(0, len(lines) - 1))
            lines[k:k + 1] = [lines[k]] * (2 if kind == "line-twice" else 0)
            text = "\n".join(lines)
            continue
        at = data.draw(st.integers(0, len(text)))
        span = data.draw(st.integers(1, 200))
        if kind == "insert":
            text = text[:at] + data.draw(st.sampled_from(MUTATIONS)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + span:]
        elif kind == "replace":
            text = text[:at] + data.draw(st.sampled_from(MUTATIONS)) + text[at + span:]
        else:
            text = text[:at] + text[at:at + span] + text[at:]
    path = tmp_path / "mutant.xml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        rs = load(str(path), SAMPLE_IFACES)
    except InputError as err:
        assert err.path == str(path) and (err.line is None or 1 <= err.line <= text.count("\n") + 2)
        return
    compile_ruleset(SPACE, rs, list(SAMPLE_IFACES))


# --- against a reference interpreter -----------------------------------------------------------

ZONES = ("z1", "z2", "z3")
REF_IFACES = ZONES + ("z4",)  # z4: a zone no rule names
PREFIXES = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.1.7/32", "fd00::/16"]
V4_ADDRS = ["10.1.2.3", "10.1.9.9", "10.200.0.1", "192.168.1.7", "192.168.1.8"]
V6_ADDRS = ["fd00::1", "2001:db8::1"]
REF_SERVICES = {  # name: (xml, matcher)
    "ssh": ("<tcp><port>22</port></tcp>", lambda p: p.proto == 6 and p.dport == 22),
    "webr": ("<tcp><port>80-90,443</port><source-port>1024-65535</source-port></tcp>",
             lambda p: p.proto == 6 and (80 <= p.dport <= 90 or p.dport == 443) and p.sport >= 1024),
    "dns": ("<udp><port>53</port></udp>", lambda p: p.proto == 17 and p.dport == 53),
    "service-http": (None, lambda p: p.proto == 6 and p.dport in (80, 8080)),
    "grp": (None, lambda p: REF_SERVICES["ssh"][1](p) or REF_SERVICES["dns"][1](p)),
}
PORTS = [22, 53, 80, 85, 443, 8080, 1000]


@st.composite
def ref_rules(draw):
    def zones():
        return "any" if draw(st.integers(0, 3)) == 0 else draw(st.lists(st.sampled_from(ZONES), min_size=1,
                                                                          max_size=2, unique=True))

    def addrs():
        return "any" if draw(st.booleans()) else draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2))

    return {
        "from": zones(), "to": zones(), "src": addrs(), "dst": addrs(),
        "nsrc": draw(st.integers(0, 4)) == 0, "ndst": draw(st.integers(0, 4)) == 0,
        "svc": "any" if draw(st.booleans()) else draw(st.lists(st.sampled_from(sorted(REF_SERVICES)), min_size=1,
                                                                max_size=2)),
        "type": draw(st.sampled_from(["universal", "intrazone", "interzone", None])),
        "action": draw(st.sampled_from(["allow", "deny", "drop", "reset-both"])),
        "disabled": draw(st.integers(0, 5)) == 0,
    }


def render(rules, intra: str | None, inter: str | None) -> str:
    body = ""
    for k, r in enumerate(rules):
        extra = "<negate-source>yes</negate-source>" if r["nsrc"] else ""
        extra += "<negate-destination>yes</negate-destination>" if r["ndst"] else ""
        extra += f"<rule-type>{r['type']}</rule-type>" if r["type"] else ""
        extra += "<disabled>yes</disabled>" if r["disabled"] else ""
        body += rule(f"r{k}", r["from"], r["to"], r["src"], r["dst"], r["svc"], "any", r["action"], extra)
    objects = "<service>" + "".join(f'<entry name="{n}"><protocol>{x}</protocol></entry>'
                                    for n, (x, _) in REF_SERVICES.items() if x) + "</service>"
    objects += '<service-group><entry name="grp"><members><member>ssh</member><member>dns</member></members>' \
               "</entry></service-group>"
    defaults = "".join(f'<entry name="{n}-default"><action>{a}</action></entry>'
                       for n, a in (("intrazone", intra), ("interzone", inter)) if a)
    extra = f"<default-security-rules><rules>{defaults}</rules></default-security-rules>" if defaults else ""
    return config(body, objects, vsys_extra=extra)


def ref_decide(rules, intra, inter, p: Packet, i: str, o: str) -> str:
    def in_any(addr: int, values, negate: bool) -> bool:
        hit = values == "any" or any(parse_prefix(x).lo <= addr <= parse_prefix(x).hi for x in values)
        return hit != negate

    for r in rules:
        if r["disabled"]:
            continue
        if r["from"] != "any" and i not in r["from"] or r["to"] != "any" and o not in r["to"]:
            continue
        if r["type"] == "intrazone" and i != o or r["type"] == "interzone" and i == o:
            continue
        if not in_any(p.src, r["src"], r["nsrc"]) or not in_any(p.dst, r["dst"], r["ndst"]):
            continue
        if r["svc"] != "any" and not any(REF_SERVICES[s][1](p) for s in r["svc"]):
            continue
        return "allow" if r["action"] == "allow" else "deny"
    if i == o:
        return "allow" if intra in (None, "allow") else "deny"
    return "allow" if inter == "allow" else "deny"


@st.composite
def packets(draw):
    proto = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    family = draw(st.sampled_from([V4_ADDRS, V6_ADDRS]))
    src, dst = draw(st.sampled_from(family)), draw(st.sampled_from(family))  # a packet has one family
    p = pkt(proto, src, dst, draw(st.sampled_from(PORTS)), sport=draw(st.sampled_from([53, 1023, 1024, 40000])))
    return p, draw(st.sampled_from(REF_IFACES)), draw(st.sampled_from(REF_IFACES))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(rules=st.lists(ref_rules(), max_size=6), intra=st.sampled_from([None, "allow", "deny"]),
       inter=st.sampled_from([None, "allow", "drop"]), samples=st.lists(packets(), min_size=5, max_size=25))
def test_imported_rules_agree_with_a_reference_interpreter(tmp_path, rules, intra, inter, samples):
    text = render(rules, intra, inter)
    rs = load_text(tmp_path, text, REF_IFACES)
    compiled = compile_ruleset(SPACE, rs, list(REF_IFACES))
    assert not any(r.approximation for r in rs.rules)
    for p, i, o in samples:
        want = ref_decide(rules, intra, inter, p, i, o)
        got = rs.decide(p, i, o)[0]
        assert got == want, f"{p} {i}->{o}\n{text}"
        assert bdd_allows(compiled, p, i, o) == (got == "allow")


def test_random_packets_on_the_sample_agree_with_the_bdd():
    path = str(corpus_file(SAMPLE))
    ruleset, compiled = imported(path, SAMPLE_IFACES)
    rnd = random.Random(11)
    v4 = [addr_to_int(a) for a in INTERNAL + ["8.8.8.8", "8.8.4.4", "93.184.216.34"]]
    v6 = [addr_to_int(a) for a in ("2001:db8::1", "fd00::5")]
    allowed = 0
    for _ in range(400):
        proto = rnd.choice((6, 17, 1))
        hosts = v4 if rnd.random() < 0.8 else v6
        p = Packet(rnd.choice(hosts), rnd.choice(hosts), proto, rnd.randint(1024, 65535) if proto != 1 else 0,
                   rnd.choice((22, 53, 80, 443, 993, 3389)) if proto != 1 else 0, 8 if proto == 1 else 0)
        i, o = rnd.choice(SAMPLE_IFACES), rnd.choice(SAMPLE_IFACES)
        ours = ruleset.decide(p, i, o)[0] == "allow"
        assert ours == bdd_allows(compiled, p, i, o)
        allowed += ours
    assert 0 < allowed < 400
