"""The topology as plain data for the audit bundle's drawing and family matrix.

Reports never import the model: this module (on the analysis side of the one-way flow) reads a
loaded Topology and the findings of ``check`` and returns only dicts, lists and strings, which the
bundle renderer draws. Edges carry the declarations (channels, exceptions) segment to segment, and
which of them a finding marks as a violation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..model.addresses import IntervalSet
from ..model.segmap import SegmentMap
from ..model.topology import Channel, Endpoints, Topology
from .findings import VIOLATION_SEVERITIES, Finding

FAMILY_ORDER = ("MN", "LG", "SZ", "IN")
# Findings about a declaration itself: drawn on the declaration's edge, not as a separate one.
DECLARATION_CODES = frozenset({"CHANNEL_NOT_ALLOWED_BY_MODEL", "EXCEPTION_TOO_BROAD", "EXCEPTION_NOT_ALLOWED"})

# What each model permits between families (three-tier-model.md, "The models"); the renderer words it.
MODEL_PERMITS: dict[str, dict[str, Any]] = {
    "alpha": {"screen_transfer": ["LG→IN"], "cloud_direct": False, "beta_conditions": False},
    "alpha-prime": {"screen_transfer": ["LG→IN"], "cloud_direct": True, "beta_conditions": False},
    "beta": {"screen_transfer": ["LG→IN", "IN→LG"], "cloud_direct": False, "beta_conditions": True},
    "beta-prime": {"screen_transfer": ["LG→IN", "IN→LG"], "cloud_direct": False, "beta_conditions": True},
}


def _segments(segmap: SegmentMap, ep: Endpoints | None) -> list[str]:
    return segmap.segments_of(ep.addresses) if ep is not None else []


def _families(topo: Topology, segments: Iterable[str]) -> list[str]:
    fams = {topo.segments[s].family for s in segments}
    return [f for f in FAMILY_ORDER if f in fams]


def _channel(topo: Topology, segmap: SegmentMap, ch: Channel, refused: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": ch.name, "kind": ch.kind, "allowed": ch.name not in refused,
                           "codes": ["CHANNEL_NOT_ALLOWED_BY_MODEL"] if ch.name in refused else [],
                           "source": str(ch.source or "")}
    if ch.clients is not None and ch.servers is not None:
        out.update({
            "protocol": ch.protocol, "ports": [str(p) for p in ch.ports],
            "clients": list(ch.clients.names), "servers": list(ch.servers.names),
            "client_segments": _segments(segmap, ch.clients), "server_segments": _segments(segmap, ch.servers),
        })
        return out
    host = topo.hosts.get(ch.sanitizer or "")
    san_segs = segmap.segments_of(IntervalSet.of(*host.addresses)) if host else []
    out.update({"sanitizer": ch.sanitizer, "sanitizer_segments": san_segs})
    for label, leg in (("inbound", ch.inbound), ("outbound", ch.outbound)):
        if leg is not None:
            out[label] = {"peers": list(leg.peers.names), "ports": [str(p) for p in leg.ports],
                          "peer_segments": _segments(segmap, leg.peers)}
    return out


def _edges(topo: Topology, channels: list[dict[str, Any]], exceptions: list[dict[str, Any]],
           violations: dict[tuple[str, str], list[str]]) -> list[dict[str, Any]]:
    """One edge per (declaration, source segment, destination segment), then the violations no
    declaration accounts for; an edge is red when a finding names its two segments."""
    edges: list[dict[str, Any]] = []

    def add(kind: str, name: str, a: str, b: str, label: str, codes: list[str]) -> None:
        if a != b:
            edges.append({"kind": kind, "name": name, "src": a, "dst": b, "label": label,
                          "violation": bool(codes), "codes": codes})

    for ch in channels:
        if "client_segments" in ch:
            label = f"{ch['name']} ({ch.get('protocol') or ch['kind']} {', '.join(ch['ports'])})"
            for a in ch["client_segments"]:
                for b in ch["server_segments"]:
                    add("channel", ch["name"], a, b, label, ch["codes"])
            continue
        for leg in ("inbound", "outbound"):
            if leg not in ch:
                continue
            label = f"{ch['name']} {leg} ({', '.join(ch[leg]['ports'])})"
            for a in ch[leg]["peer_segments"]:
                if a in ch["sanitizer_segments"]:  # the peer talks to the sanitizer's own side
                    continue
                for b in ch["sanitizer_segments"]:
                    add("channel", ch["name"], a, b, label, ch["codes"])
    for ex in exceptions:
        label = f"{ex['name']} ({', '.join(ex['ports']) or '*'})"
        for a in ex["src_segments"]:
            for b in ex["dst_segments"]:
                add("exception", ex["name"], a, b, label, ex["codes"])
    drawn: set[tuple[str, str]] = set()
    for (a, b), codes in sorted(violations.items()):
        if a == b or (a, b) in drawn or a not in topo.segments or b not in topo.segments:
            continue
        drawn.add((a, b))
        if (b, a) in violations and (b, a) not in drawn:
            codes = sorted(set(codes) | set(violations[(b, a)]))
            drawn.add((b, a))
        edges.append({"kind": "violation", "name": "", "src": a, "dst": b, "label": ", ".join(sorted(set(codes))),
                      "violation": True, "codes": sorted(set(codes))})
    return edges


def describe_topology(topo: Topology, findings: Sequence[Finding] = ()) -> dict[str, Any]:
    """Everything the bundle draws, as plain data: segments, devices, declarations, violations."""
    segmap = SegmentMap(topo.segments)
    refused_channels = {str(f.extra.get("channel")) for f in findings if f.code == "CHANNEL_NOT_ALLOWED_BY_MODEL"}
    refused_exceptions = {str(f.extra.get("exception")) for f in findings if f.code == "EXCEPTION_NOT_ALLOWED"}
    broad_exceptions = {str(f.extra.get("exception")) for f in findings if f.code == "EXCEPTION_TOO_BROAD"}
    violations: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        if f.code in DECLARATION_CODES:
            continue
        if f.severity in VIOLATION_SEVERITIES and f.src_segment and f.dst_segment:
            violations.setdefault((f.src_segment, f.dst_segment), []).append(f.code)

    segments = [
        {"name": s.name, "kind": s.kind, "family": s.family, "cidrs": [str(p) for p in s.prefixes],
         "vlans": list(s.vlans)}
        for s in sorted(topo.segments.values(), key=lambda s: (FAMILY_ORDER.index(s.family), s.kind == "public",
                                                              s.name))
    ]
    firewalls = [
        {"name": fw.name, "interfaces": [{"name": i.name, "segment": i.segment} for i in fw.interfaces],
         "rules": len(fw.ruleset.rules), "default": fw.ruleset.default,
         "config": fw.config_path, "format": fw.config_format}
        for fw in sorted(topo.firewalls.values(), key=lambda f: f.name)
    ]
    routers = [{"name": r.name, "segments": list(r.segments)} for r in sorted(topo.routers.values(),
                                                                              key=lambda r: r.name)]
    sanitizers = {ch.sanitizer for ch in topo.channels if ch.sanitizer}
    multihomed = []
    for host in sorted(topo.hosts.values(), key=lambda h: h.name):
        segs = segmap.segments_of(IntervalSet.of(*host.addresses)) if host.addresses else []
        if len(segs) > 1 and len(_families(topo, segs)) > 1:
            multihomed.append({"name": host.name, "segments": segs, "sanitizer": host.name in sanitizers})
    channels = [_channel(topo, segmap, ch, refused_channels) for ch in topo.channels]
    exceptions = [
        {"name": ex.name, "from": list(ex.src.names), "to": list(ex.dst.names), "ports": [str(p) for p in ex.ports],
         "reason": ex.reason, "src_segments": segmap.segments_of(ex.src.addresses),
         "dst_segments": segmap.segments_of(ex.dst.addresses), "allowed": ex.name not in refused_exceptions,
         "too_broad": ex.name in broad_exceptions, "source": str(ex.source or ""),
         "codes": [c for c, hit in (("EXCEPTION_NOT_ALLOWED", ex.name in refused_exceptions),
                                    ("EXCEPTION_TOO_BROAD", ex.name in broad_exceptions)) if hit]}
        for ex in topo.exceptions
    ]
    return {
        "name": topo.name,
        "model": topo.model,
        "model_permits": MODEL_PERMITS.get(topo.model, MODEL_PERMITS["alpha"]),
        "segments": segments,
        "firewalls": firewalls,
        "routers": routers,
        "multihomed": multihomed,
        "channels": channels,
        "exceptions": exceptions,
        "edges": _edges(topo, channels, exceptions, violations),
        "declared_pairs": declared_family_pairs(topo, channels, exceptions),
    }


def declared_family_pairs(topo: Topology, channels: list[dict[str, Any]],
                          exceptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which declaration may carry traffic from one family to another (initiator's direction; a
    sanitizer's leg works both ways), for the family matrix."""
    out: list[dict[str, Any]] = []

    def fam(segs: Iterable[str]) -> list[str]:
        return _families(topo, [s for s in segs if s in topo.segments])

    for ch in channels:
        pairs: set[tuple[str, str]] = set()
        if "client_segments" in ch:
            pairs = {(a, b) for a in fam(ch["client_segments"]) for b in fam(ch["server_segments"])}
        else:
            for leg in ("inbound", "outbound"):
                if leg in ch:
                    for a in fam(ch[leg]["peer_segments"]):
                        for b in fam(ch["sanitizer_segments"]):
                            pairs |= {(a, b), (b, a)}
        for a, b in sorted(pairs):
            if a != b:
                out.append({"from": a, "to": b, "kind": "channel", "channel_kind": ch["kind"], "name": ch["name"],
                            "allowed": ch["allowed"], "codes": ch["codes"]})
    for ex in exceptions:
        for a in fam(ex["src_segments"]):
            for b in fam(ex["dst_segments"]):
                if a != b:
                    out.append({"from": a, "to": b, "kind": "exception", "channel_kind": "", "name": ex["name"],
                                "allowed": ex["allowed"] and not ex["too_broad"], "codes": ex["codes"]})
    return out
