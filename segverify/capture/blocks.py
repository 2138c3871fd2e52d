"""Read buffers shared with a forked process, so that it reads a capture's packets where the reader put them.

A replay's side process reassembles the packets of the channel pairs while the main process reads on
(:mod:`segverify.analysis.sidecar`). It used to get their header rows pickled through a socket and their bytes
by mapping the capture's stretch again: a copy of every row and page-table work for every page of the capture,
0.08 s of CPU per million packets of the bench. Here the reader reads each block into one of a few buffers of
anonymous shared memory made before the fork, the header rows of its candidate packets are written beside it,
and only a short message says where they are: nothing is copied again, and what the buffers cost (their pages,
once per run) does not grow with the capture. 4M packets: 0.33 s less CPU, 0.2 s sooner; 1M packets: as fast.

A buffer is *lent* to the other process with a ticket (increasing) for each message that names it, and the
other process gives every ticket back, in order, once nothing of that message is used any more. The reader
takes a new buffer only among those that are neither its current one nor lent out: when none is free, it waits
for tickets to come back (memory stays bounded at ``count`` buffers). If the other process goes away, its
tickets can no longer come back and every buffer is free again: nobody else reads them.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select

import numpy as np

from .decode import BATCH_DTYPE

BLOCK_COUNT = 3
"""Buffers: the reader's current one, and the blocks lent out to the other process. More let the reader run
further ahead but cost their pages once per run: 1M packets of the bench took as long with 3 as with 5, and 4M
packets 0.06 s less."""

ROWS_PER_BLOCK = 1 << 16
"""Header rows of candidate packets kept beside each buffer (a block of 16 MiB holds ~30k packets of the usual
sizes); a block with more candidates sends them with its message instead."""

_TICKET = 8  # bytes per ticket on the pipe (little-endian; a write this small is atomic)


class SharedBlocks:
    """``count`` read buffers of ``size`` bytes and their rows, shared with a process forked after this is made
    (see the module docstring). The reading process calls :meth:`take` and :meth:`lend`; the forked one,
    after :meth:`in_child`, :meth:`view`, :meth:`rows` and :meth:`give_back`."""

    def __init__(self, size: int, count: int = BLOCK_COUNT, rows: int = ROWS_PER_BLOCK) -> None:
        if count < 2:
            raise ValueError("at least two buffers: the current one and one lent out")
        self.size = size
        self.count = count
        self.row_capacity = rows
        self._data = [mmap.mmap(-1, size) for _ in range(count)]  # anonymous and shared (MAP_SHARED)
        self._rows = [mmap.mmap(-1, rows * BATCH_DTYPE.itemsize) for _ in range(count)]
        self._rows_used = [0] * count  # rows given out of each buffer's area since it was last taken
        self._lent = [0] * count  # per buffer, the last ticket naming it (0: none)
        self._returned = 0  # every ticket up to this one is back
        self._issued = 0
        self._current: int | None = None
        self._gone = False  # the other process went away: no ticket will come back
        self._r, self._w = os.pipe()
        self.waits = 0  # times the reader waited for a buffer (tests read it)

    # -- the reading process

    def in_parent(self) -> None:
        """After the fork, in the reading process: only the other process gives tickets back."""
        os.close(self._w)
        self._w = -1

    def take(self, nbytes: int) -> tuple[int, memoryview] | None:
        """A free buffer for the next block, as ``(slot, writable view of nbytes)``, waiting for one if need be;
        the reader's current buffer is never one (it still reads it until :meth:`use` says otherwise). None when
        ``nbytes`` does not fit in a buffer (the caller reads into memory of its own)."""
        if nbytes > self.size:
            return None
        self._collect(wait=False)
        while True:
            free = [s for s in range(self.count)
                    if s != self._current and (self._gone or self._lent[s] <= self._returned)]  # fmt: skip
            if free:
                return free[0], memoryview(self._data[free[0]])[:nbytes]
            self.waits += 1
            self._collect(wait=True)

    def use(self, slot: int | None) -> None:
        """The reader reads buffer ``slot`` now (None: memory of its own), and no longer its previous one."""
        self._current = slot
        if slot is not None:
            self._rows_used[slot] = 0

    def row_room(self, slot: int, n: int) -> tuple[int, np.ndarray] | None:
        """Room for ``n`` rows beside buffer ``slot``: where it starts (in rows) and the array, or None when the
        area is full (the rows then travel with the message)."""
        at = self._rows_used[slot]
        if at + n > self.row_capacity:
            return None
        self._rows_used[slot] = at + n
        return at, np.frombuffer(self._rows[slot], dtype=BATCH_DTYPE, count=n, offset=at * BATCH_DTYPE.itemsize)

    def lend(self, slot: int) -> int:
        """A ticket for a message naming buffer ``slot`` (and rows beside it): the buffer is not taken again
        before the ticket is given back."""
        self._issued += 1
        self._lent[slot] = self._issued
        return self._issued

    def _collect(self, wait: bool) -> None:
        """Read the tickets given back (all those there; with ``wait``, at least one, or learn that the other
        process is gone)."""
        if self._gone:
            return
        if not select.select([self._r], [], [], None if wait else 0)[0]:
            return
        data = os.read(self._r, 1 << 16)
        if not data:
            self._gone = True
            return
        usable = len(data) - len(data) % _TICKET
        if usable:
            self._returned = max(self._returned, int.from_bytes(data[usable - _TICKET : usable], "little"))

    # -- the forked process

    def in_child(self) -> None:
        """After the fork, in the process that borrows: it never takes buffers."""
        os.close(self._r)
        self._r = -1

    def view(self, slot: int, nbytes: int) -> memoryview:
        """The first ``nbytes`` of buffer ``slot``, read-only."""
        return memoryview(self._data[slot])[:nbytes].toreadonly()

    def rows(self, slot: int, at: int, n: int) -> np.ndarray:
        """Rows ``at`` to ``at + n`` of the area beside buffer ``slot``."""
        arr = np.frombuffer(self._rows[slot], dtype=BATCH_DTYPE, count=n, offset=at * BATCH_DTYPE.itemsize)
        arr.flags.writeable = False
        return arr

    def give_back(self, ticket: int) -> None:
        """Nothing of the message with this ticket (nor of any before it) is used any more."""
        os.write(self._w, ticket.to_bytes(_TICKET, "little"))

    def close(self) -> None:
        """Close the pipe ends still open here (the buffers go with the last view of them)."""
        for fd in (self._r, self._w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._r = self._w = -1

