"""The machine-readable report of the contract (section 4): stable, sorted, byte-identical for
identical inputs."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..analysis.findings import Result
from .rows import row_texts


def report_dict(result: Result) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tool": {"name": "segverify", "version": __version__},
        "command": result.command,
        "status": result.status,
        "inputs": [{"path": p, "sha256": h} for p, h in result.input_hashes()],
    }
    if result.title:
        out["name"] = result.title
    for key, value in result.extra.items():
        if key != "flows":
            out[key] = value
    out["findings"] = [f.to_json() for f in result.findings]
    if "flows" in result.extra:
        out["flows"] = result.extra["flows"]
    stats = dict(result.stats)
    stats["findings_by_severity"] = {
        sev: n for sev in ("critical", "high", "medium", "low", "info")
        if (n := sum(1 for f in result.findings if f.severity == sev))
    }
    if result.incomplete:
        stats["incomplete"] = list(result.incomplete)
    out["stats"] = stats
    return out


def render_json(result: Result) -> str:
    """Indented for reading; a replay's flows one per line, compact: ``indent`` makes Python's json
    use its pure-Python encoder, which took seconds on a month's flow table."""
    doc = report_dict(result)
    flows = doc.pop("flows", None)
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    if flows is None:
        return text + "\n"
    rows = ",\n".join(["    " + t for t in row_texts(flows)])
    return text[:-2] + ',\n  "flows": [\n' + rows + ("\n  ]\n}\n" if rows else "]\n}\n")
