"""Protocol recognisers: real captures, synthetic handshakes, the channel truth table, hostile bytes.

Why these tests: ``replay`` passes a screen-transfer channel only when :func:`identify` positively names a
screen protocol, so both directions matter -- real RDP/RFB sessions must be recognised (else every
compliant city fails), and tunnels must not be (TLS on 3389, an X.224 preamble followed by SSH, HTTP
CONNECT, SOCKS...). The recognisers read bytes from possibly compromised machines, so they must also be
total: hypothesis throws random bytes, truncations and mutations of real first bytes at them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segverify.capture import iter_packets
from segverify.capture.recognise import (
    MAX_BYTES,
    RECOGNISERS,
    SCREEN_PROTOCOLS,
    UNVERIFIABLE,
    Evidence,
    identify,
    satisfies,
)
from segverify.capture.recognise import rdp as rdp_mod

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "captures" / "zeek"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"capture corpus not found at {CORPUS}")

TCP, UDP = 6, 17
SYN, ACK = 0x02, 0x10


# ---------------------------------------------------------------- first bytes of each flow in a capture


@dataclass
class FlowBytes:
    proto: int
    sport: int
    dport: int
    client: bytes
    server: bytes


def _assemble(isn: int | None, segs: list[tuple[int, bytes]]) -> bytes:
    """A TCP direction's first bytes: segments ordered by sequence number (relative to the ISN when the SYN
    was seen, else to the first segment), retransmissions and overlaps dropped, stopping at a hole."""
    if not segs:
        return b""
    base = (isn + 1) & 0xFFFFFFFF if isn is not None else segs[0][0]
    out = bytearray()
    for rel, data in sorted(((seq - base) & 0xFFFFFFFF, data) for seq, data in segs):
        if rel > len(out):
            break  # a hole: what comes after is not "the first bytes"
        out += data[len(out) - rel :]
        if len(out) >= MAX_BYTES:
            break
    return bytes(out[:MAX_BYTES])


def flows_first_bytes(path: Path) -> list[FlowBytes]:
    """Per TCP/UDP flow (oriented by the SYN's sender, else the first packet's), each side's first bytes."""
    flows: dict = {}
    for p in iter_packets(path):
        if p.proto not in (TCP, UDP) or p.src is None:
            continue
        a, b = (p.src, p.sport), (p.dst, p.dport)
        key = (p.proto, frozenset((a, b)))
        f = flows.get(key)
        if f is None:
            synack = p.proto == TCP and p.tcp_flags & (SYN | ACK) == SYN | ACK
            init, resp = (b, a) if synack else (a, b)
            f = flows[key] = {"init": init, "resp": resp, "isn": {}, "segs": {True: [], False: []}}
        fwd = a == f["init"]
        if p.proto == TCP and p.tcp_flags & SYN:
            f["isn"].setdefault(fwd, p.seq)
        if len(p.payload):
            f["segs"][fwd].append((p.seq if p.proto == TCP else len(f["segs"][fwd]), bytes(p.payload)))
    out = []
    for (proto, _), f in flows.items():
        if proto == TCP:
            c, s = (_assemble(f["isn"].get(d), f["segs"][d]) for d in (True, False))
        else:
            c, s = (b"".join(x for _, x in f["segs"][d])[:MAX_BYTES] for d in (True, False))
        out.append(FlowBytes(proto, f["init"][1], f["resp"][1], c, s))
    return out


def corpus_flows(name: str, proto: int, ports: set[int]) -> list[FlowBytes]:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} not in the corpus at {CORPUS}")
    flows = [f for f in flows_first_bytes(path) if f.proto == proto and f.dport in ports and (f.client or f.server)]
    assert flows, f"no {proto}/{ports} flow with payload in {name}"
    return flows


def ident(f: FlowBytes) -> Evidence:
    return identify(f.client, f.server, f.proto, f.dport)


# ---------------------------------------------------------------- real captures


def test_assembly_orders_by_sequence_and_drops_retransmissions() -> None:
    segs = [(1005, b"world"), (1000, b"hello"), (1000, b"hello"), (1003, b"lowor")]
    assert _assemble(999, segs) == b"helloworld"
    assert _assemble(None, [(0xFFFFFFFE, b"ab"), (0, b"cd")]) == b"abcd"  # across the wrap
    assert _assemble(None, [(10, b"ab"), (20, b"cd")]) == b"ab"  # stops at a hole


@needs_corpus
def test_rdp_with_tls() -> None:
    for f in corpus_flows("rdp-to-ssl.pcap", TCP, {3389}):
        ev = ident(f)
        assert ev.protocol == "rdp", ev
        assert "mstshash=AWAKECODI" in ev.detail and "selecting HYBRID" in ev.detail and "TLS follows" in ev.detail
        assert satisfies("rdp", ev)
        # the TLS part alone (what a gateway or a VPN on 3389 would show) is not RDP
        tls_only = identify(f.client[0x2F:], f.server[0x13:], TCP, 3389)
        assert tls_only.protocol == "tls" and not satisfies("rdp", tls_only), tls_only


@needs_corpus
def test_rdp_standard_security() -> None:
    details = [ident(f) for f in corpus_flows("rdp-proprietary-encryption.pcap", TCP, {3389})]
    assert all(ev.protocol == "rdp" for ev in details), details
    text = " | ".join(ev.detail for ev in details)
    assert "SSL_NOT_ALLOWED_BY_SERVER" in text  # the first attempt is refused ...
    assert "selecting RDP" in text and "MCS Connect-Initial follows" in text  # ... the second uses RDP security


@needs_corpus
def test_rdp_over_udp() -> None:
    (f,) = corpus_flows("rdpeudp-handshake-success.pcap", UDP, {3389})
    ev = ident(f)
    assert ev.protocol == "rdp-udp", ev
    assert "SYN+ACK acknowledging it" in ev.detail and "padded to 1232" in ev.detail
    assert satisfies("rdp", ev)
    # a reply that acknowledges some other sequence number is not this handshake
    bad_server = bytes(4) + f.server[4:]
    assert identify(f.client, bad_server, UDP, 3389).protocol != "rdp-udp"
    # the same bytes over TCP are not RDPEUDP
    assert identify(f.client, f.server, TCP, 3389).protocol != "rdp-udp"


@needs_corpus
@pytest.mark.parametrize(("name", "port", "version"), [("vnc-mac-to-linux.pcap", 5901, "003.008"),
                                                       ("vncmac.pcap", 5900, "003.889")])  # fmt: skip
def test_vnc(name: str, port: int, version: str) -> None:
    for f in corpus_flows(name, TCP, {port}):
        ev = ident(f)
        assert ev.protocol == "vnc" and f"server RFB {version}" in ev.detail, ev
        assert satisfies("vnc", ev) and not satisfies("rdp", ev)


@needs_corpus
def test_smtp() -> None:
    for f in corpus_flows("smtp.pcap", TCP, {25}):
        ev = ident(f)
        assert ev.protocol == "smtp" and "EHLO" in ev.detail and "greeting '220" in ev.detail, ev
        assert not any(satisfies(p, ev) for p in SCREEN_PROTOCOLS)


@needs_corpus
def test_http() -> None:
    (f,) = corpus_flows("get.pcap", TCP, {80})
    ev = ident(f)
    assert ev.protocol == "http" and "GET /download/CHANGES.bro-aux.txt" in ev.detail and "bro.org" in ev.detail


@needs_corpus
def test_ftp_greeting_is_not_smtp_but_ftp() -> None:
    """FTP greets with 220 too; without EHLO/HELO it must not pass as SMTP (ipv6.pcap is FTP over IPv6)."""
    flows = corpus_flows("ipv6.pcap", TCP, {21})
    assert flows
    for f in flows:
        ev = ident(f)
        assert ev.protocol == "ftp" and "greeting '220" in ev.detail, ev


def test_ftp_synthetic() -> None:
    ev = identify(b"USER anonymous\r\nPASS x\r\n", b"220 ProFTPD ready\r\n", TCP, 21)
    assert ev.protocol == "ftp" and "USER anonymous" in ev.detail
    assert identify(b"PASS secret\r\n", b"220 x\r\n", TCP, 21).detail.count("secret") == 0  # never print it
    assert identify(b"USER a\r\n", b"SSH-2.0-x\r\n", TCP, 21).protocol != "ftp"  # the server disagrees
    assert identify(b"EHLO a\r\n", b"220 mx ESMTP\r\n", TCP, 25).protocol == "smtp"


@needs_corpus
def test_empty_flow() -> None:
    path = CORPUS / "vnc-mac-to-linux.pcap"
    empties = [f for f in flows_first_bytes(path) if not f.client and not f.server]
    assert empties and all(ident(f) == Evidence("empty", "no payload seen in either direction") for f in empties)
    assert not satisfies("vnc", ident(empties[0]))


# ---------------------------------------------------------------- synthetic handshakes


def tpkt_x224(code: int, var: bytes, src_ref: bytes = b"\x00\x00") -> bytes:
    x224 = bytes([6 + len(var), code, 0, 0]) + src_ref + b"\x00" + var
    return b"\x03\x00" + (4 + len(x224)).to_bytes(2) + x224


RDP_CR = tpkt_x224(0xE0, b"Cookie: mstshash=alice\r\n\x01\x00\x08\x00\x03\x00\x00\x00")
RDP_CC_SSL = tpkt_x224(0xD0, b"\x02\x00\x08\x00\x01\x00\x00\x00", b"\x12\x34")


def client_hello(sni: bytes | None = b"vpn.example.net", alpn: tuple[bytes, ...] = (b"h2", b"http/1.1")) -> bytes:
    exts = b""
    if sni is not None:
        entry = b"\x00" + len(sni).to_bytes(2) + sni
        lst = len(entry).to_bytes(2) + entry
        exts += b"\x00\x00" + len(lst).to_bytes(2) + lst
    if alpn:
        names = b"".join(bytes([len(a)]) + a for a in alpn)
        lst = len(names).to_bytes(2) + names
        exts += b"\x00\x10" + len(lst).to_bytes(2) + lst
    versions = b"\x04\x03\x04\x03\x03"
    exts += b"\x00\x2b" + len(versions).to_bytes(2) + versions
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + len(exts).to_bytes(2) + exts
    hs = b"\x01" + len(body).to_bytes(3) + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2) + hs


SERVER_HELLO = b"\x16\x03\x03\x00\x31\x02\x00\x00\x2d\x03\x03" + bytes(43)
SOCKS5_CONNECT = b"\x05\x01\x00" + b"\x05\x01\x00\x03\x0bexample.org\x01\xbb"
SMB1_NEGOTIATE = b"\x00\x00\x00\x2f\xffSMB\x72" + bytes(42)
SMB2_NEGOTIATE = b"\x00\x00\x00\x66\xfeSMB\x40\x00" + bytes(98)


def test_rdp_synthetic_and_tls_continuation() -> None:
    ev = identify(RDP_CR + client_hello(), RDP_CC_SSL + SERVER_HELLO, TCP, 3389)
    assert ev.protocol == "rdp" and "selecting SSL; TLS follows" in ev.detail and "mstshash=alice" in ev.detail


def test_rdp_client_only() -> None:
    ev = identify(RDP_CR, b"", TCP, 3389)
    assert ev.protocol == "rdp" and "no server reply seen" in ev.detail


def test_tls_on_3389_without_x224_is_not_rdp() -> None:
    ev = identify(client_hello(b"rdp.example.jp"), SERVER_HELLO, TCP, 3389)
    assert ev.protocol == "tls" and "SNI rdp.example.jp" in ev.detail
    assert "tcp/3389 usually carries rdp" in ev.detail
    assert not satisfies("rdp", ev)


def test_x224_followed_by_something_else_is_not_rdp() -> None:
    """An X.224 preamble in front of SSH is a tunnel dressed up as RDP."""
    ev = identify(RDP_CR + b"SSH-2.0-OpenSSH_9.6\r\n", RDP_CC_SSL + b"SSH-2.0-OpenSSH_9.6\r\n", TCP, 3389)
    assert ev.protocol != "rdp" and not satisfies("rdp", ev)
    # a server that does not answer with a Connection Confirm is not an RDP server
    assert identify(RDP_CR, b"HTTP/1.1 400 Bad Request\r\n\r\n", TCP, 3389).protocol != "rdp"
    # after a negotiation failure the server closes; data after it is not RDP
    fail = tpkt_x224(0xD0, b"\x03\x00\x08\x00\x02\x00\x00\x00")
    assert identify(RDP_CR, fail, TCP, 3389).protocol == "rdp"
    assert identify(RDP_CR + b"\x00" * 40, fail, TCP, 3389).protocol != "rdp"


def test_iso_on_tcp_is_not_rdp() -> None:
    """S7comm (and MMS/ICCP) use TPKT + COTP too, with TSAP parameters RDP never sends."""
    s7_cr = tpkt_x224(0xE0, b"\xc1\x02\x01\x00\xc2\x02\x01\x02\xc0\x01\x0a")
    s7_cc = tpkt_x224(0xD0, b"\xc0\x01\x0a\xc1\x02\x01\x00\xc2\x02\x01\x02", b"\x00\x01")
    assert identify(s7_cr, s7_cc, TCP, 102).protocol is None
    bare = tpkt_x224(0xE0, b"")
    assert identify(bare, tpkt_x224(0xD0, b""), TCP, 3389).protocol is None  # nothing RDP-specific
    mcs = b"\x03\x00\x00\x0c\x02\xf0\x80\x7f\x65\x82\x01\x00"
    assert identify(bare + mcs, tpkt_x224(0xD0, b""), TCP, 3389).protocol == "rdp"  # legacy RDP


def test_ica() -> None:
    detect = b"\x7f\x7fICA\x00"
    ev = identify(detect, detect * 3, TCP, 1494)
    assert ev.protocol == "ica" and "×3" in ev.detail and "echoed" in ev.detail
    assert satisfies("ica", ev) and not satisfies("rdp", ev)
    assert identify(b"", detect * 2, TCP, 1494).protocol == "ica"
    assert identify(b"\x7f\x7fICB\x00", b"", TCP, 1494).protocol != "ica"


def test_cgp() -> None:
    ev = identify(b"\x1aCGP/01" + b"\x00\x05", b"\x1aCGP/01\x00", TCP, 2598)
    assert ev.protocol == "cgp" and satisfies("ica", ev)
    assert identify(b"\x1aCGP/01", b"SSH-2.0-x\r\n", TCP, 2598).protocol != "cgp"


def test_vnc_mismatch() -> None:
    assert identify(b"RFB 003.008\n", b"RFB 003.008\n", TCP, 5900).protocol == "vnc"
    assert identify(b"RFB 003.008\n", b"SSH-2.0-x\r\n", TCP, 5900).protocol != "vnc"
    ev = identify(b"RFB 003.042\n", b"RFB 003.042\n", TCP, 5900)
    assert ev.protocol == "vnc" and "unusual version" in ev.detail


def test_tls_with_sni_and_alpn() -> None:
    ev = identify(client_hello(), b"", TCP, 443)
    assert ev.protocol == "tls"
    assert "SNI vpn.example.net" in ev.detail and "ALPN h2,http/1.1" in ev.detail and "TLS 1.3" in ev.detail
    assert "no SNI" in identify(client_hello(None, ()), b"", TCP, 443).detail
    # a ClientHello split over two records is still one ClientHello
    hello = client_hello()
    hs = hello[5:]
    split = b"\x16\x03\x01\x00\x10" + hs[:16] + b"\x16\x03\x01" + (len(hs) - 16).to_bytes(2) + hs[16:]
    assert "SNI vpn.example.net" in identify(split, b"", TCP, 443).detail


def test_tls_is_never_blast_or_pcoip() -> None:
    for port in (22443, 8443, 4172):
        ev = identify(client_hello(b"horizon.example.jp"), SERVER_HELLO, TCP, port)
        assert ev.protocol == "tls"
        assert not satisfies("blast", ev) and not satisfies("pcoip", ev)
    assert "cannot be confirmed from bytes" in identify(client_hello(), b"", TCP, 22443).detail
    assert set(UNVERIFIABLE) == {"pcoip", "blast"}


def test_http_connect_and_websocket() -> None:
    ev = identify(b"CONNECT vpn.example.net:443 HTTP/1.1\r\nHost: vpn.example.net:443\r\n\r\n", b"", TCP, 3389)
    assert ev.protocol == "http" and "CONNECT vpn.example.net:443" in ev.detail and "tunnel" in ev.detail
    ws = b"GET /chat HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    ev = identify(ws, b"HTTP/1.1 101 Switching Protocols\r\n\r\n", TCP, 80)
    assert ev.protocol == "http" and "WebSocket" in ev.detail
    ev = identify(b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nHost: gw\r\n\r\n", b"", TCP, 80)
    assert ev.protocol == "http" and "RD Gateway" in ev.detail and not satisfies("rdp", ev)
    assert identify(b"", b"HTTP/1.1 200 OK\r\n\r\n", TCP, 80).protocol == "http"
    assert identify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"", TCP, 80).protocol == "http"


def test_ssh() -> None:
    ev = identify(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n", b"SSH-2.0-dropbear_2022.83\r\n", TCP, 3389)
    assert ev.protocol == "ssh" and "OpenSSH_9.6p1" in ev.detail and "dropbear" in ev.detail
    assert identify(b"", b"a banner line\r\nSSH-2.0-srv\r\n", TCP, 22).protocol == "ssh"  # RFC 4253 pre-lines
    assert identify(b"SSH-3.0-x\r\n", b"", TCP, 22).protocol != "ssh"


def test_smb() -> None:
    ev = identify(SMB1_NEGOTIATE, b"", TCP, 445)
    assert ev.protocol == "smb" and "SMB1 NEGOTIATE" in ev.detail
    ev = identify(SMB2_NEGOTIATE, SMB2_NEGOTIATE, TCP, 445)
    assert ev.protocol == "smb" and "SMB2/3 NEGOTIATE" in ev.detail and "server answers" in ev.detail
    session_request = b"\x81\x00\x00\x44" + bytes(68)
    ev = identify(session_request + SMB2_NEGOTIATE, b"\x82\x00\x00\x00" + SMB2_NEGOTIATE, TCP, 139)
    assert ev.protocol == "smb" and "NetBIOS session" in ev.detail
    assert identify(b"\x00\x00\x00\x10\xfeSMB" + bytes(12), b"", TCP, 445).protocol != "smb"  # too short


def test_smtp_synthetic() -> None:
    ev = identify(b"EHLO client.example\r\nSTARTTLS\r\n", b"220 mx.example ESMTP\r\n", TCP, 25)
    assert ev.protocol == "smtp" and "STARTTLS follows" in ev.detail
    assert identify(b"USER anonymous\r\n", b"220 ftp ready\r\n", TCP, 21).protocol == "ftp"  # not smtp


def test_socks() -> None:
    ev = identify(SOCKS5_CONNECT, b"\x05\x00\x05\x00\x00\x01" + bytes(6), TCP, 3389)
    assert ev.protocol == "socks" and "CONNECT example.org:443" in ev.detail and "tunnel" in ev.detail
    assert identify(b"\x05\x01\x00", b"", TCP, 1080).protocol == "socks"
    assert identify(b"\x05\x01\x00", b"\x05\x02", TCP, 1080).protocol != "socks"  # a method not offered
    ev = identify(b"\x04\x01\x01\xbb\x00\x00\x00\x01user\x00host.example\x00", b"\x00\x5a" + bytes(6), TCP, 1080)
    assert ev.protocol == "socks" and "SOCKS4 CONNECT host.example:443" in ev.detail


def test_unknown_bytes_and_hint() -> None:
    ev = identify(b"\x16\x03\x01\x00", b"", TCP, 3389)
    assert ev.protocol is None and ev.detail.startswith("no known protocol; first bytes client 16 03 01 00")
    assert "[tcp/3389 usually carries rdp" in ev.detail
    ev = identify(b"\x00" * 40, b"", UDP, 53)
    assert ev.protocol is None and "usually" not in ev.detail


def test_recogniser_exception_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(client: bytes, server: bytes, proto: int) -> str | None:
        raise IndexError("bug")

    monkeypatch.setattr(rdp_mod, "match", boom)
    ev = identify(RDP_CR, RDP_CC_SSL, TCP, 3389)
    assert ev.protocol is None and "recogniser error in rdp (IndexError)" in ev.detail


def test_only_first_bytes_are_read() -> None:
    ev = identify(b"RFB 003.008\n" + b"\xff" * 10_000_000, b"RFB 003.008\n", TCP, 5900)
    assert ev.protocol == "vnc"


# ---------------------------------------------------------------- satisfies truth table

RECOGNISED = sorted({m.NAME for m in RECOGNISERS} | {"empty"}) + [None]
EXPECTED = {"rdp": {"rdp", "rdp-udp"}, "ica": {"ica", "cgp"}, "vnc": {"vnc"}, "pcoip": {"pcoip"}, "blast": {"blast"}}


@pytest.mark.parametrize(("channel", "protocol"), list(itertools.product([*EXPECTED, "ssh", "RDP", ""], RECOGNISED)))
def test_satisfies_truth_table(channel: str, protocol: str | None) -> None:
    want = protocol in EXPECTED.get(channel.lower(), set())
    assert satisfies(channel, Evidence(protocol, "x")) is want


def test_screen_protocols_and_order() -> None:
    assert SCREEN_PROTOCOLS == EXPECTED
    names = [m.NAME for m in RECOGNISERS]
    assert names.index("rdp") < names.index("tls")
    assert len(set(names)) == len(names)
    for screen in ("rdp", "rdp-udp", "ica", "cgp", "vnc", "pcoip", "blast"):
        assert names.index(screen) < names.index("tls")


# ---------------------------------------------------------------- hostile bytes


def _samples() -> list[tuple[bytes, bytes, int]]:
    """First bytes that reach deep into the parsers: synthetic handshakes plus, if present, real ones."""
    out = [
        (RDP_CR + client_hello(), RDP_CC_SSL + SERVER_HELLO, TCP), (client_hello(), SERVER_HELLO, TCP),
        (SOCKS5_CONNECT, b"\x05\x00", TCP), (SMB2_NEGOTIATE, SMB2_NEGOTIATE, TCP), (SMB1_NEGOTIATE, b"", TCP),
        (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", b"HTTP/1.1 101 x\r\n", TCP),
        (b"SSH-2.0-a\r\n", b"SSH-2.0-b\r\n", TCP), (b"EHLO x\r\n", b"220 y ESMTP\r\n", TCP),
        (b"USER a\r\nPASV\r\n", b"220 ftp\r\n331 pw\r\n", TCP),
        (b"\x7f\x7fICA\x00", b"\x7f\x7fICA\x00" * 2, TCP), (b"\x1aCGP/01", b"\x1aCGP/01", TCP),
        (b"RFB 003.008\n", b"RFB 003.008\n", TCP),
        (b"\x04\x01\x00\x50\x00\x00\x00\x01u\x00h\x00", b"\x00\x5a" + bytes(6), TCP),
    ]  # fmt: skip
    if CORPUS.is_dir():
        for name in ("rdp-to-ssl.pcap", "rdp-proprietary-encryption.pcap", "rdpeudp-handshake-success.pcap",
                     "vncmac.pcap", "smtp.pcap", "get.pcap"):  # fmt: skip
            if (CORPUS / name).exists():
                out += [(f.client, f.server, f.proto) for f in flows_first_bytes(CORPUS / name)[:4]]
    return out


SAMPLES = _samples()
HYP = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_total(client: bytes, server: bytes, proto: int, dport: int) -> None:
    for module in RECOGNISERS:
        r = module.match(client, server, proto)  # no try: a raise here is a bug the test must show
        assert r is None or (isinstance(r, str) and r)
    ev = identify(client, server, proto, dport)
    assert isinstance(ev, Evidence) and isinstance(ev.detail, str) and ev.detail
    assert ev.protocol is None or isinstance(ev.protocol, str)
    assert "recogniser error" not in ev.detail


@HYP
@given(st.binary(max_size=600), st.binary(max_size=600), st.sampled_from([TCP, UDP]), st.integers(0, 65535))
def test_random_bytes_never_raise(client: bytes, server: bytes, proto: int, dport: int) -> None:
    _check_total(client, server, proto, dport)


@HYP
@given(st.data())
def test_truncated_and_mutated_real_bytes_never_raise(data: st.DataObject) -> None:
    client, server, proto = data.draw(st.sampled_from(SAMPLES))
    client = client[: data.draw(st.integers(0, len(client)))]
    server = server[: data.draw(st.integers(0, len(server)))]
    for _ in range(data.draw(st.integers(0, 4))):  # flip a few bytes: lengths that lie, types that change
        which = data.draw(st.booleans())
        buf = bytearray(client if which else server)
        if buf:
            buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
        client, server = (bytes(buf), server) if which else (client, bytes(buf))
    _check_total(client, server, proto, data.draw(st.sampled_from([3389, 5900, 1494, 443, 80])))
