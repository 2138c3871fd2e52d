"""The command line: ``segverify check|replay|diff``. Exit 0 compliant, 1 violations, 2 bad input,
3 incomplete. Bad input is one line naming the file (and line), never a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

import click

from . import __version__
from .analysis.findings import Result
from .errors import InputError

FORMATS = ("text", "json", "sarif", "junit")


def write_output(path: str, data: str | bytes, inputs: list[str]) -> None:
    """Write ``data`` to ``path`` atomically, refusing to overwrite any input."""
    from .report.output import refuse_inputs, write_atomic

    refuse_inputs(path, inputs)
    write_atomic(os.path.realpath(path), data if isinstance(data, bytes) else data.encode("utf-8"))


def emit(result: Result, fmt: str, output: str | None, lang: str) -> None:
    data: str | bytes
    if fmt == "json":
        from .report.json_report import render_json_bytes

        data = render_json_bytes(result)
    elif fmt == "sarif":
        from .report.sarif import render_sarif

        data = render_sarif(result)
    elif fmt == "junit":
        from .report.junit import render_junit

        data = render_junit(result)
    else:
        from .report.text_report import render_text

        color = output is None and sys.stdout.isatty()
        data = render_text(result, lang=lang, color=color)
    if output:
        write_output(output, data, result.inputs)
    elif isinstance(data, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data)


@contextlib.contextmanager
def bad_input_exits(path: str = "") -> Iterator[None]:
    """Bad input as the contract says: one line naming the file (``path`` when the error names none), exit
    status 2, no traceback."""
    try:
        yield
    except InputError as exc:
        click.echo(f"segverify: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"segverify: error: {exc.filename or path}: {exc.strerror or exc}", err=True)
        sys.exit(2)


def run(action: Callable[[], Result], fmt: str, output: str | None, lang: str) -> None:
    with bad_input_exits():
        result = action()
        emit(result, fmt, output, lang)
    finish(result.exit_code)


_SKIP_TEARDOWN = False
"""Set by the console entry point (:func:`entry`), not when ``main`` runs inside another program (tests)."""


def finish(code: int) -> None:
    """Exit with ``code`` once the report is out. From the console, without Python's teardown: it frees the
    run's objects one by one (0.7 s after a replay of 159k flows) when nothing is left to do but flush stdout
    and stderr. Inside another program, the ordinary ``SystemExit``."""
    if not _SKIP_TEARDOWN:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (``| head``): not wanted whole
            stream.flush()
    os._exit(code)


def common(fn: Callable) -> Callable:
    fn = click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True,
                      help="Language of the text report and messages.")(fn)
    fn = click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to FILE.")(fn)
    fn = click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="segverify")
def main() -> None:
    """Prove that a municipal network obeys the three-tier separation model (三層の対策)."""


@main.command()
@click.argument("topology", type=click.Path(dir_okay=False))
@common
def check(topology: str, fmt: str, output: str | None, lang: str) -> None:
    """Check the firewall rules and the graph of TOPOLOGY against the three-tier model."""

    def action() -> Result:
        from .analysis.check import check as run_check
        from .topology.loader import load_topology

        return run_check(load_topology(topology))

    run(action, fmt, output, lang)


@main.command()
@click.argument("topology", type=click.Path(dir_okay=False))
@click.argument("captures", nargs=-1, required=True)
@click.option("--workers", type=click.IntRange(min=1), help="Read and judge on a local Dask cluster of N "
              "processes (one thread each).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Use an existing Dask cluster (the captures must "
              "be readable at the same paths on its workers).")
@common
def replay(topology: str, captures: tuple[str, ...], workers: int | None, scheduler: str | None, fmt: str,
           output: str | None, lang: str) -> None:
    """Judge the flows in pcap/pcapng CAPTURES (gzip too; glob patterns and directories) against TOPOLOGY."""

    def action() -> Result:
        from .analysis.findings import hash_in_background
        from .inputs import expand_inputs

        files = expand_inputs(captures)
        if workers is None and scheduler is None:
            # the captures' digests first: their hashing then has the second core to itself while the rest of
            # segverify is imported and the topology compiled
            digests = hash_in_background(files)
            from .analysis.replay import replay as run_replay
            from .capture.reader import keep_read_blocks
            from .topology.loader import load_topology

            keep_read_blocks()
            return run_replay(load_topology(topology), files, show_progress=sys.stderr.isatty(), digests=digests,
                              last=_SKIP_TEARDOWN)
        from .scale.cluster import cluster_client, replay_cluster
        from .topology.loader import load_topology

        topo = load_topology(topology)

        with cluster_client(workers, scheduler) as client:
            return replay_cluster(topo, files, client, show_progress=sys.stderr.isatty())

    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers and --scheduler exclude each other")
    run(action, fmt, output, lang)


@main.command()
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@click.option("--firewall", help="Only the change of this firewall (the rest is taken from BEFORE).")
@common
def diff(before: str, after: str, firewall: str | None, fmt: str, output: str | None, lang: str) -> None:
    """What AFTER opens or closes between families compared with BEFORE (exit 1: something opened
    that no channel or exception declares)."""

    def action() -> Result:
        from .analysis.diff import diff as run_diff
        from .topology.loader import load_topology

        return run_diff(load_topology(before), load_topology(after), firewall)

    run(action, fmt, output, lang)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--format", "config_format", required=True, help="The vendor format (iptables-save, …).")
@click.option("--interfaces", default="", help="Comma-separated interface names the topology would give "
              "(what -i/-o, zones or nameif names are matched against).")
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
def rules(config: str, config_format: str, interfaces: str, as_json: bool) -> None:
    """Print the rules segverify understood from a vendor CONFIG, in its own normalised form."""
    import json

    from .importers import FORMATS, get_importer
    from .model.rules import describe

    try:
        importer = get_importer(config_format)
        if importer is None:
            raise InputError(config, f"unknown config format {config_format!r} (known: {', '.join(FORMATS)})")
        if not os.path.isfile(config):
            raise InputError(config, "file not found")
        names = [n.strip() for n in interfaces.split(",") if n.strip()]
        ruleset = importer(config, names)
    except InputError as exc:
        click.echo(f"segverify: error: {exc}", err=True)
        sys.exit(2)
    rows = []
    for r in ruleset.rules:
        rows.append({
            "id": r.id, "action": r.action,
            "in": sorted(r.in_ifaces) if r.in_ifaces is not None else "any",
            "out": sorted(r.out_ifaces) if r.out_ifaces is not None else "any",
            "match": describe(r.match), "source": str(r.source or ""),
            **({"name": r.name} if r.name else {}),
            **({"approximation": r.approximation} if r.approximation else {}),
        })
    if as_json:
        click.echo(json.dumps({"rules": rows, "default": ruleset.default}, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{escape(config)} ({config_format}): {len(rows)} rules, then default {ruleset.default}")
    for col in ("id", "action", "in", "out", "match", "source"):
        table.add_column(col, overflow="fold")
    for row in rows:
        def iface(v: object) -> str:
            return v if isinstance(v, str) else ",".join(v)  # type: ignore[arg-type]
        match = row["match"] + (f"  [yellow](approximated: {escape(row['approximation'])})[/]"
                                if "approximation" in row else "")
        table.add_row(escape(row["id"]), row["action"], escape(iface(row["in"])), escape(iface(row["out"])),
                      escape(row["match"]) if "approximation" not in row else match, escape(row["source"]))
    Console(highlight=False, width=160).print(table)


from .cli_report import report as _report_command  # noqa: E402

main.add_command(_report_command)


def entry() -> None:
    """The ``segverify`` console command."""
    global _SKIP_TEARDOWN
    # numpy's OpenBLAS starts a worker thread that nothing here uses (no linear algebra), which costs CPU and
    # is one more thread when the replay forks: one thread, unless the user chose otherwise
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _SKIP_TEARDOWN = True
    main()


if __name__ == "__main__":  # pragma: no cover
    entry()
