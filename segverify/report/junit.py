"""JUnit XML for CI dashboards: one test case per pair of families and per channel, a failure for
each violation with the finding in it, so a red build says exactly which separation broke."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..analysis.findings import VIOLATION_SEVERITIES, Finding, Result

FAMILY_ORDER = ("MN", "LG", "IN", "SZ")


def _body(f: Finding) -> str:
    lines = [f.message, f.message_ja]
    if f.witness:
        lines.append(f"witness: {f.witness}")
    if f.flow:
        lines.append(f"flow: {f.flow}")
    for p in f.path or []:
        lines.append(f"at {p.get('firewall')}: rule {p.get('rule')} ({p.get('source')})")
    return "\n".join(lines)


def render_junit(result: Result) -> str:
    families: dict[str, str] = result.context.get("families", {})
    channels: list[str] = result.context.get("channels", [])
    present = [f for f in FAMILY_ORDER if f in set(families.values())]
    cases: dict[str, list[Finding]] = {}
    for a in present:
        for b in present:
            if a != b:
                cases[f"{a} → {b}"] = []
    for name in channels:
        cases[f"channel {name}"] = []
    cases["declarations and addresses"] = []
    for f in result.findings:
        if f.severity not in VIOLATION_SEVERITIES:
            continue
        channel = f.extra.get("channel")
        fa, fb = families.get(f.src_segment or ""), families.get(f.dst_segment or "")
        if channel and f"channel {channel}" in cases:
            cases[f"channel {channel}"].append(f)
        elif fa and fb and fa != fb and f"{fa} → {fb}" in cases:
            cases[f"{fa} → {fb}"].append(f)
        else:
            cases["declarations and addresses"].append(f)
    suite = ET.Element("testsuite", name=f"segverify {result.command}: {result.title}")
    failures = errors = 0
    for name, found in cases.items():
        case = ET.SubElement(suite, "testcase", classname=f"segverify.{result.command}", name=name)
        for f in found:
            failures += 1
            failure = ET.SubElement(case, "failure", message=f"{f.code}: {f.message}", type=f.code)
            failure.text = _body(f)
    if result.incomplete:
        errors += 1
        case = ET.SubElement(suite, "testcase", classname=f"segverify.{result.command}", name="analysis complete")
        error = ET.SubElement(case, "error", message="the analysis is incomplete", type="incomplete")
        error.text = "\n".join(result.incomplete)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element("testsuites", name="segverify", tests=suite.get("tests", "0"), failures=str(failures),
                      errors=str(errors))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
