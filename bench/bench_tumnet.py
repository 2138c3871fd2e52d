"""Benchmark: a real, large iptables-save firewall end to end (TUM_Net: 4,973 rules, 98 chains).

    python bench/bench_tumnet.py [--repeat 3]

The topology is built from the interface map shipped beside the configuration
(``TUM_Net__ipassmt_tumi8``): one segment per VLAN interface, the upstream (eth1.110, "all but
those") as ``public``. Families are assigned so that the three-tier analysis has real work: two
VLANs play the My Number side, three the LGWAN side, the rest the Internet side. Each run is a
fresh ``segverify check --format json`` process: parsing, flattening 98 chains, compiling, the
analysis of every segment pair and the report all count.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "configs" / "iptables"
RULES = CONFIGS / "TUM_Net_iptables-save-2015-09-03_15-56-50"
IPASSMT = CONFIGS / "TUM_Net__ipassmt_tumi8"
MN = {"eth1.96", "eth1.108"}
LG = {"eth1.109", "eth1.116", "eth1.152"}


def topology() -> str:
    text = IPASSMT.read_text()
    segments, interfaces = [], []
    for name, body in re.findall(r"^(\S+) = (.*?)(?=^\S+ = |\Z)", text, flags=re.S | re.M):
        if name == "eth1.110":
            kind, cidrs = "public", ["0.0.0.0/0"]
        else:
            found = re.findall(r"\d+\.\d+\.\d+\.\d+/\d+", body)
            if not found or body.strip().startswith("all_but") or name == "eth0":
                continue
            cidrs = sorted({str(ipaddress.ip_network(c, strict=False)) for c in found})
            kind = "mynumber" if name in MN else "lgwan" if name in LG else "internet"
        seg = name.replace(".", "-")
        segments.append(f"  - {{name: {seg}, kind: {kind}, cidrs: [{', '.join(cidrs)}]}}")
        interfaces.append(f"      - {{name: {name}, segment: {seg}}}")
    return "\n".join([
        "version: 1", "name: TUM_Net benchmark", "segments:", *segments,
        "firewalls:", "  - name: tum", "    interfaces:", *interfaces,
        f"    config: {{format: iptables-save, file: {RULES}}}", "",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not RULES.is_file():
        sys.exit(f"missing {RULES}: the shared corpus must sit beside the repository")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tum.yaml")
        Path(path).write_text(topology())
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "segverify.cli", "check", path, "--format", "json"],
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if proc.returncode not in (0, 1, 3):
                sys.exit(f"check failed: {proc.stderr}")
        import json

        report = json.loads(proc.stdout)
        print(f"TUM_Net check end to end: best {min(times):.2f} s of {args.repeat} "
              f"({report['stats']['segments']} segments, {report['stats']['rules']} rules after flattening, "
              f"{len(report['findings'])} findings)")


if __name__ == "__main__":
    main()
