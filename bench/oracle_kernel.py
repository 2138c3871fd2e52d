"""The kernel as the oracle, at scale: random iptables and nftables rule sets loaded into a real kernel.

    sudo python3 bench/oracle_kernel.py --rulesets 500 --packets 5000 [--kinds iptables,nftables] [--seed N]

Each rule set is loaded into a router namespace, ``--packets`` crafted packets go through it, and each
packet's fate (forwarded or not) is compared with segverify's verdict on the generated text and on the
kernel's own export (``iptables-save``/``ip6tables-save``, ``nft -j list ruleset``). The rule sets are
split evenly between the kinds. Prints the agreement and the wall time; exits 1 on any disagreement
(with the seed, the minimised rule set and the packet), 2 when the lab cannot run here.
The lab is ``tests/importers/kernel_lab.py``, shared with ``tests/importers/test_kernel_oracle.py``.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "importers"))

from kernel_lab import KernelLab, minimise, run_case, unavailable  # noqa: E402


def _version(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return "absent"
    done = subprocess.run(cmd, capture_output=True, text=True)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rulesets", type=int, default=500, help="rule sets in all (split between the kinds)")
    ap.add_argument("--packets", type=int, default=5000, help="packets per rule set")
    ap.add_argument("--kinds", default="iptables,nftables")
    ap.add_argument("--seed", type=int, default=7, help="base seed: rule set k of a run uses seed*100000+k")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first disagreeing rule set")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    reason = unavailable(need_nft="nftables" in kinds)
    if reason:
        print(f"oracle_kernel: cannot run: {reason}", file=sys.stderr)
        return 2
    print(f"kernel {platform.release()}; {_version(['iptables', '--version'])}; {_version(['nft', '--version'])}")
    started = time.monotonic()
    totals = {k: [0, 0, 0, 0] for k in kinds}  # rule sets, packets, forwarded, disagreeing packets
    failed = 0
    with KernelLab() as lab:
        for n in range(args.rulesets):
            kind = kinds[n % len(kinds)]
            seed = args.seed * 100_000 + n
            result = run_case(lab, kind, seed, args.packets)
            t = totals[kind]
            t[0] += 1
            t[1] += result.probes
            t[2] += result.forwarded
            t[3] += len({d.probe.index for d in result.disagreements})
            if result.disagreements:
                failed += 1
                cut = minimise(lab, result)
                print(result.report(10))
                if cut:
                    print(f"minimised (seed {seed}):\n{cut[0]}packet: {cut[1].describe()}")
                if not args.keep_going:
                    break
            if (n + 1) % 50 == 0:
                print(f"  {n + 1} rule sets, {time.monotonic() - started:.0f} s", flush=True)
    wall = time.monotonic() - started
    for kind, (sets, packets, fwd, bad) in totals.items():
        agree = 100.0 * (packets - bad) / packets if packets else 0.0
        print(f"{kind}: {sets} rule sets, {packets} packets ({fwd} forwarded), {bad} disagreeing: "
              f"{agree:.4f}% agreement (each text read twice: as generated and as the kernel exports it)")
    packets = sum(t[1] for t in totals.values())
    print(f"total: {sum(t[0] for t in totals.values())} rule sets, {packets} packets, "
          f"{failed} rule set(s) with a disagreement; wall time {wall:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
