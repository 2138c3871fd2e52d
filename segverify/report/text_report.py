"""The report for people: a verdict line and a table of findings, in Japanese or English."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..analysis.findings import CODES, Result

STATUS_TEXT = {
    "en": {"compliant": "COMPLIANT", "violations": "VIOLATIONS FOUND", "incomplete": "INCOMPLETE"},
    "ja": {"compliant": "適合", "violations": "違反あり", "incomplete": "判定不能（解析が不完全）"},
}
STATUS_STYLE = {"compliant": "bold green", "violations": "bold red", "incomplete": "bold yellow"}
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
LABELS = {
    "en": {"status": "Status", "severity": "Severity", "code": "Code", "from": "From", "to": "To",
           "finding": "Finding", "inputs": "Inputs", "none": "No findings.", "title": "segverify {cmd}: {name}",
           "model": "model"},
    "ja": {"status": "判定", "severity": "重要度", "code": "コード", "from": "送信元", "to": "宛先",
           "finding": "内容", "inputs": "入力", "none": "指摘事項はありません。", "title": "segverify {cmd}: {name}",
           "model": "モデル"},
}


MAX_FLOW_ROWS = 200
FLOW_LABELS = {
    "en": ("Flows", "Initiator", "Responder", "Proto", "Segments", "Pkts", "Bytes", "Verdict",
           "more flows in --format json"),
    "ja": ("通信フロー", "開始側", "応答側", "プロトコル", "セグメント", "パケット", "バイト", "判定",
           "件の通信は --format json で確認できます"),
}
OK_VERDICTS = ("intra-family",)


def flow_table(flows: list[dict], lang: str) -> Table:
    """Cross-family flows first (they are what an analyst reads for), then the rest, capped."""
    title, ini, resp, proto, segs, pkts, nbytes, verdict, more = FLOW_LABELS[lang]
    ordered = sorted(flows, key=lambda f: f["verdict"] in OK_VERDICTS)
    table = Table(title=f"{title} ({len(flows)})", show_lines=False)
    for name in (ini, resp, proto, segs, pkts, nbytes, verdict):
        table.add_column(name, overflow="fold")
    for f in ordered[:MAX_FLOW_ROWS]:
        style = "" if f["verdict"] in OK_VERDICTS or f["verdict"].startswith(("channel:", "exception:")) else "red"
        mark = "" if f["initiator_known"] else "?"
        table.add_row(
            escape(f"{f['src']}:{f['sport']}{mark}"), escape(f"{f['dst']}:{f['dport']}"), escape(str(f["proto"])),
            escape(f"{f['src_segment'] or '?'} → {f['dst_segment'] or '?'}"), str(f["packets"]), str(f["bytes"]),
            f"[{style}]{escape(f['verdict'])}[/]" if style else escape(f["verdict"]),
        )
    if len(flows) > MAX_FLOW_ROWS:
        table.caption = f"{len(flows) - MAX_FLOW_ROWS} {more}"
    return table


def render_text(result: Result, lang: str = "en", color: bool = False, width: int = 120) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width, highlight=False)
    labels = LABELS[lang]
    head = labels["title"].format(cmd=result.command, name=escape(result.title))
    if "model" in result.extra:
        head += f"  ({labels['model']}: {escape(str(result.extra['model']))})"
    console.print(head)
    status = result.status
    console.print(f"{labels['status']}: [{STATUS_STYLE[status]}]{STATUS_TEXT[lang][status]}[/]")
    for reason in result.incomplete:
        console.print(f"  - {escape(reason)}")
    if not result.findings:
        console.print(labels["none"])
    else:
        table = Table(show_lines=True, expand=False)
        table.add_column(labels["severity"], no_wrap=True)
        table.add_column(labels["code"], no_wrap=True)
        table.add_column(labels["from"], overflow="fold")
        table.add_column(labels["to"], overflow="fold")
        # fold: Japanese has no spaces to wrap at, and "…" would cut evidence out of the report
        table.add_column(labels["finding"], ratio=1, overflow="fold")
        for f in result.findings:
            title = CODES.get(f.code, ("", f.code, f.code))[2 if lang == "ja" else 1]
            body = f.message_ja if lang == "ja" else f.message
            table.add_row(
                f"[{SEVERITY_STYLE[f.severity]}]{f.severity}[/]",
                f.code,
                escape(f.src_segment or "-"),
                escape(f.dst_segment or "-"),
                f"[bold]{escape(title)}[/]\n{escape(body)}",
            )
        console.print(table)
    flows = result.extra.get("flows")
    if flows:
        console.print(flow_table(flows, lang))
    console.print(f"{labels['inputs']}:")
    for path, digest in result.input_hashes():
        console.print(f"  {escape(path)}  sha256:{digest}")
    return buf.getvalue()
