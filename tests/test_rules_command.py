"""`segverify rules`: what segverify understood from a vendor file, in its normalised form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from segverify.cli import main

CONFIGS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "configs"


def test_rules_of_a_small_iptables_file(tmp_path):
    f = tmp_path / "fw.rules"
    f.write_text("*filter\n:FORWARD DROP [0:0]\n"
                 "-A FORWARD -i lg -o inet -s 10.2.0.0/16 ! -d 10.3.0.0/24 -p tcp --dport 3389 -j ACCEPT\n"
                 "-A FORWARD -m set --match-set blocked src -j DROP\nCOMMIT\n")
    r = CliRunner().invoke(main, ["rules", str(f), "--format", "iptables-save", "--interfaces", "lg,inet", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["default"] == "deny"
    first = out["rules"][0]
    assert (first["id"], first["action"], first["in"], first["out"]) == ("FORWARD#1", "allow", ["lg"], ["inet"])
    assert first["match"] == "src 10.2.0.0/16 dst not 10.3.0.0/24 tcp dport 3389"
    assert first["source"].endswith("fw.rules:3")
    assert "approximation" in out["rules"][1] and out["rules"][1]["source"].endswith("fw.rules:4")


def test_rules_bad_input():
    r = CliRunner().invoke(main, ["rules", "nope.rules", "--format", "iptables-save"])
    assert r.exit_code == 2 and "nope.rules" in r.stderr
    r = CliRunner().invoke(main, ["rules", "nope.rules", "--format", "checkpoint"])
    assert r.exit_code == 2 and "unknown config format" in r.stderr


@pytest.mark.skipif(not CONFIGS.is_dir(), reason="shared corpus not present beside the repository")
def test_rules_text_table_on_the_oracle_ruleset():
    path = CONFIGS / "iptables" / "oracle_ruleset20.iptables"
    r = CliRunner().invoke(main, ["rules", str(path), "--format", "iptables-save", "--interfaces", "r-mn,r-lg,r-in"])
    assert r.exit_code == 0
    assert "17 rules, then default deny" in r.stdout
    assert "LG_OUT#5" in r.stdout and "approximated" in r.stdout
