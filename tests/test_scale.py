"""`segverify replay` on a Dask cluster gives the one-process report, byte for byte.

The corpus is cut so that the hard cases happen: generated traffic split across three files (one
gzip-compressed) with the chunk size forced small so that parts end mid-flow, the bad day's capture
split between two files in the middle of an SMTP message with an attachment, and a capture with
garbage in its middle (damage offsets and resynchronisation). The same for pcapng: a tap file of two
sections (byte orders differ) with interfaces of several link types and timestamp resolutions, one defined
mid-section after packets, simple packet blocks and unknown blocks, the SMTP message's segments far apart
(in different parts, and different sections); and a damaged pcapng.
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
from segverify.capture.reader import CaptureReader, Damage, pcapng_boundaries
from segverify.cli import main
from segverify.inputs import expand_inputs
from segverify.report.json_report import render_json
from segverify.report.rows import RenderedRows
from segverify.report.text_report import render_text
from segverify.scale.cluster import KILL_ENV, cluster_client, replay_cluster
from segverify.scale.parts import split
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


def mail_packets() -> tuple[list, int]:
    """The bad day's packets, its SMTP message (with an .xls attachment) cut into three segments that take
    the place of the message's packet at ``i``..``i+2``."""
    from scapy.all import IP, TCP, PcapReader, Raw

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
    return pkts[:i] + segs + pkts[i + 1 :], i


def split_mail(out: Path) -> list[str]:
    """The bad day, the capture cut into two files between the first and the second segment of the message."""
    from scapy.all import wrpcap

    pkts, i = mail_packets()
    first, second = out / "bad-1.pcap", out / "bad-2.pcap"
    wrpcap(str(first), pkts[: i + 1])
    wrpcap(str(second), pkts[i + 1 :])
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
    result = replay_cluster(topo, corpus, client, chunk=chunk, batch_size=500)
    assert render_json(result) == one_process(corpus)
    # the workers rendered most flow rows as JSON text: every other report reads the same rows
    assert isinstance(result.extra["flows"], RenderedRows)
    alone = replay(load_topology(str(TOPOLOGY)), corpus)
    assert render_text(result, lang="ja") == render_text(alone, lang="ja")
    assert list(result.extra["flows"]) == list(alone.extra["flows"])
    # every way of inspecting a part is used: from the harvest with spanning tuples read back by position
    # (plain pcaps), and read again (the gzip file holds packets of flows that span files)
    assert result.parts["harvest+positions"] > 0 and result.parts["reread"] > 0


def test_fragments_across_files_are_rebuilt_as_one_process_does(tmp_path: Path, client) -> None:
    """The SMTP segment with the attachment's filename travels in IP fragments that two files share: no
    part can rebuild it alone, the client does, from both parts' fragments in order."""
    from scapy.all import IP, Ether, fragment, wrpcap

    pkts, i = mail_packets()
    seg = pkts[i + 1]
    frags = [Ether(src=seg[Ether].src, dst=seg[Ether].dst) / f for f in fragment(seg[IP], fragsize=48)]
    for f in frags:
        f.time = seg.time
    assert len(frags) >= 3
    first, second = tmp_path / "frag-1.pcap", tmp_path / "frag-2.pcap"
    wrpcap(str(first), pkts[: i + 1] + frags[:2])
    wrpcap(str(second), frags[2:] + pkts[i + 2 :])
    files = [str(first), str(second)]
    alone = json.loads(one_process(files))
    assert any(f["code"] == "MAIL_NOT_TEXT" for f in alone["findings"])
    assert alone["stats"]["unattributed_fragments"] == 0
    assert not any("fragment" in r for r in alone["stats"].get("incomplete", []))
    topo = load_topology(str(TOPOLOGY))
    assert render_json(replay_cluster(topo, files, client, chunk=CHUNK, batch_size=500)) == one_process(files)


def test_parts_are_inspected_from_their_harvest(tmp_path: Path, client) -> None:
    """Each part is inspected from what its read task harvested (no second read of the part), with the
    one-process report: whole files; files cut mid-flow, whose spanning tuples' packets are read back from
    their offsets; and gzip files (not cut), whose parts are inspected from their harvests too."""
    files = []
    for seed in (11, 12, 13):
        out = tmp_path / f"day-{seed}.pcap"
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_capture.py"), str(out), "--packets", "6000",
                        "--sessions", "80", "--dns", "20", "--seed", str(seed)], check=True, capture_output=True)
        files.append(str(out))
    files += split_mail(tmp_path)[:1]  # the message's start, nothing after it: no other file shares its flow
    expected = one_process(files)
    codes = {f["code"] for f in json.loads(expected)["findings"]}
    assert {"MAIL_NOT_TEXT", "PROTOCOL_MISMATCH"} <= codes  # content inspection found something to report
    topo = load_topology(str(TOPOLOGY))
    whole = replay_cluster(topo, files, client, batch_size=500)
    assert render_json(whole) == expected
    assert whole.parts == {"read": len(files), "inspected": len(files), "harvest": len(files)}
    # cut mid-flow: the spanning tuples' packets are read back by position, in a plain pcap
    cut = replay_cluster(topo, files, client, chunk=CHUNK, batch_size=500)
    assert render_json(cut) == expected
    assert cut.parts["read"] > len(files) and cut.parts.get("reread", 0) == 0
    assert cut.parts.get("harvest+positions", 0) >= 2
    # the same in gzip files: no offsets to read back from, parts holding spanning tuples are read again
    zipped = []
    for f in files[:2]:
        zipped.append(write(Path(f + ".gz"), *records(Path(f)), compress=True))
    mixed = [*zipped, *files[2:]]
    cut = replay_cluster(topo, mixed, client, chunk=CHUNK, batch_size=500)
    assert render_json(cut) == one_process(mixed)


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


# ------------------------------------------------------------------------------------------------ pcapng

ETH, RAW, SLL = 1, 101, 113


def ng_block(btype: int, body: bytes, e: str) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack(e + "II", btype, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))


def ng_shb(e: str) -> bytes:
    return ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def ng_idb(e: str, linktype: int, tsresol: int | None = None, tsoffset: int = 0) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += struct.pack(e + "HHB3x", 9, 1, tsresol)
    if tsoffset:
        opts += struct.pack(e + "HHq", 14, 8, tsoffset)
    opts += struct.pack(e + "HH", 0, 0) if opts else b""
    return ng_block(1, struct.pack(e + "HHI", linktype, 0, 262144) + opts, e)


class NgSection:
    """Packets written into one pcapng section: interfaces ``(linktype, tsresol, tsoffset)`` by index."""

    def __init__(self, e: str) -> None:
        self.e, self.ifs, self.blocks = e, [], [ng_shb(e)]

    def interface(self, linktype: int, tsresol: int | None = None, tsoffset: int = 0) -> int:
        self.ifs.append((linktype, 6 if tsresol is None else tsresol, tsoffset))
        self.blocks.append(ng_idb(self.e, linktype, tsresol, tsoffset))
        return len(self.ifs) - 1

    def packet(self, ifid: int, ts_us: int, frame: bytes, simple: bool = False) -> None:
        linktype, res, off = self.ifs[ifid]
        if linktype != ETH:
            if frame[12:14] not in (b"\x08\x00", b"\x86\xdd"):
                raise ValueError("only untagged IP frames change link type")
            ip = frame[14:]
            frame = ip if linktype == RAW else struct.pack(">HHH8s", 0, 1, 6, frame[6:12]) + frame[12:14] + ip
        if simple:
            self.blocks.append(ng_block(3, struct.pack(self.e + "I", len(frame)) + frame, self.e))
            return
        us = ts_us - off * 1_000_000
        ticks = (us << 20) // 1_000_000 if res & 0x80 else us * 10**res // 10**6
        hdr = struct.pack(self.e + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
        self.blocks.append(ng_block(6, hdr + frame, self.e))

    def other(self) -> None:
        """An interface statistics block and a block of unknown type (skipped whole by the reader)."""
        self.blocks.append(ng_block(5, struct.pack(self.e + "III", 0, 0, 0), self.e))
        self.blocks.append(ng_block(0x0BAD, b"custom", self.e))


def pcap_frames(recs: list[bytes]) -> list[tuple[int, bytes]]:
    out = []
    for r in recs:
        sec, us = struct.unpack_from("<II", r)
        out.append((sec * 1_000_000 + us, r[16:]))
    return out


def is_ip(frame: bytes) -> bool:
    return frame[12:14] in (b"\x08\x00", b"\x86\xdd")


@pytest.fixture(scope="module")
def ng_corpus(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> list[str]:
    """A tap's pcapng (two sections, five interfaces, the SMTP message's segments in different parts and
    sections) and a damaged one."""
    d = tmp_path_factory.mktemp("scale_ng")
    _h, recs = records(Path(corpus[0]))
    gen = pcap_frames(recs)
    mail, i = mail_packets()
    mail = [(int(round(float(p.time) * 1e6)), bytes(p)) for p in mail]
    a = NgSection("<")
    eth, raw = a.interface(ETH), a.interface(RAW, tsresol=9)
    for k, (ts, f) in enumerate(gen[:1500]):
        a.packet(raw if k % 3 == 1 and is_ip(f) else eth, ts, f)
    for ts, f in mail[: i + 1]:  # the bad day up to the message's first segment
        a.packet(eth, ts, f)
    for ts, f in gen[1500:2200]:
        a.packet(eth, ts, f)
    sll = a.interface(SLL, tsresol=0x80 | 20)  # mid-section, after packets: binary resolution
    a.packet(sll, *mail[i + 1])  # the second segment
    a.other()
    for k, (ts, f) in enumerate(gen[2200:3000]):
        a.packet(sll if k % 2 and is_ip(f) else eth, ts, f)
    b = NgSection(">")  # a new section, the other byte order: interface numbering restarts
    raw2 = b.interface(RAW, tsresol=3, tsoffset=1_700_000_000)
    eth2 = b.interface(ETH, tsresol=9)
    for ts, f in mail[i + 2 :]:  # the third segment and the rest of the bad day
        b.packet(raw2 if is_ip(f) else eth2, ts, f)
    for k, (ts, f) in enumerate(gen[3000:]):
        b.packet(raw2 if k % 4 == 0 and is_ip(f) else eth2, ts, f, simple=k % 97 == 0 and is_ip(f))
    tap = d / "tap.pcapng"
    tap.write_bytes(b"".join(a.blocks + b.blocks))
    c = NgSection("<")
    eth3 = c.interface(ETH)
    for ts, f in gen[:1200]:
        c.packet(eth3, ts, f)
    blob = bytearray(b"".join(c.blocks))
    mid = len(blob) // 2
    blob[mid : mid + 3000] = b"\xff" * 3000
    (d / "damaged.pcapng").write_bytes(bytes(blob[:-7]))  # and a truncated last block
    return [str(tap), str(d / "damaged.pcapng")]


def whole_read(path: str) -> tuple[list[tuple], list[Damage]]:
    damage: list[Damage] = []
    got = [tuple(b.pkts[k].tolist()) for b in CaptureReader(path, damage).batches(333) for k in range(len(b))]
    return got, damage


def test_pcapng_corpus_is_hard(ng_corpus: list[str]) -> None:
    """Several parts per file, parts starting in both sections and after the mid-section interface, the
    message's segments in three different parts, damage in the second file only after its parts."""
    parts = split(0, ng_corpus[0], CHUNK)
    assert len(parts) >= 10
    secs = [p.span.section for p in parts[1:]]
    assert {(s.endian, s.index, s.if_base, len(s.interfaces)) for s in secs} >= {("<", 0, 0, 2), ("<", 0, 0, 3),
                                                                                   (">", 1, 3, 2)}
    linktypes = {tuple(i.linktype for i in s.interfaces) for s in secs}
    assert linktypes == {(ETH, RAW), (ETH, RAW, SLL), (RAW, ETH)}
    data = Path(ng_corpus[0]).read_bytes()
    mail, i = mail_packets()
    from scapy.all import Raw

    segs = [data.find(bytes(p[Raw].load)) for p in mail[i : i + 3]]
    assert all(s > 0 for s in segs)
    where = [max(j for j, p in enumerate(parts) if p.start <= s) for s in segs]
    assert len(set(where)) == 3
    rep = json.loads(one_process(ng_corpus))
    codes = {f["code"] for f in rep["findings"]}
    assert {"MAIL_NOT_TEXT", "CAPTURE_DAMAGED", "PROTOCOL_MISMATCH"} <= codes
    dparts = split(1, ng_corpus[1], CHUNK)
    _got, damage = whole_read(ng_corpus[1])
    assert len(dparts) >= 3 and damage and dparts[-1].start < damage[0].offset


@pytest.mark.parametrize("chunk", [CHUNK, 3000])
def test_pcapng_parts_read_like_the_whole_file(ng_corpus: list[str], chunk: int) -> None:
    """Every packet field (timestamps, interfaces, link types, offsets) and every damage, part by part."""
    for path in ng_corpus:
        want = whole_read(path)
        got: list[tuple] = []
        damage: list[Damage] = []
        parts = split(0, path, chunk)
        assert parts[0].start == 0 and parts[-1].span.stop is None
        for a, b in zip(parts[:-1], parts[1:], strict=True):
            assert a.span.stop == b.span.start
        for p in parts:
            r = CaptureReader(path, damage, p.span)
            got += [tuple(b.pkts[k].tolist()) for b in r.batches(333) for k in range(len(b))]
        assert (got, damage) == want


def test_pcapng_cluster_equals_one_process(ng_corpus: list[str], corpus: list[str], client) -> None:
    topo = load_topology(str(TOPOLOGY))
    files = ng_corpus + corpus[3:5]
    assert render_json(replay_cluster(topo, files, client, chunk=CHUNK, batch_size=500)) == one_process(files)


def test_pcapng_walk_stops_at_damage(tmp_path: Path) -> None:
    """A hostile block length ends the walk (no allocation, no boundary after it); only block starts."""
    s = NgSection("<")
    eth = s.interface(ETH)
    frame = bytes(12) + b"\x08\x00" + bytes(40)
    for k in range(200):
        s.packet(eth, k, frame)
    good = b"".join(s.blocks)
    starts, off = set(), 0
    while off < len(good):
        starts.add(off)
        off += struct.unpack_from("<I", good, off + 4)[0]
    for bad in (struct.pack("<II", 6, 0xFFFFFFF0), struct.pack("<II", 6, 1 << 25), struct.pack("<II", 6, 30)):
        path = tmp_path / "h.pcapng"
        path.write_bytes(good + bad + good[len(s.blocks[0]) + len(s.blocks[1]) :])
        cuts = pcapng_boundaries(str(path), 500)
        assert cuts and all(c in starts for c, _ in cuts) and max(c for c, _ in cuts) < len(good)
    assert [c for c, _ in pcapng_boundaries(str(path), 1 << 30)] == []


def test_ftp_control_and_data_in_different_files(tmp_path: Path, client) -> None:
    """An FTP control connection in one file and its data connections in others: on the cluster, each file is
    judged by its own task, and the data connections' verdicts and rows come from the control connection
    (RELATED) only when the client puts the inspections together. The report is still the one-process one."""
    from test_replay import FTP_TOPOLOGY, PASV, PE, cap, conversation, ftp_control, ftp_data

    topo_path = tmp_path / "ftp.yaml"
    topo_path.write_text(FTP_TOPOLOGY, encoding="utf-8")
    control = conversation("10.2.0.21", "10.3.9.5", 40300, 21, ftp_control([
        PASV, (b"RETR report.pdf\r\n", b"150 opening\r\n226 done\r\n"),
        (b"PORT 10,2,0,21,157,200\r\n", b"200 PORT ok\r\n"), (b"STOR upload.exe\r\n", b"150 go\r\n226 ok\r\n")]))
    down = ftp_data("10.2.0.21", "10.3.9.5", 40301, 195 * 256 + 80, "s", PE)
    up = ftp_data("10.3.9.5", "10.2.0.21", 20, 157 * 256 + 200, "s", b"fine\n")
    files = [str(cap(tmp_path, "a-control.pcap", control)), str(cap(tmp_path, "b-down.pcap", down)),
             str(cap(tmp_path, "c-up.pcap", up))]
    topo = load_topology(str(topo_path))
    result = replay_cluster(topo, files, client, batch_size=500)
    alone = replay(topo, files)
    assert render_json(result) == render_json(alone)
    report = json.loads(render_json(result))
    assert [f["code"] for f in report["findings"]] == ["FILE_NOT_SANITIZED"]
    # both data connections are the channel's, as the control connection made them
    assert {f["verdict"] for f in report["flows"]} == {"channel:files"}
    assert result.parts["read"] == 3
