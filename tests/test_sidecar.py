"""The harvest and the inspection on a forked side process give the report of one process, byte for byte."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from segverify.analysis import replay as replay_module
from segverify.analysis import sidecar
from segverify.report.json_report import render_json
from segverify.topology.loader import load_topology

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "topologies" / "alpha-city.yaml"

pytestmark = pytest.mark.skipif(not sidecar.available(), reason="no fork here")


@pytest.fixture
def captures(tmp_path: Path) -> list[str]:
    """The bundled day and incidents, one of them gzip (its candidates travel with their bytes)."""
    day = tmp_path / "day.pcap"
    shutil.copy(ROOT / "captures" / "alpha-city-day.pcap", day)
    inc = tmp_path / "incidents.pcap.gz"
    inc.write_bytes(gzip.compress((ROOT / "captures" / "alpha-city-incidents.pcap").read_bytes()))
    return [str(day), str(inc)]


def run(files: list[str], monkeypatch: pytest.MonkeyPatch, side: bool) -> tuple[str, list[sidecar.HarvestSidecar]]:
    made: list[sidecar.HarvestSidecar] = []
    real = sidecar.HarvestSidecar

    def spy(*args: object) -> sidecar.HarvestSidecar:
        made.append(real(*args))  # type: ignore[arg-type]
        return made[-1]

    with monkeypatch.context() as m:
        m.setattr(sidecar, "HarvestSidecar", spy)
        if not side:
            m.setenv("SEGVERIFY_NO_SIDECAR", "1")
        return render_json(replay_module.replay(load_topology(str(TOPOLOGY)), files)), made


def test_side_process_gives_the_one_process_report(captures: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with_side, made = run(captures, monkeypatch, side=True)
    alone, none = run(captures, monkeypatch, side=False)
    assert with_side == alone and len(made) == 1 and not none
    assert not made[0].fell_back  # the side's harvest served the inspection (nothing read again)
    report = json.loads(with_side)
    assert {"PROTOCOL_MISMATCH", "MAIL_NOT_TEXT"} <= {f["code"] for f in report["findings"]}


def test_a_dead_side_process_leaves_the_inspection_to_this_one(captures: list[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real_flows = sidecar.HarvestSidecar.flows

    def kill_first(self: sidecar.HarvestSidecar, *args: object) -> None:
        self._proc.kill()  # dead before it gets the flow table
        self._proc.join()
        real_flows(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sidecar.HarvestSidecar, "flows", kill_first)
    with_side, made = run(captures, monkeypatch, side=True)
    monkeypatch.undo()
    alone, _ = run(captures, monkeypatch, side=False)
    assert made[0].fell_back and with_side == alone


def test_a_failing_side_process_is_quiet_and_changes_nothing(captures: list[str], monkeypatch: pytest.MonkeyPatch,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    from segverify.capture.collect import Harvest

    def broken(self: Harvest, *args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug on the side")

    with monkeypatch.context() as m:
        m.setattr(Harvest, "take", broken)  # the forked side inherits it; the main process only selects
        with_side, made = run(captures, monkeypatch, side=True)
    alone, _ = run(captures, monkeypatch, side=False)
    assert made[0].fell_back and with_side == alone
    assert "Traceback" not in capfd.readouterr().err


def test_the_side_maps_the_stretch_its_rows_span_and_refuses_a_capture_cut_short(tmp_path: Path) -> None:
    import os

    import numpy as np

    from segverify.capture.decode import BATCH_DTYPE

    data = bytes(range(256)) * 64  # 16 KiB
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    rows = np.zeros(2, dtype=BATCH_DTYPE)
    rows["pos"] = [5000, 9000]
    rows["caplen"] = [100, 300]
    rows["pay_off"] = [10, 0]
    rows["pay_len"] = [20, 300]
    fd = os.open(path, os.O_RDONLY)
    try:
        got = sidecar._read(fd, rows)
        assert got is not None
        batch, mapping = got
        assert batch.base % 4096 == 0 and batch.base <= 5000
        assert bytes(batch.payload(0)) == data[5010:5030] and bytes(batch.payload(1)) == data[9000:9300]
        del batch
        sidecar._release(mapping)
        assert mapping.closed
        rows["pos"][1] = len(data) - 100  # the file now ends before the last packet does
        assert sidecar._read(fd, rows) is None
    finally:
        os.close(fd)


def test_inspection_split_over_two_processes_gives_the_same_report(captures: list[str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_fork = sidecar._fork_helper

    def marking_fork() -> int:
        pid = real_fork()
        if pid == 0:
            (tmp_path / "helper-ran").touch()
        return pid

    monkeypatch.setattr(sidecar, "SPLIT_MIN_BYTES", 0)  # split even the bundled captures' few flows
    monkeypatch.setattr(sidecar, "_fork_helper", marking_fork)
    alone, _ = run(captures, monkeypatch, side=False)  # one process: no side, no split
    split, made = run(captures, monkeypatch, side=True)
    assert (tmp_path / "helper-ran").exists()
    assert split == alone and not made[0].fell_back


@pytest.mark.parametrize("trouble", ["no-fork", "helper-fails"])
def test_a_split_that_fails_is_inspected_whole_on_the_side(captures: list[str], monkeypatch: pytest.MonkeyPatch,
                                                           trouble: str) -> None:
    real_fork = sidecar._fork_helper

    def boom(*args: object) -> None:
        raise RuntimeError("the helper breaks")

    def troubled_fork() -> int:
        if trouble == "no-fork":
            raise OSError("no more processes")
        pid = real_fork()
        if pid == 0:
            monkeypatch.setattr(sidecar, "inspect_item", boom)  # in the helper only: it dies midway
        return pid

    monkeypatch.setattr(sidecar, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(sidecar, "_fork_helper", troubled_fork)
    alone, _ = run(captures, monkeypatch, side=False)
    split, made = run(captures, monkeypatch, side=True)
    assert split == alone and not made[0].fell_back  # the side did the helper's share itself


@pytest.mark.parametrize("rows", ["beside", "with-the-message"])
def test_blocks_read_into_shared_buffers_give_the_one_process_report(captures: list[str], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     rows: str) -> None:
    """The bundled day read in 1 KiB blocks: most come from the three shared buffers, lent to the side process
    and given back (the reader waits when all three are out), their candidates' rows beside them or, when their
    area is full, in the message; the report is the one-process report byte for byte."""
    from functools import partial

    from segverify.capture import reader
    from segverify.capture.blocks import SharedBlocks

    made_blocks: list[SharedBlocks] = []

    def blocks(*args: object, **kwargs: object) -> SharedBlocks:
        made_blocks.append(SharedBlocks(*args, **kwargs) if rows == "beside" else  # type: ignore[arg-type]
                           partial(SharedBlocks, rows=1)(*args, **kwargs))  # type: ignore[arg-type]
        return made_blocks[-1]

    sent: list[str] = []
    real_send = sidecar.HarvestSidecar._send

    def counting(self: sidecar.HarvestSidecar, msg: tuple) -> None:
        sent.append(msg[0] if msg[0] != "block" else "block-rows-beside" if isinstance(msg[-1], tuple) else
                    "block-rows-sent")
        real_send(self, msg)

    monkeypatch.setattr(reader, "CHUNK", 1024)
    monkeypatch.setattr(sidecar, "SharedBlocks", blocks)
    monkeypatch.setattr(sidecar.HarvestSidecar, "_send", counting)
    alone, _ = run(captures, monkeypatch, side=False)
    with_side, made = run(captures, monkeypatch, side=True)
    assert with_side == alone and not made[0].fell_back
    want = "block-rows-beside" if rows == "beside" else "block-rows-sent"
    assert sent.count(want) >= 3 and "take" in sent  # the gzip capture's candidates still travel with their bytes
    assert made_blocks[0]._issued == sum(1 for k in sent if k.startswith("block"))  # a ticket per message


def test_a_side_process_that_dies_frees_the_shared_buffers(captures: list[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while the reader has every buffer lent out, the side gives nothing back: the reader learns that
    it is gone (its end of the pipe closes) and reads on into any buffer; the inspection reads again."""
    from segverify.capture import reader

    real_add = sidecar.HarvestSidecar.add
    state = {"n": 0}

    def kill_at_third(self: sidecar.HarvestSidecar, batch: object) -> None:
        state["n"] += 1
        if state["n"] == 3:
            self._proc.kill()
            self._proc.join()
        real_add(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(reader, "CHUNK", 1024)
    monkeypatch.setattr(sidecar.HarvestSidecar, "add", kill_at_third)
    with_side, made = run(captures, monkeypatch, side=True)
    monkeypatch.undo()
    alone, _ = run(captures, monkeypatch, side=False)
    assert made[0].fell_back and with_side == alone
    assert made[0].blocks._gone
