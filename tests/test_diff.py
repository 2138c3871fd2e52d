"""`segverify diff`: opened and closed sets known by construction, and a brute-force cross-check."""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner

from segverify.analysis.diff import Comparison
from segverify.cli import main
from segverify.model.addresses import addr_to_int
from segverify.model.rules import Packet
from segverify.topology.loader import load_topology

HEAD = """\
version: 1
name: {name}
segments:
  - {{name: mn, kind: mynumber, cidrs: [10.1.0.0/16]}}
  - {{name: lg, kind: lgwan, cidrs: [10.2.0.0/16]}}
  - {{name: inet, kind: internet, cidrs: [10.3.0.0/16]}}
hosts:
  - {{name: vb1, addresses: [10.3.0.10]}}
channels:
  - {{name: vb, kind: screen-transfer, protocol: rdp, clients: [lg], servers: [vb1], ports: [tcp/3389]}}
firewalls:
  - name: fw1
    interfaces: [{{name: p1, segment: mn}}, {{name: p2, segment: lg}}, {{name: p3, segment: inet}}]
    rules:
"""
R10 = "      - {id: r10, action: allow, from: p2, to: p3, src: lg, dst: vb1, proto: tcp, dport: 3389}\n"
R90 = "      - {id: r90, action: deny}\n"


def write(tmp_path: Path, name: str, rules: str, extra: str = "") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(HEAD.format(name=name) + rules + extra, encoding="utf-8")
    return p


def run(before: Path, after: Path, *args: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, ["diff", str(before), str(after), "--format", "json", *args])
    assert r.exit_code in (0, 1), r.output + r.stderr
    return r.exit_code, json.loads(r.stdout)


def test_no_change_is_empty(tmp_path):
    a = write(tmp_path, "a", R10 + R90)
    code, report = run(a, a)
    assert (code, report["findings"], report["status"]) == (0, [], "compliant")


def test_rule_inserted_above_the_deny_opens_smb(tmp_path):
    before = write(tmp_path, "before", R10 + R90)
    r15 = "      - {id: r15, action: allow, from: p2, to: p3, src: lg, dst: inet, proto: tcp, dport: 445}\n"
    after = write(tmp_path, "after", R10 + r15 + R90)
    code, report = run(before, after)
    assert code == 1
    (f,) = report["findings"]
    assert (f["code"], f["change"], f["severity"], f["declared"]) == ("LGWAN_INTERNET_UNSANITIZED", "opened", "high",
                                                                      False)
    assert f["witness"]["dport"] == 445 and [r["rule"] for r in f["rules"]] == ["r15"]
    assert f["packets"] == 2**16 * 2**16 * 2**16  # every lg source, every inet destination, every source port
    assert f["path"][0]["rule"] == "r15"


def test_rule_removed_closes_declared_traffic(tmp_path):
    before = write(tmp_path, "before", R10 + R90)
    after = write(tmp_path, "after", R90)
    code, report = run(before, after)
    assert code == 0  # closing is never a violation
    (f,) = report["findings"]
    assert (f["change"], f["severity"], f["declared"]) == ("closed", "info", True)
    assert [r["rule"] for r in f["rules"]] == ["r10"]  # responsible rule taken from BEFORE
    assert f["packets"] == 2**16 * 2**16


def test_port_range_widened_opens_exactly_the_new_port(tmp_path):
    before = write(tmp_path, "before", R10 + R90)
    after = write(tmp_path, "after", R10.replace("dport: 3389", 'dport: "3389-3390"') + R90)
    code, report = run(before, after)
    (f,) = report["findings"]
    assert (f["change"], f["witness"]["dport"], f["packets"]) == ("opened", 3390, 2**16 * 2**16)
    assert code == 1


def test_rule_moved_above_closes_its_shadow(tmp_path):
    deny = "      - {id: r20, action: deny, src: 10.2.0.0/24}\n"
    before = write(tmp_path, "before", R10 + deny + R90)
    after = write(tmp_path, "after", deny + R10 + R90)
    code, report = run(before, after)
    (f,) = report["findings"]
    assert (f["change"], f["packets"]) == ("closed", 256 * 2**16)
    assert f["witness"]["src"].startswith("10.2.0.")
    assert code == 0


def test_declared_opening_is_not_a_violation(tmp_path):
    before = write(tmp_path, "before", R90)
    after = write(tmp_path, "after", R10 + R90)
    code, report = run(before, after)
    (f,) = report["findings"]
    assert (f["change"], f["severity"], f["declared"]) == ("opened", "info", True)
    assert code == 0


def test_only_a_config_file_differs(tmp_path):
    rules = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i p2 -o p3 -d 10.3.0.10 -p tcp --dport 3389 -j ACCEPT\n"
    (tmp_path / "old.rules").write_text(rules + "COMMIT\n")
    (tmp_path / "new.rules").write_text(rules + "-A FORWARD -i p1 -o p2 -p udp -j ACCEPT\nCOMMIT\n")
    before = write(tmp_path, "before", "", "").read_text().replace(
        "    rules:\n", "    config: {format: iptables-save, file: old.rules}\n")
    after = before.replace("old.rules", "new.rules")
    (tmp_path / "b.yaml").write_text(before)
    (tmp_path / "a.yaml").write_text(after)
    code, report = run(tmp_path / "b.yaml", tmp_path / "a.yaml")
    (f,) = [f for f in report["findings"] if f["change"] == "opened"]
    assert (f["code"], f["src_segment"], f["dst_segment"], f["severity"]) == ("MYNUMBER_ISOLATION", "mn", "lg",
                                                                              "critical")
    assert f["rules"][0]["rule"] == "FORWARD#2" and f["rules"][0]["source"].endswith("new.rules:4")
    assert code == 1


def test_firewall_option_restricts_to_one_firewall(tmp_path):
    second = """\
  - name: fw2
    interfaces: [{name: q1, segment: lg}, {name: q2, segment: inet}]
    rules:
"""
    before = write(tmp_path, "before", R10 + R90 + second + R90)
    after = write(tmp_path, "after",
                  R10 + "      - {id: r11, action: allow, proto: udp}\n" + R90 + second
                  + "      - {id: s1, action: allow, proto: tcp, dport: 22}\n" + R90)
    _, both = run(before, after)
    _, only2 = run(before, after, "--firewall", "fw2")
    assert {r["rule"] for f in both["findings"] for r in f["rules"]} >= {"r11", "s1"}
    assert {r["rule"] for f in only2["findings"] for r in f["rules"]} == {"s1"}
    assert only2["stats"]["firewall"] == "fw2"
    r = CliRunner().invoke(main, ["diff", str(before), str(after), "--firewall", "nope"])
    assert r.exit_code == 2 and "nope" in r.stderr


def test_opened_set_equals_brute_force_on_random_packets(tmp_path):
    before = write(tmp_path, "before", R10
                   + "      - {id: r20, action: allow, from: p2, to: p3, src: 10.2.0.0/17, proto: tcp, dport: 80-90}\n"
                   + "      - {id: r30, action: deny, dst: 10.3.0.0/24}\n"
                   + "      - {id: r40, action: allow, from: p3, to: p2, proto: udp, sport: 53}\n" + R90)
    after = write(tmp_path, "after", "      - {id: r05, action: deny, src: 10.2.128.0/17}\n" + R10
                  + "      - {id: r20, action: allow, from: p2, to: p3, src: 10.2.0.0/16, proto: tcp, dport: 80-100}\n"
                  + "      - {id: r40, action: allow, from: p3, to: p2, proto: udp, sport: 53-54}\n" + R90)
    tb, ta = load_topology(str(before)), load_topology(str(after))
    cmp = Comparison(tb, ta)
    sp = cmp.space
    rng = random.Random(5)
    changed = {"opened": 0, "closed": 0}
    fw_b, fw_a = tb.firewalls["fw1"].ruleset, ta.firewalls["fw1"].ruleset
    for (a, ia), (b, ib) in [(("lg", "p2"), ("inet", "p3")), (("inet", "p3"), ("lg", "p2"))]:
        opened, closed = cmp.sets(a, b)
        base_a, base_b = {"lg": "10.2", "inet": "10.3"}[a], {"lg": "10.2", "inet": "10.3"}[b]
        for _ in range(3000):
            proto = rng.choice([6, 17])
            dst = f"{base_b}.0.10" if rng.random() < 0.3 else f"{base_b}.{rng.choice([0, 1, 7])}.{rng.randrange(256)}"
            p = Packet(addr_to_int(f"{base_a}.{rng.randrange(256)}.{rng.randrange(256)}"), addr_to_int(dst),
                       proto, rng.choice([53, 54, 1000, 40000]), rng.choice([80, 90, 95, 100, 101, 3389, 53]))
            was = fw_b.decide(p, ia, ib)[0] == "allow"
            now = fw_a.decide(p, ia, ib)[0] == "allow"
            cube = sp.packet(p)
            assert ((cube & opened) != sp.false) == (now and not was), p
            assert ((cube & closed) != sp.false) == (was and not now), p
            changed["opened"] += now and not was
            changed["closed"] += was and not now
    assert changed["opened"] > 100 and changed["closed"] > 20, changed  # the sample really exercises both
