"""``segverify report TOPOLOGY [CAPTURE…] -o DIR``: the audit bundle an auditor files.

It runs ``check`` (and ``replay`` when captures are given), turns the topology into the plain
drawing dict on the analysis side, and hands results and dict to the bundle writer. Exit status as
for check/replay, the verdict combining both: 0 compliant, 1 violations, 2 bad input, 3 incomplete.
"""

from __future__ import annotations

import sys

import click


@click.command("report")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.argument("captures", nargs=-1, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Write the bundle into DIR (created if missing).")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True,
              help="Language of the report.")
def report(topology: str, captures: tuple[str, ...], output: str, lang: str) -> None:
    """Write an audit bundle for TOPOLOGY (and CAPTURES): index.html, topology.svg, findings.csv,
    manifest.json."""
    from .analysis.check import build_context
    from .analysis.check import check as run_check
    from .analysis.drawing import describe_topology
    from .analysis.findings import Result
    from .cli import bad_input_exits, finish
    from .report.bundle import write_bundle
    from .topology.loader import load_topology

    command_line = ["segverify", "report", topology, *captures, "-o", output, "--lang", lang]
    with bad_input_exits(output):
        topo = load_topology(topology)
        ctx = build_context(topo)  # compiled once, for check and replay's judge alike
        results: list[Result] = [run_check(topo, ctx)]
        if captures:
            from .analysis.replay import replay as run_replay

            results.append(run_replay(topo, list(captures), show_progress=sys.stderr.isatty(), ctx=ctx))
        drawing = describe_topology(topo, [f for r in results for f in r.findings])
        bundle = write_bundle(output, results, drawing, lang, command_line)
    click.echo(f"segverify report: {bundle.status}: {output}", err=True)
    finish(bundle.exit_code)
