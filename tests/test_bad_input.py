"""Every class of bad input: one line naming FILE:LINE, exit 2, no traceback, inputs untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from segverify.cli import main

GOOD = """\
version: 1
name: t
segments:
  - {name: lg, kind: lgwan, cidrs: [10.2.0.0/16]}
  - {name: inet, kind: internet, cidrs: [10.3.0.0/16]}
hosts:
  - {name: vb1, addresses: [10.3.0.10]}
firewalls:
  - name: fw1
    interfaces:
      - {name: a, segment: lg}
      - {name: b, segment: inet}
    rules:
      - {id: r1, action: allow, from: a, to: b, src: lg, dst: vb1, proto: tcp, dport: 3389}
channels:
  - {name: vb, kind: screen-transfer, protocol: rdp, clients: [lg], servers: [vb1], ports: [tcp/3389]}
"""


RULES_BLOCK = "    rules:\n" + GOOD.split("    rules:\n")[1].split("channels:")[0]


def run(path: Path, *args: str):
    return CliRunner().invoke(main, ["check", str(path), *args])


def write(tmp_path: Path, text: str, name: str = "topo.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_good_file_is_compliant(tmp_path):
    r = run(write(tmp_path, GOOD))
    assert r.exit_code == 0, r.output
    assert "COMPLIANT" in r.output


CASES = {
    # name: (replace this, with that, expected line, expected words)
    "yaml syntax": ("  - {name: vb1, addresses: [10.3.0.10]}", "  - {name: vb1, addresses: [10.3.0.10]", 8,
                    "YAML syntax error"),
    "unknown segment name": ("dst: vb1,", "dst: vb9,", 14, "'vb9' is not a segment, a host"),
    "bad cidr": ("[10.3.0.0/16]", "[10.3.0.0/33]", 5, "bad CIDR"),
    "host bits set": ("[10.3.0.0/16]", "[10.3.0.1/16]", 5, "did you mean 10.3.0.0/16"),
    "wrong type": ("dport: 3389}", "dport: {a: 1}}", 14, "dport must be a value or a list"),
    "duplicate name": ("{name: vb1,", "{name: lg,", 7, "name 'lg' used twice"),
    "unknown key": ("proto: tcp,", "protocol: tcp,", 14, "unknown key 'protocol'"),
    "unknown kind": ("kind: internet", "kind: internett", 5, "segment kind must be one of"),
    "bad action": ("action: allow", "action: maybe", 14, "action must be allow or deny"),
    "unknown interface": ("from: a,", "from: z,", 14, "'z' is not an interface of this firewall"),
    "bad port": ("dport: 3389", "dport: 70000", 14, "not a port range within 0-65535"),
    "bad port spec": ("ports: [tcp/3389]", "ports: [tcp3389]", 16, "must look like tcp/443"),
    "bad model": ("name: t\n", "name: t\nmodel: gamma\n", 3, "model must be one of"),
    "duplicate key": ("name: t\n", "name: t\nname: u\n", 3, "key 'name' given twice"),
    "missing key": ("{name: lg, kind: lgwan, cidrs: [10.2.0.0/16]}", "{name: lg, kind: lgwan}", 4,
                    "missing required key 'cidrs'"),
    "unknown sanitizer": (
        "channels:\n", "channels:\n  - name: m\n    kind: mail-text\n    sanitizer: nobody\n"
        "    inbound: {peers: [inet], ports: [tcp/25]}\n    outbound: {peers: [lg], ports: [tcp/25]}\n", 18,
        "sanitizer 'nobody' is not a declared host"),
    "bad version": ("version: 1", "version: 2", 1, "unsupported topology version"),
    "unknown config format": (RULES_BLOCK, "    config: {format: checkpoint, file: x.rules}\n", 13,
                              "unknown config format 'checkpoint'"),
    "missing config file": (RULES_BLOCK, "    config: {format: iptables-save, file: missing.rules}\n", 13,
                            "not found"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_names_file_and_line(tmp_path, case):
    old, new, line, words = CASES[case]
    assert old in GOOD, case
    path = write(tmp_path, GOOD.replace(old, new, 1))
    r = run(path)
    assert r.exit_code == 2, (case, r.output)
    assert f"{path}:{line}:" in r.stderr, (case, r.stderr)
    assert words in r.stderr, (case, r.stderr)
    assert "Traceback" not in r.output + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_alias_bomb_is_refused(tmp_path):
    lines = ["version: 1", "a0: &a0 [10.2.0.0/16]"]
    for i in range(1, 25):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    path = write(tmp_path, "\n".join(lines) + "\nsegments: *a24\n")
    r = run(path)
    assert r.exit_code == 2
    assert str(path) in r.stderr
    assert "Traceback" not in r.output + r.stderr


def test_alias_bomb_in_a_known_list_is_bounded(tmp_path):
    # a list of lists under a key that accepts lists: refused for its type long before expansion
    lines = ["version: 1", "x: &x0 [10.2.0.0/16, 10.2.0.0/16]"]
    for i in range(1, 30):
        lines.append(f"y{i}: &x{i} [*x{i - 1}, *x{i - 1}]")
    text = "\n".join(lines).replace("x: ", "a: ") + "\nsegments:\n  - {name: lg, kind: lgwan, cidrs: *x29}\n"
    r = run(write(tmp_path, text))
    assert r.exit_code == 2
    assert "Traceback" not in r.output + r.stderr


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    from segverify.topology import yamlnodes

    monkeypatch.setattr(yamlnodes, "MAX_FILE_BYTES", 1000)
    path = write(tmp_path, GOOD + "#" * 2000 + "\n")
    r = run(path)
    assert r.exit_code == 2
    assert "larger than" in r.stderr and str(path) in r.stderr


def test_empty_and_non_utf8_files(tmp_path):
    empty = write(tmp_path, "", "empty.yaml")
    r = run(empty)
    assert r.exit_code == 2 and "empty" in r.stderr
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    r = run(bad)
    assert r.exit_code == 2 and f"{bad}:17:" in r.stderr and "UTF-8" in r.stderr


def test_missing_topology_file(tmp_path):
    r = run(tmp_path / "nope.yaml")
    assert r.exit_code == 2
    assert "nope.yaml" in r.stderr


def test_output_never_overwrites_an_input(tmp_path):
    path = write(tmp_path, GOOD)
    before = path.read_bytes()
    r = run(path, "--format", "json", "-o", str(path))
    assert r.exit_code == 2
    assert "refusing to write" in r.stderr
    assert path.read_bytes() == before


def test_output_never_overwrites_a_config_input(tmp_path):
    rules = tmp_path / "fw.rules"
    rules.write_text("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
    before = rules.read_bytes()
    text = GOOD.replace(RULES_BLOCK, "    config: {format: iptables-save, file: fw.rules}\n")
    path = write(tmp_path, text)
    r = run(path, "-o", str(tmp_path / "." / "fw.rules"))
    assert r.exit_code == 2
    assert rules.read_bytes() == before


def test_usage_error_is_exit_2():
    r = CliRunner().invoke(main, ["check"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["check", "x.yaml", "--format", "pdf"])
    assert r.exit_code == 2


def test_real_process_prints_no_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace("[10.3.0.0/16]", "[10.3.0.0/40]"))
    proc = subprocess.run([sys.executable, "-m", "segverify.cli", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("segverify: error: ") and f"{path}:5:" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("depth", [19_000, 200_000])
def test_deep_nesting_neither_crashes_nor_hangs(tmp_path, depth):
    """libyaml recurses per nesting level in C and is quadratic in depth: a hostile file must get a
    clean exit 2, not a segmentation fault or minutes of CPU."""
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\nsegments: " + "[" * depth + "]" * depth + "\n")
    proc = subprocess.run([sys.executable, "-m", "segverify.cli", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"{path}:2:" in proc.stderr
    assert "Traceback" not in proc.stderr
