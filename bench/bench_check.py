"""Benchmark: ``segverify check`` end to end on one firewall with N generated rules.

    python bench/bench_check.py               # N = 1k, 10k, 50k
    python bench/bench_check.py --sizes 10000 --repeat 3

The rules mix prefixes from /16 to /32 (IPv4 and some IPv6), single ports, port ranges and
protocols, allow and deny, between the four interfaces of a city firewall (MN, LG, IN, public),
with a deterministic seed. Each run is a fresh ``segverify check --format json`` process, timed
from start to exit, so YAML loading, rule compilation, analysis and report writing all count.
Goal (docs/performance.md): 10k rules under 2 s; 50k under 6x the 10k time.

Wall time is what the goal is about, but on a shared machine it is noisy; the CPU time of the
check process (user + sys, from the kernel's accounting of the finished child) is printed beside
it, with the load average, so runs on a loaded machine can still be compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time

SEGMENTS = [
    ("mn", "mynumber", ["10.10.0.0/16"]),
    ("lg", "lgwan", ["10.20.0.0/16", "fd00:20::/48"]),
    ("inet", "internet", ["10.30.0.0/16", "fd00:30::/48"]),
    ("public", "public", ["0.0.0.0/0", "::/0"]),
]
BASES = {"mn": (10, 10), "lg": (10, 20), "inet": (10, 30), "public": (203, 0)}


def prefix(rng: random.Random, seg: str) -> str:
    if seg in ("lg", "inet") and rng.random() < 0.1:
        length = rng.randint(112, 128)
        value = rng.getrandbits(128 - 48) >> (128 - length)
        value <<= 128 - length
        base = 0xFD00_0020_0000 if seg == "lg" else 0xFD00_0030_0000
        full = (base << 80) | value
        import ipaddress

        return f"{ipaddress.IPv6Address(full)}/{length}"
    a, b = BASES[seg]
    length = rng.randint(16, 32)
    host = rng.getrandbits(16)
    addr = (a << 24) | (b << 16) | host
    addr &= ~((1 << (32 - length)) - 1) & 0xFFFFFFFF
    return f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}/{length}"


def generate(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = ["version: 1", f"name: bench-{n}", "model: alpha", "segments:"]
    for name, kind, cidrs in SEGMENTS:
        lines.append(f"  - {{name: {name}, kind: {kind}, cidrs: [{', '.join(repr(c) for c in cidrs)}]}}")
    lines += ["firewalls:", "  - name: fw1", "    interfaces:"]
    for name, _, _ in SEGMENTS:
        lines.append(f"      - {{name: if-{name}, segment: {name}}}")
    lines.append("    rules:")
    names = [s[0] for s in SEGMENTS]
    for i in range(n):
        a, b = rng.sample(names, 2)
        action = "allow" if rng.random() < 0.6 else "deny"
        parts = [f"id: r{i + 1}", f"action: {action}", f"from: if-{a}", f"to: if-{b}"]
        parts.append(f"src: {prefix(rng, a)}")
        parts.append(f"dst: {prefix(rng, b)}")
        proto = rng.choice(["tcp", "tcp", "tcp", "udp", "icmp"])
        parts.append(f"proto: {proto}")
        if proto != "icmp":
            r = rng.random()
            if r < 0.6:
                parts.append(f"dport: {rng.choice([22, 25, 53, 80, 443, 445, 3389, 8080, rng.randint(1, 65535)])}")
            elif r < 0.9:
                lo = rng.randint(1, 60000)
                parts.append(f'dport: "{lo}-{lo + rng.randint(1, 5000)}"')
        lines.append("      - {" + ", ".join(parts) + "}")
    lines.append("    default: deny")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 50_000])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    results: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = os.path.join(tmp, f"bench-{n}.yaml")
            with open(path, "w") as fh:
                fh.write(generate(n))
            times: list[float] = []
            cpus: list[float] = []
            for _ in range(args.repeat):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "segverify.cli", "check", path, "--format", "json"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                )
                times.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                if proc.returncode not in (0, 1):
                    sys.exit(f"check failed on {n} rules: {proc.stderr}")
            results[n] = min(times)
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"rules={n:>6}  check end to end: {results[n]:.2f} s wall, {min(cpus):.2f} s CPU "
                  f"(best of {args.repeat}; load average {load})", flush=True)
    if 10_000 in results and 50_000 in results:
        print(f"50k / 10k ratio: {results[50_000] / results[10_000]:.2f} (goal < 6)")
    if 10_000 in results:
        print(f"10k goal (< 2 s): {'met' if results[10_000] < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
