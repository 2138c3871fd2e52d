"""The audit bundle: ``index.html`` (self-contained, printable), ``topology.svg``, ``findings.csv``
(UTF-8 with BOM, for Excel) and ``manifest.json`` (the sha256 of every input and every file).

It reads only analysis results (``Result``) and the plain drawing dict of
``segverify.analysis.drawing``; never the model. Every text derived from the inputs goes through
jinja2's autoescaping (HTML) or the SVG writer's escaping; CSV cells that a spreadsheet would run
as a formula are neutralised.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from .. import __version__
from ..analysis.findings import CODES, Finding, Result
from ..errors import InputError
from . import i18n
from .output import refuse_inputs, write_atomic
from .svg import render_svg

FILES = ("index.html", "topology.svg", "findings.csv", "manifest.json")
MATRIX_FAMILIES = ("MN", "LG", "IN", "SZ")
MAX_FLOW_ROWS = 200
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Bundle:
    """What was written: the directory, the combined status and each file's sha256."""

    directory: str
    status: str
    files: dict[str, str]

    @property
    def exit_code(self) -> int:
        return {"compliant": 0, "violations": 1, "incomplete": 3}[self.status]


def combined_status(results: Sequence[Result]) -> str:
    """A violation anywhere outranks incompleteness anywhere (the contract's rule, across commands)."""
    statuses = {r.status for r in results}
    for status in ("violations", "incomplete"):
        if status in statuses:
            return status
    return "compliant"


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading =, +, -, @ would make Excel evaluate it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


# --- what the template shows -------------------------------------------------------------------------


def _files_of(f: Finding) -> list[str]:
    """File names a finding carries (attachments, downloads): shown and exported as their own cell."""
    parts = f.extra.get("parts") or []
    names = [str(p["filename"]) for p in parts if isinstance(p, dict) and p.get("filename")]
    if f.extra.get("filename"):
        names.append(str(f.extra["filename"]))
    return names


def _packet_text(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    proto = p.get("proto", "")
    src = f"{p.get('src', '')}" + (f":{p['sport']}" if p.get("sport") is not None else "")
    dst = f"{p.get('dst', '')}" + (f":{p['dport']}" if p.get("dport") is not None else "")
    extra = ""
    if "packets" in p and "bytes" in p:
        extra = f" ({p['packets']} pkts, {p['bytes']} B)"
    return f"{proto} {src} → {dst}{extra}".strip()


def _location(f: Finding) -> str:
    sources = [p.get("source", "") for p in f.path or []] + [r.get("source", "") for r in f.rules or []]
    if f.extra.get("source"):
        sources.append(str(f.extra["source"]))
    return "; ".join(dict.fromkeys(s for s in sources if s))


def finding_view(f: Finding, command: str, lang: str, index: int) -> dict[str, Any]:
    policy = i18n.POLICY.get(f.code)
    return {
        "id": f"finding-{index}",
        "command": command,
        "code": f.code,
        "severity": f.severity,
        "severity_label": i18n.SEVERITY_LABELS[f.severity][lang],
        "title": CODES[f.code][2 if lang == "ja" else 1] if f.code in CODES else f.code,
        "src": f.src_segment or "",
        "dst": f.dst_segment or "",
        "message": f.message_ja if lang == "ja" else f.message,
        "witness": _packet_text(f.witness),
        "flow": _packet_text(f.flow),
        "path": f.path or [],
        "rules": f.rules or [],
        "rules_total": f.rules_total,
        "via": f.extra.get("via") or [],
        "packets": f.packets,
        "files": _files_of(f),
        "policy_quote": policy.quote if policy else None,
        "policy_clause": policy.clause[lang] if policy else "",
        "policy_note": policy.note[lang] if policy else "",
    }


def family_matrix(drawing: dict[str, Any], families: dict[str, str], findings: Sequence[tuple[str, Finding]],
                  flows: Sequence[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """MN/LG/IN/SZ × MN/LG/IN/SZ: the model's rule, what is declared, what was found, what was seen."""
    rows = []
    present = [f for f in MATRIX_FAMILIES if f in families.values()] or list(MATRIX_FAMILIES)
    for a in MATRIX_FAMILIES:
        cells = []
        for b in MATRIX_FAMILIES:
            if a == b:
                rule = "intra"
            elif "MN" in (a, b):
                rule = "exceptions" if {a, b} == {"MN", "LG"} else "forbidden"
            else:
                rule = "channels"
            declared = [d for d in drawing.get("declared_pairs", []) if d["from"] == a and d["to"] == b]
            codes: Counter[str] = Counter()
            if a != b:
                for _, f in findings:
                    if (f.severity in ("critical", "high", "medium") and f.src_segment and f.dst_segment
                            and families.get(f.src_segment) == a and families.get(f.dst_segment) == b):
                        codes[f.code] += 1
            observed = Counter(
                str(fl.get("verdict", "")).split(":")[0] for fl in flows
                if families.get(str(fl.get("src_segment"))) == a and families.get(str(fl.get("dst_segment"))) == b
            )
            cells.append({
                "id": f"cell-{a}-{b}", "from": a, "to": b, "rule": rule,
                "rule_label": i18n.label(f"cell.{rule}", lang),
                "declared": [{"kind": d["kind"], "name": d["name"], "allowed": d["allowed"],
                              "codes": d.get("codes", []),
                              "kind_label": (i18n.CHANNEL_KIND_LABELS.get(d["channel_kind"], {}).get(lang, "")
                                             if d["kind"] == "channel" else i18n.label("exception", lang))}
                             for d in declared],
                "codes": sorted(codes.items()),
                "observed": sum(observed.values()),
                "status": "intra" if a == b else ("violation" if codes else "ok"),
                "present": a in present and b in present,
            })
        rows.append({"family": a, "label": i18n.FAMILY_LABELS[a][lang], "cells": cells})
    return rows


def flow_summary(flows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    cross = [f for f in flows if f.get("verdict") != "intra-family"]
    verdicts = Counter(str(f.get("verdict")) for f in flows)
    return {"total": len(flows), "cross": len(cross), "by_verdict": sorted(verdicts.items()),
            "rows": cross[:MAX_FLOW_ROWS]}


def render_html(results: Sequence[Result], drawing: dict[str, Any], svg: str, lang: str,
                generated: str, inputs: list[tuple[str, str]]) -> str:
    env = Environment(loader=PackageLoader("segverify.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    families: dict[str, str] = {}
    for r in results:
        families.update(r.context.get("families", {}))
    tagged = [(r.command, f) for r in results for f in r.findings]
    flows = [fl for r in results for fl in r.extra.get("flows", [])]
    status = combined_status(results)
    model = drawing.get("model", "alpha")
    return env.get_template("index.html.j2").render(
        lang=lang, t=i18n.translations(lang), version=__version__, generated=generated,
        name=drawing.get("name", ""), model=model,
        model_label=i18n.MODEL_LABELS.get(model, {}).get(lang, model),
        model_permits=[p[lang] for p in i18n.MODEL_PERMITS_TEXT["common"] + i18n.MODEL_PERMITS_TEXT.get(model, [])],
        status=status,
        commands=[{"label": i18n.label(f"command.{r.command}", lang),
                   "status": i18n.label(f"status.{r.status}", lang), "status_key": r.status,
                   "incomplete": r.incomplete, "stats": r.stats} for r in results],
        families=i18n.FAMILY_LABELS, matrix=family_matrix(drawing, families, tagged, flows, lang),
        drawing=drawing, svg=Markup(svg),  # built by svg.py, which escapes every text itself
        findings=[finding_view(f, cmd, lang, i) for i, (cmd, f) in enumerate(tagged, 1)],
        has_flows=any(r.command == "replay" for r in results), flows=flow_summary(flows),
        verdict_labels=i18n.VERDICT_LABELS, channel_kinds=i18n.CHANNEL_KIND_LABELS,
        attestation=i18n.attestation_items(model, lang), inputs=inputs,
    )


def render_csv(results: Sequence[Result], lang: str) -> str:
    """One row per finding, both languages' messages, the BOM so that Excel reads UTF-8 Japanese."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    header = ["command", "severity", "code", "title", "src_segment", "dst_segment", "message_ja", "message_en",
              "witness_or_flow", "location", "files"]
    writer.writerow(header)
    for r in results:
        for f in r.findings:
            title = CODES[f.code][2 if lang == "ja" else 1] if f.code in CODES else f.code
            row = [r.command, f.severity, f.code, title, f.src_segment, f.dst_segment, f.message_ja, f.message,
                   _packet_text(f.witness or f.flow), _location(f), " | ".join(_files_of(f))]
            writer.writerow([csv_cell(c) for c in row])
    return "\ufeff" + buf.getvalue()


# --- writing ---------------------------------------------------------------------------------------


def _prepare(directory: str, inputs: Sequence[str]) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InputError(directory, "the output must be a directory, and this is a file")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InputError(directory, f"cannot create the output directory: {exc.strerror or exc}") from None
    for name in FILES:
        refuse_inputs(os.path.join(directory, name), inputs)


def write_bundle(directory: str, results: Sequence[Result], drawing: dict[str, Any], lang: str,
                 command_line: Sequence[str], now: float | None = None) -> Bundle:
    """Write the four files into ``directory`` (created if missing), the manifest last."""
    inputs = list(dict.fromkeys(p for r in results for p in r.inputs))
    _prepare(directory, inputs)
    if now is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds: a fixed time on request
        now = float(epoch) if epoch and epoch.isdigit() else time.time()
    generated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    # each result's own digests (a replay hashed its captures while reading them): a capture is not hashed twice
    known = {p: h for r in results for p, h in r.input_hashes()}
    hashes = [(p, known[p]) for p in inputs]  # every input is some result's
    svg = render_svg(drawing, lang)
    html = render_html(results, drawing, svg, lang, generated, hashes)
    contents = {
        "index.html": html.encode("utf-8"),
        "topology.svg": ('<?xml version="1.0" encoding="UTF-8"?>\n' + svg).encode("utf-8"),
        "findings.csv": render_csv(results, lang).encode("utf-8"),
    }
    files: dict[str, str] = {}
    for name, data in contents.items():
        write_atomic(os.path.join(directory, name), data)
        files[name] = hashlib.sha256(data).hexdigest()
    status = combined_status(results)
    manifest = {
        "tool": {"name": "segverify", "version": __version__},
        "generated": generated,
        "command_line": list(command_line),
        "lang": lang,
        "status": status,
        "commands": [{"command": r.command, "status": r.status, "findings": len(r.findings)} for r in results],
        "inputs": [{"path": p, "sha256": h} for p, h in hashes],
        "files": [{"path": name, "sha256": files[name]} for name in sorted(files)],
    }
    data = (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_atomic(os.path.join(directory, "manifest.json"), data)
    return Bundle(directory, status, files)
