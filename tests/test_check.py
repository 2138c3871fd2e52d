"""`segverify check` on the bundled cities and on small topologies built for each finding code."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from segverify.analysis.check import check
from segverify.cli import main
from segverify.topology.loader import load_topology

ROOT = Path(__file__).resolve().parents[1]


def run_json(path: Path | str, *extra: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, ["check", str(path), "--format", "json", *extra])
    assert r.exit_code in (0, 1, 3), r.output + r.stderr
    return r.exit_code, json.loads(r.stdout)


def by_code(report: dict) -> dict[tuple[str, str | None, str | None], dict]:
    return {(f["code"], f.get("src_segment"), f.get("dst_segment")): f for f in report["findings"]}


def topo(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "t.yaml"
    p.write_text("version: 1\nname: t\n" + textwrap.dedent(body), encoding="utf-8")
    return p


# --- bundled examples --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    """Run from the repository root, so paths in reports read as a user would type them."""
    monkeypatch.chdir(ROOT)


def test_alpha_city_is_compliant():
    code, report = run_json(ROOT / "topologies" / "alpha-city.yaml")
    assert code == 0
    assert report["status"] == "compliant"
    assert report["findings"] == []
    assert report["model"] == "alpha"
    assert report["stats"]["firewalls"] >= 3
    assert report["inputs"][0]["path"].endswith("alpha-city.yaml")
    assert len(report["inputs"][0]["sha256"]) == 64


def test_beta_prime_city_reports_each_deliberate_mistake():
    code, report = run_json("topologies/beta-prime-city.yaml")
    assert code == 1 and report["status"] == "violations"
    found = by_code(report)
    assert set(found) == {
        ("FIREWALL_BYPASS", "lg", "mn"),
        ("MYNUMBER_ISOLATION", "lg", "mn"),
        ("MYNUMBER_ISOLATION", "mn", "lg"),
        ("EXCEPTION_TOO_BROAD", "mn", "lgwan-wan"),
        ("LGWAN_INTERNET_UNSANITIZED", "lg", "inet"),
        ("RULE_SHADOWED", None, None),
    }
    # (a) SMB across LG → IN: the witness is the real SMB packet, the rule r20 with its line
    smb = found[("LGWAN_INTERNET_UNSANITIZED", "lg", "inet")]
    assert smb["severity"] == "high"
    assert smb["witness"] == {"src": "10.120.2.10", "dst": "10.130.2.45", "proto": "tcp", "sport": 49152,
                              "dport": 445}
    assert smb["path"] == [{"firewall": "fw-inet", "in": "lan-lg", "out": "lan-in", "rule": "r20",
                            "source": "topologies/beta-prime-city.yaml:83", "rule_name": "帳票出力"}]
    assert smb["rules_total"] == 1
    assert smb["packets"] == 65536  # one source address, one destination, one port: every source port
    # (b) the exception names the whole lgwan-wan segment
    assert "lgwan-wan" in found[("EXCEPTION_TOO_BROAD", "mn", "lgwan-wan")]["message"]
    # (c) the dual-homed PC joins MN and LG with no firewall
    bypass = found[("FIREWALL_BYPASS", "lg", "mn")]
    assert bypass["severity"] == "critical"
    assert bypass["via"] == ["host kokuho-pc"]
    iso = found[("MYNUMBER_ISOLATION", "mn", "lg")]
    assert iso["path"] == [] and iso["via"] == ["host kokuho-pc"]
    # (d) r15 is shadowed by r10
    shadow = found[("RULE_SHADOWED", None, None)]
    assert shadow["severity"] == "info"
    assert shadow["rules"] == [{"firewall": "fw-inet", "rule": "r15",
                                "source": "topologies/beta-prime-city.yaml:78", "shadowed_by": "r10"}]


def test_report_is_byte_identical_across_runs():
    path = ROOT / "topologies" / "beta-prime-city.yaml"
    a = CliRunner().invoke(main, ["check", str(path), "--format", "json"]).stdout
    b = CliRunner().invoke(main, ["check", str(path), "--format", "json"]).stdout
    assert a == b


def test_text_report_in_both_languages():
    path = ROOT / "topologies" / "beta-prime-city.yaml"
    en = CliRunner().invoke(main, ["check", str(path)])
    ja = CliRunner().invoke(main, ["check", str(path), "--lang", "ja"])
    assert en.exit_code == ja.exit_code == 1
    assert "VIOLATIONS FOUND" in en.stdout and "r20" in en.stdout
    assert "違反あり" in ja.stdout and "無害化" in ja.stdout
    assert "…" not in ja.stdout.replace("、…", "")  # nothing cut out of Japanese messages
    assert "sha256:" in en.stdout


def test_output_file(tmp_path):
    out = tmp_path / "report.json"
    r = CliRunner().invoke(main, ["check", str(ROOT / "topologies" / "alpha-city.yaml"), "--format", "json",
                                  "-o", str(out)])
    assert r.exit_code == 0
    assert json.loads(out.read_text())["status"] == "compliant"


# --- one topology per finding code -------------------------------------------------------------

BASE = """\
segments:
  - {name: mn, kind: mynumber, cidrs: [10.1.0.0/16]}
  - {name: lg, kind: lgwan, cidrs: [10.2.0.0/16, "fd00:2::/48"]}
  - {name: inet, kind: internet, cidrs: [10.3.0.0/16, "fd00:3::/48"]}
  - {name: lgwan-wan, kind: lgwan-wan, cidrs: [172.16.0.0/12]}
hosts:
  - {name: pc1, addresses: [10.2.0.21]}
  - {name: vb1, addresses: [10.3.0.10]}
  - {name: mn-gw, addresses: [10.1.0.5]}
  - {name: chukan, addresses: [172.16.1.1]}
"""

FW = """\
firewalls:
  - name: fw1
    interfaces:
      - {name: p1, segment: mn}
      - {name: p2, segment: lg}
      - {name: p3, segment: inet}
      - {name: p4, segment: lgwan-wan}
    rules:
"""


def test_channel_covers_exactly_its_ports(tmp_path):
    path = topo(tmp_path, BASE + FW + """\
      - {id: r10, action: allow, from: p2, to: p3, src: lg, dst: vb1, proto: tcp, dport: "3389-3390"}
channels:
  - {name: vb, kind: screen-transfer, protocol: rdp, clients: [lg], servers: [vb1], ports: [tcp/3389]}
""")
    code, report = run_json(path)
    assert code == 1
    (f,) = report["findings"]
    assert (f["code"], f["src_segment"], f["dst_segment"]) == ("LGWAN_INTERNET_UNSANITIZED", "lg", "inet")
    assert f["witness"] == {"src": "10.2.0.21", "dst": "10.3.0.10", "proto": "tcp", "sport": 49152, "dport": 3390}
    assert f["path"][0]["rule"] == "r10" and f["path"][0]["source"].endswith("t.yaml:21")
    # lg owns 2**16 IPv4 addresses; one server, one port, any source port
    assert f["packets"] == 2**16 * 2**16


def test_compliant_when_rules_equal_declarations(tmp_path):
    path = topo(tmp_path, BASE + FW + """\
      - {id: r10, action: allow, from: p2, to: p3, src: lg, dst: vb1, proto: tcp, dport: 3389}
      - {id: r20, action: allow, from: p1, to: p4, src: mn-gw, dst: chukan, proto: tcp, dport: 443}
      - {id: r30, action: allow, from: p2, to: p4}
      - {id: r99, action: deny}
channels:
  - {name: vb, kind: screen-transfer, protocol: rdp, clients: [lg], servers: [vb1], ports: [tcp/3389]}
exceptions:
  - {name: chukan-link, from: [mn-gw], to: [chukan], ports: [tcp/443], reason: 中間サーバー連携}
""")
    code, report = run_json(path)
    assert (code, report["status"], report["findings"]) == (0, "compliant", [])


def test_mynumber_rule_outside_exception(tmp_path):
    path = topo(tmp_path, BASE + FW + """\
      - {id: r20, action: allow, from: p1, to: p4, src: mn-gw, dst: chukan, proto: tcp, dport: [443, 8443]}
exceptions:
  - {name: chukan-link, from: [mn-gw], to: [chukan], ports: [tcp/443]}
""")
    code, report = run_json(path)
    (f,) = report["findings"]
    assert (f["code"], f["severity"], f["src_segment"], f["dst_segment"]) == (
        "MYNUMBER_ISOLATION", "critical", "mn", "lgwan-wan")
    assert f["witness"]["dport"] == 8443 and f["witness"]["dst"] == "172.16.1.1"
    assert f["packets"] == 2**16


def test_two_firewalls_in_series_compose(tmp_path):
    body = BASE.replace("hosts:", "  - {name: dmz, kind: internet, cidrs: [10.4.0.0/16]}\nhosts:") + """\
firewalls:
  - name: fw-a
    interfaces: [{name: a1, segment: lg}, {name: a2, segment: dmz}]
    rules:
      - {id: a10, action: allow, from: a1, to: a2, proto: tcp, dport: [445, 139]}
  - name: fw-b
    interfaces: [{name: b1, segment: dmz}, {name: b2, segment: inet}]
    rules:
      - {id: b10, action: allow, from: b1, to: b2, dst: vb1, proto: tcp, dport: 139}
"""
    code, report = run_json(topo(tmp_path, body))
    found = by_code(report)
    chained = found[("LGWAN_INTERNET_UNSANITIZED", "lg", "inet")]
    # only 139 passes both firewalls, and only towards vb1
    assert chained["witness"]["dport"] == 139 and chained["witness"]["dst"] == "10.3.0.10"
    assert [(p["firewall"], p["rule"]) for p in chained["path"]] == [("fw-a", "a10"), ("fw-b", "b10")]
    assert chained["packets"] == 2**16 * 2**16  # lg's IPv4 sources × every source port
    assert {r["rule"] for r in chained["rules"]} == {"a10", "b10"}
    assert ("LGWAN_INTERNET_UNSANITIZED", "lg", "dmz") in found


def test_series_that_blocks_is_compliant(tmp_path):
    body = BASE.replace("hosts:", "  - {name: dmz, kind: lgwan, cidrs: [10.4.0.0/16]}\nhosts:") + """\
firewalls:
  - name: fw-a
    interfaces: [{name: a1, segment: lg}, {name: a2, segment: dmz}]
    rules: [{id: a10, action: allow, proto: tcp, dport: 445}]
  - name: fw-b
    interfaces: [{name: b1, segment: dmz}, {name: b2, segment: inet}]
    rules: [{id: b10, action: allow, src: lg, proto: tcp, dport: 139}]
"""
    code, report = run_json(topo(tmp_path, body))
    assert code == 0, report["findings"]


def test_ipv6_only_rule_gives_ipv6_witness(tmp_path):
    path = topo(tmp_path, BASE + FW + """\
      - {id: r10, action: allow, from: p3, to: p2, src: "fd00:3::/48", dst: "fd00:2::/48", proto: tcp, dport: 22}
""")
    (f,) = run_json(path)[1]["findings"]
    assert f["src_segment"] == "inet" and f["dst_segment"] == "lg"
    assert f["witness"]["src"].startswith("fd00:3:") and f["witness"]["dst"].startswith("fd00:2:")
    assert f["witness"]["dport"] == 22


def test_router_across_families_is_a_bypass(tmp_path):
    path = topo(tmp_path, BASE + "routers:\n  - {name: core-sw, segments: [lg, inet]}\n")
    code, report = run_json(path)
    found = by_code(report)
    assert found[("FIREWALL_BYPASS", "inet", "lg")]["via"] == ["router core-sw"]
    assert found[("FIREWALL_BYPASS", "inet", "lg")]["severity"] == "high"
    assert ("LGWAN_INTERNET_UNSANITIZED", "lg", "inet") in found
    assert ("LGWAN_INTERNET_UNSANITIZED", "inet", "lg") in found


def test_router_inside_one_family_is_fine(tmp_path):
    path = topo(tmp_path, BASE + "routers:\n  - {name: lg-sw, segments: [lg, lgwan-wan]}\n")
    assert run_json(path)[0] == 0


def test_dual_homed_sanitizer_is_not_a_bypass(tmp_path):
    body = BASE.replace("hosts:\n", "hosts:\n  - {name: cdr1, addresses: [10.2.9.5, 10.3.9.5]}\n") + """\
channels:
  - name: file-import
    kind: file-sanitization
    sanitizer: cdr1
    inbound: {peers: [inet], ports: [tcp/443]}
    outbound: {peers: [lg], ports: [tcp/443]}
"""
    assert run_json(topo(tmp_path, body))[0] == 0
    plain = BASE.replace("hosts:\n", "hosts:\n  - {name: cdr1, addresses: [10.2.9.5, 10.3.9.5]}\n")
    code, report = run_json(topo(tmp_path, plain))
    assert by_code(report)[("FIREWALL_BYPASS", "inet", "lg")]["via"] == ["host cdr1"]


def test_sanitizer_legs_cover_both_directions_on_their_ports(tmp_path):
    body = BASE.replace("hosts:\n", "hosts:\n  - {name: mailsan, addresses: [10.3.9.25]}\n") + FW + """\
      - {id: r10, action: allow, from: p3, to: p2, src: mailsan, dst: lg, proto: tcp, dport: 25}
      - {id: r20, action: allow, from: p2, to: p3, src: lg, dst: mailsan, proto: tcp, dport: 25}
      - {id: r30, action: allow, from: p3, to: p2, src: mailsan, dst: lg, proto: tcp, dport: 445}
channels:
  - name: mail
    kind: mail-text
    sanitizer: mailsan
    inbound: {peers: [inet], ports: [tcp/25]}
    outbound: {peers: [lg], ports: [tcp/25]}
"""
    (f,) = run_json(topo(tmp_path, body))[1]["findings"]
    assert f["src_segment"] == "inet" and f["witness"]["dport"] == 445 and f["path"][0]["rule"] == "r30"


def test_beta_direction_channel_under_alpha(tmp_path):
    body = BASE.replace("hosts:\n", "hosts:\n  - {name: vdi, addresses: [10.2.0.50]}\n") + FW + """\
      - {id: r10, action: allow, from: p3, to: p2, src: inet, dst: vdi, proto: tcp, dport: 3389}
channels:
  - {name: vdi, kind: screen-transfer, protocol: rdp, clients: [inet], servers: [vdi], ports: [tcp/3389]}
"""
    path = topo(tmp_path, body)
    found = by_code(run_json(path)[1])
    assert set(found) == {("CHANNEL_NOT_ALLOWED_BY_MODEL", None, None), ("LGWAN_INTERNET_UNSANITIZED", "inet", "lg")}
    beta = topo(tmp_path, body.replace("segments:", "model: beta\nsegments:", 1))
    assert run_json(beta)[0] == 0


def test_cloud_direct_only_in_alpha_prime(tmp_path):
    body = BASE.replace("hosts:", "  - {name: public, kind: public, cidrs: [0.0.0.0/0]}\nhosts:") + """\
channels:
  - {name: m365, kind: cloud-direct, clients: [lg], servers: [52.96.0.10], ports: [tcp/443]}
"""
    found = by_code(run_json(topo(tmp_path, body))[1])
    assert ("CHANNEL_NOT_ALLOWED_BY_MODEL", None, None) in found
    ok = topo(tmp_path, body.replace("segments:", "model: alpha-prime\nsegments:", 1))
    assert run_json(ok)[0] == 0
    wide = topo(tmp_path, body.replace("segments:", "model: alpha-prime\nsegments:", 1).replace(
        "52.96.0.10", "52.96.0.0/16"))
    assert "one by one" in by_code(run_json(wide)[1])[("CHANNEL_NOT_ALLOWED_BY_MODEL", None, None)]["message"]


def test_exception_classes(tmp_path):
    body = BASE + """\
exceptions:
  - {name: to-inet, from: [mn-gw], to: [vb1], ports: [tcp/443]}
  - {name: no-port, from: [mn-gw], to: [chukan]}
  - {name: wide, from: [10.1.0.0/24], to: [chukan], ports: [tcp/443]}
"""
    report = run_json(topo(tmp_path, body))[1]
    codes = sorted((f["code"], f.get("exception")) for f in report["findings"])
    assert codes == [("EXCEPTION_NOT_ALLOWED", "to-inet"), ("EXCEPTION_TOO_BROAD", "no-port"),
                     ("EXCEPTION_TOO_BROAD", "wide")]


def test_security_cloud_bypass(tmp_path):
    segs = BASE.replace("hosts:", "  - {name: sc, kind: security-cloud, cidrs: [100.64.0.0/16]}\n"
                                  "  - {name: public, kind: public, cidrs: [0.0.0.0/0]}\nhosts:")
    body = segs + """\
firewalls:
  - name: fw-out
    interfaces: [{name: i, segment: inet}, {name: s, segment: sc}, {name: o, segment: public}]
    rules:
      - {id: r10, action: allow, from: i, to: s}
      - {id: r20, action: allow, from: s, to: o}
      - {id: r30, action: allow, from: i, to: o, proto: tcp, dport: 443}
"""
    found = by_code(run_json(topo(tmp_path, body))[1])
    f = found[("SECURITY_CLOUD_BYPASS", "inet", "public")]
    assert f["severity"] == "medium" and f["witness"]["dport"] == 443
    assert f["path"][0]["rule"] == "r30"
    r30 = "      - {id: r30, action: allow, from: i, to: o, proto: tcp, dport: 443}\n"
    fixed = topo(tmp_path, body.replace(r30, ""))
    assert run_json(fixed)[0] == 0


def test_unknown_address(tmp_path):
    body = BASE.replace("hosts:\n", "hosts:\n  - {name: stray, addresses: [192.0.2.7]}\n")
    (f,) = run_json(topo(tmp_path, body))[1]["findings"]
    assert f["code"] == "UNKNOWN_ADDRESS" and f["addresses"] == ["192.0.2.7"] and f["severity"] == "medium"


def test_unimplemented_vendor_format_is_over_approximated(tmp_path, monkeypatch):
    from segverify import importers

    monkeypatch.setitem(importers.FORMATS, "junos", None)
    (tmp_path / "fw.conf").write_text("set security policies default-policy permit-all\n")
    body = BASE + """\
firewalls:
  - name: srx
    interfaces: [{name: trust, segment: lg}, {name: untrust, segment: inet}]
    config: {format: junos, file: fw.conf}
"""
    report = run_json(topo(tmp_path, body))[1]
    found = by_code(report)
    assert found[("UNSUPPORTED_RULE", None, None)]["severity"] == "low"
    assert ("LGWAN_INTERNET_UNSANITIZED", "lg", "inet") in found
    assert report["inputs"][1]["path"].endswith("fw.conf")


def test_many_rules_give_one_finding_per_pair(tmp_path):
    rules = "".join(
        f"      - {{id: r{i}, action: allow, from: p2, to: p3, src: 10.2.{i}.0/24, dst: vb1, proto: tcp, "
        f"dport: {1000 + i}}}\n" for i in range(200)
    )
    report = run_json(topo(tmp_path, BASE + FW + rules))[1]
    (f,) = report["findings"]
    assert f["rules_total"] == 200 and len(f["rules"]) == 50


@pytest.mark.parametrize("name", ["alpha-city.yaml", "beta-prime-city.yaml"])
def test_api_and_cli_agree(name):
    result = check(load_topology(str(ROOT / "topologies" / name)))
    _, report = run_json(ROOT / "topologies" / name)
    assert [f.code for f in result.findings] == [f["code"] for f in report["findings"]]


def test_contract_example(tmp_path):
    """The contract's own example topology (fw2 is an iptables-save file) is compliant; the only
    notes are that the IPv4-only file says nothing about IPv6 (taken as allowed: low)."""
    code, report = run_json("tests/data/contract/topology.yaml")
    assert (code, report["status"]) == (0, "compliant")
    assert [(f["code"], f["severity"]) for f in report["findings"]] == [("UNSUPPORTED_RULE", "low")]
    (rule,) = report["findings"][0]["rules"]
    assert rule["firewall"] == "fw2" and rule["rule"] == "(no ip6tables rules)"
    assert [i["path"] for i in report["inputs"]] == ["tests/data/contract/topology.yaml",
                                                       "tests/data/contract/fw2.rules"]


def test_contract_example_with_an_smb_rule_added(tmp_path):
    src = Path("tests/data/contract")
    (tmp_path / "fw2.rules").write_text((src / "fw2.rules").read_text().replace(
        "COMMIT", "-A FORWARD -i eth1 -o eth2 -p tcp --dport 445 -j ACCEPT\nCOMMIT"))
    (tmp_path / "topology.yaml").write_text((src / "topology.yaml").read_text())
    code, report = run_json(tmp_path / "topology.yaml")
    f = by_code(report)[("LGWAN_INTERNET_UNSANITIZED", "lg", "inet")]
    assert f["witness"]["dport"] == 445
    assert f["path"] == [{"firewall": "fw2", "in": "eth1", "out": "eth2", "rule": "FORWARD#3",
                          "source": f"{tmp_path}/fw2.rules:7"}]
