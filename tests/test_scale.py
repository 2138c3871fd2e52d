"""`segverify replay` on a Dask cluster gives the one-process report, byte for byte.

The corpus is cut so that the hard cases happen: generated traffic split across three files (one
gzip-compressed) with the chunk size forced small so that parts end mid-flow, the bad day's capture
split between two files in the middle of an SMTP message with an attachment, and a capture with
garbage in its middle (damage offsets and resynchronisation).
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from segverify.analysis.replay import replay
from segverify.cli import main
from segverify.report.json_report import render_json
from segverify.scale.cluster import KILL_ENV, cluster_client, replay_cluster
from segverify.scale.parts import expand_inputs, split
from segverify.topology.loader import load_topology

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "topologies" / "alpha-city.yaml"
INCIDENTS = ROOT / "captures" / "alpha-city-incidents.pcap"
CHUNK = 40_000  # bytes: every generated file is cut into several parts, mid-flow


def records(path: Path) -> tuple[bytes, list[bytes]]:
    data = path.read_bytes()
    out, off = [], 24
    while off < len(data):
        n = struct.unpack_from("<I", data, off + 8)[0]
        out.append(data[off : off + 16 + n])
        off += 16 + n
    return data[:24], out


def write(path: Path, header: bytes, recs: list[bytes], compress: bool = False) -> str:
    blob = header + b"".join(recs)
    path.write_bytes(gzip.compress(blob, mtime=0) if compress else blob)
    return str(path)


def split_mail(out: Path) -> list[str]:
    """The bad day, its SMTP message (with an .xls attachment) cut into three segments, the capture cut
    into two files between the first and the second segment."""
    from scapy.all import IP, TCP, PcapReader, Raw, wrpcap

    pkts = list(PcapReader(str(INCIDENTS)))
    i = next(k for k, p in enumerate(pkts) if TCP in p and Raw in p and bytes(p[Raw].load).startswith(b"From:"))
    msg = bytes(pkts[i][Raw].load)
    cuts = [0, len(msg) // 3, 2 * len(msg) // 3, len(msg)]
    segs = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        p = pkts[i].copy()
        p[TCP].seq = pkts[i][TCP].seq + a
        p[Raw].load = msg[a:b]
        del p[IP].len, p[IP].chksum, p[TCP].chksum
        segs.append(p)
    first, second = out / "bad-1.pcap", out / "bad-2.pcap"
    wrpcap(str(first), pkts[:i] + segs[:1])
    wrpcap(str(second), segs[1:] + pkts[i + 1 :])
    return [str(first), str(second)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("scale")
    gen = d / "gen.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_capture.py"), str(gen), "--packets", "12000",
                    "--sessions", "150", "--dns", "40", "--seed", "7"], check=True, capture_output=True)
    header, recs = records(gen)
    n = len(recs)
    files = [write(d / "gen-1.pcap", header, recs[: n // 3]),
             write(d / "gen-2.pcap.gz", header, recs[n // 3 : 2 * n // 3], compress=True),
             write(d / "gen-3.pcap", header, recs[2 * n // 3 :])]  # fmt: skip
    files += split_mail(d)
    # garbage in the middle of a capture: damage, resynchronisation, and parts before it
    blob = bytearray(Path(files[2]).read_bytes())
    mid = len(blob) // 2
    blob[mid : mid + 4000] = b"\xff" * 4000
    (d / "damaged.pcap").write_bytes(bytes(blob))
    files.append(str(d / "damaged.pcap"))
    return files


@pytest.fixture(scope="module")
def client():
    with cluster_client(2) as c:
        yield c


def one_process(files: list[str]) -> str:
    return render_json(replay(load_topology(str(TOPOLOGY)), files))


def test_corpus_is_hard(corpus: list[str]) -> None:
    """The cuts do what they are for: several parts per file, the mail finding, damage."""
    assert len(split(0, corpus[0], CHUNK)) >= 3
    rep = json.loads(one_process(corpus))
    codes = {f["code"] for f in rep["findings"]}
    assert {"MAIL_NOT_TEXT", "CAPTURE_DAMAGED", "PROTOCOL_MISMATCH"} <= codes
    alone = json.loads(one_process(corpus[3:5]))
    assert any(f["code"] == "MAIL_NOT_TEXT" for f in alone["findings"])


@pytest.mark.parametrize("chunk", [CHUNK, 1 << 30])
def test_cluster_equals_one_process(corpus: list[str], client, chunk: int) -> None:
    topo = load_topology(str(TOPOLOGY))
    assert render_json(replay_cluster(topo, corpus, client, chunk=chunk, batch_size=500)) == one_process(corpus)


def test_spanning_parts(corpus: list[str]) -> None:
    """Parts cover a file exactly, each from a verified record boundary."""
    header, recs = records(Path(corpus[0]))
    starts = set()
    off = 24
    for r in recs:
        starts.add(off)
        off += len(r)
    parts = split(0, corpus[0], CHUNK)
    assert parts[0].span.start == 0 and parts[-1].span.stop is None
    for a, b in zip(parts[:-1], parts[1:], strict=True):
        assert a.span.stop == b.span.start and b.span.start in starts


def test_killed_worker(corpus: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two read tasks kill their worker mid-part the first time they run: the parts are recomputed."""
    marks = tmp_path / "marks"
    marks.mkdir()
    for j in range(100):
        if j != 1:
            (marks / f"0-{j}").touch()  # only parts 0-1 and 1-0 kill their worker, once each
    monkeypatch.setenv(KILL_ENV, str(marks))
    topo = load_topology(str(TOPOLOGY))
    files = corpus[:2]
    with cluster_client(2) as c:
        got = render_json(replay_cluster(topo, files, c, chunk=CHUNK, batch_size=500))
    assert (marks / "0-1").exists() and (marks / "1-0").exists()  # the workers really died
    assert got == one_process(files)


def test_failed_part_is_incomplete(corpus: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   client) -> None:  # fmt: skip
    """A part that fails on every try: the result is incomplete and names the file."""
    marks = tmp_path / "marks"
    marks.mkdir()
    (marks / "fail-1-0").touch()
    for name in ("0-0", "1-0"):
        (marks / name).touch()  # no kills here
    monkeypatch.setenv(KILL_ENV, str(marks))
    topo = load_topology(str(TOPOLOGY))
    with cluster_client(1) as c:
        res = replay_cluster(topo, corpus[3:5], c)
    assert res.status != "compliant"
    assert any(corpus[4] in m and "could not be read" in m for m in res.incomplete)


def test_cli_scheduler_globs_and_directories(corpus: list[str], client, tmp_path: Path) -> None:
    d = tmp_path / "caps"
    (d / "sub").mkdir(parents=True)
    for i, f in enumerate(corpus[3:5]):
        shutil.copy(f, d / "sub" / f"m{i}.pcap")
    (d / "notes.txt").write_text("not a capture")
    want = one_process(expand_inputs([str(d)]))
    addr = client.scheduler.address
    r = CliRunner().invoke(main, ["replay", str(TOPOLOGY), str(d), "--format", "json", "--scheduler", addr])
    assert r.exit_code == 1, r.output
    assert r.stdout == want
    r = CliRunner().invoke(main, ["replay", str(TOPOLOGY), str(d / "sub" / "m*.pcap"), "--format", "json"])
    assert r.stdout == want
    r = CliRunner().invoke(main, ["replay", str(TOPOLOGY), str(d / "nothing*.pcap")])
    assert r.exit_code == 2 and "nothing*.pcap" in r.output


def test_not_a_capture_is_bad_input_on_the_cluster(tmp_path: Path, client) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_text("hello, not a capture")
    r1 = CliRunner().invoke(main, ["replay", str(TOPOLOGY), str(bad)])
    r2 = CliRunner().invoke(main, ["replay", str(TOPOLOGY), str(bad), "--scheduler", client.scheduler.address])
    assert r1.exit_code == r2.exit_code == 2
    assert r1.output == r2.output and "not a pcap" in r2.output
