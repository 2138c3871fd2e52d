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
    console.print(f"{labels['inputs']}:")
    for path, digest in result.input_hashes():
        console.print(f"  {escape(path)}  sha256:{digest}")
    return buf.getvalue()
