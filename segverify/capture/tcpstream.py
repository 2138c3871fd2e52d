"""Bounded TCP stream reassembly for the few flows ``segverify replay`` looks inside (mail, for now).

Why it looks like this:

* **One direction per reassembler.** :class:`StreamReassembler` turns the segments of one direction of one
  TCP connection into the byte stream the receiving application would have read; :class:`Connection`
  pairs two of them and says which one is the client's (the initiator's, as in :mod:`.flows`).
* **Stream offsets, not sequence numbers.** A segment's 32-bit sequence number is unwrapped to the
  offset nearest the next expected byte, so a stream that crosses 2**32 (or starts just below it)
  reassembles like any other. Offset 0 is the byte after the SYN. Until the SYN is seen, segments are
  held back (up to the out-of-order caps): a capture may show a segment before the SYN that precedes it
  (merged interfaces, shuffled input). If no SYN comes -- the capture started mid-connection
  (``started_mid_stream``) -- offset 0 is the earliest byte held when :meth:`StreamReassembler.finish`,
  :meth:`~StreamReassembler.read` or :meth:`~StreamReassembler.data` is called or a cap is reached.
* **First-arrived data wins.** Where a retransmission or an out-of-order segment overlaps bytes already
  received (delivered or still buffered), the bytes that arrived first are kept, as BSD- and
  Windows-derived stacks do (Linux mostly keeps the old bytes too, but replaces buffered out-of-order
  segments that a new one covers entirely). Honest retransmissions carry the same bytes, so the choice
  only matters when they differ -- which is an evasion technique (a monitor and a receiver with
  different overlap policies see different data). Therefore every overlap whose bytes differ is recorded
  in ``conflicts``: a caller proving something about the content must not treat such a stream as known.
* **Holes do not stall the stream.** Data after a hole is buffered until the hole is filled. At
  :meth:`StreamReassembler.finish` (end of capture) every hole still open is skipped -- the stream goes on
  after it -- and recorded in ``gaps`` with its stream offset, length, and where in the delivered bytes it
  sits (the first :data:`MAX_GAPS` of them; ``gap_count``/``gap_bytes`` count all). A hole before a FIN
  whose data never came is a gap too.
* **A window, as a receiver has.** Bytes more than :data:`MAX_WINDOW` ahead of the next expected byte
  are dropped (``out_of_window_bytes``), and a FIN before bytes already delivered is ignored: a stray or
  forged segment must not open a giant gap or cut the stream short.
* **Bounded, never raises.** Delivered bytes are capped by ``max_bytes`` (default 8 MiB) and out-of-order
  buffered bytes by ``max_buffer`` (default 1 MiB, and ``max_segments`` pieces, so that a flood of tiny
  segments cannot make insertion quadratic). Hitting a cap sets ``truncated`` and appends to ``reasons``;
  past ``max_bytes`` the reassembler stops storing anything, past ``max_buffer`` it gives up on the oldest
  hole (recorded as a gap) to make room. No size is ever taken from a length field: only bytes that were
  really captured are stored.
"""

from __future__ import annotations

import os
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .decode import PROTO_TCP, TCP_ACK, TCP_CONTROL, TCP_FIN, TCP_RST, TCP_SYN

if TYPE_CHECKING:
    from .reader import PacketRecord

MAX_BYTES = 8 << 20
"""Default cap on the bytes one direction delivers (a mail of a few MiB fits; more is truncated)."""
MAX_BUFFER = 1 << 20
"""Default cap on out-of-order bytes waiting for a hole to fill."""
MAX_SEGMENTS = 16384
"""Default cap on out-of-order pieces waiting (keeps the sorted insertion cheap)."""
MAX_WINDOW = 1 << 30
"""Largest TCP receive window (65535 << 14): a receiver discards bytes further ahead, and so does this."""
MAX_CONFLICTS = 64
"""Conflicting overlaps recorded one by one; past this only ``conflict_bytes`` grows."""
SPILL_AFTER = 32 << 10
"""With a :class:`SpillStore`, the bytes a stream direction keeps in memory; the rest go to the store's file."""
SPILL_CHUNK = 16 << 10
"""Bytes past ``SPILL_AFTER`` gathered in memory before they are written to the store in one piece."""
MAX_GAPS = 1024
"""Gaps recorded one by one; past this only ``gap_count`` and ``gap_bytes`` grow (a hostile stream with a
hole every other byte must not cost memory per hole)."""

_MASK = 0xFFFFFFFF
_MOD = 1 << 32
_HALF = 1 << 31


@dataclass(frozen=True)
class Gap:
    """A hole in one direction's stream that was never filled.

    ``offset`` is the stream offset where the hole starts (bytes after the SYN, or after the first byte
    seen), ``length`` how many bytes are missing, and ``delivered_at`` how many bytes had been delivered
    before it -- the position in :meth:`StreamReassembler.data` where the missing bytes belong.
    """

    offset: int
    length: int
    delivered_at: int


@dataclass(frozen=True)
class Conflict:
    """An overlap whose bytes differ from the bytes received first (``offset``/``length`` in the stream)."""

    offset: int
    length: int


class SpillStore:
    """One unlinked temporary file holding the stream bytes of many connections past their first
    :data:`SPILL_AFTER` each, so that what a capture's inspected connections carry (a year of mail, large
    downloads) sits on disk while the capture is read, not in memory. Unlinked at creation: nothing is left
    behind, whatever happens; the file is closed when the last stream using it is gone."""

    def __init__(self) -> None:
        self._file: tempfile._TemporaryFileWrapper | None = None  # type: ignore[type-arg]
        self.size = 0

    def write(self, data: bytes | bytearray) -> int:
        """Append ``data``; its offset in the file."""
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="segverify-streams-")  # noqa: SIM115 - lives with the store
        at = self.size
        fd = self._file.fileno()
        view = memoryview(data)
        while view:
            view = view[os.pwrite(fd, view, at + len(data) - len(view)) :]
        self.size += len(data)
        return at

    def read(self, at: int, n: int) -> bytes:
        assert self._file is not None
        out = os.pread(self._file.fileno(), n, at)
        if len(out) != n:
            raise OSError(f"stream spill file: {n} bytes at {at} could not be read back")
        return out


class StreamBuffer:
    """The delivered bytes of one stream direction, as a ``bytearray`` is used here (append, length, slices,
    ``bytes()``, clear): in memory up to :data:`SPILL_AFTER`, then in pieces of a :class:`SpillStore`."""

    __slots__ = ("_extents", "_head", "_len", "_store", "_tail", "_tail_at")

    def __init__(self, store: SpillStore) -> None:
        self._store = store
        self._head = bytearray()  # the first SPILL_AFTER bytes
        self._extents: list[tuple[int, int, int]] = []  # (stream index, file offset, length), in order
        self._tail = bytearray()  # bytes after the extents, not yet written
        self._tail_at = 0  # stream index of _tail[0]
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __iadd__(self, data: bytes | bytearray) -> StreamBuffer:
        n = len(data)
        if self._len < SPILL_AFTER:
            room = SPILL_AFTER - self._len
            self._head += data[:room]
            data = data[room:]
            self._tail_at = len(self._head)
        if data:
            self._tail += data
            if len(self._tail) >= SPILL_CHUNK:
                self._extents.append((self._tail_at, self._store.write(self._tail), len(self._tail)))
                self._tail_at += len(self._tail)
                self._tail = bytearray()
        self._len += n
        return self

    def __getitem__(self, which: slice) -> bytes:
        lo, hi, step = which.indices(self._len)
        if step != 1:
            raise ValueError("stream buffer slices have step 1")
        if hi <= lo:
            return b""
        out = bytearray()
        if lo < len(self._head):
            out += self._head[lo : min(hi, len(self._head))]
        for start, at, n in self._extents:
            a, b = max(lo, start), min(hi, start + n)
            if a < b:
                out += self._store.read(at + a - start, b - a)
        a, b = max(lo, self._tail_at), hi
        if a < b:
            out += self._tail[a - self._tail_at : b - self._tail_at]
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self[0 : self._len]

    def clear(self) -> None:
        self._head = bytearray()
        self._extents = []
        self._tail = bytearray()
        self._tail_at = 0
        self._len = 0


@dataclass(eq=False)
class StreamReassembler:
    """Reassemble one direction of one TCP connection; see the module docstring for the policies.

    ``keep=False`` drops bytes once :meth:`read` has returned them (for a consumer that parses
    incrementally); with the default ``keep=True`` :meth:`data` returns the whole delivered stream.
    With a ``store``, delivered bytes past :data:`SPILL_AFTER` are kept in it rather than in memory.
    """

    max_bytes: int = MAX_BYTES
    max_buffer: int = MAX_BUFFER
    max_segments: int = MAX_SEGMENTS
    keep: bool = True
    store: SpillStore | None = None

    syn_seen: bool = field(default=False, init=False)
    fin_seen: bool = field(default=False, init=False)
    started_mid_stream: bool = field(default=False, init=False)
    fin_offset: int | None = field(default=None, init=False)  # stream offset of the FIN, once seen
    closed: bool = field(default=False, init=False)  # every byte up to the FIN was delivered (or skipped)
    finished: bool = field(default=False, init=False)
    truncated: bool = field(default=False, init=False)
    reasons: list[str] = field(default_factory=list, init=False)
    gaps: list[Gap] = field(default_factory=list, init=False)  # the first MAX_GAPS
    gap_count: int = field(default=0, init=False)
    gap_bytes: int = field(default=0, init=False)
    conflicts: list[Conflict] = field(default_factory=list, init=False)
    conflict_bytes: int = field(default=0, init=False)
    retransmitted_bytes: int = field(default=0, init=False)  # overlapping bytes received again
    out_of_window_bytes: int = field(default=0, init=False)  # bytes further ahead than any window: dropped
    segments: int = field(default=0, init=False)  # segments with payload fed
    delivered: int = field(default=0, init=False)  # bytes delivered in order (gaps excluded)

    def __post_init__(self) -> None:
        self._base: int | None = None  # raw sequence number of stream offset 0
        self._next = 0  # stream offset of the next byte to deliver (gaps included)
        self._starts: list[int] = []  # out-of-order pieces: sorted, non-overlapping
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._buf: bytearray | StreamBuffer = bytearray() if self.store is None else StreamBuffer(self.store)
        self._read = 0  # index in _buf of the first byte not yet returned by read()
        self._discarded = 0  # bytes dropped from the front of _buf (keep=False)
        # Where the current contiguous run (since the last gap) starts, to compare retransmissions.
        self._run_offset = 0
        self._run_delivered = 0
        self._stopped = False  # max_bytes reached: nothing more is stored
        self._pending: list[tuple[int, bytes, bool]] = []  # (seq, payload, fin) held until offset 0 is known
        self._pending_bytes = 0

    # ------------------------------------------------------------------ properties
    @property
    def next_offset(self) -> int:
        """Stream offset of the next byte expected in order (delivered bytes plus skipped gaps)."""
        return self._next

    @property
    def buffered(self) -> int:
        """Out-of-order bytes waiting for a hole to be filled."""
        return self._buffered

    @property
    def isn(self) -> int | None:
        """The initial sequence number when the SYN was seen (else the sequence number before offset 0)."""
        return None if self._base is None else (self._base - 1) & _MASK

    @property
    def complete(self) -> bool:
        """True when the delivered bytes are the whole stream as far as captured: no gap, cap or conflict."""
        return not self.gap_count and not self.truncated and not self.conflict_bytes and not self._starts

    def prefix_fixed(self, n: int) -> bool:
        """Whether the first ``n`` delivered bytes can no longer change: offset 0 is known (a SYN, or settled)
        and delivered bytes are only ever appended to (``keep``). Later segments without SYN or FIN can then
        change only what comes after, gaps, conflicts and counters."""
        return self.keep and self._base is not None and len(self._buf) >= n

    # ------------------------------------------------------------------ input
    def feed(self, seq: int, payload: bytes, syn: bool = False, fin: bool = False) -> None:
        """Add one segment: its raw sequence number, payload bytes and SYN/FIN flags. Never raises."""
        seq &= _MASK
        self.fin_seen |= fin
        if syn:
            seq = (seq + 1) & _MASK  # a SYN occupies one sequence number; its payload (TFO) follows it
            if self._base is None:
                self._base = seq
                self.syn_seen = True
                self._replay()
        if self._base is None:
            if payload or fin:  # a bare ACK says nothing about where the stream starts
                self._pending.append((seq, bytes(payload), fin))
                self._pending_bytes += len(payload)
                if self._pending_bytes > self.max_buffer or len(self._pending) > self.max_segments:
                    self._settle()
            return
        self._segment(seq, payload, fin)

    def feed_data(self, seq: int, payload: bytes | memoryview) -> None:
        """:meth:`feed` of a segment with neither SYN nor FIN: the common case (the next bytes in order, nothing
        waiting, room left) done here in a few operations, anything else by :meth:`feed`. Most of a capture's
        reassembled segments take this path."""
        if payload and not self.take_run(seq, payload, (len(payload),)):
            self.feed(seq, payload)  # (a bare ACK: feed() would neither store nor count anything)

    def ready(self, seq: int) -> bool:
        """Whether :meth:`take_run` may take segments that begin at ``seq``, room aside: nothing waits, no FIN
        came, and ``seq`` is the next byte expected or the stream stopped at ``max_bytes``."""
        base = self._base
        return (base is not None and not self._starts and self.fin_offset is None
                and (self._stopped or (seq - base - self._next) & _MASK == 0))

    def take_run(self, seq: int, data: bytes | memoryview, lengths: Sequence[int]) -> bool:
        """:meth:`feed_data` of segments back to back (``data``: their payloads joined, ``lengths`` theirs, none
        zero; ``seq`` the first byte's), in one step where that is what feeding each in turn does: True when
        they are the next bytes in order, nothing waits and there is room for them all (they are appended), or
        when the stream stopped at ``max_bytes`` with nothing waiting (they are counted, as :meth:`_segment`
        counts them); False, and nothing done, otherwise."""
        if not self.ready(seq):
            return False
        base = self._base
        if not self._stopped:
            n = len(data)
            if n > self.max_bytes - self.delivered:
                return False
            self.segments += len(lengths)
            self._buf += data
            self._next += n
            self.delivered += n
            return True
        d = (seq - base - self._next) & _MASK  # nothing is stored: each segment is counted where _unwrap puts it
        for n in lengths:
            if (d - _MOD if d >= _HALF else d) > MAX_WINDOW:
                self.out_of_window_bytes += n
            else:
                self.segments += 1
            d = (d + n) & _MASK
        return True

    def _segment(self, seq: int, payload: bytes, fin: bool) -> None:
        off = self._unwrap(seq)
        n = len(payload)
        if off - self._next > MAX_WINDOW:
            self.out_of_window_bytes += n
            return
        if fin and self.fin_offset is None and off + n >= self._next:
            self.fin_offset = off + n  # (a FIN before bytes already delivered is bogus: ignored)
        if n:
            self.segments += 1
            if not self._stopped:
                if self.fin_offset is not None and off + n > self.fin_offset:
                    # Bytes past the FIN are never delivered to the application; keep what precedes it.
                    payload = payload[: max(0, self.fin_offset - off)]
                if payload:
                    self._insert(off, bytes(payload))
        self._check_fin()

    def finish(self) -> None:
        """End of capture: skip the holes that were never filled (recording them) and deliver the rest."""
        if self.finished:
            return
        self._settle()
        self.finished = True
        while self._starts and not self._stopped:
            self._skip_hole()
        if self.fin_offset is not None and self._next < self.fin_offset and not self._stopped:
            self._add_gap(self._next, self.fin_offset - self._next)
            self._next = self.fin_offset
        self._check_fin()

    # ------------------------------------------------------------------ output
    def read(self) -> bytes:
        """The in-order bytes delivered since the previous call (consumes them)."""
        self._settle()
        out = bytes(self._buf[self._read :])
        if self.keep:
            self._read = len(self._buf)
        else:
            self._discarded += len(self._buf)
            self._buf.clear()
            self._read = 0
        return out

    def data(self) -> bytes:
        """Every delivered byte still held: the whole stream with ``keep=True`` (gaps left out, see ``gaps``)."""
        self._settle()
        return bytes(self._buf)

    # ------------------------------------------------------------------ internals
    def _settle(self) -> None:
        """No SYN (yet): take the earliest sequence number held as offset 0 and process what was held."""
        if self._base is not None or not self._pending:
            return
        ref = self._pending[0][0]
        low = min(((q - ref + _HALF) & _MASK) - _HALF for q, _, _ in self._pending)
        self._base = (ref + low) & _MASK
        self.started_mid_stream = True
        self._replay()

    def _replay(self) -> None:
        """Process the segments held before offset 0 was known, in their order of arrival (first wins)."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        for seq, payload, fin in pending:
            self._segment(seq, payload, fin)

    def _unwrap(self, seq: int) -> int:
        """Stream offset of ``seq``: the value congruent to it mod 2**32 nearest to the next expected byte."""
        assert self._base is not None
        d = ((seq - self._base) - self._next) & _MASK
        if d >= _HALF:
            d -= _MOD
        return self._next + d

    def _insert(self, off: int, data: bytes) -> None:
        end = off + len(data)
        if off < self._next:
            self._compare_delivered(off, data[: min(end, self._next) - off])
            if end <= self._next:
                return
            data = data[self._next - off :]
            off = self._next
        if off == self._next and not self._starts:
            self._deliver(data)  # the common case: in order, nothing waiting
            return
        # Keep only the parts of [off, end) that no buffered piece covers yet (first arrival wins).
        starts, chunks = self._starts, self._chunks
        i = bisect_right(starts, off) - 1
        if i < 0:
            i = 0
        cur = off
        pieces: list[tuple[int, bytes]] = []
        while i < len(starts) and cur < end:
            s = starts[i]
            e = s + len(chunks[i])
            if e <= cur:
                i += 1
                continue
            if s >= end:
                break
            if s > cur:
                pieces.append((cur, data[cur - off : s - off]))
            lo, hi = max(s, cur), min(e, end)
            self.retransmitted_bytes += hi - lo
            if chunks[i][lo - s : hi - s] != data[lo - off : hi - off]:
                self._conflict(lo, hi - lo)
            cur = hi
            i += 1
        if cur < end:
            pieces.append((cur, data[cur - off :]))
        for s, piece in pieces:
            j = bisect_right(starts, s)
            starts.insert(j, s)
            chunks.insert(j, piece)
            self._buffered += len(piece)
        self._drain()
        if self._buffered > self.max_buffer or len(starts) > self.max_segments:
            self._cap(f"out-of-order buffer over {self.max_buffer} bytes / {self.max_segments} segments: "
                      "holes skipped to make room")  # fmt: skip
            while self._starts and (self._buffered > self.max_buffer or len(self._starts) > self.max_segments):
                self._skip_hole()

    def _drain(self) -> None:
        """Deliver the buffered pieces that now continue the in-order stream."""
        starts, chunks = self._starts, self._chunks
        k = 0
        while k < len(starts) and starts[k] == self._next and not self._stopped:
            self._buffered -= len(chunks[k])
            self._deliver(chunks[k])
            k += 1
        if k:
            del starts[:k]
            del chunks[:k]

    def _skip_hole(self) -> None:
        """Give up on the hole before the first buffered piece: record it as a gap and go on after it."""
        s = self._starts[0]
        if s > self._next:
            self._add_gap(self._next, s - self._next)
            self._next = s
        self._drain()

    def _add_gap(self, offset: int, length: int) -> None:
        self.gap_count += 1
        self.gap_bytes += length
        if len(self.gaps) < MAX_GAPS:
            self.gaps.append(Gap(offset, length, self.delivered))
        self._run_offset = offset + length
        self._run_delivered = self.delivered

    def _deliver(self, data: bytes) -> None:
        room = self.max_bytes - self.delivered
        if len(data) > room:
            data = data[:room]
            self._cap(f"stream longer than max_bytes={self.max_bytes}: the rest is not kept")
            self._stopped = True
            self._starts.clear()
            self._chunks.clear()
            self._buffered = 0
        self._buf += data
        self._next += len(data)
        self.delivered += len(data)

    def _compare_delivered(self, off: int, data: bytes) -> None:
        """Count a retransmission of delivered bytes and record a conflict if they differ (when still held)."""
        self.retransmitted_bytes += len(data)
        lo = max(off, self._run_offset)  # bytes before the last gap sit elsewhere in _buf; not compared
        hi = off + len(data)
        if hi <= lo:
            return
        idx = self._run_delivered + (lo - self._run_offset) - self._discarded
        if idx < 0:
            return  # already dropped by read() with keep=False
        if self._buf[idx : idx + hi - lo] != data[lo - off :]:
            self._conflict(lo, hi - lo)

    def _conflict(self, offset: int, length: int) -> None:
        self.conflict_bytes += length
        if len(self.conflicts) < MAX_CONFLICTS:
            self.conflicts.append(Conflict(offset, length))

    def _cap(self, reason: str) -> None:
        self.truncated = True
        if reason not in self.reasons:
            self.reasons.append(reason)

    def _check_fin(self) -> None:
        if self.fin_offset is not None and self._next >= self.fin_offset:
            self.closed = True


Endpoint = tuple[int, int]
"""(address in segverify's unified integer space, port)."""


class Connection:
    """Both directions of one TCP connection, oriented by its initiator like :class:`.flows.Flow`.

    Created from the first packet seen: a SYN without ACK makes its sender the client, a SYN-ACK its
    receiver; any other first packet makes its sender a provisional client (``initiator_known`` False)
    until a SYN settles the question, because a report must not claim to know who connected.
    """

    def __init__(self, client: Endpoint, server: Endpoint, initiator_known: bool = False, *,
                 max_bytes: int = MAX_BYTES, max_buffer: int = MAX_BUFFER, max_segments: int = MAX_SEGMENTS,
                 keep: bool = True, store: SpillStore | None = None) -> None:  # fmt: skip
        self._ends = (client, server)
        self._rs = {e: StreamReassembler(max_bytes, max_buffer, max_segments, keep, store) for e in (client, server)}
        self.initiator_known = initiator_known
        self.reset = False  # an RST was seen
        self.packets = 0

    @classmethod
    def from_packet(cls, rec: PacketRecord, **caps: int | bool | SpillStore | None) -> Connection:
        """A connection oriented by ``rec``, the first packet seen of it (which is then fed)."""
        a, b = (rec.src, rec.sport), (rec.dst, rec.dport)
        syn, ack = rec.tcp_flags & TCP_SYN, rec.tcp_flags & TCP_ACK
        # A SYN-ACK's receiver is the client; a pure SYN's sender is; any other packet's sender provisionally.
        conn = cls(b, a, True, **caps) if syn and ack else cls(a, b, bool(syn), **caps)  # type: ignore[arg-type]
        conn.feed_packet(rec)
        return conn

    @property
    def client_endpoint(self) -> Endpoint:
        return self._ends[0]

    @property
    def server_endpoint(self) -> Endpoint:
        return self._ends[1]

    @property
    def client(self) -> StreamReassembler:
        """What the client (initiator) sent."""
        return self._rs[self._ends[0]]

    @property
    def server(self) -> StreamReassembler:
        """What the server sent."""
        return self._rs[self._ends[1]]

    def matches(self, rec: PacketRecord) -> bool:
        """Whether ``rec`` is a TCP packet between this connection's two endpoints."""
        return rec.proto == PROTO_TCP and (rec.src, rec.sport) in self._rs and (rec.dst, rec.dport) in self._rs

    def feed_packet(self, rec: PacketRecord) -> bool:
        """Feed one packet to the direction it belongs to; False (and ignored) if it is not this connection's."""
        if not self.matches(rec) or (rec.src, rec.sport) == (rec.dst, rec.dport):
            return False
        self.feed((rec.src, rec.sport), rec.seq, rec.payload, rec.tcp_flags)
        return True

    def feed(self, sender: Endpoint, seq: int, payload: bytes, flags: int) -> None:
        """Feed a segment sent by ``sender`` with TCP ``flags`` (the 9 flag bits)."""
        self.packets += 1
        syn, ack = bool(flags & TCP_SYN), bool(flags & TCP_ACK)
        if syn and not self.initiator_known:
            client = sender if not ack else next(e for e in self._ends if e != sender)
            self._ends = (client, next(e for e in self._ends if e != client))
            self.initiator_known = True
        if flags & TCP_RST:
            self.reset = True
            return  # an RST's payload (diagnostic text on some stacks) is not stream data
        self._rs[sender].feed(seq, payload, syn=syn, fin=bool(flags & TCP_FIN))

    def prefix_fixed(self, n: int) -> bool:
        """Whether the first ``n`` bytes of both directions are fixed (:meth:`StreamReassembler.prefix_fixed`)."""
        return all(r.prefix_fixed(n) for r in self._rs.values())

    def finish(self) -> None:
        """End of capture for both directions (see :meth:`StreamReassembler.finish`)."""
        for r in self._rs.values():
            r.finish()


class Quieting(Protocol):
    """For a consumer that reads only the first ``prefix`` bytes each way of some endpoint pairs: told when one
    end of the current connection of such a pair has sent those bytes for good
    (:meth:`StreamReassembler.prefix_fixed`), and when a new connection replaces it. The packet source may then
    leave out that end's packets that carry none of SYN, FIN and RST: a segment feeds only its sender's
    direction, and it cannot change those bytes, the ends, or the port-reuse decision."""

    prefix: int

    def wants(self, key: frozenset[Endpoint], proto: int = 6, sender: Endpoint | None = None) -> bool: ...

    def sender_done(self, key: frozenset[Endpoint], sender: Endpoint) -> None: ...

    def reopened(self, key: frozenset[Endpoint]) -> None: ...


def reassemble(packets: Iterable[PacketRecord], port: int | None = None,
               caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]] | None = None,
               quiet: Quieting | None = None, store: SpillStore | None = None, **caps: int | bool) -> list[Connection]:
    """Reassemble every TCP connection in ``packets`` (only those with ``port`` at either end, if given).

    A pure SYN whose sequence number differs from the one that opened the connection on the same
    endpoints, or the first pure SYN on a connection seen only mid-stream and already ended by FIN or RST,
    starts a new :class:`Connection` (port reuse; the rule :mod:`.flows` uses). Connections are
    returned in order of first appearance, finished. ``quiet`` is told which pairs need only their control
    packets from now on (see :class:`Quieting`).
    """
    r = Reassembly(caps_for if caps_for is not None else (lambda _key: caps), quiet, store)
    for rec in packets:
        if rec.proto != PROTO_TCP or rec.src is None or rec.dst is None:
            continue
        if port is not None and port not in (rec.sport, rec.dport):
            continue
        r.add(rec, frozenset(((rec.src, rec.sport), (rec.dst, rec.dport))))
    return r.finish()


class Reassembly:
    """:func:`reassemble` one packet at a time, for a caller that reads packets in its own loop."""

    def __init__(self, caps_for: Callable[[frozenset[Endpoint]], dict[str, int | bool]],
                 quiet: Quieting | None = None, store: SpillStore | None = None) -> None:  # fmt: skip
        self.caps_for = caps_for
        self.quiet = quiet
        self.store = store  # where long streams are kept (see SpillStore); None: in memory
        self.current: dict[frozenset[Endpoint], Connection] = {}
        self.out: list[Connection] = []

    def add(self, rec: PacketRecord, key: frozenset[Endpoint]) -> None:
        """Feed a TCP packet (addresses known) whose endpoint pair is ``key``."""
        if not rec.tcp_flags & TCP_CONTROL and rec.proto == PROTO_TCP and self.add_data(
                key, (rec.src, rec.sport), rec.seq, rec.payload):
            return
        self.add_other(rec, key)

    def add_other(self, rec: PacketRecord, key: frozenset[Endpoint]) -> None:
        """:meth:`add` of a packet :meth:`add_data` does not take: one with SYN, FIN or RST, or the first of its
        connection (a caller that tried ``add_data`` already comes here directly)."""
        quiet = self.quiet
        conn = self.current.get(key)
        pure_syn = rec.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
        if conn is not None and pure_syn:
            r = conn._rs.get((rec.src, rec.sport))
            ended = conn.reset or any(x.fin_seen for x in conn._rs.values())
            if r is not None and ((r.syn_seen and r.isn != rec.seq) or (not r.syn_seen and ended)):
                conn = None  # a new connection on the same endpoints
        if conn is None:
            conn = Connection.from_packet(rec, store=self.store, **self.caps_for(key))
            if key in self.current and quiet is not None:
                quiet.reopened(key)
            self.current[key] = conn
            self.out.append(conn)
        else:
            conn.feed_packet(rec)
        # only stored bytes can fix a prefix (a SYN settling held bytes is caught at the next segment)
        if rec.payload:
            sender = (rec.src, rec.sport)
            r = conn._rs.get(sender)
            if r is not None:
                self._prefix_check(key, sender, r)

    def add_data(self, key: frozenset[Endpoint], sender: Endpoint, seq: int, payload: bytes | memoryview) -> bool:
        """:meth:`add` of a TCP segment with none of SYN, FIN and RST from ``sender``, when its connection is already
        there (most packets); False, and nothing done, otherwise (the caller then calls :meth:`add`). A caller
        with the packet's fields at hand makes no record for these."""
        conn, r = self._direction(key, sender)
        if conn is None or r is None:
            return False
        conn.packets += 1
        r.feed_data(seq, payload)
        if payload:
            self._prefix_check(key, sender, r)
        return True

    def add_run(self, key: frozenset[Endpoint], sender: Endpoint, seq: int, data: bytes | memoryview,
                lengths: Sequence[int]) -> bool:  # fmt: skip
        """:meth:`add_data` of segments from ``sender`` back to back (``data`` their payloads joined, ``lengths``
        theirs, ``seq`` the first byte's), in one step: when the connection is there and its sender's direction
        takes them all at once (:meth:`StreamReassembler.take_run`), which is then what :meth:`add_data` of each
        in turn does. False, and nothing done, otherwise."""
        conn, r = self._direction(key, sender)
        carry = len(data) > 0
        if conn is None or r is None or (carry and not r.take_run(seq, data, [n for n in lengths if n])):
            return False
        conn.packets += len(lengths)
        if carry:
            self._prefix_check(key, sender, r)
        return True

    def room(self, key: frozenset[Endpoint], sender: Endpoint, seq: int) -> int | None:
        """How many bytes :meth:`add_run` takes at once from ``sender`` beginning at ``seq``: those left before
        the stream's byte limit, None (any number) once it stopped there, -1 when it is not ready for them
        (:meth:`StreamReassembler.ready`; no connection, a hole, bytes waiting, a FIN)."""
        _, r = self._direction(key, sender)
        if r is None or not r.ready(seq):
            return -1
        return None if r._stopped else r.max_bytes - r.delivered

    def _direction(self, key: frozenset[Endpoint], sender: Endpoint,
                   ) -> tuple[Connection | None, StreamReassembler | None]:  # fmt: skip
        """The current connection of ``key`` (two distinct ends) and ``sender``'s direction of it, where there
        are."""
        conn = self.current.get(key)
        if conn is None or len(key) != 2:
            return None, None
        return conn, conn._rs.get(sender)

    def _prefix_check(self, key: frozenset[Endpoint], sender: Endpoint, r: StreamReassembler) -> None:
        """Tell the quieting (if any) once ``sender``'s first bytes on ``key`` are there for good."""
        quiet = self.quiet
        if quiet is not None and r.prefix_fixed(quiet.prefix) and quiet.wants(key, 6, sender):
            quiet.sender_done(key, sender)

    def finish(self) -> list[Connection]:
        """Every connection, in order of first appearance, finished."""
        for conn in self.out:
            conn.finish()
        return self.out
