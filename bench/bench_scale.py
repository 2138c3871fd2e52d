"""Benchmark: ``segverify replay --workers N`` on many generated captures, 1 worker against N.

    python bench/bench_scale.py                                   # 8 captures of 1M packets, 1 vs 2 workers
    python bench/bench_scale.py --files 4 --packets 200000 --workers 1 2 --keep /tmp/sv_scale

Each capture is written by bench/gen_capture.py with its own seed (same city, different sessions). Every
run is a fresh ``python -m segverify.cli replay TOPOLOGY FILE... --format json --workers N`` process from
start to exit: cluster start, reading and merging, judging, content inspection, report (exit codes 0, 1
and 3 are results). ``--workers 1`` goes through the same distributed path as N, so the ratio compares
like with like. The reports of all runs must be byte-identical, and (``--check``) equal to the
one-process report. The machine is shared: the load average is printed beside every figure, the runs of
the worker counts are interleaved (three of each by default), and the ratio is given best against best and
median against median.

Goal (issue 7): speed-up of at least 1.7x with 2 workers against 1 on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOPOLOGY = ROOT / "topologies" / "alpha-city.yaml"
GEN = HERE / "gen_capture.py"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def warm(files: list[str]) -> float:
    """Read every capture once, so that each timed run starts with them in the page cache.

    This machine's kernel runs DAMON with a ``pageout`` scheme, which evicts cold file pages: between two runs
    a 565 MB capture dropped out of the cache and took 1-5.6 s to read again from the virtual disk, against
    0.2 s cached, so that identical runs differed by 20 s. Warming before every run compares the cluster's
    computing, not the disk's moods."""
    t0 = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(16 << 20):
                pass
    return time.perf_counter() - t0


def run(cmd: list[str], out: str) -> dict:
    with open(out, "wb") as fh, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=err, cwd=ROOT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if rc not in (0, 1, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({rc}):\n{stderr}")
    return {"wall": wall, "rc": rc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3, help="runs per worker count, interleaved (best and median "
                    "are reported)")
    ap.add_argument("--keep", metavar="DIR", help="generate into DIR and keep (reused when present)")
    ap.add_argument("--check", action="store_true", help="also run the one-process replay and compare")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sv_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(args.files):
        path = work / f"cap-{args.packets}-{i}.pcap"
        if not path.exists():
            subprocess.run([sys.executable, str(GEN), str(path), "--packets", str(args.packets), "--seed",
                            str(1000 + i)], check=True, capture_output=True)  # fmt: skip
        files.append(str(path))
    total = sum(os.path.getsize(f) for f in files)
    print(f"{args.files} captures x {args.packets:,} packets, {total / 1e9:.2f} GB in {work}; {os.cpu_count()} cores")
    base = [sys.executable, "-m", "segverify.cli", "replay", str(TOPOLOGY), *files, "--format", "json"]
    walls: dict[int, list[float]] = {}
    reports: dict[str, str] = {}
    # interleaved (1, 2, 1, 2, ...): this shared machine's speed drifts over minutes, and both worker counts
    # should see the same drift
    for r in range(args.repeat):
        for n in args.workers:
            out = str(work / f"report-w{n}.json")
            warmed = warm(files)
            before = load()
            res = run([*base, "--workers", str(n)], out)
            print(f"  --workers {n} (run {r + 1}): {res['wall']:.1f} s, "
                  f"{args.files * args.packets / res['wall'] / 1e3:.0f}k packets/s, exit {res['rc']} ({before}; "
                  f"captures read into the page cache first: {warmed:.1f} s)")
            walls.setdefault(n, []).append(res["wall"])
            reports[f"w{n}"] = Path(out).read_text(encoding="utf-8")
    if args.check:
        out = str(work / "report-one.json")
        warm(files)
        res = run(base, out)
        print(f"  one process: {res['wall']:.1f} s, exit {res['rc']} ({load()})")
        reports["one"] = Path(out).read_text(encoding="utf-8")
    same = len(set(reports.values())) == 1
    doc = json.loads(next(iter(reports.values())))
    print(f"  reports identical: {same} ({doc['stats']['flows']:,} flows, status {doc['status']})")
    if 1 in walls:
        for n in args.workers:
            if n != 1:
                best = min(walls[1]) / min(walls[n])
                median = statistics.median(walls[1]) / statistics.median(walls[n])
                print(f"  speed-up {n} workers vs 1: {best:.2f}x best against best, {median:.2f}x median against "
                      f"median" + (f" (goal >= 1.7x: {'met' if best >= 1.7 else 'NOT met'})" if n == 2 else ""))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
