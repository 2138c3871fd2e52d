"""The bundled example captures of みどり市 give the verdicts the README shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from segverify.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def replay(capture: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, ["replay", "topologies/alpha-city.yaml", capture, "--format", "json"])
    return r.exit_code, json.loads(r.stdout)


def test_ordinary_day_is_compliant():
    code, report = replay("captures/alpha-city-day.pcap")
    assert (code, report["status"], report["findings"]) == (0, "compliant", [])
    verdicts = sorted(f["verdict"] for f in report["flows"])
    assert verdicts.count("channel:virtual-browser") == 2 and "exception:chukan-link" in verdicts
    mail = next(f for f in report["flows"] if f["dport"] == 25 and f["src"] == "10.20.1.30")
    assert mail["notes"] == ["content: smtp, 1 message(s) inspected"]


def test_incident_day_shows_each_planted_problem():
    code, report = replay("captures/alpha-city-incidents.pcap")
    assert code == 1
    found = sorted((f["code"], f.get("src_segment"), f.get("dst_segment")) for f in report["findings"])
    assert found == [
        ("DENIED_BUT_OBSERVED", "lg", "inet"),
        ("DENIED_BUT_OBSERVED", "mn", "lg"),
        ("MAIL_NOT_TEXT", "lg", "lg"),
        ("MYNUMBER_FLOW", "mn", "lg"),
        ("PROTOCOL_MISMATCH", "lg", "inet"),
        ("UNSANITIZED_FLOW", "lg", "inet"),
    ]
    mail = next(f for f in report["findings"] if f["code"] == "MAIL_NOT_TEXT")
    assert mail["parts"][0]["filename"] == "seikyu.xls"
    tunnel = next(f for f in report["findings"] if f["code"] == "PROTOCOL_MISMATCH")
    assert tunnel["recognised"] == "ssh"


def test_example_captures_are_reproducible(tmp_path):
    """make_examples.py writes the committed files byte for byte."""
    script = (ROOT / "captures" / "make_examples.py").read_text()
    copy = tmp_path / "make_examples.py"
    copy.write_text(script)
    subprocess.run([sys.executable, str(copy)], check=True, timeout=120)
    for name in ("alpha-city-day.pcap", "alpha-city-incidents.pcap"):
        assert (tmp_path / name).read_bytes() == (ROOT / "captures" / name).read_bytes()
