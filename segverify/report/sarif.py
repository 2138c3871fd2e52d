"""SARIF 2.1.0 for code-review tools: each result sits at the rule's file and line, so a pull request
that changes a firewall configuration is annotated where the change is."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..analysis.findings import CODES, Finding, Result

LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_LOCATION = re.compile(r"^(?P<path>.+?)(?::(?P<line>\d+))?$")


def _location(text: str) -> dict[str, Any] | None:
    m = _LOCATION.match(text or "")
    if not m:
        return None
    physical: dict[str, Any] = {"artifactLocation": {"uri": quote(m.group("path"))}}
    if m.group("line"):
        physical["region"] = {"startLine": int(m.group("line"))}
    return {"physicalLocation": physical}


def locations(finding: Finding, fallback: str) -> list[dict[str, Any]]:
    """Where a finding points: the rule at each firewall on its path, the rules involved, the
    declaration it is about; the topology file when nothing more precise exists."""
    sources: list[str] = [p.get("source", "") for p in finding.path or []]
    sources += [r.get("source", "") for r in finding.rules or []]
    if finding.extra.get("source"):
        sources.append(str(finding.extra["source"]))
    out: list[dict[str, Any]] = []
    for s in dict.fromkeys(x for x in sources if x):
        loc = _location(s)
        if loc:
            out.append(loc)
        if len(out) >= 10:
            break
    return out or [_location(fallback) or {}]


def render_sarif(result: Result) -> str:
    codes = sorted({f.code for f in result.findings})
    rules = [
        {
            "id": code,
            "name": "".join(w.capitalize() for w in code.split("_")),
            "shortDescription": {"text": CODES[code][1]},
            "fullDescription": {"text": f"{CODES[code][1]} / {CODES[code][2]}"},
            "defaultConfiguration": {"level": LEVEL[CODES[code][0]]},
            "properties": {"severity": CODES[code][0]},
        }
        for code in codes
    ]
    index = {code: i for i, code in enumerate(codes)}
    fallback = result.inputs[0] if result.inputs else ""
    results = []
    for f in result.findings:
        properties: dict[str, Any] = {"severity": f.severity, "message_ja": f.message_ja}
        for key in ("src_segment", "dst_segment", "witness", "flow", "packets", "rules_total"):
            value = getattr(f, key)
            if value is not None:
                properties[key] = value
        properties.update({k: v for k, v in f.extra.items() if isinstance(v, (str, int, bool, list, dict))})
        results.append({
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": locations(f, fallback),
            "properties": properties,
        })
    artifacts = [
        {"location": {"uri": quote(path)}, "hashes": {"sha-256": digest}} for path, digest in result.input_hashes()
    ]
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "segverify", "version": __version__, "rules": rules}},
            "artifacts": artifacts,
            "invocations": [{"executionSuccessful": True, "exitCode": result.exit_code,
                             "properties": {"command": result.command, "status": result.status,
                                            "incomplete": list(result.incomplete)}}],
            "results": results,
        }],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
