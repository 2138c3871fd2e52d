"""``segverify diff BEFORE AFTER``: exactly what a firewall change opens or closes between families.

Both topologies are compiled into one packet space, so for every ordered pair of segments in
different families the packets AFTER lets through and BEFORE did not (opened), and the reverse
(closed), are exact set differences. Each is one entry per (pair, code, change) with a witness
packet and the rules responsible: in AFTER for what opened, in BEFORE for what closed.
"""

from __future__ import annotations

from dataclasses import replace

from ..model.topology import FAMILY_NAMES, Topology
from ..packetspace.space import BDD, PacketSpace
from .check import (
    Context,
    build_context,
    concrete_path,
    coreach_to,
    family_code,
    involved_rules,
    judge_channels,
    judge_exceptions,
    legitimate_set,
    path_json,
    pick_witness,
    reach_from,
    report_context,
)
from .findings import Finding, Result


def restrict_to_firewall(before: Topology, after: Topology, name: str) -> Topology:
    """BEFORE with only firewall ``name`` taken from AFTER: the change of one firewall, alone."""
    if name not in after.firewalls and name not in before.firewalls:
        from ..errors import InputError

        raise InputError(after.path, f"no firewall named {name!r} in either topology")
    firewalls = dict(before.firewalls)
    if name in after.firewalls:
        firewalls[name] = after.firewalls[name]
    else:
        firewalls.pop(name, None)
    return replace(before, firewalls=firewalls, inputs=list(after.inputs), path=after.path, name=after.name)


def _legit(ctx: Context) -> BDD:
    channels, _ = judge_channels(ctx)
    exceptions, _ = judge_exceptions(ctx)
    return legitimate_set(ctx, channels, exceptions)


class Comparison:
    """BEFORE and AFTER compiled into one packet space, with what each lets arrive per pair."""

    def __init__(self, before: Topology, after: Topology) -> None:
        self.space = PacketSpace()
        self.before, self.after = before, after
        self.old, self.new = build_context(before, self.space), build_context(after, self.space)
        self.names = sorted(set(before.segments) | set(after.segments))
        self.reach_old = {a: reach_from(self.old, a) for a in self.names if a in before.segments}
        self.reach_new = {a: reach_from(self.new, a) for a in self.names if a in after.segments}

    def pairs(self) -> list[tuple[str, str, str, str]]:
        """Ordered pairs of segments in different families, with their families."""
        out = []
        for a in self.names:
            for b in self.names:
                fam = _families(self.before, self.after, a, b)
                if fam is not None:
                    out.append((a, b, *fam))
        return out

    def sets(self, a: str, b: str) -> tuple[BDD, BDD]:
        """(opened, closed): the initiating packets from a to b that only AFTER, or only BEFORE, lets through."""
        was = _arrive(self.old, self.reach_old, a, b)
        now = _arrive(self.new, self.reach_new, a, b)
        return now & ~was & self.space.valid, was & ~now & self.space.valid


def diff(before: Topology, after: Topology, firewall: str | None = None) -> Result:
    if firewall is not None:
        after = restrict_to_firewall(before, after, firewall)
    cmp = Comparison(before, after)
    space, old, new = cmp.space, cmp.old, cmp.new
    legit_old, legit_new = _legit(old), _legit(new)
    findings: list[Finding] = []
    co_old: dict[str, dict] = {}
    co_new: dict[str, dict] = {}
    pairs = cmp.pairs()
    for a, b, fa, fb in pairs:
        opened, closed = cmp.sets(a, b)
        code, severity = family_code(fa, fb)
        if opened != space.false:
            undeclared = opened & ~legit_new
            if undeclared != space.false:
                findings.append(_entry(new, cmp.reach_new, co_new, a, b, fa, fb, undeclared, code, severity,
                                       "opened", declared=False))
            declared = opened & legit_new
            if declared != space.false:
                findings.append(_entry(new, cmp.reach_new, co_new, a, b, fa, fb, declared, code, "info",
                                       "opened", declared=True))
        if closed != space.false:
            findings.append(_entry(old, cmp.reach_old, co_old, a, b, fa, fb, closed, code, "info", "closed",
                                   declared=bool((closed & ~legit_old) == space.false)))
    findings.sort(key=Finding.sort_key)
    inputs = list(dict.fromkeys(list(before.inputs) + list(after.inputs)))
    stats = {"segment_pairs_checked": len(pairs),
             "opened": sum(1 for f in findings if f.extra.get("change") == "opened"),
             "closed": sum(1 for f in findings if f.extra.get("change") == "closed")}
    if firewall is not None:
        stats["firewall"] = firewall
    return Result("diff", findings, inputs, stats, title=f"{before.name} → {after.name}",
                  extra={"model": after.model}, context=report_context(after))


def _families(before: Topology, after: Topology, a: str, b: str) -> tuple[str, str] | None:
    """The families of a pair, taken from AFTER where the segment exists there; None within a family."""
    def fam(name: str) -> str:
        seg = after.segments.get(name) or before.segments[name]
        return seg.family

    fa, fb = fam(a), fam(b)
    return (fa, fb) if fa != fb else None


def _arrive(ctx: Context, reach: dict[str, dict], a: str, b: str) -> BDD:
    if a not in reach or b not in ctx.topo.segments:
        return ctx.space.false
    return reach[a].get(b, ctx.space.false) & ctx.dst_sets[b]


def _entry(ctx: Context, reach: dict[str, dict], co_cache: dict[str, dict], a: str, b: str, fa: str, fb: str,
           packets: BDD, code: str, severity: str, change: str, declared: bool) -> Finding:
    witness = pick_witness(ctx, packets, a, b) if a in ctx.topo.segments and b in ctx.topo.segments else None
    chain = concrete_path(ctx, witness, a, b) if witness is not None else None
    path, via = path_json(ctx, chain or [])
    if b not in co_cache:
        co_cache[b] = coreach_to(ctx, b)
    rules = involved_rules(ctx, reach[a], co_cache[b], packets) if a in reach else []
    count, exact = ctx.space.count(packets)
    which = "AFTER" if change == "opened" else "BEFORE"
    ids = ", ".join(f"{r['firewall']} {r['rule']} ({r['source']})" for r in rules[:5]) or "no rule (a path changed)"
    verb_en = {"opened": "now lets", "closed": "no longer lets"}[change]
    verb_ja = {"opened": "新たに許可されます", "closed": "許可されなくなります"}[change]
    note_en = " (covered by a declared channel or exception)" if declared else ""
    note_ja = "（宣言済みの通信経路・例外の範囲内）" if declared else ""
    example = witness.describe() if witness else "-"
    en = (f"the change {verb_en} traffic from {a} ({fa}) reach {b} ({fb}){note_en}: {count} packet(s), "
          f"e.g. {example}; rules in {which}: {ids}")
    ja = (f"変更により {a}（{FAMILY_NAMES[fa][1]}）から {b}（{FAMILY_NAMES[fb][1]}）への通信が{verb_ja}{note_ja}"
          f"（{count} パケット。例: {example}。{which} のルール: {ids}）")
    extra: dict = {"change": change, "declared": declared}
    if via:
        extra["via"] = via
    if not exact:
        extra["packets_exact"] = False
    return Finding(code, severity, en, ja, a, b, witness.to_json() if witness else None, path,
                   rules[:50], len(rules), count, extra=extra)
