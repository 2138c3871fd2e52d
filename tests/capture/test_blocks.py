"""Shared read buffers: the reader reads the same packets into them, and never takes one that is lent out."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from capture_gen import pcap_bytes, pcap_header, pcap_record, tcp_frame

from segverify.capture import reader as R
from segverify.capture.blocks import SharedBlocks
from segverify.capture.decode import BATCH_DTYPE, PAD
from segverify.capture.reader import iter_batches

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "captures" / "zeek"
CORPUS_PCAPS = sorted(p for p in CORPUS.glob("*.pcap") if p.is_file()) if CORPUS.is_dir() else []
T0 = 1_600_000_000 * 10**9
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and MAP_SHARED semantics")


def packets(path: Path, blocks: SharedBlocks | None) -> tuple[list[tuple], list, list[int | None]]:
    """Every packet's header fields and captured bytes, taken as each batch comes (a batch from a shared buffer
    is good only until the reader reads on), the damage, and the buffer of each batch."""
    damage: list = []
    out: list[tuple] = []
    slots: list[int | None] = []
    for batch in iter_batches(path, damage=damage, blocks=blocks):
        slots.append(batch.slot)
        for i in range(len(batch)):
            out.append((batch.pkts[i].tobytes(), bytes(batch.frame(i))))
    return out, [(d.offset, d.reason) for d in damage], slots


def damaged_capture(tmp_path: Path) -> Path:
    """Packets of every size up to 1.5 KB, garbage in the middle (resynchronisation) and a record cut short."""
    frames = [tcp_frame("10.0.0.1", "10.0.0.2", 1000 + i, 80, payload=bytes([i % 251]) * (i * 7 % 1500))
              for i in range(300)]  # fmt: skip
    recs = [pcap_record(T0 + i * 1000, f) for i, f in enumerate(frames)]
    garbage = bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8))
    data = pcap_header() + b"".join(recs[:120]) + garbage + b"".join(recs[120:]) + recs[0][:30]
    path = tmp_path / "d.pcap"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("chunk", [2000, 1 << 16])
def test_blocks_read_into_shared_buffers_are_the_blocks_read_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  chunk: int) -> None:
    monkeypatch.setattr(R, "CHUNK", chunk)
    paths = [damaged_capture(tmp_path), *CORPUS_PCAPS]
    for path in paths:
        want = packets(path, None)
        blocks = SharedBlocks(R.SHARED_BLOCK_BYTES, count=2)
        try:
            got = packets(path, blocks)
        finally:
            blocks.close()
        assert got[:2] == want[:2], path
        assert got[2][0] is None  # the first block (the file's header) is read alone
        if path.stat().st_size > 4 * chunk:  # read in several blocks: the others in the two buffers, by turns
            assert set(got[2][1:]) == {0, 1}, path
        elif path.stat().st_size > chunk + PAD:
            assert set(got[2][1:]) & {0, 1}, path


def test_a_block_too_long_for_the_buffers_is_read_into_memory_of_its_own(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Resynchronisation keeps megabytes of the previous buffer; a buffer that cannot hold them is left for one
    read, and the packets are the same."""
    monkeypatch.setattr(R, "CHUNK", 2000)
    path = damaged_capture(tmp_path)
    want = packets(path, None)
    blocks = SharedBlocks(2000 + PAD + 3000, count=2)  # the chunk and a small tail, not what resync keeps
    try:
        got = packets(path, blocks)
    finally:
        blocks.close()
    assert got[:2] == want[:2]
    assert None in got[2][1:] and {0, 1} <= set(got[2])


@linux_only
def test_the_reader_waits_for_a_lent_buffer_and_goes_on_when_the_borrower_is_gone() -> None:
    blocks = SharedBlocks(4096, count=2, rows=8)
    slot, room = blocks.take(100)
    room[:5] = b"hello"
    blocks.use(slot)
    at, rows = blocks.row_room(slot, 2)  # type: ignore[misc]
    rows["pos"] = [7, 9]
    ticket = blocks.lend(slot)
    other, _ = blocks.take(100)
    assert other != slot  # the current buffer is never given out
    blocks.use(other)
    ticket2 = blocks.lend(other)
    pid = os.fork()
    if pid == 0:  # the borrower: reads what was lent, gives the first back late, then dies holding the second
        code = 1
        try:
            blocks.in_child()
            ok = bytes(blocks.view(slot, 5)) == b"hello" and blocks.rows(slot, at, 2)["pos"].tolist() == [7, 9]
            time.sleep(0.3)
            blocks.give_back(ticket)
            time.sleep(0.3)
            code = 0 if ok and ticket2 > ticket else 1
        finally:
            os._exit(code)
    blocks.in_parent()
    started = time.monotonic()
    third, _ = blocks.take(100)  # both lent (one current): waits for the first ticket
    waited = time.monotonic() - started
    assert third == slot and blocks.waits >= 1 and waited >= 0.2
    blocks.use(third)
    fourth, _ = blocks.take(100)  # the second is still lent: free only once its borrower is gone
    assert fourth == other and blocks._gone
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert blocks.take(4097) is None  # more than a buffer holds: the reader reads into memory of its own
    blocks.close()


def test_rows_beside_a_buffer_are_bounded_and_start_again_with_its_next_block() -> None:
    blocks = SharedBlocks(1024, count=2, rows=10)
    try:
        slot, _ = blocks.take(10)
        blocks.use(slot)
        first = blocks.row_room(slot, 6)
        assert first is not None and first[0] == 0 and first[1].dtype == BATCH_DTYPE and len(first[1]) == 6
        assert blocks.row_room(slot, 5) is None  # 11 > 10: those rows travel with their message
        second = blocks.row_room(slot, 4)
        assert second is not None and second[0] == 6
        blocks.use(slot)  # the buffer read again: its area is free again
        assert blocks.row_room(slot, 10) is not None
    finally:
        blocks.close()


def test_a_pcap_ending_inside_a_shared_buffer_is_padded_with_zeros(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The buffers are reused: the bytes after a short last read are zeroed, not left from an earlier block."""
    monkeypatch.setattr(R, "CHUNK", 1500)
    frames = [tcp_frame("10.0.0.1", "10.0.0.2", 1, 2, payload=b"\xee" * (700 + i)) for i in range(9)]
    path = tmp_path / "p.pcap"
    path.write_bytes(pcap_bytes(frames))
    blocks = SharedBlocks(R.SHARED_BLOCK_BYTES, count=2)
    try:
        for _ in (0, 1):  # dirty buffers, as after earlier blocks
            room = blocks.take(R.SHARED_BLOCK_BYTES)
            assert room is not None
            room[1][:] = b"\xff" * R.SHARED_BLOCK_BYTES
            blocks.use(room[0])
        blocks.use(None)
        last = None
        for batch in iter_batches(path, blocks=blocks):
            last = batch
            assert last.slot is not None or last.base == 0
        assert last is not None
        end = len(last.buf) - PAD
        assert bytes(last.buf[end:]) == bytes(PAD)
    finally:
        blocks.close()
