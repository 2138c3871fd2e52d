"""The console command leaves without Python's teardown once its report is out (cli.finish): the report must
still be complete, the exit status the contract's, and nothing must be lost on a pipe or in a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BETA = ROOT / "topologies" / "beta-prime-city.yaml"
ALPHA = ROOT / "topologies" / "alpha-city.yaml"
INCIDENTS = ROOT / "captures" / "alpha-city-incidents.pcap"


def segverify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segverify.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, check=False)


def test_report_on_stdout_is_whole_and_status_kept() -> None:
    proc = segverify("check", str(BETA), "--format", "json")
    assert proc.returncode == 1 and proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert doc["status"] == "violations" and doc["findings"]
    assert segverify("check", str(ALPHA), "--format", "json").returncode == 0


def test_report_in_a_file_is_whole(tmp_path: Path) -> None:
    out = tmp_path / "replay.json"
    proc = segverify("replay", str(ALPHA), str(INCIDENTS), "--format", "json", "-o", str(out))
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr == ""
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["command"] == "replay" and doc["flows"]


def test_text_report_into_a_closed_pipe_does_not_raise() -> None:
    proc = subprocess.run(f"{sys.executable} -m segverify.cli check {BETA} | head -c 20; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, cwd=ROOT, check=False)
    assert len(proc.stdout) == 20 and b"Traceback" not in proc.stderr
    assert proc.returncode == 1  # the verdict's status, whatever became of the pipe


def test_bad_input_keeps_its_message_and_status(tmp_path: Path) -> None:
    proc = segverify("check", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr and "Traceback" not in proc.stderr
