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
    return render_json_bytes(result).decode("utf-8")


def render_json_bytes(result: Result) -> bytes:
    """The report as the file holds it (UTF-8). Indented for reading; a replay's flows one per line, compact:
    ``indent`` makes Python's json use its pure-Python encoder, which took seconds on a month's flow table.
    Built as bytes: a cluster's workers send their rows encoded, and 160k rows are joined in 0.05 s."""
    doc = report_dict(result)
    flows = doc.pop("flows", None)
    text = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
    if flows is None:
        return text + b"\n"
    rows = row_texts(flows)
    if not rows:
        return text[:-2] + b',\n  "flows": [\n]\n}\n'
    return b"".join((text[:-2], b',\n  "flows": [\n    ', b",\n    ".join(rows), b"\n  ]\n}\n"))
