"""Content inspection on the second core: a forked process reassembles the channel packets while the main
process reads on, then inspects the flows on channels.

In one process, the harvest (reassembling the packets of channel pairs, in Python) and the inspection came
after or between the header pass's own work on one core while the other only hashed the captures. Here the
main process selects each batch's candidate packets (in C) and sends their header rows from a sender thread;
the side process maps their bytes from the capture itself (a gzip capture's candidates travel with their
payloads) and takes them into its :class:`~segverify.capture.collect.Harvest` exactly as ``Harvest.add``
would. Once the flow table is known, it inspects the flows of the plan with the same functions as
:func:`~.inspect.inspect_channels`, half of the bytes in a forked helper, and sends back the per-flow results,
which the main process puts together (:func:`~.inspect.combine`) in flow order: the same report, byte for
byte.

Anything that goes wrong on the side (the process dies, a message cannot be sent or read) leaves the main
process to inspect as before, reading the captures again: never a flow uninspected.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, cast

import numpy as np

from ..capture.blocks import SharedBlocks
from ..capture.collect import Collected, Harvest, compact
from ..capture.flows import FlowTable
from ..capture.reader import SHARED_BLOCK_BYTES, Batch
from ..model.topology import Channel, Topology
from .findings import yield_to_main
from .inspect import (
    Inspection,
    ItemResult,
    Work,
    combine,
    from_harvest,
    inspect_channels,
    inspect_item,
    load_inspectors,
    pair_key,
    planned,
    planned_among,
)
from .verdicts import FlowVerdict, VerdictTable

SEND_QUEUE = 4
"""Messages (a batch's candidates each) waiting to be sent to the side process."""


def available() -> bool:
    """A side process can be forked here (Linux: it inherits the topology and the harvest's state)."""
    return sys.platform.startswith("linux") and os.environ.get("SEGVERIFY_NO_SIDECAR") is None


class HarvestSidecar:
    """The harvest of :func:`~.replay.replay` in a forked process (see the module docstring)."""

    def __init__(self, harvest: Harvest, topo: Topology, channels: Sequence[Channel],
                 segment: Callable[[int, int | None], str | None]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.harvest = harvest  # this process's copy: selects candidates, takes nothing
        self._conn, child = ctx.Pipe()
        # the reader reads plain captures into these, and the side takes their candidates from there
        self.blocks = SharedBlocks(SHARED_BLOCK_BYTES)
        self._proc = ctx.Process(target=_serve, args=(harvest, topo, channels, segment, child, self._conn,
                                                      self.blocks),
                                 name="segverify-harvest", daemon=True)  # fmt: skip
        self._proc.start()
        child.close()
        self.blocks.in_parent()
        self._broken = False
        self._gave_up = False
        # Messages go out through a thread: the socket takes a few hundred KiB at a time, and a batch's candidates
        # are more, so sending from the reading loop made it wait for the side at every batch, and the side for
        # it (both idle by turns). The bounded queue keeps memory flat when the side falls behind.
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=SEND_QUEUE)
        self._sender: threading.Thread | None = None  # started with the first message (after any other fork)
        self._plain = False  # the current capture is read in place by the side (its offsets are the file's)
        self.fell_back = False  # the side failed and the inspection read the captures again (tests read it)
        self._candidates: list[int] | None = None  # the flows given to the side (see flows)
        self._planned: tuple[list[int], Work] | None = None

    def file(self, path: str) -> None:
        """The batches that follow come from ``path``. A plain capture's packets are read by the side from
        the file itself (the page cache holds it: one read per batch of the stretch its candidates span), so
        only their header rows travel; a gzip capture's offsets are in its decompressed stream, so its
        candidates travel with their payload bytes."""
        try:
            with open(path, "rb") as fh:
                self._plain = fh.read(2) != b"\x1f\x8b"
        except OSError:
            self._plain = False  # the reader reports it
        self._send(("file", path if self._plain else None))

    def add(self, batch: Batch) -> None:
        """The header pass's tap: send this batch's candidate packets to the side (see :meth:`file`)."""
        if self._broken or self._gave_up:
            return
        cand = self.harvest.select(batch)
        if not self.harvest.usable:  # a candidate IP fragment: the side lets go too, inspection reads again
            self._gave_up = True
            self._send(("give-up",))
            return
        if cand is None:
            return
        if batch.slot is not None:  # the side reads the block where it lies: only a note of where travels
            room = self.blocks.row_room(batch.slot, len(cand))
            if room is not None:
                room[1][:] = cand
            ticket = self.blocks.lend(batch.slot)
            self._send(("block", ticket, batch.slot, len(batch.buf), batch.base,
                        (room[0], len(cand)) if room is not None else cand))
        else:
            self._send(("take", cand) if self._plain else ("take", compact(cand, batch)))

    def flows(self, flows: FlowTable) -> None:
        """The flow table, once the captures are read: the side plans and inspects the flows between candidate
        pairs (their plan needs only their segments) while this process judges every flow."""
        if not self._broken and not self._gave_up:
            self._candidates = self.harvest.flow_candidates(flows)
            self._send(("flows", list(zip(self._candidates, flows.flows(self._candidates), strict=True))))

    def planned(self, topo: Topology, channels: Sequence[Channel], verdicts: VerdictTable) -> tuple[list[int], Work]:
        """The flows the inspection takes (:func:`~.inspect.planned_among` the candidates given to the side): their
        indices among ``verdicts``, and the work."""
        if self._planned is None:
            self._planned = planned_among(topo, channels, verdicts, self._candidates)
        return self._planned

    def inspect(self, topo: Topology, channels: Sequence[Channel], verdicts: VerdictTable,
                captures: Sequence[str]) -> Inspection:
        """:func:`~.inspect.inspect_channels` of these verdicts (those of the flows given to :meth:`flows`, in
        that order), from the side's results. Only the verdicts of the flows :meth:`planned` names change."""
        index, work = self.planned(topo, channels, verdicts)
        got: dict[int, ItemResult] | None = None
        self._flush()
        if not self._broken and not self._gave_up:
            try:
                got = self._conn.recv()
            except (OSError, EOFError):
                got = None
        self.close()
        if not work:
            return Inspection()
        # the side planned the same flows from the same segments: a flow it did not inspect means it failed
        results = [got.get(i) for i in index] if got is not None else None
        if results is None or any(r is None for r in results):  # inspect here, reading the captures again
            self.fell_back = True
            return inspect_channels(topo, channels, verdicts, captures, None, work=work)
        return combine(work, cast(list[ItemResult], results), channels)

    def close(self) -> None:
        self._send(("stop",))
        self._flush()
        self._conn.close()
        self.blocks.close()
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()

    def _send(self, msg: tuple[Any, ...]) -> None:
        if self._broken:
            return
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_all, name="segverify-send", daemon=True)
            self._sender.start()
        self._queue.put(msg)

    def _send_all(self) -> None:
        while (msg := self._queue.get()) is not None:
            if self._broken:
                continue  # drained, not sent: the side is gone
            try:
                self._conn.send(msg)
            except (OSError, ValueError):
                self._broken = True

    def _flush(self) -> None:
        """Wait until every message queued is sent (or the side is known gone)."""
        if self._sender is not None:
            self._queue.put(None)
            self._sender.join()
            self._sender = None


def _open(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None


_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux


def _read(fd: int | None, cand: np.ndarray) -> tuple[Batch, mmap.mmap] | None:
    """The stretch of the capture that ``cand``'s packets span, mapped (not copied) as the batch they index,
    where a read copied every byte of the stretch (the whole capture, at the bench's sizes). The map is
    populated when made: the harvest reads most of a stretch (every candidate's payload), and one call that
    maps all its pages cost less than a page fault every 64 KiB. A capture cut short under the map kills this
    process with SIGBUS, which the main process survives as any failure here: it inspects by reading again."""
    if fd is None:
        return None
    lo = int(cand["pos"].min())
    hi = int((cand["pos"] + cand["caplen"].astype(np.int64)).max())
    base = lo - lo % mmap.ALLOCATIONGRANULARITY
    try:
        if os.fstat(fd).st_size < hi:
            return None
        m = mmap.mmap(fd, hi - base, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ, offset=base)
    except (OSError, ValueError):
        return None
    return Batch(cand, cast(bytes, m), base), m


def _release(m: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):  # a view of it is still held somewhere: unmapped when that goes
        m.close()


def _serve(harvest: Harvest, topo: Topology, channels: Sequence[Channel],
           segment: Callable[[int, int | None], str | None], conn: Connection, parent_end: Connection,
           blocks: SharedBlocks) -> None:  # fmt: skip
    """The side process: take candidates until told to inspect, then answer and stop. Ctrl-C is the main
    process's to handle (it stops this one); any failure here just ends it, quietly: the main process then
    inspects by reading the captures again (tests check that the side serves every normal run)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield_to_main()
    parent_end.close()
    blocks.in_child()
    load_inspectors()  # while the main process reads the first blocks: inspection will not wait for them
    # What this process inherited (modules, the topology and its rules) lives to its end: the collector need not
    # walk it (its full collections did, 0.02 s of this process's CPU at 1M packets of the bench)
    gc.freeze()
    try:
        _loop(harvest, topo, channels, segment, conn, blocks)
    except Exception:  # noqa: BLE001 - see the docstring: the main process falls back, exactly
        return


def _loop(harvest: Harvest, topo: Topology, channels: Sequence[Channel],
          segment: Callable[[int, int | None], str | None], conn: Connection, blocks: SharedBlocks) -> None:
    fd: int | None = None  # the current plain capture: rows give file offsets into it
    while True:
        try:
            msg = conn.recv()
        except (OSError, EOFError):
            return
        kind = msg[0]
        if kind == "block":  # candidates in a shared buffer: given back once taken (nothing of it is kept)
            _, ticket, slot, nbytes, base, rows = msg
            cand = blocks.rows(slot, *rows) if isinstance(rows, tuple) else rows
            harvest.take(cand, Batch(cand, cast(bytes, blocks.view(slot, nbytes)), base, slot))
            del cand
            blocks.give_back(ticket)
        elif kind == "file":
            if fd is not None:
                os.close(fd)
            fd = _open(msg[1]) if msg[1] is not None else None
        elif kind == "take":
            if isinstance(msg[1], Batch):
                harvest.take(msg[1].pkts, msg[1])
                continue
            got = _read(fd, msg[1])
            if got is None:  # the capture cannot be read here as the reader saw it: inspection reads again
                harvest.give_up()
            else:
                harvest.take(got[0].pkts, got[0])
                _release(got[1])
        elif kind == "give-up":
            harvest.give_up()
        elif kind == "flows":
            if not harvest.usable:
                conn.send(None)
                return
            # a flow's plan reads its segments only (the verdict's other fields come later, in the main
            # process, and inspection does not read them): the same plans as the main process's verdicts
            flows = msg[1]
            at, work = planned(topo, channels,
                               [FlowVerdict(f, segment(f.src, f.vlan), segment(f.dst, f.vlan), "") for _, f in flows])
            got = from_harvest(harvest, work)
            conn.send(inspect_split(topo, work, got, [flows[k][0] for k in at]))
            return
        else:
            return


SPLIT_MIN_BYTES = 1 << 20
"""Below this many stream bytes to inspect, a second process costs more than it saves."""


def _cost(got: Collected, item: tuple[FlowVerdict, Channel, str]) -> int:
    """Roughly what inspecting one flow costs: the bytes of its pair's connections (a screen-transfer
    recogniser reads only the first few KiB each way)."""
    v, _, what = item
    if what == "screen" or v.flow.proto != 6:
        return 4096
    conns = got.tcp.get(pair_key(v), [])
    return 4096 + sum(c.client.delivered + c.server.delivered for c in conns)


def _fork_helper() -> int:
    return os.fork()


def inspect_split(topo: Topology, work: Work, got: Collected, ids: Sequence[int]) -> dict[int, ItemResult]:
    """:func:`~.inspect.inspect_item` of every item of ``work``, keyed by ``ids``, on both cores: by then the
    main process only judges flows and waits. A forked child takes about half of the bytes (the largest
    items first, each to the lighter side) and sends its results back through a pipe; whatever it does not
    deliver, whole and for exactly its items, is inspected here after all."""
    def run(which: list[int]) -> dict[int, ItemResult]:
        return {ids[k]: inspect_item(topo, work[k][1], work[k][2], work[k][0], got) for k in which}

    costs = [_cost(got, item) for item in work]
    if len(work) < 2 or sum(costs) < SPLIT_MIN_BYTES:
        return run(list(range(len(work))))
    mine: list[int] = []
    theirs: list[int] = []
    load = [0, 0]
    for k in sorted(range(len(work)), key=costs.__getitem__, reverse=True):
        side = 0 if load[0] <= load[1] else 1
        (mine, theirs)[side].append(k)
        load[side] += costs[k]
    try:
        rfd, wfd = os.pipe()
        pid = _fork_helper()
    except OSError:
        return run(list(range(len(work))))
    if pid == 0:  # the child: its share, pickled to the pipe, then gone without running any exit handler
        try:
            os.close(rfd)
            with os.fdopen(wfd, "wb") as out:
                pickle.dump(run(theirs), out, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(0)
    os.close(wfd)
    results = run(mine)
    with os.fdopen(rfd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    try:
        other = pickle.loads(data)
    except Exception:  # noqa: BLE001 - a child that died midway: its share is done here
        other = None
    want = {ids[k] for k in theirs}
    if not isinstance(other, dict) or set(other) != want:
        other = run(theirs)
    results.update(other)
    return results
