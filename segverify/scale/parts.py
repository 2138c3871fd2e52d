"""Inputs and parts: which files a replay reads, and how they are cut for parallel reading.

A part is a whole file, or a stretch of a large plain pcap or pcapng between two *verified* record
(block) boundaries: offsets the one-pass reader itself reaches by following record lengths from the file
header, before any damage. A pcap carries no reader state across records but the header and the previous
record's seconds (for resynchronisation); a pcapng carries its section's byte order and the interfaces
defined so far in the section (:class:`~segverify.capture.reader.Section`), which the part takes along.
So a part read from such a boundary yields exactly the records the whole-file read yields there, with the
same damage offsets. gzip (no random access) is one part per file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from ..capture.reader import _PCAP_MAGICS, _SHB, CaptureReader, Damage, Span, pcapng_boundaries

DEFAULT_CHUNK = 512 << 20
"""Plain pcap and pcapng files larger than this are read in parts of about this many bytes."""


@dataclass(frozen=True)
class Part:
    """One unit of work: records of file ``fidx`` (``span`` None: the whole file)."""

    fidx: int
    seq: int  # number of the part inside its file
    path: str
    span: Span | None
    size: int  # bytes covered, for progress

    @property
    def name(self) -> str:
        return f"{self.fidx}-{self.seq}"

    @property
    def start(self) -> int:
        return self.span.start if self.span is not None else 0


def _kind(path: str) -> str:
    """The format of a plain capture, "pcap" or "pcapng", by its first bytes as the reader decides; else ""."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head in _PCAP_MAGICS:
        return "pcap"
    if len(head) == 4 and struct.unpack("<I", head)[0] == _SHB:
        return "pcapng"
    return ""


def splittable(path: str, chunk: int) -> bool:
    """A plain (not gzip) pcap or pcapng larger than one chunk."""
    try:
        return os.path.getsize(path) > chunk and _kind(path) != ""
    except OSError:
        return False


def whole(fidx: int, path: str) -> Part:
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    return Part(fidx, 0, path, None, size)


def split(fidx: int, path: str, chunk: int) -> list[Part]:
    """Parts of a plain pcap or pcapng at verified record/block boundaries about ``chunk`` bytes apart.

    pcap: walks the records with the reader's own loop (no packet decoding). pcapng: walks block headers
    (:func:`~segverify.capture.reader.pcapng_boundaries`). Boundaries are taken only before the first
    damage, so the last part holds any damage and its resynchronisation, read from a boundary with the
    same state as in a whole-file read."""
    if _kind(path) == "pcapng":
        return _split_pcapng(fidx, path, chunk)
    size = os.path.getsize(path)
    damage: list[Damage] = []
    reader = CaptureReader(path, damage)
    with open(path, "rb") as fh:
        endian = _PCAP_MAGICS[fh.read(4)][0]
    sec = struct.Struct(endian + "I").unpack_from
    spans: list[tuple[int, int | None]] = []  # (boundary, seconds of the record before it)
    target = max(chunk, 25)  # never a part holding only the file header
    prev_sec: int | None = None
    for run in reader.raw():
        if damage:
            break
        buf, base, data = run[0], run[1], run[2]
        starts = data - 16 + base
        while target < size:
            i = int(np.searchsorted(starts, target))
            if i >= len(starts):
                break
            before = sec(buf, int(data[i - 1]) - 16)[0] if i > 0 else prev_sec
            spans.append((int(starts[i]), before))
            target = int(starts[i]) + chunk
        if len(data):
            prev_sec = sec(buf, int(data[-1]) - 16)[0]
    bounds = [0] + [b for b, _ in spans] + [None]
    lasts = [None] + [s for _, s in spans]
    parts = []
    for j in range(len(bounds) - 1):
        lo, hi = bounds[j], bounds[j + 1]
        assert lo is not None
        parts.append(Part(fidx, j, path, Span(lo, hi, lasts[j]), (hi if hi is not None else size) - lo))
    return parts


def _split_pcapng(fidx: int, path: str, chunk: int) -> list[Part]:
    """Parts of a pcapng, each starting at a verified block boundary with the section state there."""
    size = os.path.getsize(path)
    cuts = pcapng_boundaries(path, chunk)
    starts = [0] + [off for off, _ in cuts]
    stops: list[int | None] = [off for off, _ in cuts] + [None]
    spans = [Span(0, stops[0])] + [Span(off, stop, None, sec) for (off, sec), stop in zip(cuts, stops[1:], strict=True)]
    return [Part(fidx, j, path, sp, (sp.stop if sp.stop is not None else size) - start)
            for j, (sp, start) in enumerate(zip(spans, starts, strict=True))]  # fmt: skip


