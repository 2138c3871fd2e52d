"""``segverify replay`` on a Dask cluster: the same report as one process, from many.

Two rounds, each a set of independent tasks (retried when a worker fails or dies):

1. **read** — every part (a file, or a stretch of a large pcap or pcapng; :mod:`.parts`; files are cut
   only when too few to keep the workers busy) becomes a compact table of flow pieces (:mod:`.partial`),
   its damage and counters; during the same read its candidate channel packets are harvested and kept on
   the worker. Every input is hashed for the report on a worker, at low priority. The client merges the
   pieces into the one-pass flow table (numpy, a few arrays per part).
2. **judge and inspect** — the flows that lie wholly in a part are judged (workers build their own
   :class:`Judge` from the topology: CUDD diagrams cannot be pickled), and those on channels inspected from
   the part's harvest, by one task placed on the worker that read the part. The few flows whose tuple spans
   parts are judged by the client; every part ships their packets (read back by offset where it can), and
   the client reassembles them in global order. Per-flow results are put together in flow order.

A part that cannot be read on the cluster after its retries makes the result ``incomplete`` naming the
file; a judge-and-inspect task that keeps failing is done by the client itself (same code, same result).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..analysis.findings import Result, sha256_file
from ..analysis.inspect import (
    MAX_FIRST_BYTES,
    ItemResult,
    combine,
    first_bytes_only,
    from_harvest,
    harvester,
    inspect_item,
    plan,
    wanted,
)
from ..analysis.replay import FlowVerdict, Judge, assemble
from ..capture.collect import Harvest, Quiet, RawFragment, candidates, collect_records, rebuild_fragments
from ..capture.flows import Flow
from ..capture.fragments import shared_pairs
from ..capture.reader import _PCAP_MAGICS, DEFAULT_BATCH, Damage, PacketRecord, iter_batches
from ..errors import InputError
from ..model.gcpause import frozen_gc
from ..model.topology import Topology
from ..report.rows import RenderedRows
from .partial import Counters, FlowRows, Pieces, TableFlow, batch_pieces, compact, concat, empty_pieces, merge
from .parts import DEFAULT_CHUNK, Part, split, splittable, whole

if TYPE_CHECKING:
    from distributed import Client

KILL_ENV = "SEGVERIFY_TEST_KILL_DIR"
"""Test hook: a directory; a read task exits its worker process the first time it runs on a part (and
always fails on a part for which a file ``fail-PART`` exists there)."""
RETRIES = 2

Key = frozenset[tuple[int, int]]


@dataclass
class ClusterResult(Result):
    """A result from the cluster, with how it was got (its captures' digests come from the workers)."""

    timings: dict[str, float] = field(default_factory=dict)  # seconds per round, for benchmarks
    parts: dict[str, int] = field(default_factory=dict)  # parts read, inspected, and how (see inspect_part)


@dataclass
class PartResult:
    part: Part
    pieces: Pieces
    counters: Counters
    damage: list[Damage]
    error: str | None = None
    worker: str | None = None  # where the part's harvest is kept (see read_part), if anywhere


# ------------------------------------------------------------------------------------------- worker side


def part_id(part: Part) -> int:
    return (part.fidx << 24) | part.seq


def _maybe_die(part: Part) -> None:
    where = os.environ.get(KILL_ENV)
    if not where:
        return
    if os.path.exists(os.path.join(where, "fail-" + part.name)):
        raise RuntimeError(f"test hook: part {part.name} always fails")
    try:
        os.close(os.open(os.path.join(where, part.name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(1)


def read_part(part: Part, batch_size: int = DEFAULT_BATCH, topo: Topology | None = None, token: str = "",
              run: str = "") -> PartResult:  # fmt: skip
    """Round 1 on a worker: the part's flow pieces (folded as it goes, so memory follows flows).

    Given the topology, the part's candidate channel packets are also harvested during this single read,
    as one process does (:func:`~segverify.analysis.inspect.harvester`), and the harvest is kept on this
    worker for the part's inspect task, which then need not read the part again (:func:`inspect_part`)."""
    damage: list[Damage] = []
    counters = Counters()
    pcs: list[Pieces] = []
    pid = part_id(part)
    harvest = None
    if topo is not None:
        judge = _judge(topo, token)
        harvest = harvester(topo, judge.channels, lambda addr: judge.segment(addr, None))
    try:
        for batch in iter_batches(part.path, batch_size, damage=damage, span=part.span):
            pcs.append(batch_pieces(batch, counters, part.fidx, pid))
            if harvest is not None:
                harvest.add(batch)
            _maybe_die(part)
            if len(pcs) >= 16:
                pcs = [compact(concat(pcs))]
    except OSError as exc:
        return PartResult(part, empty_pieces(), counters, damage, f"cannot read: {exc.strerror or exc}")
    _maybe_die(part)
    worker = None
    if harvest is not None and harvest.usable:
        worker = _keep_harvest(run, pid, harvest)
    return PartResult(part, compact(concat(pcs)), counters, damage, worker=worker)


_HARVESTS: dict[tuple[str, int], Harvest] = {}
"""Harvests of the parts this worker read, by (run, part), until their inspect task takes them. A cache:
an inspect task that finds none (its worker was replaced, or it ran elsewhere) reads the part again."""


def _keep_harvest(run: str, pid: int, harvest: Harvest) -> str | None:
    """Keep ``harvest`` in this worker process; its address, or None outside a Dask worker."""
    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):
        return None
    for key in [k for k in _HARVESTS if k[0] != run]:  # one replay at a time: drop what an earlier run left
        del _HARVESTS[key]
    _HARVESTS[(run, pid)] = harvest
    return address


_JUDGES: dict[str, Judge] = {}


def pack(fn: Callable[..., object], *args: object) -> bytes:
    """A task's function and arguments as one pickled blob, for :func:`run_packed`."""
    return pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)


def run_packed(blob: bytes) -> bytes:
    """Run a packed task on a worker and return its result pickled.

    Why: Dask walks every element of a task's list arguments and results (looking for futures and
    nested tasks), and for slices of thousands of flows that walk cost more than judging them: the
    judge round of 8M packets took 7.8 s on 2 workers for 3.7 s of work, 3.6 s once packed."""
    fn, args = pickle.loads(blob)
    return pickle.dumps(fn(*args), protocol=pickle.HIGHEST_PROTOCOL)


def _judge(topo: Topology, token: str) -> Judge:
    """One Judge per topology per worker process, kept between tasks (its BDDs are the costly part)."""
    if token not in _JUDGES:
        _JUDGES.clear()
        _JUDGES[token] = Judge(topo)
    return _JUDGES[token]


def judge_and_inspect(topo: Topology, token: str, part: Part, flows: list[Flow] | FlowRows, ship_tcp: set[Key],
                      ship_udp: set[Key], frag_pairs: set[frozenset[int]], run: str,
                      ) -> tuple[list[tuple], list[tuple[int, ItemResult]], list[tuple | RawFragment],
                                 dict[frozenset[int], str], str, list[bytes]]:  # fmt: skip
    """Round 2 on a worker: judge the flows that lie wholly in ``part`` and inspect those on channels (from
    the part's harvest when this worker kept it: :func:`inspect_part`), in one task, so that a flow's verdict
    and its inspection need no round trip through the client in between. Inspection results are keyed by
    the flow's index in ``flows`` (flow objects, or the merged table's rows for them). Each flow's row of
    the report is rendered here too, unless it is inspected (inspection adds its notes, and an FTP data
    connection's verdict may come from its control connection in another part): the client renders those."""
    if isinstance(flows, FlowRows):
        flows = flows.flows()
    rows = judge_flows(topo, token, flows)
    items = []
    texts = []
    for k, (f, row) in enumerate(zip(flows, rows, strict=True)):
        v, pl = _verdict(f, row)
        texts.append(v.row_bytes() if pl is None else b"")
        if pl is not None:
            items.append((k, v, pl[0], pl[1]))
    got, shipped, losses, how = inspect_part(topo, token, part, items, ship_tcp, ship_udp, frag_pairs, run)
    return rows, got, shipped, losses, how, texts


def _verdict(flow: Flow, row: tuple) -> tuple[FlowVerdict, tuple[int, str] | None]:
    """A flow's verdict and inspection plan from its row of :func:`judge_flows`."""
    a, b, verdict, notes, denied, no_path, pl = row
    return FlowVerdict(flow, a, b, verdict, list(notes), denied, no_path), (tuple(pl) if pl is not None else None)


def _reads_flow(row: tuple) -> bool:
    """Whether the report reads the flow behind a row of :func:`judge_flows` (beyond its rendered row): a finding
    names it, or it is inspected (or an unknown address's finding names it)."""
    a, b, verdict, _notes, denied, _no_path, pl = row
    return pl is not None or denied or a is None or b is None or verdict in ("MYNUMBER_FLOW", "UNSANITIZED_FLOW")


def _group(local_part: np.ndarray, keep: np.ndarray) -> dict[int, list[int]]:
    """Indices of the kept flows by the part that holds all their packets, in flow order."""
    idx = np.flatnonzero(keep & (local_part >= 0))
    parts = local_part[idx]
    order = np.argsort(parts, kind="stable")
    idx, parts = idx[order], parts[order]
    cuts = np.flatnonzero(np.diff(parts)) + 1
    return {int(g[0]): i.tolist() for g, i in zip(np.split(parts, cuts), np.split(idx, cuts), strict=True) if len(g)}


def judge_flows(topo: Topology, token: str, flows: list[Flow]) -> list[tuple]:
    """Round 2 on a worker: verdict, rule check and inspection plan of each flow (compact tuples)."""
    judge = _judge(topo, token)
    out = []
    for f in flows:
        v = judge.judge(f)
        out.append((v.src_segment, v.dst_segment, v.verdict, v.notes, v.denied, v.no_path,
                    plan(topo, judge.channels, v)))  # fmt: skip
    return out


def _record(rec: PacketRecord) -> tuple:
    return (rec.proto, rec.family, rec.src, rec.sport, rec.dst, rec.dport, rec.tcp_flags, rec.seq,
            bytes(rec.payload))  # fmt: skip


def _unrecord(t: tuple) -> PacketRecord:
    proto, family, src, sport, dst, dport, flags, seq, payload = t
    return PacketRecord(0, 0, 0, 0, len(payload), len(payload), None, family, src, dst, proto, sport, dport, flags,
                        seq, 0, 0, 0, 0, False, False, 0, 0, 0, memoryview(payload))  # fmt: skip


def _rkey(rec: PacketRecord) -> Key:
    return frozenset(((rec.src, rec.sport), (rec.dst, rec.dport)))


def inspect_part(topo: Topology, token: str, part: Part, items: list[tuple[int, FlowVerdict, int, str]],
                 ship_tcp: set[Key], ship_udp: set[Key], frag_pairs: set[frozenset[int]] | None = None,
                 run: str = "") -> tuple[list[tuple[int, ItemResult]], list[tuple | RawFragment],
                                         dict[frozenset[int], str], str]:  # fmt: skip
    """Round 3 on a worker: inspect the flows whose 5-tuples lie in this part; return the packets of the
    tuples that span parts (only those) for the client to reassemble in global order, and the raw IP
    fragments between ``frag_pairs`` (datagrams whose fragments lie in several parts); and how the part was
    inspected: "harvest", "harvest+positions" (the spanning tuples' packets read back by position) or "reread".

    The part's harvest, when this worker kept one (:func:`read_part`), answers without reading the part
    again: it holds, per endpoint pair, what a second read would collect. It cannot serve a part holding
    packets of a tuple that spans parts in a pcapng or gzip file (those are shipped raw, and in a plain pcap
    read back from their positions), nor one with candidate IP fragments (the harvest gave up); such a part is
    read again."""
    channels = _judge(topo, token).channels
    work = [(v, channels[ci], what) for _, v, ci, what in items]
    tcp, udp, caps = wanted(work)
    harvest = _HARVESTS.pop((run, part_id(part)), None)
    shipped: list[tuple | RawFragment] = []
    if harvest is not None and harvest.usable and harvest.saw_any(ship_tcp, ship_udp):
        by_position = _ship_by_position(part, harvest, ship_tcp, ship_udp)
        if by_position is None:
            harvest = None  # not a plain pcap: read the part again
        else:
            shipped = by_position
    if harvest is not None and harvest.usable:
        got = from_harvest(harvest, work)
        done = [(w, inspect_item(topo, ch, what, v, got)) for (w, v, _, _), (_, ch, what) in zip(items, work,
                                                                                                 strict=True)]
        return done, shipped, {}, "harvest+positions" if shipped else "harvest"
    losses: dict[frozenset[int], str] = {}
    # the packets of tuples that span parts are all shipped: only tuples wholly in this part are quieted
    quiet_ok = first_bytes_only(work) - ship_tcp - ship_udp
    quiet = Quiet(lambda key, _proto: key in quiet_ok, MAX_FIRST_BYTES)

    def local() -> Iterator[PacketRecord]:
        for rec in candidates([(part.path, part.span)], tcp | ship_tcp, udp | ship_udp, losses, quiet, frag_pairs):
            if isinstance(rec, RawFragment):
                shipped.append(rec)
                continue
            key = _rkey(rec)
            if (key in ship_tcp) if rec.proto == 6 else (key in ship_udp):
                shipped.append(_record(rec))
            if (key in tcp) if rec.proto == 6 else (key in udp):
                yield rec

    got = collect_records(local(), caps, losses, quiet)
    results = [(w, inspect_item(topo, ch, what, v, got)) for (w, v, _, _), (_, ch, what) in zip(items, work,
                                                                                              strict=True)]
    return results, shipped, losses, "reread"


def _ship_by_position(part: Part, harvest: Harvest, ship_tcp: set[Key], ship_udp: set[Key]) -> list[tuple] | None:
    """The packets of the tuples that span parts, read back from where the harvest saw them instead of reading
    the whole part again: their records, after the file's own header, make a small pcap that the reader
    decodes as it decoded them in place. Plain pcap only (a pcapng block needs its section's interfaces, a
    gzip stream has no offsets to seek to): None otherwise, or when a record is not where it was."""
    with open(part.path, "rb") as src, tempfile.NamedTemporaryFile(prefix="segverify-ship-", suffix=".pcap") as out:
        header = src.read(24)
        if header[:4] not in _PCAP_MAGICS:  # the reader's own list: records with a 16-byte header
            return None
        little = _PCAP_MAGICS[header[:4]][0] == "<"
        positions, lengths = harvest.where(ship_tcp | ship_udp)
        out.write(header)
        for pos, n in zip(positions.tolist(), lengths.tolist(), strict=True):
            rec = os.pread(src.fileno(), 16 + n, pos - 16)
            if len(rec) != 16 + n or int.from_bytes(rec[8:12], "little" if little else "big") != n:
                return None
            out.write(rec)
        out.flush()
        return [_record(rec) for rec in candidates([(out.name, None)], ship_tcp, ship_udp, {})
                if not isinstance(rec, RawFragment)]  # fmt: skip


# ------------------------------------------------------------------------------------------- client side


@contextmanager
def cluster_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Client]:
    """A client on ``scheduler``, or on a local cluster of ``workers`` processes (one thread each)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    # no work stealing: an inspect task is placed on the worker that keeps its part's harvest, and moved to an
    # idle one it would read the part again (seconds) instead of waiting for the busy one. No statistical
    # profiler in the workers (a dashboard feature nobody looks at here): sampling the task's stack 100 times a
    # second made reads and part tasks ≈ 8% slower with two workers (bench_scale, 8 × 1M packets).
    #
    # Workers are forked where the system allows it (Linux): the client has imported all that a worker needs,
    # so a forked worker is up in 0.2 s where a spawned one imports everything again (0.8 s for two, on the
    # bench's critical path), and it stops in milliseconds (0.2 s). The client forks before it has built
    # anything a worker must not share (CUDD managers, open captures); the forked workers build their own.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ(),
                          "distributed.scheduler.work-stealing": False,
                          "distributed.worker.profile.enabled": False,
                          "distributed.worker.multiprocessing-method": method}), \
            LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True, dashboard_address=":0",
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:  # fmt: skip
        yield client


def _worker_environ() -> dict[str, object]:
    """Dask's environment for new worker processes, without its ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it (64 KiB) so that idle workers give memory back to the system. Setting it also freezes glibc's
    mmap threshold at 128 KiB, so every large buffer (the reader's blocks, the decoded batch arrays) is
    mmapped and unmapped each time and its pages faulted in again: a part's read took 2x the CPU in a worker
    (4.3-5.2 s against 2.1-2.5 s in a plain process, measured on the bench's 1M-packet captures). Workers of
    a remote scheduler are started by their owner: see docs/scaling.md."""
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


class _Progress:
    """Files and packets done, and the rate, on stderr (when it is a terminal)."""

    def __init__(self, show: bool, files: int, total_bytes: int) -> None:
        self.bar = None
        self.t0 = time.perf_counter()
        self.packets = 0
        self.files = files
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                TextColumn("{task.fields[packets]:,} packets, {task.fields[rate]:,.0f}/s"),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=True)  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(f"0/{files} files", total=total_bytes, packets=0, rate=0.0)

    def update(self, done_bytes: int, packets: int, files_done: int, what: str = "reading") -> None:
        self.packets += packets
        if self.bar is not None:
            rate = self.packets / max(time.perf_counter() - self.t0, 1e-6)
            self.bar.update(self.task, advance=done_bytes, packets=self.packets, rate=rate,
                            description=f"{what}: {files_done}/{self.files} files")  # fmt: skip

    def stage(self, what: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=what)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def part_size(total_bytes: int, workers: int) -> int:
    """How large a part may be: files are cut only when there are too few to keep every worker busy.

    Cutting a file costs a walk of all its record headers (≈ 1 s per GB) and makes flows span parts, whose
    packets are then read twice and shipped; a corpus of many files needs none of it. Parts of at most
    ``total / (2 * workers)`` give each worker two or more tasks to balance with."""
    return max(DEFAULT_CHUNK, -(-total_bytes // (2 * max(workers, 1))))


def replay_cluster(topo: Topology, captures: Sequence[str], client: Client, chunk: int | None = None,
                   show_progress: bool = False, batch_size: int = DEFAULT_BATCH) -> Result:
    """The replay of ``captures`` on the cluster behind ``client``: the one-process report, exactly.

    ``chunk`` is the largest part in bytes (default: :func:`part_size` for the cluster's workers)."""
    with frozen_gc() as freeze:
        return _replay_cluster(topo, captures, client, chunk, show_progress, batch_size, freeze)


def _replay_cluster(topo: Topology, captures: Sequence[str], client: Client, chunk: int | None,
                    show_progress: bool, batch_size: int, freeze: Callable[[], None]) -> Result:
    from distributed import as_completed

    for path in captures:
        if not os.path.isfile(path):
            raise InputError(path, "capture file not found")
    total_bytes = sum(os.path.getsize(p) for p in captures)
    if chunk is None:
        chunk = part_size(total_bytes, len(client.scheduler_info()["workers"]))
    judge = Judge(topo)
    token = hashlib.sha256(pickle.dumps(topo)).hexdigest()
    run = uuid.uuid4().hex[:8]
    progress = _Progress(show_progress, len(captures), total_bytes)
    clock = [time.perf_counter()]
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 3)
        clock[0] = now

    try:
        # ---- round 1: read
        meta: dict[str, tuple[str, Any]] = {}
        futures = []

        def submit(kind: str, fn: Any, calls: list[tuple[Any, tuple]], priority: int = 0) -> list[Any]:
            """One ``fn`` task per (what it is about, its arguments), sent in one message. Dask queues a group
            of tasks on the scheduler, in priority order, only when it sees enough of the group at once;
            submitted one by one, the first tasks of each group went straight to the workers, and hashes
            (low priority) ran before half of the reads."""
            if not calls:
                return []
            keys = [f"segverify-{kind}-{run}-{len(meta) + k}" for k in range(len(calls))]
            futs = client.map(fn, *zip(*(args for _, args in calls), strict=True), key=keys, retries=RETRIES,
                              pure=False, priority=priority)
            for fut, (obj, _) in zip(futs, calls, strict=True):
                meta[fut.key] = (kind, obj)
            return futs

        def reads(parts: list[Part]) -> list[Any]:
            return submit("read", read_part, [(p, (p, batch_size, topo, token, run)) for p in parts])

        cut = {fidx for fidx, path in enumerate(captures) if splittable(path, chunk)}
        futures += submit("split", split, [((f, captures[f]), (f, captures[f], chunk)) for f in sorted(cut)])
        futures += reads([whole(fidx, path) for fidx, path in enumerate(captures) if fidx not in cut])
        # the inputs' digests are needed only by the report: hashing runs after every other task (low
        # priority) and fills the time the workers would wait while the client merges and plans
        hash_futures = list(zip(captures, submit("hash", sha256_file, [(p, (p,)) for p in captures], priority=-100),
                                strict=True))  # fmt: skip
        results: dict[tuple[int, int], PartResult] = {}
        failed: dict[int, list[str]] = {}
        parts_of: dict[int, int] = {}  # file -> number of parts, once known
        done_of: dict[int, int] = {}
        ac = as_completed(futures)
        for fut in ac:
            kind, obj = meta[fut.key]
            try:
                res = fut.result()
                exc = None
            except Exception as e:  # noqa: BLE001 - retries exhausted or the result lost with its worker
                exc = e
            if exc is not None:
                if kind == "read":
                    part = obj
                    lo, hi = part.start, part.start + part.size
                    failed.setdefault(part.fidx, []).append(
                        f"capture {part.path} could not be read on the cluster (bytes {lo}-{hi}): "
                        f"{type(exc).__name__}: {exc}: what it held was not judged")
                    done_of[part.fidx] = done_of.get(part.fidx, 0) + 1
                elif kind == "split":
                    part = whole(*obj)  # cut it on the cluster failed: read it whole
                    parts_of[part.fidx] = 1
                    ac.update(reads([part]))
                fut.release()
                continue
            fut.release()
            if kind == "split":
                parts_of[obj[0]] = len(res)
                ac.update(reads(res))
            else:
                part = res.part
                results[(part.fidx, part.seq)] = res
                done_of[part.fidx] = done_of.get(part.fidx, 0) + 1
                files_done = sum(1 for f, n in done_of.items() if n == parts_of.get(f, 1))
                progress.update(part.size, res.counters.packets, files_done)
        # ---- bad input exactly as one process reports it, in file order
        damage: list[Damage] = []
        counters = Counters()
        for fidx, path in enumerate(captures):
            mine = [results[k] for k in sorted(results) if k[0] == fidx]
            for r in mine:
                if r.error:
                    raise InputError(path, r.error)
            dmg = [d for r in mine for d in r.damage]
            packets = sum(r.counters.packets for r in mine)
            if (mine and mine[0].part.seq == 0 and dmg and dmg[0].offset == 0 and dmg[0].reason.startswith("not a ")
                    and packets == 0):
                raise InputError(path, f"not a pcap or pcapng capture ({dmg[0].reason})")
            damage += dmg
            for r in mine:
                counters.add(r.counters)
        lap("read")
        progress.stage("merging")
        ordered = [results[k] for k in sorted(results)]
        merged = merge(concat([r.pieces for r in ordered]))
        n_flows = len(merged.local_part)
        stats = {"packets": counters.packets, "non_ip_packets": counters.non_ip,
                 "unattributed_fragments": counters.unattributed_fragments}

        lap("merge")
        # ---- round 2: judge and inspect, part by part
        progress.stage(f"judging {n_flows:,} flows and inspecting channel flows")
        channels = judge.channels
        _JUDGES.setdefault(token, judge)
        # datagrams whose fragments lie in several parts: the flows between their addresses are inspected
        # here, from every part's packets and raw fragments in global order, as one process reads them
        straddling = shared_pairs([r.counters.fragments for r in ordered])
        local_part = merged.local_part
        # The client judges the few flows it inspects itself (their tuple spans parts, or a datagram of their
        # addresses does): which tuples every part must ship depends on them. Every other flow is judged, and
        # inspected if it is on a channel, by the task of the one part that holds all its packets.
        own = np.flatnonzero(local_part < 0).tolist()
        if straddling:  # rare: the flow objects are needed now
            own = sorted({*own, *(i for i, f in enumerate(merged.flows) if frozenset((f.src, f.dst)) in straddling)})
        own_flows = dict(zip(own, merged.table.take(own).flows(), strict=True))
        verdicts: list[FlowVerdict | None] = [None] * n_flows
        plans: list[tuple[int, str] | None] = [None] * n_flows
        for i, row in zip(own, judge_flows(topo, token, list(own_flows.values())), strict=True):
            verdicts[i], plans[i] = _verdict(own_flows[i], row)
        ship_tcp: set[Key] = set()
        ship_udp: set[Key] = set()
        for i in own:
            if plans[i] is not None:
                f = own_flows[i]
                key = frozenset(((f.src, f.sport), (f.dst, f.dport)))
                if f.proto == 6:
                    ship_tcp.add(key)
                elif f.proto == 17:
                    ship_udp.add(key)
        frag_pairs = {frozenset((own_flows[i].src, own_flows[i].dst)) for i in own if plans[i] is not None} & straddling
        mine = np.ones(n_flows, dtype=bool)
        mine[own] = False
        by_part = _group(local_part, mine)
        item_by_flow: dict[int, ItemResult] = {}
        shipped: dict[tuple[int, int], list[tuple | RawFragment]] = {}
        losses: dict[frozenset[int], str] = {}
        lost_by_part: dict[tuple[int, int], dict[frozenset[int], str]] = {}
        tasks = []
        inspected_how: dict[str, int] = {}
        # largest parts first, so that no worker is left with the long ones at the end (results are put
        # together by part, in order, whatever order the tasks ran in)
        for r in sorted(ordered, key=lambda r: -r.part.size):
            idx = by_part.get(part_id(r.part), [])
            if idx or ship_tcp or ship_udp:
                part_flows = merged.table.take(idx)
                # on the worker that read the part, which kept its harvest (anywhere else, it is read again)
                where = {"workers": [r.worker], "allow_other_workers": True} if r.worker else {}
                fut = client.submit(run_packed, pack(judge_and_inspect, topo, token, r.part, part_flows, ship_tcp,
                                                     ship_udp, frag_pairs, run),
                                    key=f"segverify-part-{run}-{r.part.name}", retries=RETRIES, pure=False,
                                    **where)  # fmt: skip
                tasks.append((r.part, idx, part_flows, fut))
        texts: list[bytes] = [b""] * n_flows  # the workers render the rows of flows they judge and do not inspect
        for part, idx, part_flows, fut in tasks:
            try:
                rows, got, recs, lost, how, part_texts = pickle.loads(fut.result())
            except Exception:  # noqa: BLE001 - the client does the part itself
                rows, got, recs, lost, how, part_texts = judge_and_inspect(topo, token, part, part_flows, ship_tcp,
                                                                           ship_udp, frag_pairs, run)  # fmt: skip
            fut.release()
            # flow objects only for the verdicts whose flow the report reads (findings, inspection); the rest
            # stand in as table rows (their report rows came rendered)
            need = [k for k, row in enumerate(rows) if _reads_flow(row)]
            built = dict(zip(need, part_flows.take(need).flows(), strict=True))
            for k, (i, row, text) in enumerate(zip(idx, rows, part_texts, strict=True)):
                flow = built.get(k)
                verdicts[i], plans[i] = _verdict(flow if flow is not None else cast(Flow, TableFlow(part_flows, k)),
                                                 row)  # fmt: skip
                texts[i] = text
            for k, res in got:
                item_by_flow[idx[k]] = res
            inspected_how[how] = inspected_how.get(how, 0) + 1
            shipped[(part.fidx, part.seq)] = recs
            lost_by_part[(part.fidx, part.seq)] = lost
            freeze()  # this part's verdicts
        lap("judge")
        for k in sorted(lost_by_part):  # in part order, whatever order the tasks finished in
            for pair, why in lost_by_part[k].items():
                losses.setdefault(pair, why)
        work = []
        item_results: dict[int, ItemResult] = {}
        spanning: list[int] = []
        for i, pl in enumerate(plans):
            if pl is None:
                continue
            v = verdicts[i]
            assert v is not None
            w = len(work)
            work.append((v, channels[pl[0]], pl[1]))
            if i in item_by_flow:
                item_results[w] = item_by_flow[i]
            else:
                spanning.append(w)
        if spanning:
            sub = [work[w] for w in spanning]
            _, _, caps = wanted(sub)
            records = rebuild_fragments((t if isinstance(t, RawFragment) else _unrecord(t)
                                         for k in sorted(shipped) for t in shipped[k]), losses)
            got_all = collect_records(records, caps, losses)
            for w in spanning:
                v, ch, what = work[w]
                item_results[w] = inspect_item(topo, ch, what, v, got_all)
        inspection = combine(work, [item_results[w] for w in range(len(work))], channels)
        for i, text in enumerate(texts):  # flows judged here, and inspected flows: final only now
            if not text:
                texts[i] = verdicts[i].row_bytes()  # type: ignore[union-attr]
        lap("inspect")
        more = [m for f in sorted(failed) for m in failed[f]]
        progress.stage("report")
        result = assemble(topo, judge, captures, verdicts, damage, stats, inspection, more,
                          result_type=ClusterResult, flow_rows=lambda order: RenderedRows([texts[i] for i in order]),
                          order=merged.table.report_order())  # fmt: skip
        assert isinstance(result, ClusterResult)
        for path, fut in hash_futures:
            with contextlib.suppress(Exception):  # what the cluster could not hash, the report hashes itself
                result.digests[path] = fut.result()
            fut.release()
        lap("report")
        result.timings = timings
        result.parts = {"read": len(ordered), "inspected": len(tasks), **inspected_how}
        return result
    finally:
        progress.close()
