"""`segverify replay` verdicts on generated captures, one per finding code, and on real ones."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.all import IP, TCP, UDP, Ether, wrpcap

from segverify.cli import main

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "captures" / "zeek"

TOPOLOGY = """\
version: 1
name: replay test city
segments:
  - {name: mn, kind: mynumber, cidrs: [10.1.0.0/16]}
  - {name: lg, kind: lgwan, cidrs: [10.2.0.0/16]}
  - {name: inet, kind: internet, cidrs: [10.3.0.0/16]}
  - {name: lgwan-wan, kind: lgwan-wan, cidrs: [172.16.0.0/12]}
hosts:
  - {name: vb1, addresses: [10.3.0.10]}
  - {name: mn-gw, addresses: [10.1.0.5]}
  - {name: chukan, addresses: [172.16.1.1]}
firewalls:
  - name: fw1
    interfaces:
      - {name: p1, segment: mn}
      - {name: p2, segment: lg}
      - {name: p3, segment: inet}
      - {name: p4, segment: lgwan-wan}
    rules:
      - {id: r10, action: allow, from: p2, to: p3, src: lg, dst: vb1, proto: tcp, dport: 3389}
      - {id: r20, action: allow, from: p1, to: p4, src: mn-gw, dst: chukan, proto: tcp, dport: 443}
      - {id: r30, action: allow, from: p2, to: p4}
channels:
  - {name: vb, kind: screen-transfer, protocol: rdp, clients: [lg], servers: [vb1], ports: [tcp/3389]}
exceptions:
  - {name: chukan-link, from: [mn-gw], to: [chukan], ports: [tcp/443], reason: 中間サーバー連携}
"""


def session(src: str, dst: str, sport: int, dport: int, data: bytes = b"hello", t0: float = 1_700_000_000.0):
    """A complete TCP connection: handshake, one request, one answer, FIN."""
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c, s = 1000, 5000
    pkts = [
        e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=c),
        e / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="SA", seq=s, ack=c + 1),
        e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="A", seq=c + 1, ack=s + 1),
        e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA", seq=c + 1, ack=s + 1) / data,
        e / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="PA", seq=s + 1, ack=c + 1 + len(data))
        / b"ok",
        e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="FA", seq=c + 1 + len(data), ack=s + 3),
    ]
    for i, p in enumerate(pkts):
        p.time = t0 + i * 0.01
    return pkts


@pytest.fixture
def city(tmp_path: Path) -> Path:
    p = tmp_path / "city.yaml"
    p.write_text(TOPOLOGY, encoding="utf-8")
    return p


def replay(topology: Path, *captures: Path | str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, ["replay", str(topology), *map(str, captures), "--format", "json"])
    assert r.exit_code in (0, 1, 3), r.output + r.stderr
    return r.exit_code, json.loads(r.stdout)


def cap(tmp_path: Path, name: str, pkts) -> Path:
    path = tmp_path / name
    wrpcap(str(path), pkts)
    return path


def verdicts(report: dict) -> dict[tuple[str, str, int], str]:
    return {(f["src"], f["dst"], f["dport"]): f["verdict"] for f in report["flows"]}


def test_mynumber_flow_is_critical(city, tmp_path):
    code, report = replay(city, cap(tmp_path, "mn.pcap", session("10.1.0.7", "10.2.0.21", 50000, 445)))
    assert code == 1
    (f,) = [f for f in report["findings"] if f["code"] == "MYNUMBER_FLOW"]
    assert f["severity"] == "critical" and (f["src_segment"], f["dst_segment"]) == ("mn", "lg")
    assert f["flow"] == {"src": "10.1.0.7", "dst": "10.2.0.21", "proto": "tcp", "sport": 50000, "dport": 445,
                         "packets": 6, "bytes": f["flow"]["bytes"], "established": True, "initiator_known": True}
    # the rules of fw1 do not allow it either: the running firewall differs from the paper one
    assert any(x["code"] == "DENIED_BUT_OBSERVED" for x in report["findings"])


def test_exception_covers_exactly_its_port(city, tmp_path):
    pkts = session("10.1.0.5", "172.16.1.1", 40000, 443) + session("10.1.0.5", "172.16.1.1", 40001, 8443)
    code, report = replay(city, cap(tmp_path, "ex.pcap", pkts))
    v = verdicts(report)
    assert v[("10.1.0.5", "172.16.1.1", 443)] == "exception:chukan-link"
    assert v[("10.1.0.5", "172.16.1.1", 8443)] == "MYNUMBER_FLOW"
    assert code == 1


def test_unsanitized_and_denied(city, tmp_path):
    code, report = replay(city, cap(tmp_path, "smb.pcap", session("10.2.0.21", "10.3.0.99", 50001, 445)))
    codes = sorted(f["code"] for f in report["findings"])
    assert codes == ["DENIED_BUT_OBSERVED", "UNSANITIZED_FLOW"]
    assert report["flows"][0]["denied_by_rules"] is True


RDP_REQUEST = bytes.fromhex("030000130ee000000000000100080003000000")  # TPKT + X.224 CR + RDP_NEG_REQ
RDP_CONFIRM = bytes.fromhex("030000130ed000001234000200080002000000")  # X.224 CC selecting HYBRID


def rdp_session(src: str, dst: str, sport: int):
    pkts = session(src, dst, sport, 3389, RDP_REQUEST)
    pkts[4][TCP].remove_payload()
    pkts[4] = pkts[4] / RDP_CONFIRM
    return pkts


def test_real_screen_transfer_on_its_channel_is_compliant(city, tmp_path):
    code, report = replay(city, cap(tmp_path, "rdp.pcap", rdp_session("10.2.0.21", "10.3.0.10", 50002)))
    assert verdicts(report) == {("10.2.0.21", "10.3.0.10", 3389): "channel:vb"}
    assert (code, report["status"], report["findings"]) == (0, "compliant", [])
    assert any(n.startswith("content: rdp") for n in report["flows"][0]["notes"])


def test_anything_else_on_a_screen_transfer_channel_is_a_mismatch(city, tmp_path):
    tunnel = session("10.2.0.21", "10.3.0.10", 50010, 3389, b"SSH-2.0-OpenSSH_9.6\r\n")
    code, report = replay(city, cap(tmp_path, "ssh.pcap", tunnel))
    (f,) = report["findings"]
    assert (f["code"], f["severity"], f["channel"], f["recognised"]) == ("PROTOCOL_MISMATCH", "high", "vb", "ssh")
    assert f["flow"]["dport"] == 3389 and code == 1
    junk = session("10.2.0.21", "10.3.0.10", 50011, 3389, b"hello")
    code, report = replay(city, cap(tmp_path, "junk.pcap", junk))
    assert [x["code"] for x in report["findings"]] == ["PROTOCOL_MISMATCH"]  # unknown is not proof


def test_intra_family_traffic_is_compliant(city, tmp_path):
    code, report = replay(city, cap(tmp_path, "lg.pcap", session("10.2.0.21", "172.16.5.5", 50003, 25)))
    assert (code, report["status"], report["findings"]) == (0, "compliant", [])
    assert report["flows"][0]["verdict"] == "intra-family"


def test_unknown_address(city, tmp_path):
    code, report = replay(city, cap(tmp_path, "u.pcap", session("192.0.2.44", "10.2.0.21", 50004, 80)))
    (f,) = report["findings"]
    assert f["code"] == "UNKNOWN_ADDRESS" and f["address"] == "192.0.2.44" and code == 1


def test_udp_without_syn_is_provisional(city, tmp_path):
    e = Ether()
    pkts = [e / IP(src="10.2.0.21", dst="10.3.0.53") / UDP(sport=5353, dport=53) / b"q",
            e / IP(src="10.3.0.53", dst="10.2.0.21") / UDP(sport=53, dport=5353) / b"a"]
    code, report = replay(city, cap(tmp_path, "dns.pcap", pkts))
    (flow,) = report["flows"]
    assert flow["initiator_known"] is False and flow["verdict"] == "UNSANITIZED_FLOW"
    (f,) = [f for f in report["findings"] if f["code"] == "UNSANITIZED_FLOW"]
    assert "provisional" in f["message"]


def test_damaged_capture_is_incomplete(city, tmp_path):
    good = cap(tmp_path, "lg.pcap", session("10.2.0.21", "172.16.5.5", 50005, 25))
    data = good.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-7])
    code, report = replay(city, cut)
    assert code == 3 and report["status"] == "incomplete"
    (f,) = report["findings"]
    assert f["code"] == "CAPTURE_DAMAGED" and f["regions"][0]["offset"] > 24
    assert report["stats"]["incomplete"]


def test_violation_outranks_damage(city, tmp_path):
    bad = cap(tmp_path, "mn.pcap", session("10.1.0.7", "10.2.0.21", 50006, 445))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(bad.read_bytes()[:-5])
    code, report = replay(city, cut)
    assert code == 1 and report["status"] == "violations"


def test_several_captures_and_gzip_are_one_observation(city, tmp_path):
    pkts = session("10.2.0.21", "10.3.0.99", 50007, 445)
    first = cap(tmp_path, "a.pcap", pkts[:3])
    second_plain = cap(tmp_path, "b.pcap", pkts[3:])
    second = tmp_path / "b.pcap.gz"
    second.write_bytes(gzip.compress(second_plain.read_bytes()))
    code, report = replay(city, first, second)
    (flow,) = report["flows"]
    assert flow["packets"] == 6 and flow["initiator_known"] and flow["established"]
    assert [i["path"] for i in report["inputs"]][1:] == [str(first), str(second)]


def test_not_a_capture_is_bad_input(city, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a capture\n")
    r = CliRunner().invoke(main, ["replay", str(city), str(junk)])
    assert r.exit_code == 2 and str(junk) in r.stderr and "Traceback" not in r.stderr
    r = CliRunner().invoke(main, ["replay", str(city), str(tmp_path / "missing.pcap")])
    assert r.exit_code == 2 and "missing.pcap" in r.stderr


def test_report_is_deterministic(city, tmp_path):
    pkts = session("10.1.0.7", "10.2.0.21", 50008, 445) + rdp_session("10.2.0.1", "10.3.0.10", 1)
    c = cap(tmp_path, "x.pcap", pkts)
    a = CliRunner().invoke(main, ["replay", str(city), str(c), "--format", "json"]).stdout
    b = CliRunner().invoke(main, ["replay", str(city), str(c), "--format", "json"]).stdout
    assert a == b


def test_a_last_run_leaves_the_collector_off_and_its_objects_to_the_process_end(city, tmp_path):
    """The command line's run (``last``): the same report; the collector is not switched back on after reading
    (the process ends with the report) and the result holds the flows; any other run restores the collector."""
    import gc

    from segverify.analysis.replay import replay
    from segverify.report.json_report import render_json
    from segverify.topology.loader import load_topology

    pkts = session("10.1.0.7", "10.2.0.21", 50008, 445) + rdp_session("10.2.0.1", "10.3.0.10", 1)
    c = str(cap(tmp_path, "x.pcap", pkts))
    topo = load_topology(str(city))
    assert gc.isenabled()
    try:
        usual = replay(topo, [c])
        assert gc.isenabled() and usual.retain is None
        last = replay(topo, [c], last=True)
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        flows, verdicts = last.retain[:2]
        assert len(flows) == len(verdicts) == usual.stats["flows"] > 0
        assert render_json(last) == render_json(usual)
    finally:
        gc.unfreeze()
        gc.enable()


def test_text_report_shows_the_flow_table(city, tmp_path):
    c = cap(tmp_path, "x.pcap", session("10.1.0.7", "10.2.0.21", 50009, 445))
    r = CliRunner().invoke(main, ["replay", str(city), str(c), "--lang", "ja"])
    assert r.exit_code == 1
    assert "通信フロー" in r.stdout and "MYNUMBER_FLOW" in r.stdout and "10.1.0.7:50009" in r.stdout


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present beside the repository")
def test_real_smtp_capture(tmp_path):
    topo = tmp_path / "smtp.yaml"
    topo.write_text("""\
version: 1
segments:
  - {name: lg, kind: lgwan, cidrs: [10.10.1.0/24]}
  - {name: dmz, kind: internet, cidrs: [192.168.0.0/16]}
  - {name: public, kind: public, cidrs: [0.0.0.0/0]}
""", encoding="utf-8")
    code, report = replay(topo, CORPUS / "smtp.pcap")
    v = verdicts(report)
    assert v[("10.10.1.4", "74.53.140.153", 25)] == "UNSANITIZED_FLOW"
    assert report["stats"]["flows"] == len(report["flows"]) == 9  # tshark's 8 TCP/UDP conversations + 1 ICMP flow
    assert code == 1


R30 = "      - {id: r30, action: allow, from: p2, to: p4}\n"
MAIL_TOPOLOGY = TOPOLOGY.replace(
    "  - {name: vb1, addresses: [10.3.0.10]}\n",
    "  - {name: vb1, addresses: [10.3.0.10]}\n  - {name: mailsan, addresses: [10.3.9.25, \"fd00:3::25\"]}\n"
    "  - {name: lgmail, addresses: [10.2.0.25, \"fd00:2::25\"]}\n",
).replace("[10.2.0.0/16]", "[10.2.0.0/16, \"fd00:2::/48\"]").replace(
    "[10.3.0.0/16]", "[10.3.0.0/16, \"fd00:3::/48\"]").replace("channels:\n", """channels:
  - name: mail
    kind: mail-text
    sanitizer: mailsan
    inbound: {peers: [inet], ports: [tcp/25]}
    outbound: {peers: [lg], ports: [tcp/25]}
""").replace(R30, R30 + """\
      - {id: r40, action: allow, from: p3, to: p2, src: mailsan, dst: lgmail, proto: tcp, dport: 25}
""")


def conversation(src: str, dst: str, sport: int, dport: int, turns: list[tuple[str, bytes]]):
    """A TCP connection carrying ``turns`` (("c", bytes) from the client, ("s", bytes) from the server)."""
    e = Ether()
    c, s = 100, 9000
    pkts = [e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=c),
            e / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="SA", seq=s, ack=c + 1)]
    c, s = c + 1, s + 1
    for who, data in turns:
        if who == "c":
            pkts.append(e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA", seq=c, ack=s) / data)
            c += len(data)
        else:
            pkts.append(e / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="PA", seq=s, ack=c) / data)
            s += len(data)
    pkts.append(e / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="FA", seq=c, ack=s))
    return pkts


def smtp(message: bytes) -> list[tuple[str, bytes]]:
    return [("s", b"220 lgmail ESMTP\r\n"), ("c", b"EHLO mailsan\r\n"), ("s", b"250 lgmail\r\n"),
            ("c", b"MAIL FROM:<gw@example.jp>\r\n"), ("s", b"250 ok\r\n"), ("c", b"RCPT TO:<staff@city.lg.jp>\r\n"),
            ("s", b"250 ok\r\n"), ("c", b"DATA\r\n"), ("s", b"354 go\r\n"), ("c", message + b"\r\n.\r\n"),
            ("s", b"250 queued\r\n"), ("c", b"QUIT\r\n"), ("s", b"221 bye\r\n")]


TEXT_MAIL = b"From: gw@example.jp\r\nTo: staff@city.lg.jp\r\nSubject: hi\r\n\r\nplain text only\r\n"
ATTACHED_MAIL = (
    b"From: gw@example.jp\r\nTo: staff@city.lg.jp\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
    b"--b1\r\nContent-Type: application/vnd.ms-excel\r\nContent-Disposition: attachment; filename=\"invoice.xls\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n0M8R4KGxGuE=\r\n--b1--\r\n"
)


@pytest.fixture
def mail_city(tmp_path: Path) -> Path:
    p = tmp_path / "mail.yaml"
    p.write_text(MAIL_TOPOLOGY, encoding="utf-8")
    return p


def test_text_only_mail_on_the_outbound_leg_is_compliant(mail_city, tmp_path):
    pkts = conversation("10.3.9.25", "10.2.0.25", 40100, 25, smtp(TEXT_MAIL))
    code, report = replay(mail_city, cap(tmp_path, "m.pcap", pkts))
    assert report["flows"][0]["verdict"] == "channel:mail"
    assert (code, report["findings"]) == (0, [])


def test_attachment_on_the_outbound_leg_is_mail_not_text(mail_city, tmp_path):
    pkts = conversation("10.3.9.25", "10.2.0.25", 40101, 25, smtp(ATTACHED_MAIL))
    code, report = replay(mail_city, cap(tmp_path, "m.pcap", pkts))
    (f,) = report["findings"]
    assert (f["code"], f["severity"], f["channel"], f["mail_from"]) == ("MAIL_NOT_TEXT", "high", "mail",
                                                                        "gw@example.jp")
    assert [(p["content_type"], p["filename"]) for p in f["parts"]] == [("application/vnd.ms-excel", "invoice.xls")]
    assert code == 1


def test_starttls_on_the_outbound_leg_is_incomplete(mail_city, tmp_path):
    turns = [("s", b"220 lgmail ESMTP\r\n"), ("c", b"EHLO mailsan\r\n"), ("s", b"250-lgmail\r\n250 STARTTLS\r\n"),
             ("c", b"STARTTLS\r\n"), ("s", b"220 go ahead\r\n"), ("c", bytes.fromhex("160301002a") + bytes(42))]
    pkts = conversation("10.3.9.25", "10.2.0.25", 40102, 25, turns)
    code, report = replay(mail_city, cap(tmp_path, "tls.pcap", pkts))
    assert (code, report["status"]) == (3, "incomplete")
    assert any("could not be inspected" in r for r in report["stats"]["incomplete"])


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present beside the repository")
def test_real_message_with_attachment_is_mail_not_text(mail_city, tmp_path):
    """Zeek's smtp-attachment-msg.pcap (a message carrying test.msg), its loopback addresses moved
    onto the mail sanitizer and the LG mail server so that it crosses the outbound leg."""
    from scapy.all import IPv6, rdpcap

    pkts = rdpcap(str(CORPUS / "smtp-attachment-msg.pcap"))
    for p in pkts:
        ip = p[IPv6]
        to_server = p[TCP].dport == 25
        ip.src, ip.dst = ("fd00:3::25", "fd00:2::25") if to_server else ("fd00:2::25", "fd00:3::25")
        del p[TCP].chksum
    code, report = replay(mail_city, cap(tmp_path, "real.pcap", pkts))
    (f,) = [f for f in report["findings"] if f["code"] == "MAIL_NOT_TEXT"]
    assert ("message/rfc822", "test.msg") in [(p["content_type"], p["filename"]) for p in f["parts"]]
    assert f["src_segment"] == "inet" and f["dst_segment"] == "lg"


FILE_TOPOLOGY = TOPOLOGY.replace(
    "  - {name: vb1, addresses: [10.3.0.10]}\n",
    "  - {name: vb1, addresses: [10.3.0.10]}\n  - {name: cdr1, addresses: [10.3.9.5]}\n",
).replace("channels:\n", """channels:
  - name: files
    kind: file-sanitization
    sanitizer: cdr1
    inbound: {peers: [inet], ports: [tcp/443]}
    outbound: {peers: [lg], ports: [tcp/80, tcp/443]}
""").replace(R30, R30 + """\
      - {id: r50, action: allow, from: p2, to: p3, src: lg, dst: cdr1, proto: tcp, dport: [80, 443]}
""")

PE = b"MZ" + bytes(58) + (64).to_bytes(4, "little") + b"PE\x00\x00" + bytes(200)


def download(name: str, body: bytes, ctype: bytes = b"application/octet-stream"):
    request = f"GET /out/{name} HTTP/1.1\r\nHost: cdr1\r\n\r\n".encode()
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)
    return [("c", request), ("s", response)]


@pytest.fixture
def file_city(tmp_path: Path) -> Path:
    p = tmp_path / "files.yaml"
    p.write_text(FILE_TOPOLOGY, encoding="utf-8")
    return p


def test_executable_from_the_sanitizer_is_not_sanitized(file_city, tmp_path):
    pkts = conversation("10.2.0.21", "10.3.9.5", 40200, 80, download("report.pdf", PE))
    code, report = replay(file_city, cap(tmp_path, "f.pcap", pkts))
    (f,) = report["findings"]
    assert (f["code"], f["severity"], f["channel"], f["filename"]) == ("FILE_NOT_SANITIZED", "high", "files",
                                                                        "report.pdf")
    assert f["kind"].lower().startswith("pe") or "PE" in " ".join(f["reasons"])
    assert code == 1


def test_clean_file_from_the_sanitizer_is_compliant(file_city, tmp_path):
    pkts = conversation("10.2.0.21", "10.3.9.5", 40201, 80, download("memo.txt", b"sanitized text\n", b"text/plain"))
    code, report = replay(file_city, cap(tmp_path, "f.pcap", pkts))
    assert (code, report["findings"]) == (0, [])


def test_encrypted_file_leg_is_incomplete(file_city, tmp_path):
    hello = bytes.fromhex("16030100310100002d0303") + bytes(32) + bytes.fromhex("000002002f0100")
    pkts = conversation("10.2.0.21", "10.3.9.5", 40202, 443, [("c", hello)])
    code, report = replay(file_city, cap(tmp_path, "f.pcap", pkts))
    assert (code, report["status"]) == (3, "incomplete")
    assert any("could not be inspected" in r for r in report["stats"]["incomplete"])


REAL_SCREEN = {
    # capture: (client, server, protocol, port spec)
    "rdp-to-ssl.pcap": ("192.168.1.200", "192.168.1.150", "rdp", "tcp/3389"),
    "rdp-proprietary-encryption.pcap": ("172.21.128.16", "10.226.24.52", "rdp", "tcp/3389"),
    "vnc-mac-to-linux.pcap": ("192.168.2.115", "192.168.2.125", "vnc", "tcp/5900-5901"),
    "vncmac.pcap": ("192.168.2.115", "192.168.2.16", "vnc", "tcp/5900-5901"),
}


def screen_topology(tmp_path: Path, client: str, server: str, protocol: str, ports: str) -> Path:
    p = tmp_path / "screen.yaml"
    p.write_text(f"""\
version: 1
name: real screen transfer
segments:
  - {{name: lg, kind: lgwan, cidrs: ["{client}"]}}
  - {{name: inet, kind: internet, cidrs: ["{server}"]}}
  - {{name: public, kind: public, cidrs: [0.0.0.0/0, "::/0"]}}
hosts:
  - {{name: vb, addresses: ["{server}"]}}
channels:
  - {{name: screen, kind: screen-transfer, protocol: {protocol}, clients: [lg], servers: [vb], ports: [{ports}]}}
""", encoding="utf-8")
    return p


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present beside the repository")
@pytest.mark.parametrize("name", sorted(REAL_SCREEN))
def test_real_screen_transfer_sessions_are_recognised(tmp_path, name):
    client, server, protocol, ports = REAL_SCREEN[name]
    code, report = replay(screen_topology(tmp_path, client, server, protocol, ports), CORPUS / name)
    on_channel = [f for f in report["flows"] if f["verdict"] == "channel:screen"]
    assert on_channel, report["flows"]
    assert all(any(n.startswith(f"content: {protocol}") or n.startswith("content: empty") for n in f["notes"])
               for f in on_channel)
    assert any(any(n.startswith(f"content: {protocol}") for n in f["notes"]) for f in on_channel)
    assert [f["code"] for f in report["findings"] if f["code"] == "PROTOCOL_MISMATCH"] == []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present beside the repository")
def test_real_rdp_declared_as_vnc_is_a_mismatch(tmp_path):
    topo = screen_topology(tmp_path, "192.168.1.200", "192.168.1.150", "vnc", "tcp/3389")
    code, report = replay(topo, CORPUS / "rdp-to-ssl.pcap")
    mismatch = [f for f in report["findings"] if f["code"] == "PROTOCOL_MISMATCH"]
    assert mismatch and mismatch[0]["recognised"] == "rdp" and code == 1


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present beside the repository")
def test_real_rdp_udp_handshake_is_recognised(tmp_path):
    """rdpeudp-handshake-success.pcap runs on ::1; its ends are moved onto two segments."""
    from scapy.all import IPv6, rdpcap

    pkts = rdpcap(str(CORPUS / "rdpeudp-handshake-success.pcap"))
    for p in pkts:
        to_server = p[UDP].dport == 3389
        p[IPv6].src, p[IPv6].dst = ("fd00:2::21", "fd00:3::10") if to_server else ("fd00:3::10", "fd00:2::21")
        del p[UDP].chksum
    topo = screen_topology(tmp_path, "fd00:2::21", "fd00:3::10", "rdp", "udp/3389")
    code, report = replay(topo, cap(tmp_path, "rdpudp.pcap", pkts))
    (flow,) = [f for f in report["flows"] if f["verdict"] == "channel:screen"]
    assert any(n.startswith("content: rdp-udp") for n in flow["notes"])
    assert not [f for f in report["findings"] if f["code"] == "PROTOCOL_MISMATCH"]


def test_progress_bar_path_gives_the_same_result(city, tmp_path, capsys):
    from segverify.analysis.replay import replay as run_replay
    from segverify.report.json_report import render_json
    from segverify.topology.loader import load_topology

    c = cap(tmp_path, "p.pcap", session("10.1.0.7", "10.2.0.21", 50020, 445))
    quiet = render_json(run_replay(load_topology(str(city)), [str(c)]))
    shown = render_json(run_replay(load_topology(str(city)), [str(c)], show_progress=True))
    assert quiet == shown


def fragmented(pkt, size: int = 512) -> list:
    from scapy.all import fragment

    parts = [Ether() / f for f in fragment(pkt[IP], fragsize=size)]
    for p in parts:
        p.time = pkt.time
    return parts


def test_fragments_with_their_first_fragment_belong_to_a_flow(city, tmp_path):
    big = Ether() / IP(src="10.2.0.21", dst="172.16.5.5", id=7) / UDP(sport=4000, dport=4001) / (b"x" * 3000)
    code, report = replay(city, cap(tmp_path, "frag.pcap", fragmented(big, 1000)))
    assert report["stats"]["unattributed_fragments"] == 0 and report["status"] == "compliant"


def test_fragments_without_their_first_fragment_make_the_result_incomplete(city, tmp_path):
    big = Ether() / IP(src="10.2.0.21", dst="172.16.5.5", id=8) / UDP(sport=4000, dport=4001) / (b"x" * 3000)
    code, report = replay(city, cap(tmp_path, "frag.pcap", fragmented(big, 1000)[1:]))
    assert (code, report["status"], report["stats"]["unattributed_fragments"]) == (3, "incomplete", 3)
    assert any("first fragment" in r for r in report["stats"]["incomplete"])


def test_a_tunnel_hidden_in_fragments_is_still_a_mismatch(city, tmp_path):
    """The bytes a recogniser reads arrive in IP fragments (the first one only 8 bytes past the TCP
    header): reassembled, they are SSH on the RDP channel."""
    pkts = session("10.2.0.21", "10.3.0.10", 50020, 3389, b"SSH-2.0-OpenSSH_9.6\r\n" + b"k" * 1400)
    code, report = replay(city, cap(tmp_path, "t.pcap", pkts[:3] + fragmented(pkts[3], 8) + pkts[4:]))
    assert [(f["code"], f["recognised"]) for f in report["findings"]] == [("PROTOCOL_MISMATCH", "ssh")]
    rdp = rdp_session("10.2.0.21", "10.3.0.10", 50021)
    code, report = replay(city, cap(tmp_path, "r.pcap", rdp[:3] + fragmented(rdp[3], 8) + rdp[4:]))
    assert (code, report["findings"]) == (0, [])


def test_an_attachment_in_fragments_is_found_and_a_lost_fragment_is_incomplete(mail_city, tmp_path):
    pkts = conversation("10.3.9.25", "10.2.0.25", 40110, 25, smtp(ATTACHED_MAIL))
    data = next(i for i, p in enumerate(pkts) if b"invoice.xls" in bytes(p[TCP].payload))
    whole = pkts[:data] + fragmented(pkts[data], 64) + pkts[data + 1:]
    code, report = replay(mail_city, cap(tmp_path, "m.pcap", whole))
    assert [f["code"] for f in report["findings"]] == ["MAIL_NOT_TEXT"]
    pieces = fragmented(pkts[data], 64)
    lost = pkts[:data] + pieces[:2] + pieces[3:] + pkts[data + 1:]  # one fragment never captured
    code, report = replay(mail_city, cap(tmp_path, "m2.pcap", lost))
    assert report["status"] == "incomplete" and code == 3
    assert any("not rebuilt" in r for r in report["stats"]["incomplete"])


FTP_TOPOLOGY = FILE_TOPOLOGY.replace("outbound: {peers: [lg], ports: [tcp/80, tcp/443]}",
                                     "outbound: {peers: [lg], ports: [tcp/21]}").replace(
    "dst: cdr1, proto: tcp, dport: [80, 443]}", "dst: cdr1, proto: tcp, dport: [21]}")


def ftp_control(commands: list[tuple[bytes, bytes]]) -> list[tuple[str, bytes]]:
    turns = [("s", b"220 cdr1 FTP server ready\r\n")]
    for command, reply in [(b"USER lg\r\n", b"331 password\r\n"), (b"PASS x\r\n", b"230 in\r\n"), *commands,
                           (b"QUIT\r\n", b"221 bye\r\n")]:
        turns += [("c", command), ("s", reply)]
    return turns


def ftp_data(src: str, dst: str, sport: int, dport: int, sender: str, body: bytes) -> list:
    """A data connection carrying ``body`` from ``sender`` ("c"/"s"), closed by both sides."""
    pkts = conversation(src, dst, sport, dport, [(sender, body)] if body else [])
    last = pkts[-1]
    pkts.append(Ether() / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="FA", seq=last[TCP].ack,
                                                       ack=last[TCP].seq + 1))
    return pkts


@pytest.fixture
def ftp_city(tmp_path: Path) -> Path:
    p = tmp_path / "ftp.yaml"
    p.write_text(FTP_TOPOLOGY, encoding="utf-8")
    return p


PASV = (b"PASV\r\n", b"227 Entering Passive Mode (10,3,9,5,195,80).\r\n")


def test_ftp_download_of_an_executable_is_not_sanitized(ftp_city, tmp_path):
    control = conversation("10.2.0.21", "10.3.9.5", 40300, 21, ftp_control(
        [PASV, (b"RETR report.pdf\r\n", b"150 opening\r\n226 done\r\n")]))
    data = ftp_data("10.2.0.21", "10.3.9.5", 40301, 195 * 256 + 80, "s", PE)
    code, report = replay(ftp_city, cap(tmp_path, "ftp.pcap", control + data))
    (f,) = report["findings"]
    assert (f["code"], f["filename"], f["ftp_command"], f["channel"]) == ("FILE_NOT_SANITIZED", "report.pdf",
                                                                          "RETR", "files")
    assert f["flow"]["dport"] == 195 * 256 + 80 and "report.pdf" in " ".join(f["reasons"]) and code == 1
    # the data connection is the channel's (RELATED to the control connection), not an unsanitized flow
    assert verdicts(report)[("10.2.0.21", "10.3.9.5", 195 * 256 + 80)] == "channel:files"


def test_ftp_clean_download_and_an_upload_into_the_sanitizer_are_compliant(ftp_city, tmp_path):
    control = conversation("10.2.0.21", "10.3.9.5", 40310, 21, ftp_control([
        PASV, (b"RETR memo.txt\r\n", b"150 opening\r\n226 done\r\n"),
        (b"PORT 10,2,0,21,157,200\r\n", b"200 PORT ok\r\n"), (b"STOR upload.exe\r\n", b"150 go\r\n226 ok\r\n")]))
    down = ftp_data("10.2.0.21", "10.3.9.5", 40311, 195 * 256 + 80, "s", b"sanitized text only\n")
    up = ftp_data("10.3.9.5", "10.2.0.21", 20, 157 * 256 + 200, "s", PE)  # active mode: the server connects
    code, report = replay(ftp_city, cap(tmp_path, "ftp.pcap", control + down + up))
    assert (code, report["status"], report["findings"]) == (0, "compliant", [])
    assert {v for k, v in verdicts(report).items()} == {"channel:files"}


def test_ftp_transfer_without_its_data_connection_is_incomplete(ftp_city, tmp_path):
    control = conversation("10.2.0.21", "10.3.9.5", 40320, 21, ftp_control(
        [PASV, (b"RETR lost.docx\r\n", b"150 opening\r\n226 done\r\n")]))
    code, report = replay(ftp_city, cap(tmp_path, "ftp.pcap", control))
    assert (code, report["status"]) == (3, "incomplete")
    assert any("lost.docx" in r and "data connection" in r for r in report["stats"]["incomplete"])


def test_ftp_over_tls_is_incomplete(ftp_city, tmp_path):
    control = conversation("10.2.0.21", "10.3.9.5", 40330, 21, [
        ("s", b"220 ready\r\n"), ("c", b"AUTH TLS\r\n"), ("s", b"234 go\r\n"), ("c", b"\x16\x03\x01\x00\x05hello")])
    code, report = replay(ftp_city, cap(tmp_path, "ftp.pcap", control))
    assert report["status"] == "incomplete" and any("TLS" in r for r in report["stats"]["incomplete"])


def test_ftp_data_connection_to_a_third_host_stays_a_flow_of_its_own(ftp_city, tmp_path):
    """PORT naming another host (FTP bounce: the sanitizer pushes the file to 10.2.0.99): the file is still
    judged, but that connection is not the channel's, whatever the control connection negotiated."""
    control = conversation("10.2.0.21", "10.3.9.5", 40340, 21, ftp_control(
        [(b"PORT 10,2,0,99,157,201\r\n", b"200 PORT ok\r\n"), (b"RETR run.exe\r\n", b"150 go\r\n226 ok\r\n")]))
    data = ftp_data("10.3.9.5", "10.2.0.99", 20, 157 * 256 + 201, "c", PE)
    code, report = replay(ftp_city, cap(tmp_path, "ftp.pcap", control + data))
    assert verdicts(report)[("10.3.9.5", "10.2.0.99", 157 * 256 + 201)] == "UNSANITIZED_FLOW"
    codes = sorted(f["code"] for f in report["findings"])
    assert "UNSANITIZED_FLOW" in codes and "FILE_NOT_SANITIZED" in codes and code == 1


@pytest.fixture(scope="module")
def judges():
    """The bundled city judged twice: with the compiled walk, and with dd's cofactors only."""
    import os
    from unittest import mock

    from segverify.analysis.replay import Judge
    from segverify.topology.loader import load_topology

    topo = load_topology(str(Path(__file__).resolve().parents[1] / "topologies" / "alpha-city.yaml"))
    with mock.patch.dict(os.environ, {"SEGVERIFY_NO_NATIVE": "1"}):
        plain = Judge(topo)
    return Judge(topo), plain, topo


def _flows_between(topo, draw):
    from hypothesis import strategies as st

    from segverify.capture.flows import Flow

    segs = sorted(topo.segments)
    a, b = draw(st.sampled_from(segs)), draw(st.sampled_from(segs))
    pick = lambda seg: draw(st.sampled_from([p.lo for p in topo.segments[seg].prefixes]  # noqa: E731
                                            + [p.hi for p in topo.segments[seg].prefixes])) + draw(st.integers(0, 3))
    proto = draw(st.sampled_from([6, 6, 17, 1, 58]))
    ports = proto in (6, 17)
    return Flow(proto, 4, pick(a), draw(st.integers(0, 65535)) if ports else 0, pick(b),
                draw(st.sampled_from([22, 25, 53, 80, 443, 445, 3389, 8080, 50000])) if ports else 0,
                True, "syn", 3, 100, 3, 100, 0, 0, 0, 1, True, 0, 0, None, (), 0, 0)


def test_denied_by_walking_the_reach_set_is_the_cofactor_answer(judges):
    """DENIED_BUT_OBSERVED's rule check, one walk per packet in C, gives the answer of dd's cofactors."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    walking, plain, topo = judges
    assert walking.ctx.space.ops is not None and plain.ctx.space.ops is None

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def check(data):
        f = _flows_between(topo, data.draw)
        a, b = walking.segment(f.src, None), walking.segment(f.dst, None)
        if a is None or b is None or a == b:
            return
        assert walking.denied(f, a, b) == plain.denied(f, a, b), f

    check()


def test_a_judge_remembering_flow_kinds_gives_each_flow_its_own_verdict(judges):
    """The Judge judges the flows of one (addresses, VLAN, protocol, destination port, how seen) once: on random
    flows (some with unproven initiators, some not established, VLANs and addresses outside every segment),
    each flow's verdict equals the one computed afresh for it alone."""
    import dataclasses

    from hypothesis import given, settings
    from hypothesis import strategies as st

    walking, plain, topo = judges

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def check(data):
        flows = []
        for _ in range(data.draw(st.integers(1, 12))):
            f = _flows_between(topo, data.draw)
            f = dataclasses.replace(f, initiator_known=data.draw(st.booleans()),
                                    established=data.draw(st.booleans()),
                                    vlan=data.draw(st.sampled_from([None, 10, 20, 30, 99])),
                                    src=f.src if data.draw(st.integers(0, 9)) else 0xC0000201)  # fmt: skip
            flows += [f, dataclasses.replace(f, sport=data.draw(st.integers(0, 65535)))]
        for f in flows:
            got = walking.judge(f)  # with what every earlier flow left in its memory
            plain._verdicts.clear()
            plain._segments.clear()
            alone = plain.judge(f)
            assert (got.src_segment, got.dst_segment, got.verdict, got.notes, got.denied, got.no_path) == (
                alone.src_segment, alone.dst_segment, alone.verdict, alone.notes, alone.denied, alone.no_path), f

    check()


def test_the_report_names_each_input_with_its_sha256(city, tmp_path):
    """The digests are hashed beside the run (a forked process from the command's start): the report's must be
    the files' own, topology and every capture, plain or gzip."""
    import hashlib

    a = cap(tmp_path, "a.pcap", session("10.1.0.7", "10.2.0.21", 50010, 445))
    b = tmp_path / "b.pcap.gz"
    b.write_bytes(gzip.compress(cap(tmp_path, "b.pcap", rdp_session("10.2.0.1", "10.3.0.10", 2)).read_bytes()))
    out = CliRunner().invoke(main, ["replay", str(city), str(a), str(b), "--format", "json"])
    assert out.exit_code in (0, 1, 3), out.output
    inputs = {i["path"]: i["sha256"] for i in json.loads(out.stdout)["inputs"]}
    assert inputs == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in (city, a, b)}
