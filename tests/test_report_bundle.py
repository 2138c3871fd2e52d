"""`segverify report`: the audit bundle's files, manifest, exit status, bad paths, both languages,
and that hostile capture content (markup in attachment names and mail bodies) is escaped in the
HTML, the SVG, the CSV and the SARIF."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_replay import MAIL_TOPOLOGY, cap, conversation, smtp

from segverify.cli import main
from segverify.report import i18n
from segverify.report.bundle import FILES, csv_cell

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ["alpha-city.yaml", "beta-prime-city.yaml", "vendor-city.yaml"]
HOSTILE = "<script>alert(\"x\")</script>'.exe"
FORMULA = "=HYPERLINK(\"http://evil.example/\",\"x\").xls"


def run_report(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["report", *args])
    return r.exit_code, r.stderr


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def beta_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("beta") / "bundle"
    code, err = run_report(str(ROOT / "topologies" / "beta-prime-city.yaml"), "-o", str(out))
    assert code == 1, err
    return out


def test_every_label_exists_in_both_languages():
    for key, value in i18n.LABELS.items():
        assert set(value) == {"ja", "en"} and all(value.values()), key
    for table in (i18n.FAMILY_LABELS, i18n.SEVERITY_LABELS, i18n.CHANNEL_KIND_LABELS, i18n.MODEL_LABELS):
        assert all(set(v) == {"ja", "en"} for v in table.values())
    from segverify.analysis.findings import CODES

    assert set(CODES) <= set(i18n.POLICY), "every finding code has its policy wording"
    for policy in i18n.POLICY.values():
        assert set(policy.clause) == set(policy.note) == {"ja", "en"}


def test_bundle_files_and_manifest(beta_bundle: Path):
    assert sorted(p.name for p in beta_bundle.iterdir()) == sorted(FILES)
    manifest = json.loads((beta_bundle / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest) == sorted(manifest)
    assert manifest["status"] == "violations" and manifest["tool"]["name"] == "segverify"
    assert manifest["command_line"][:2] == ["segverify", "report"]
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        name: sha(beta_bundle / name) for name in FILES if name != "manifest.json"}
    (topo,) = manifest["inputs"]
    assert topo["sha256"] == sha(Path(topo["path"]))


def test_manifest_hashes_every_referenced_config(tmp_path: Path):
    code, err = run_report(str(ROOT / "topologies" / "vendor-city.yaml"), "-o", str(tmp_path / "b"), "--lang", "en")
    assert code == 0, err
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    paths = [Path(i["path"]).name for i in manifest["inputs"]]
    assert paths == ["vendor-city.yaml", "fw-core.rules", "fw-inet.conf"]
    assert all(i["sha256"] == sha(Path(i["path"])) for i in manifest["inputs"])


def test_html_is_self_contained_and_shows_everything(beta_bundle: Path):
    html = (beta_bundle / "index.html").read_text(encoding="utf-8")
    assert "判定" in html and "不適合あり" in html
    for a in ("MN", "LG", "IN", "SZ"):
        for b in ("MN", "LG", "IN", "SZ"):
            assert f'id="cell-{a}-{b}"' in html
    assert 'id="cell-MN-LG" class="cell cell-violation' in html
    for code in ("FIREWALL_BYPASS", "MYNUMBER_ISOLATION", "EXCEPTION_TOO_BROAD", "LGWAN_INTERNET_UNSANITIZED"):
        assert code in html
    assert "他の領域との通信をできないようにした上で" in html  # the policy wording
    assert "監査人確認事項" in html and "多要素認証" in html
    for external in ("http://", "https://", "<link", "<script", "@import", "url(http"):
        assert external not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    svg = (beta_bundle / "topology.svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and "<svg" in svg and "#c62828" in svg  # the violations in red
    assert svg.split("\n", 1)[1] in html  # the same drawing inline


def test_csv_has_bom_and_one_row_per_finding(beta_bundle: Path):
    raw = (beta_bundle / "findings.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["command", "severity", "code"]
    assert len(rows) == 1 + 6 and all(len(r) == len(rows[0]) for r in rows)
    assert any("ファイアウォールを経由せずに" in cell for r in rows for cell in r)


def test_english_report(tmp_path: Path):
    code, _ = run_report(str(ROOT / "topologies" / "alpha-city.yaml"), "-o", str(tmp_path / "en"), "--lang", "en")
    html = (tmp_path / "en" / "index.html").read_text(encoding="utf-8")
    assert code == 0 and '<html lang="en">' in html and "Compliant" in html and "Items for the auditor" in html


def test_deterministic_apart_from_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    topo = str(ROOT / "topologies" / "beta-prime-city.yaml")
    run_report(topo, "-o", str(tmp_path / "a"))
    run_report(topo, "-o", str(tmp_path / "b"))
    for name in FILES:
        if name != "manifest.json":
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "2026-01-01T00:00:00Z" in (tmp_path / "a" / "index.html").read_text(encoding="utf-8")


def test_bad_paths_are_exit_2_on_one_line(tmp_path: Path):
    topo = tmp_path / "t.yaml"
    topo.write_text((ROOT / "topologies" / "alpha-city.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for args in ([str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o")],
                 [str(topo), "-o", str(a_file)],
                 [str(topo), str(tmp_path / "none.pcap"), "-o", str(tmp_path / "o2")]):
        code, err = run_report(*args)
        assert code == 2 and err.startswith("segverify: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err


def test_refuses_to_write_over_an_input(tmp_path: Path):
    topo = tmp_path / "index.html"  # a topology that happens to bear the name of a bundle file
    topo.write_text((ROOT / "topologies" / "alpha-city.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    before = topo.read_bytes()
    code, err = run_report(str(topo), "-o", str(tmp_path))
    assert code == 2 and "over an input" in err
    assert topo.read_bytes() == before


def test_incomplete_capture_gives_exit_3(tmp_path: Path):
    topo = tmp_path / "mail.yaml"
    topo.write_text(MAIL_TOPOLOGY, encoding="utf-8")
    turns = [("s", b"220 lgmail ESMTP\r\n"), ("c", b"EHLO mailsan\r\n"), ("s", b"250-lgmail\r\n250 STARTTLS\r\n"),
             ("c", b"STARTTLS\r\n"), ("s", b"220 go ahead\r\n"), ("c", bytes.fromhex("160301002a") + bytes(42))]
    pcap = cap(tmp_path, "tls.pcap", conversation("10.3.9.25", "10.2.0.25", 40102, 25, turns))
    code, err = run_report(str(topo), str(pcap), "-o", str(tmp_path / "b"))
    assert code == 3, err
    assert "判定不能（不完全）" in (tmp_path / "b" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("value", ["=1+2", "+1", "-1", "@SUM(A1)", "\t=x"])
def test_csv_cells_never_start_a_formula(value: str):
    assert csv_cell(value) == "'" + value
    assert csv_cell("普通の値") == "普通の値"


# --- hostile content -------------------------------------------------------------------------------


def hostile_mail(filename: str, boundary: str = "b1") -> bytes:
    return (
        b"From: gw@example.jp\r\nTo: staff@city.lg.jp\r\nSubject: <script>alert(1)</script>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"" + boundary.encode() + b"\"\r\n\r\n"
        b"--" + boundary.encode() + b"\r\nContent-Type: text/html\r\n\r\n"
        b"<html><body><script>alert('body')</script><img src=x onerror=alert(2)></body></html>\r\n"
        b"--" + boundary.encode() + b"\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=\"" + filename.replace('"', '\\"').encode() + b"\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--" + boundary.encode() + b"--\r\n"
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    topo = tmp / "mail.yaml"
    topo.write_text(MAIL_TOPOLOGY, encoding="utf-8")
    pkts = conversation("10.3.9.25", "10.2.0.25", 40101, 25, smtp(hostile_mail(HOSTILE)))
    pkts += conversation("10.3.9.25", "10.2.0.25", 40109, 25, smtp(hostile_mail(FORMULA, "b2")))
    pcap = cap(tmp, "tap'\"<b>x.pcap", pkts)
    out = tmp / "bundle"
    code, err = run_report(str(topo), str(pcap), "-o", str(out))
    assert code == 1, err
    return topo, pcap, out


def test_hostile_capture_is_escaped_in_html_and_svg(hostile):
    _, _, out = hostile
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<b>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;.exe" in html
    assert "tap&#39;&#34;&lt;b&gt;x.pcap" in html  # the capture's own file name, in the inputs table
    svg = (out / "topology.svg").read_text(encoding="utf-8")
    assert "<script" not in svg.lower()


def test_hostile_capture_in_csv(hostile):
    _, _, out = hostile
    rows = list(csv.reader(io.StringIO((out / "findings.csv").read_text(encoding="utf-8-sig"))))
    files = rows[0].index("files")
    cells = [r[files] for r in rows[1:] if r[2] == "MAIL_NOT_TEXT"]
    assert HOSTILE in cells  # intact, one cell
    assert "'" + FORMULA in cells  # neutralised
    assert all(len(r) == len(rows[0]) for r in rows)
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)


def test_hostile_capture_in_sarif(hostile):
    topo, pcap, _ = hostile
    r = CliRunner().invoke(main, ["replay", str(topo), str(pcap), "--format", "sarif"])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    strings: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                assert "<script" not in k
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            strings.append(node)

    walk(doc)
    assert any(HOSTILE in s for s in strings)
