"""Streaming, hostile-input-safe reader for pcap and pcapng captures (optionally gzip-compressed).

Why it looks like this:

* **Streaming.** The file is read in blocks of :data:`CHUNK` bytes; records are walked inside the block
  and a record that straddles the block end is carried over to the next one. Memory stays flat however
  large the capture is: at most one block plus one (bounded) record, plus whatever batches the caller
  keeps.
* **Fast.** The only per-record Python code is the loop that follows the record lengths (~0.2 µs per
  record). Record headers, timestamps and packet headers are then read for the whole block with numpy
  (see :mod:`segverify.capture.decode`).
* **Hostile input.** A capture is evidence that may come from a compromised or broken machine. No length
  read from the file ever drives an allocation: records longer than :data:`MAX_CAPLEN` (pcap) or
  :data:`MAX_BLOCK` (pcapng) are *damage*, not something to read. Damage never raises: it is recorded as
  :class:`Damage` (file offset and reason) and the reader resynchronises where the format allows -- pcap
  by scanning forward for a chain of plausible record headers, pcapng by scanning for a block whose total
  length matches at both ends. A truncated last record is damage too. The only exceptions that escape are
  the operating system's (file missing, unreadable).

Offsets in :class:`Damage` and ``pos`` are offsets in the *decompressed* stream for gzip files.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from segverify.model.addresses import V6_BASE

from . import native
from .decode import BATCH_DTYPE, EXT6, FRAG_FIRST, FRAG_IS_FRAGMENT, PAD, decode_batch, finish_slow

if TYPE_CHECKING:
    from .blocks import SharedBlocks

CHUNK = 16 << 20
"""Bytes read from the file per block."""
MAX_CAPLEN = 256 << 10
"""Largest captured length accepted for one packet (libpcap's own maximum snapshot length)."""
MAX_BLOCK = 16 << 20
"""Largest pcapng block accepted; anything longer is treated as a corrupt length."""
MAX_ORIG_LEN = 16 << 20
"""Largest original (wire) length believed while resynchronising a pcap (TSO frames reach ~64-256 KiB)."""
DEFAULT_BATCH = 1 << 17

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_IDB, _PB, _SPB, _EPB = 1, 2, 3, 6
_PKT_BLOCKS = frozenset({_PB, _SPB, _EPB})
# Block types a resynchronisation may land on (a random 4-byte pattern rarely matches these).
_KNOWN_BLOCKS = frozenset({_SHB, _IDB, _PB, _SPB, 4, 5, _EPB, 9, 10, 0x00000BAD, 0x40000BAD})
_RESYNC_CHAIN = 4  # records/blocks that must follow a resync candidate (or the end of the file)
SHARED_BLOCK_BYTES = CHUNK + PAD + (2 * _RESYNC_CHAIN + 1) * (MAX_CAPLEN + 16)
"""A shared read buffer (:class:`~.blocks.SharedBlocks`): a chunk, its padding and the most a pcap's walk keeps of
the previous buffer (a partial record, or what resynchronisation looks through); a longer tail is read into
memory of the reader's own."""
_RESYNC_WINDOW = 1 << 20  # bytes scanned per vectorised resync step


@dataclass(frozen=True)
class Damage:
    """Something in the file that could not be read as the format says; ``offset`` is where it starts."""

    path: str
    offset: int
    reason: str


@dataclass(frozen=True)
class Interface:
    """A capture interface: pcap has one, pcapng one per Interface Description Block over all sections."""

    index: int
    linktype: int
    snaplen: int
    name: str = ""
    tsresol: int = 9  # pcapng if_tsresol byte (decimal exponent, or 0x80|binary exponent); 9 = ns
    tsoffset: int = 0  # seconds to add (pcapng if_tsoffset)
    section: int = 0


@dataclass(frozen=True)
class Section:
    """The pcapng reader's whole state at a block boundary inside a section, so a part can start there.

    Packet blocks name interfaces by their index in the section and their timestamps depend on that
    interface's resolution and offset, so a part needs the section's byte order and the interfaces
    defined before its start (an IDB later in the section applies only to later packets, as in one pass).
    ``index`` counts sections from 0; ``if_base`` is the global index of the section's interface 0."""

    endian: str
    index: int
    if_base: int
    interfaces: tuple[Interface, ...] = ()


@dataclass(frozen=True)
class Span:
    """Records of a plain capture from ``start`` (a verified record/block boundary, or 0 for the file
    start) up to ``stop`` (a verified boundary, or None for the end of the file).

    pcap: ``last_sec`` is the seconds field of the record before ``start``, the only reader state a pcap
    carries across records (resynchronisation after damage prefers timestamps near it).
    pcapng: ``section`` is the reader state at ``start`` (None only for a span starting at 0)."""

    start: int = 0
    stop: int | None = None
    last_sec: int | None = None
    section: Section | None = None


@dataclass
class Batch:
    """Decoded header fields for many packets, plus the block buffer their bytes live in.

    ``pkts`` is a :data:`segverify.capture.decode.BATCH_DTYPE` structured array. ``buf`` keeps the packet
    bytes alive (``pkts['pos'] - base`` indexes into it), so holding on to a batch holds its block; except when
    ``slot`` says the block is in a shared buffer (:class:`~.blocks.SharedBlocks`), which the reader reuses once
    it has read on: such a batch is good until the next one from another block.
    """

    pkts: np.ndarray
    buf: bytes
    base: int
    slot: int | None = None

    def __len__(self) -> int:
        return len(self.pkts)

    def frame(self, i: int) -> memoryview:
        """The captured bytes of packet ``i``."""
        o = int(self.pkts["pos"][i]) - self.base
        return memoryview(self.buf)[o : o + int(self.pkts["caplen"][i])]

    def payload(self, i: int) -> memoryview:
        """The TCP/UDP payload bytes of packet ``i`` that were captured (empty for other packets)."""
        p = self.pkts[i]
        o = int(p["pos"]) - self.base + int(p["pay_off"])
        return memoryview(self.buf)[o : o + int(p["pay_len"])]


@dataclass(frozen=True)
class PacketRecord:
    """One decoded packet. Addresses are in segverify's unified integer space (IPv6 = 2**128 + address).

    ``payload`` is a view into the block buffer (no copy): keeping records keeps their blocks in memory,
    so copy it (``bytes(rec.payload)``) when holding on to a few packets from a large capture.
    """

    ts: int  # ns since the epoch
    pos: int  # file offset of the frame
    ifindex: int
    linktype: int
    caplen: int
    wirelen: int
    vlan: int | None
    family: int  # 4, 6, or 0 (not IP)
    src: int | None
    dst: int | None
    proto: int
    sport: int
    dport: int
    tcp_flags: int
    seq: int
    ack: int
    icmp_type: int
    icmp_code: int
    ip_len: int
    is_fragment: bool
    first_fragment: bool
    frag_off: int
    ip_id: int
    status: int
    payload: memoryview = field(repr=False, compare=False)


def iter_batches(path: str | Path, batch_size: int = DEFAULT_BATCH, damage: list[Damage] | None = None,
                 span: Span | None = None, blocks: SharedBlocks | None = None) -> Iterator[Batch]:  # fmt: skip
    """Decoded batches of at most ``batch_size`` packets; damage is appended to ``damage`` as it is found.

    ``span`` reads only the records between two verified record/block boundaries of a plain pcap or
    pcapng (a part of a file split for parallel reading): what it yields is exactly what a whole-file read
    yields there. ``blocks``: read a plain pcap's blocks into these shared buffers (see :class:`Batch`)."""
    yield from CaptureReader(path, damage, span, blocks=blocks).batches(batch_size)


def iter_packets(path: str | Path, damage: list[Damage] | None = None) -> Iterator[PacketRecord]:
    """One :class:`PacketRecord` per packet (convenient, ~20x slower than :func:`iter_batches`)."""
    for batch in iter_batches(path, damage=damage):
        yield from batch_records(batch)


_RECORD_FIELDS = tuple(PacketRecord.__dataclass_fields__)
_new_record = object.__new__
_set_dict = object.__setattr__


def _record(*values: object) -> PacketRecord:
    """A :class:`PacketRecord` without the frozen dataclass ``__init__`` (one ``object.__setattr__`` per field,
    ~1 µs of the few spent per inspected packet): the same object, its ``__dict__`` filled at once."""
    rec = _new_record(PacketRecord)
    _set_dict(rec, "__dict__", dict(zip(_RECORD_FIELDS, values, strict=True)))
    return rec  # type: ignore[no-any-return]


def batch_records(batch: Batch) -> Iterator[PacketRecord]:
    """Turn a batch into :class:`PacketRecord` objects."""
    mv = memoryview(batch.buf)
    for row in batch.pkts.tolist():
        (ts, pos, caplen, wirelen, ifindex, lt, vlan, fam, proto, s4, d4, s6h, s6l, d6h, d6l, sport, dport,
         flags, seq, ack, it, ic, iplen, ipid, fo, frag, _l3, poff, plen, st) = row  # fmt: skip
        if fam == 4:
            src, dst = s4, d4
        elif fam == 6:
            src, dst = V6_BASE + (s6h << 64 | s6l), V6_BASE + (d6h << 64 | d6l)
        else:
            src = dst = None
        o = pos - batch.base + poff
        yield _record(
            ts, pos, ifindex, lt, caplen, wirelen, vlan if vlan >= 0 else None, fam, src, dst, proto,
            sport, dport, flags, seq, ack, it, ic, iplen, bool(frag & FRAG_IS_FRAGMENT),
            bool(frag & FRAG_FIRST), fo, ipid, st, mv[o : o + plen],
        )  # fmt: skip


class _Gunzip:
    """Streaming gzip decompression that keeps every byte decoded before a truncation or corruption.

    (``gzip.GzipFile.read(n)`` raises on a truncated stream and drops what it decoded during that call.)
    Handles concatenated members and ignores zero padding after the last one, as gzip(1) does. Output
    per call is bounded by ``n``, so a compression bomb costs time, never memory.
    """

    _IN = 1 << 20

    def __init__(self, fh: BinaryIO, report: Callable[[str], None]) -> None:
        self.fh = fh
        self.report = report
        self.d = zlib.decompressobj(31)
        self.feed = b""  # compressed bytes not yet given to the decompressor
        self.done = False

    def read(self, n: int) -> bytes:
        out: list[bytes] = []
        got = 0
        while got < n and not self.done:
            if not self.feed:
                self.feed = self.fh.read(self._IN)
                if not self.feed:
                    if not self.d.eof:
                        self.report("gzip stream truncated")
                    self.done = True
                    break
            try:
                chunk = self.d.decompress(self.feed, n - got)
            except zlib.error as exc:
                self.report(f"gzip stream damaged: {exc}")
                self.done = True
                break
            self.feed = self.d.unconsumed_tail
            out.append(chunk)
            got += len(chunk)
            if self.d.eof:
                self.feed = self.d.unused_data.lstrip(b"\0")
                while not self.feed:
                    more = self.fh.read(self._IN)
                    if not more:
                        self.done = True
                        break
                    self.feed = more.lstrip(b"\0")
                self.d = zlib.decompressobj(31)  # the next member
        return b"".join(out)


@dataclass
class _Plain:
    """A plain (not gzip) file: read by :meth:`_Source._pread` at offsets, up to ``stop`` when it is a part of a
    split file (which ends exactly at a record boundary)."""

    fh: io.BufferedReader
    stop: int | None = None


class _Source:
    """The decompressed byte stream, exposed as a sliding buffer: ``buf[:end]`` is data, then PAD zeros."""

    def __init__(self, path: str, fh: io.BufferedReader, damage: list[Damage], span: Span | None = None) -> None:
        self.path = path
        self.damage = damage
        if span is not None:  # a part: plain pcap or pcapng only, positioned at its first record/block
            self.gz = False
            fh.seek(span.start)
            self.fh: _Plain | _Gunzip = _Plain(fh, span.stop)
        else:
            self.gz = fh.peek(2)[:2] == b"\x1f\x8b"
            self.fh = _Gunzip(fh, self._gz_damage) if self.gz else _Plain(fh)
        self.buf: bytes | memoryview = bytes(PAD)
        self.end = 0
        self.base = span.start if span is not None else 0
        self.eof = False
        self.blocks: SharedBlocks | None = None  # shared buffers to read plain blocks into (see _pread)
        self.slot: int | None = None  # the one ``buf`` is in
        self._pending = 0  # bytes read in the current fill, for damage offsets

    def _gz_damage(self, reason: str) -> None:
        self.damage.append(Damage(self.path, self.base + self.end + self._pending, reason))

    def fill(self, keep_from: int) -> bool:
        """Discard ``buf[:keep_from]`` and append a new chunk. False (and ``eof``) once nothing more comes."""
        if self.eof:
            return False
        if not self.gz:
            return self._pread(keep_from)
        parts: list[bytes] = []
        self._pending = 0
        # A read may return less than asked for (gzip does); top up so blocks stay large.
        while self._pending < CHUNK:
            more = self.fh.read(CHUNK - self._pending)
            if not more:
                self.eof = True
                break
            parts.append(more)
            self._pending += len(more)
        if not parts:
            return False
        tail = self.buf[keep_from : self.end]
        self.base += keep_from
        self.buf = b"".join((tail, *parts, bytes(PAD)))
        self.end = len(tail) + self._pending
        self._pending = 0
        return True


    def _pread(self, keep_from: int) -> bool:
        """``fill`` for a plain file, with one copy instead of three: the new buffer is read whole from the file
        at ``buf[keep_from]``'s offset (the kept tail again, then a chunk), and :data:`PAD` more bytes of the file
        serve as the padding. Only the last buffer of the file (or of a part) is copied once more, to put zeros
        after its end. (Reading the tail, the chunk and the padding separately and joining them cost more than
        walking and decoding the records.)"""
        start = self.base + keep_from
        tail = self.end - keep_from
        want = tail + CHUNK + PAD
        fd = self.fh.fh.fileno()
        stop = self.fh.stop
        # pread allocates what it is asked for: never more than the file (or the part) holds
        limit = os.fstat(fd).st_size if stop is None else stop
        want = max(0, min(want, limit - start))
        room = self.blocks.take(want + PAD) if self.blocks is not None and want > tail else None
        if room is not None:  # into a shared buffer (and PAD bytes more for the zeros after a file's end)
            slot, view = room
            n = _pread_into(fd, view[:want], start)
        else:
            slot, data = None, os.pread(fd, want, start) if want else b""
            n = len(data)
        if n <= tail:
            self.eof = True
            return False
        if self.blocks is not None:
            self.blocks.use(slot)
        self.base, self.slot = start, slot
        full = n == tail + CHUNK + PAD
        self.end = tail + CHUNK if full else n  # else the end of the file (or of the part): zeros after it
        self.eof = not full
        if room is not None:
            if not full:
                view[n : n + PAD] = bytes(PAD)
            self.buf = view[: self.end + PAD].toreadonly()
        else:
            self.buf = data if full else data + bytes(PAD)
        return True


def _pread_into(fd: int, room: memoryview, at: int) -> int:
    """Read file bytes from offset ``at`` into ``room`` (as far as the file goes); how many."""
    n = 0
    while n < len(room):  # a read of a regular file stops short only at its end (or on a signal)
        got = os.preadv(fd, [room[n:]], at + n)
        if not got:
            break
        n += got
    return n

def keep_read_blocks() -> bool:
    """Ask the C library to keep the blocks the reader frees for the next ones (``_cloops.keep_read_blocks``):
    a process that reads large captures calls this once. With glibc, a 16 MiB block per read otherwise comes
    as fresh pages the kernel zeroes, a third of reading's system time; elsewhere, or without the compiled
    loops, nothing changes (False)."""
    cl = native.loops()
    return bool(cl is not None and cl.keep_read_blocks(CHUNK + MAX_CAPLEN + 16 + PAD))


def _room(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Room for ``n`` records of the compiled walk and their slow-path flags: not zeroed, as the walk writes
    every field of each record it yields, and its flag (zeroing the room cost more than decoding into it)."""
    return np.empty(n, dtype=BATCH_DTYPE), np.empty(n, dtype=bool)


class CaptureReader:
    """Reads one capture file; ``damage`` and ``interfaces`` fill in as batches are consumed.

    (A reader of a pcapng part holds in ``interfaces`` only its section's interfaces, from global index
    ``span.section.if_base``: earlier sections' interfaces can no longer be named by a packet.)"""

    def __init__(self, path: str | Path, damage: list[Damage] | None = None, span: Span | None = None,
                 compiled: bool | None = None, blocks: SharedBlocks | None = None) -> None:  # fmt: skip
        """``compiled``: walk and decode with the compiled loops (:mod:`native`); by default when they are
        built and not turned off. ``blocks``: shared buffers a plain pcap's blocks are read into after its
        header, when walked compiled (:meth:`_pcap_fused`); the batches then name theirs (``Batch.slot``)."""
        self.blocks = blocks
        self.path = str(path)
        self.damage: list[Damage] = [] if damage is None else damage
        self.interfaces: list[Interface] = []
        self._if_skip = 0  # global index of interfaces[0]
        self.format = ""
        self.span = span
        if compiled is None:
            compiled = native.enabled()
        self.loops = native.loops() if compiled else None

    def _damage(self, offset: int, reason: str) -> None:
        self.damage.append(Damage(self.path, offset, reason))

    def batches(self, batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
        """Yield :class:`Batch` objects of at most ``batch_size`` packets, in file order."""
        batch_size = max(1, int(batch_size))
        yield from self._decode(self.raw(batch_size if self.loops is not None else None), batch_size)

    def raw(self, decoded: int | None = None) -> Iterator[tuple | Batch]:
        """Undecoded record runs ``(buf, base, data offsets, caplen, wirelen, ts, ifindex, linktype)``:
        the record walk alone, for finding verified record boundaries cheaply. With ``decoded`` (a batch size;
        the compiled loops only), a pcap's records come as decoded :class:`Batch` es instead, each record
        decoded as it is walked."""
        with open(self.path, "rb") as fh:
            if self.span is not None and self.span.start > 0 and self.span.section is not None:
                src = _Source(self.path, fh, self.damage, self.span)
                src.fill(0)
                self.format = "pcapng"
                yield from self._pcapng(src, self.span.section)
                return
            if self.span is not None and self.span.start > 0:
                header = fh.read(24)
                src = _Source(self.path, fh, self.damage, self.span)
                src.fill(0)
                self.format = "pcap"
                yield from self._pcap(src, header, self.span.last_sec, decoded)
                return
            src = _Source(self.path, fh, self.damage, self.span)
            src.fill(0)
            head = src.buf[:4]
            if src.end >= 4 and head in _PCAP_MAGICS:
                self.format = "pcap"
                yield from self._pcap(src, decoded=decoded)
            elif src.end >= 4 and struct.unpack_from("<I", src.buf, 0)[0] == _SHB:
                self.format = "pcapng"
                yield from self._pcapng(src)
            elif src.end == 0:
                self._damage(0, "empty file")
            else:
                magic = src.buf[: min(src.end, 4)].hex()
                self._damage(0, f"not a pcap or pcapng file (starts with {magic})")

    def _decode(self, raw: Iterator[tuple | Batch], batch_size: int) -> Iterator[Batch]:
        """Decode raw record runs in batches; runs from the same block are merged first.

        (pcapng yields a run per stretch between non-packet blocks; many tiny runs would each pay
        the fixed cost of a numpy pass.)
        """
        pending: list[tuple] = []
        count = 0
        for piece in raw:
            if isinstance(piece, Batch):  # decoded as it was walked (pcap_fused)
                if pending:
                    yield from self._decode_run(pending, batch_size)
                    pending, count = [], 0
                yield piece
                continue
            if pending and (piece[0] is not pending[0][0] or count >= batch_size):
                yield from self._decode_run(pending, batch_size)
                pending, count = [], 0
            pending.append(piece)
            count += len(piece[2])
        if pending:
            yield from self._decode_run(pending, batch_size)

    def _decode_run(self, pieces: list[tuple], batch_size: int) -> Iterator[Batch]:
        buf, base = pieces[0][0], pieces[0][1]
        merged = [np.concatenate([p[i] for p in pieces]) for i in range(2, 8)] if len(pieces) > 1 else None
        off, caplen, wirelen, ts, ifindex, lt = merged or pieces[0][2:]
        for s in range(0, len(off), batch_size):
            sl = slice(s, s + batch_size)
            pk = decode_batch(buf, off[sl], caplen[sl], wirelen[sl], ts[sl], ifindex[sl], lt[sl], base,
                              compiled=self.loops)
            yield Batch(pk, buf, base)

    # ------------------------------------------------------------------ pcap

    def _pcap(self, src: _Source, header: bytes | None = None, last_sec: int | None = None,
              decoded: int | None = None) -> Iterator[tuple | Batch]:  # fmt: skip
        """Records of a pcap; with ``header`` (the file's first 24 bytes) ``src`` starts at a record boundary.
        ``decoded``: see :meth:`raw`."""
        if header is None:
            if src.end < 24:
                self._damage(0, "pcap file header truncated")
                return
            header = src.buf[:24]
            pos = 24
        else:
            pos = 0
        endian, tsmul = _PCAP_MAGICS[header[:4]]
        _vmaj, _vmin, _zone, _sig, snaplen, lthdr = struct.unpack_from(endian + "HHiIII", header, 4)
        # The upper 16 bits of the link type field may carry FCS information; the type is the lower 16.
        linktype = lthdr & 0xFFFF
        self.interfaces.append(Interface(0, linktype, snaplen, tsresol=6 if tsmul == 1000 else 9))
        # While resynchronising, the header's snap length (when sane) tightens what a record may claim.
        limits = (min(snaplen, MAX_CAPLEN) if snaplen > 0 else MAX_CAPLEN, 1_000_000_000 // tsmul)
        if decoded is not None and self.loops is not None:
            yield from self._pcap_fused(src, pos, endian, tsmul, linktype, limits, last_sec, decoded)
            return
        while True:
            buf, end = src.buf, src.end
            o, ticks, frac, incl, orig, off = self._pcap_walk(buf, pos, end, endian)
            n = len(o)
            if n:
                # (A sub-second field out of range is tolerated here, as libpcap does: some writers
                # produce it. Resynchronisation, which must tell headers from garbage, rejects it.)
                bad = (incl > MAX_CAPLEN) | (incl > orig)
                k = int(np.argmax(bad)) if bad.any() else n
                if k:
                    last_sec = int(ticks[k - 1])
                    ts = ticks[:k] * 1_000_000_000 + frac[:k] * tsmul
                    yield (buf, src.base, o[:k] + 16, incl[:k], orig[:k], ts,
                           np.zeros(k, np.int32), np.full(k, linktype, np.int32))  # fmt: skip
                if k < n:
                    off = int(o[k])  # the first record with an impossible length
            pos = self._pcap_next(src, off, endian, limits, last_sec)
            if pos is None:
                return

    def _pcap_fused(self, src: _Source, pos: int, endian: str, tsmul: int, linktype: int,
                    limits: tuple[int, int], last_sec: int | None, batch: int) -> Iterator[Batch]:  # fmt: skip
        """:meth:`_pcap` with the compiled walk that decodes each record as it finds it: yields decoded
        batches, and handles damage, resynchronisation and the buffer's end exactly as :meth:`_pcap` does."""
        assert self.loops is not None
        fused = self.loops.pcap_fused
        per_record = 16  # bytes per record seen so far (16, the header alone, until a batch is read)
        src.blocks = self.blocks
        while True:
            buf, end, slot = src.buf, src.end, src.slot
            while True:  # batches from this buffer until the walk stops for a reason other than room
                # Room for the records the rest of the buffer holds at the size seen so far, and a little more:
                # the fewest-bytes bound (16 a record) allocated and zeroed four times what a block of
                # 500-byte packets fills, which cost more than decoding them. Too little room only makes
                # the walk stop early (why 2) and go on in a second batch.
                room = min(batch, (end - pos) // per_record + 1 + (end - pos) // (per_record * 16) + 256)
                out, slow = _room(room)
                n, off, why, sec = fused(buf, pos, end, endian == ">", tsmul, src.base, linktype, MAX_CAPLEN, out,
                                         slow, EXT6)  # fmt: skip
                if n:
                    last_sec = int(sec)
                    per_record = max(16, (int(off) - pos) // int(n))
                    out, slow = out[:n], slow[:n]
                    finish_slow(buf, out, slow, src.base)
                    yield Batch(out, buf, src.base, slot)
                pos = int(off)
                if why != 2:  # 0: the buffer's end, 1: an impossible length at pos
                    break
            next_pos = self._pcap_next(src, pos, endian, limits, last_sec)
            if next_pos is None:
                return
            pos = next_pos

    def _pcap_next(self, src: _Source, off: int, endian: str, limits: tuple[int, int],
                   last_sec: int | None) -> int | None:  # fmt: skip
        """Where the walk goes on after it stopped at ``off``: a record with an impossible length there is
        damage, and the walk resumes where resynchronisation finds records again; otherwise the next buffer
        starts with the kept tail (position 0). None at the end of the file."""
        if off + 16 <= src.end:
            incl, orig = struct.unpack_from(endian + "II", src.buf, off + 8)
            if incl > MAX_CAPLEN or incl > orig:
                self._damage(src.base + off, _pcap_reason(incl, orig))
                return self._pcap_resync(src, off + 1, endian, limits, last_sec)
        if not src.fill(off):
            if off < src.end:
                self._damage(src.base + off, f"truncated record: {src.end - off} bytes left at end of file")
            return None
        return 0

    def _pcap_walk(self, buf: bytes, pos: int, end: int, endian: str) -> tuple[np.ndarray, ...]:
        """Follow record lengths from ``pos`` while whole records fit before ``end``: the record offsets, their
        header fields (seconds, fraction, captured and original length) and the offset where the walk stopped.
        Compiled, or the one per-record Python loop."""
        if self.loops is not None:
            room = (end - pos) // 16 + 1
            o, sec, frac, incl, orig = (np.empty(room, np.int64) for _ in range(5))
            n, off = self.loops.pcap_walk(buf, pos, end, endian == ">", o, sec, frac, incl, orig)
            return o[:n], sec[:n], frac[:n], incl[:n], orig[:n], int(off)
        u32 = struct.Struct(endian + "I").unpack_from
        offs: list[int] = []
        app = offs.append
        off, lim = pos, end - 16
        while off <= lim:
            nxt = off + 16 + u32(buf, off + 8)[0]
            if nxt > end:
                break
            app(off)
            off = nxt
        o = np.array(offs, dtype=np.int64)
        return (o, *_pcap_headers(buf, o, endian), off)

    def _pcap_resync(self, src: _Source, start: int, endian: str, limits: tuple[int, int],
                     last_sec: int | None) -> int | None:  # fmt: skip
        """Find the next offset (in the current buffer, refilled as needed) where a run of valid records starts.

        A candidate needs a plausible header (caplen within bounds and <= orig_len, sub-second field in
        range), followed by :data:`_RESYNC_CHAIN` more plausible headers at the offsets its lengths give
        (or the end of the file). A timestamp within a day before / a year after the last good record
        is preferred; a candidate outside that window needs twice the chain.
        """
        margin = (_RESYNC_CHAIN * 2 + 1) * (MAX_CAPLEN + 16)
        pos, damaged_at = start, src.base + start - 1
        while True:
            buf, end = src.buf, src.end
            stop = end - 16 if src.eof else end - margin
            while pos <= stop:
                w = min(_RESYNC_WINDOW, stop + 1 - pos)
                cand = _pcap_candidates(buf, pos, w, endian, limits)
                for c in cand.tolist():
                    chain = 2 * _RESYNC_CHAIN
                    if last_sec is not None:
                        sec = struct.unpack_from(endian + "I", buf, c)[0]
                        if last_sec - 86400 <= sec <= last_sec + 366 * 86400:
                            chain = _RESYNC_CHAIN
                    if _pcap_chain_ok(buf, c, end, src.eof, endian, limits, chain):
                        self._damage(src.base + c, f"resynchronised after skipping {src.base + c - damaged_at} bytes")
                        return c
                pos += w
            if not src.fill(pos):
                if src.end > pos:
                    self._damage(src.base + pos, "no valid record found before end of file")
                return None
            pos = 0

    # ------------------------------------------------------------------ pcapng

    def _pcapng(self, src: _Source, ctx: Section | None = None) -> Iterator[tuple]:
        """Blocks of a pcapng; with ``ctx`` ``src`` starts at a verified block boundary inside that section."""
        endian = "<"
        section = -1
        if_base = 0  # global index of the current section's interface 0
        if ctx is not None:
            endian, section, if_base = ctx.endian, ctx.index, ctx.if_base
            self.interfaces = list(ctx.interfaces)
            self._if_skip = if_base
        pos = 0
        while True:
            buf, end = src.buf, src.end
            o, off = self._pcapng_walk(buf, pos, end, endian)
            if len(o):
                good, raw = self._pcapng_packets(buf, src.base, o, endian, if_base, section)
                if raw is not None:
                    yield raw
                if good < len(o):
                    bad_at = int(o[good])
                    self._damage(src.base + bad_at, "pcapng block: trailing block length does not match")
                    pos = self._pcapng_resync(src, bad_at + 1)
                    if pos is None:
                        return
                    continue
            if off + 12 > end:
                if not src.fill(off):
                    if off < src.end:
                        self._damage(src.base + off, f"truncated block: {src.end - off} bytes at end of file")
                    return
                pos = 0
                continue
            btype = struct.unpack_from(endian + "I", buf, off)[0]
            blen = _shb_len(buf, off) if btype == _SHB else struct.unpack_from(endian + "I", buf, off + 4)[0]
            if blen is None or blen < 12 or blen & 3 or blen > MAX_BLOCK:
                why = "section header with unknown byte-order magic" if blen is None else f"block length {blen}"
                self._damage(src.base + off, f"impossible pcapng block ({why})")
                pos = self._pcapng_resync(src, off + 1)
                if pos is None:
                    return
                continue
            if off + blen > end:
                if not src.fill(off):
                    self._damage(src.base + off, f"truncated block: {src.end - off} of {blen} bytes at end of file")
                    return
                pos = 0
                continue
            if btype == _SHB:
                shb = _parse_shb(buf, off, end)
                if shb is None:
                    self._damage(src.base + off, "section header block damaged")
                    pos = self._pcapng_resync(src, off + 1)
                    if pos is None:
                        return
                    continue
                endian = shb[0]
                section += 1
                if_base = self._if_skip + len(self.interfaces)
            elif struct.unpack_from(endian + "I", buf, off + blen - 4)[0] != blen:
                self._damage(src.base + off, f"pcapng block (type {btype:#x}): trailing block length does not match")
                pos = self._pcapng_resync(src, off + 1)
                if pos is None:
                    return
                continue
            elif section < 0:
                self._damage(src.base + off, "pcapng block before any section header")
            elif btype == _IDB:
                itf = _parse_idb(buf, off, blen, endian, self._if_skip + len(self.interfaces), section)
                if itf is None:
                    self._damage(src.base + off, "interface description block too short")
                else:
                    self.interfaces.append(itf)
            # other block types (statistics, name resolution, custom, ...) are skipped whole
            pos = off + blen

    def _pcapng_walk(self, buf: bytes, pos: int, end: int, endian: str) -> tuple[np.ndarray, int]:
        """Follow block lengths from ``pos`` over packet blocks that fit before ``end``; stop at anything else
        (other block types, odd lengths, the buffer end) for the caller. Compiled, or the one per-block
        Python loop. Returns the block offsets and where the walk stopped."""
        if self.loops is not None:
            o = np.empty((end - pos) // 12 + 1, np.int64)
            n, off = self.loops.pcapng_walk(buf, pos, end, endian == ">", MAX_BLOCK, o)
            return o[:n], int(off)
        u2 = struct.Struct(endian + "II").unpack_from
        offs: list[int] = []
        app = offs.append
        off, lim = pos, end - 12
        while off <= lim:
            btype, blen = u2(buf, off)
            nxt = off + blen
            if nxt > end or blen < 12 or blen & 3 or blen > MAX_BLOCK or btype not in _PKT_BLOCKS:
                break
            app(off)
            off = nxt
        return np.array(offs, dtype=np.int64), off

    def _pcapng_packets(self, buf: bytes, base: int, o: np.ndarray, endian: str, if_base: int,
                        section: int) -> tuple[int, tuple | None]:  # fmt: skip
        """Vectorised checks and field extraction for a run of packet blocks.

        Returns how many leading blocks have consistent lengths (the rest start at a damaged block) and
        the raw batch tuple for the well-formed packet blocks among them.
        """
        v32 = np.ndarray(shape=(len(buf) - 3,), dtype=endian + "u4", buffer=buf, strides=(1,))
        btype = v32[o].astype(np.int64)
        blen = v32[o + 4].astype(np.int64)
        trail = v32[o + blen - 4]
        bad = trail != blen
        k = int(np.argmax(bad)) if bad.any() else len(o)
        o, btype, blen = o[:k], btype[:k], blen[:k]
        if k == 0:
            return 0, None
        if section < 0:
            self._damage(base + int(o[0]), "packet blocks before any section header")
            return k, None
        skip = self._if_skip
        nif = skip + len(self.interfaces) - if_base
        epb = btype == _EPB
        spb = btype == _SPB
        # EPB: if_id u32, ts_hi u32, ts_lo u32, caplen u32, origlen u32, data. PB: if_id u16, drops u16 ...
        ifid = np.where(epb, v32[o + 8], np.where(spb, 0, v32[o + 8] >> 16 if endian == ">" else v32[o + 8] & 0xFFFF))
        ifid = ifid.astype(np.int64)
        hi = v32[o + 12].astype(np.uint64)
        lo = v32[o + 16].astype(np.uint64)
        cap = np.where(spb, 0, v32[o + 20]).astype(np.int64)
        orig = np.where(spb, v32[o + 8], v32[o + 24]).astype(np.int64)
        hdr = np.where(spb, 12, 28)  # where the packet data starts in the block
        room = blen - hdr - 4
        if spb.any():  # SPB: captured length is min(orig_len, snaplen of interface 0, room in the block)
            snap0 = self.interfaces[if_base - skip].snaplen if nif > 0 else 0
            snap0 = snap0 or MAX_CAPLEN
            cap = np.where(spb, np.minimum(np.minimum(orig, snap0), room), cap)
        valid = (room >= 0) & (cap <= room) & (ifid < nif) & (cap <= MAX_CAPLEN)
        if not valid.all():
            for i in np.flatnonzero(~valid).tolist():
                why = (
                    "packet block too short" if room[i] < 0
                    else f"packet block names unknown interface {int(ifid[i])}" if ifid[i] >= nif
                    else f"captured length {int(cap[i])} exceeds the block or the {MAX_CAPLEN}-byte cap"
                )  # fmt: skip
                self._damage(base + int(o[i]), why)
            sel = np.flatnonzero(valid)
            o, ifid, hi, lo = o[sel], ifid[sel], hi[sel], lo[sel]
            cap, orig, hdr, spb = cap[sel], orig[sel], hdr[sel], spb[sel]
            if len(o) == 0:
                return k, None
        gif = ifid + if_base
        ticks = (hi << np.uint64(32)) | lo
        ts = np.zeros(len(o), dtype=np.int64)
        lts = np.zeros(len(o), dtype=np.int32)
        for g in np.unique(gif).tolist():
            m = gif == g
            itf = self.interfaces[g - skip]
            ts[m] = _ticks_to_ns(ticks[m], itf.tsresol) + _wrap64(itf.tsoffset * 1_000_000_000)
            lts[m] = itf.linktype
        # SPBs carry no timestamp.
        ts = np.where(spb, 0, ts)
        return k, (buf, base, o + hdr, cap, orig, ts, gif.astype(np.int32), lts)

    def _pcapng_resync(self, src: _Source, start: int) -> int | None:
        """Find the next block whose total length matches at both ends and whose successor does too."""
        margin = 2 * MAX_BLOCK + 64
        pos, damaged_at = start, src.base + start - 1
        while True:
            buf, end = src.buf, src.end
            stop = end - 12 if src.eof else end - margin
            while pos <= stop:
                w = min(_RESYNC_WINDOW, stop + 1 - pos)
                for c in _pcapng_candidates(buf, pos, w, end).tolist():
                    if _pcapng_chain_ok(buf, c, end):
                        self._damage(src.base + c, f"resynchronised after skipping {src.base + c - damaged_at} bytes")
                        return c
                pos += w
            if not src.fill(pos):
                if src.end > pos:
                    self._damage(src.base + pos, "no valid block found before end of file")
                return None
            pos = 0


# ---------------------------------------------------------------------- pcapng boundaries

_WALK_WINDOW = 1 << 20
_STATE_BLOCKS = frozenset({_SHB, _IDB})  # the blocks that change what a part must carry
"""Bytes read at a time by :func:`pcapng_boundaries` (blocks beyond the window are reached by a seek)."""


class _Window:
    """Forward random access to a file through one window: ``get`` rereads (seek + one read) only when a
    range is outside it, so the middles of large blocks are skipped, never read. Reads are bounded by
    ``max(n, _WALK_WINDOW)`` and callers never ask for more than :data:`MAX_BLOCK`."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size
        self.buf, self.base = b"", 0

    def get(self, pos: int, n: int) -> int | None:
        """Make ``[pos, pos+n)`` available in ``buf``; its index there, or None past the end of the file."""
        if pos + n > self.size:
            return None
        i = pos - self.base
        if i < 0 or i + n > len(self.buf):
            self.fh.seek(pos)
            self.buf = self.fh.read(min(max(n, _WALK_WINDOW), self.size - pos))
            self.base, i = pos, 0
            if len(self.buf) < n:
                return None
        return i


def pcapng_boundaries(path: str | Path, every: int) -> list[tuple[int, Section]]:
    """Block boundaries of a plain pcapng about ``every`` bytes apart, each with the reader state there.

    Follows block types and lengths only (plus the trailing length, the SHBs and the IDBs, which the
    state needs), with the one-pass reader's own rules, and stops at the first block the reader would
    take as damage (impossible or mismatched length, damaged section header, truncation): every boundary
    returned is an offset the whole-file read reaches, before any damage, with exactly that state. A
    boundary is the start of a block that was verified. Memory: one window (no length read from the file
    drives an allocation beyond :data:`MAX_BLOCK`), plus the current section's interfaces."""
    every = max(1, every)
    out: list[tuple[int, Section]] = []
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        w = _Window(fh, size)
        endian, index, if_base = "<", -1, 0
        ifs: list[Interface] = []
        ctx: Section | None = None  # the state as a Section, made once per change
        target, off = every, 0
        while True:
            i = w.get(off, 12)
            if i is None:
                break  # the end of the file, or a truncated block
            # Fast path: blocks that are not SHB/IDB and lie wholly in the window.
            if index >= 0:
                buf = w.buf
                u2 = struct.Struct(endian + "II").unpack_from
                u1 = struct.Struct(endian + "I").unpack_from
                lim, wend = len(buf) - 12, len(buf)
                while i <= lim:
                    btype, blen = u2(buf, i)
                    if (btype in _STATE_BLOCKS or blen < 12 or blen & 3 or blen > MAX_BLOCK
                            or i + blen > wend or u1(buf, i + blen - 4)[0] != blen):  # fmt: skip
                        break
                    if w.base + i >= target:
                        if ctx is None:
                            ctx = Section(endian, index, if_base, tuple(ifs))
                        out.append((w.base + i, ctx))
                        target = w.base + i + every
                    i += blen
                off = w.base + i
                i = w.get(off, 12)
                if i is None:
                    break
            # Slow path: one block, whatever it is, exactly as the reader's block loop judges it.
            buf = w.buf
            btype = struct.unpack_from(endian + "I", buf, i)[0]
            blen = _shb_len(buf, i) if btype == _SHB else struct.unpack_from(endian + "I", buf, i + 4)[0]
            if blen is None or blen < 12 or blen & 3 or blen > MAX_BLOCK:
                break
            whole = btype in _STATE_BLOCKS
            i = w.get(off, blen) if whole else w.get(off + blen - 4, 4)
            if i is None:
                break
            buf = w.buf
            if btype == _SHB:
                shb = _parse_shb(buf, i, i + blen)
                if shb is None:
                    break
            elif struct.unpack_from(endian + "I", buf, i + (blen - 4 if whole else 0))[0] != blen:
                break
            elif index < 0:
                break  # a block before any section header (the file starts with one: not reached)
            if off >= target and index >= 0:
                if ctx is None:
                    ctx = Section(endian, index, if_base, tuple(ifs))
                out.append((off, ctx))
                target = off + every
            if btype == _SHB:
                endian, index, if_base, ifs, ctx = shb[0], index + 1, if_base + len(ifs), [], None
            elif btype == _IDB:
                itf = _parse_idb(buf, i, blen, endian, if_base + len(ifs), index)
                if itf is not None:
                    ifs.append(itf)
                    ctx = None
            off += blen
    return out


# ---------------------------------------------------------------------- helpers


def _pcap_headers(buf: bytes, o: np.ndarray, endian: str) -> tuple[np.ndarray, ...]:
    v32 = np.ndarray(shape=(len(buf) - 3,), dtype=endian + "u4", buffer=buf, strides=(1,))
    return (v32[o].astype(np.int64), v32[o + 4].astype(np.int64), v32[o + 8].astype(np.int64),
            v32[o + 12].astype(np.int64))  # fmt: skip


def _pcap_reason(incl: int, orig: int) -> str:
    if incl > MAX_CAPLEN:
        return f"record length {incl} exceeds the {MAX_CAPLEN}-byte cap"
    return f"captured length {incl} larger than original length {orig}"


def _pcap_candidates(buf: bytes, pos: int, w: int, endian: str, limits: tuple[int, int]) -> np.ndarray:
    """Offsets in ``[pos, pos+w)`` whose 16 bytes look like a pcap record header (vectorised)."""
    caplim, fmax = limits
    dt = endian + "u4"
    frac = np.ndarray((w,), dt, buffer=buf, offset=pos + 4, strides=(1,))
    incl = np.ndarray((w,), dt, buffer=buf, offset=pos + 8, strides=(1,))
    orig = np.ndarray((w,), dt, buffer=buf, offset=pos + 12, strides=(1,))
    ok = (incl <= caplim) & (incl <= orig) & (orig <= MAX_ORIG_LEN) & (frac < fmax) & (orig > 0)
    return np.flatnonzero(ok) + pos


def _pcap_chain_ok(buf: bytes, c: int, end: int, eof: bool, endian: str, limits: tuple[int, int],
                   chain: int) -> bool:  # fmt: skip
    """Do ``chain`` plausible records follow from ``c``? Running out of data at the end of the file after
    at least one whole record counts as success (a truncated last record is reported on its own)."""
    u = struct.Struct(endian + "IIII").unpack_from
    caplim, fmax = limits
    for i in range(chain + 1):
        if c + 16 > end:
            return eof and i > 0
        _sec, frac, incl, orig = u(buf, c)
        if incl > caplim or incl > orig or orig > MAX_ORIG_LEN or frac >= fmax or orig == 0:
            return False
        c += 16 + incl
        if c > end:
            return eof and i > 0
    return True


def _pcapng_candidates(buf: bytes, pos: int, w: int, end: int) -> np.ndarray:
    """Offsets in ``[pos, pos+w)`` holding a known block type whose trailing length matches (either endian)."""
    out = []
    for e in "<>":
        dt = e + "u4"
        bt = np.ndarray((w,), dt, buffer=buf, offset=pos, strides=(1,))
        bl = np.ndarray((w,), dt, buffer=buf, offset=pos + 4, strides=(1,))
        ok = np.isin(bt, tuple(_KNOWN_BLOCKS)) & (bl >= 12) & (bl % 4 == 0) & (bl <= MAX_BLOCK)
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            continue
        c = idx + pos
        blen = bl[idx].astype(np.int64)
        fits = c + blen <= end
        c, blen = c[fits], blen[fits]
        v32 = np.ndarray((len(buf) - 3,), dt, buffer=buf, strides=(1,))
        ok2 = v32[c + blen - 4] == blen
        out.append(c[ok2])
    if not out:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(out))


def _pcapng_chain_ok(buf: bytes, c: int, end: int) -> bool:
    """Block at ``c`` is self-consistent, and so is the block after it (or it ends the data)."""
    for _ in range(2):
        if c == end:
            return True
        if c + 12 > end:
            return False
        btype = struct.unpack_from("<I", buf, c)[0]
        endian = "<"
        if btype == _SHB:
            shb = _parse_shb(buf, c, end)
            if shb is None:
                return False
            c += shb[1]
            continue
        for e in "<>":
            bt, bl = struct.unpack_from(e + "II", buf, c)
            if bt in _KNOWN_BLOCKS and 12 <= bl <= MAX_BLOCK and not bl & 3 and c + bl <= end:
                endian = e
                break
        else:
            return False
        bl = struct.unpack_from(endian + "I", buf, c + 4)[0]
        if struct.unpack_from(endian + "I", buf, c + bl - 4)[0] != bl:
            return False
        c += bl
    return True


def _shb_len(buf: bytes, off: int) -> int | None:
    """Section header block length, read in the byte order its byte-order magic says."""
    bom = struct.unpack_from("<I", buf, off + 8)[0]
    if bom == _BOM:
        return struct.unpack_from("<I", buf, off + 4)[0]
    if bom == 0x4D3C2B1A:
        return struct.unpack_from(">I", buf, off + 4)[0]
    return None


def _parse_shb(buf: bytes, off: int, end: int) -> tuple[str, int] | None:
    """(byte order, block length) of a section header block, or None if it is not consistent."""
    if off + 28 > end:
        return None
    bom = struct.unpack_from("<I", buf, off + 8)[0]
    endian = "<" if bom == _BOM else ">" if bom == 0x4D3C2B1A else None
    if endian is None:
        return None
    blen = struct.unpack_from(endian + "I", buf, off + 4)[0]
    if blen < 28 or blen & 3 or blen > MAX_BLOCK or off + blen > end:
        return None
    if struct.unpack_from(endian + "I", buf, off + blen - 4)[0] != blen:
        return None
    return endian, blen


def _parse_idb(buf: bytes, off: int, blen: int, endian: str, index: int, section: int) -> Interface | None:
    """The interface an IDB (whole in ``buf`` at ``off``) describes; None when it is too short to hold one."""
    if blen < 20:
        return None
    lt, _res, snap = struct.unpack_from(endian + "HHI", buf, off + 8)
    tsresol, tsoffset, name = 6, 0, ""
    for code, val in _options(buf, off + 16, off + blen - 4, endian):
        if code == 9 and len(val) >= 1:
            tsresol = val[0]
        elif code == 14 and len(val) >= 8:
            tsoffset = struct.unpack_from(endian + "q", val, 0)[0]
        elif code == 2:
            name = bytes(val).decode("utf-8", "replace")
    return Interface(index, lt, snap, name, tsresol, tsoffset, section)


def _options(buf: bytes, start: int, end: int, endian: str) -> Iterator[tuple[int, memoryview]]:
    """pcapng options (code, value) in ``buf[start:end]``, stopping at opt_endofopt or anything inconsistent."""
    mv = memoryview(buf)
    hdr = struct.Struct(endian + "HH").unpack_from
    p = start
    while p + 4 <= end:
        code, ln = hdr(buf, p)
        if code == 0 or p + 4 + ln > end:
            return
        yield code, mv[p + 4 : p + 4 + ln]
        p += 4 + ((ln + 3) & ~3)


def _wrap64(x: int) -> int:
    """Wrap a Python int into int64 the way numpy arithmetic wraps (hostile offsets must not raise)."""
    return (x + (1 << 63)) % (1 << 64) - (1 << 63)


def _ticks_to_ns(ticks: np.ndarray, tsresol: int) -> np.ndarray:
    """Timestamp units (per if_tsresol) to nanoseconds; hostile resolutions wrap, they do not raise."""
    t = ticks.astype(np.uint64)
    if tsresol & 0x80:
        k = tsresol & 0x7F
        if k > 63:
            return np.zeros(len(t), dtype=np.int64)
        whole = (t >> np.uint64(k)).astype(np.int64) * 1_000_000_000
        frac = (t & np.uint64((1 << k) - 1)).astype(np.float64) * (1e9 / (1 << k))
        return whole + frac.astype(np.int64)
    if tsresol <= 9:
        return (t * np.uint64(10 ** (9 - tsresol))).astype(np.int64)
    if tsresol > 19:
        return np.zeros(len(t), dtype=np.int64)
    return (t // np.uint64(10 ** (tsresol - 9))).astype(np.int64)
