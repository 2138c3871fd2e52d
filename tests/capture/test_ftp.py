"""FTP control parsing: which files moved, which way, and where their data connection goes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segverify.capture.ftp import DOWNLOAD, UPLOAD, DataEndpoint, parse_session


def addr(text: str) -> int:
    import ipaddress

    ip = ipaddress.ip_address(text)
    return int(ip) if ip.version == 4 else (1 << 128) + int(ip)


def test_passive_upload_and_download_with_multiline_greeting() -> None:
    client = b"USER cdr\r\nPASS x\r\nTYPE I\r\nPASV\r\nSTOR report.xlsx\r\nPASV\r\nRETR log.txt\r\nQUIT\r\n"
    server = (b"220-Welcome\r\n220-to the sanitizer\r\n220 ready\r\n331 password\r\n230 ok\r\n200 binary\r\n"
              b"227 Entering Passive Mode (10,2,0,9,195,80).\r\n150 open\r\n226 done\r\n"
              b"227 Entering Passive Mode (10,2,0,9,195,81)\r\n150 open\r\n226 done\r\n221 bye\r\n")
    s = parse_session(client, server)
    assert not s.encrypted and s.malformed is None
    assert [(t.command, t.filename, t.direction, t.reply, t.accepted) for t in s.transfers] == [
        ("STOR", "report.xlsx", UPLOAD, 226, True), ("RETR", "log.txt", DOWNLOAD, 226, True)]
    assert s.transfers[0].data == DataEndpoint("client", addr("10.2.0.9"), 195 * 256 + 80)
    assert s.transfers[1].data == DataEndpoint("client", addr("10.2.0.9"), 195 * 256 + 81)


def test_active_mode_port_and_eprt_ipv6() -> None:
    client = b"USER a\r\nPORT 10,1,0,5,4,1\r\nSTOR a.doc\r\nEPRT |2|2001:db8::5|6000|\r\nSTOR b.pdf\r\n"
    server = b"220 hi\r\n230 in\r\n200 PORT ok\r\n150 go\r\n226 ok\r\n200 EPRT ok\r\n125 go\r\n226 ok\r\n"
    s = parse_session(client, server)
    assert [t.data for t in s.transfers] == [DataEndpoint("server", addr("10.1.0.5"), 1025),
                                              DataEndpoint("server", addr("2001:db8::5"), 6000)]


def test_epsv_names_only_the_port_and_refused_transfers_are_not_accepted() -> None:
    client = b"USER a\r\nEPSV\r\nRETR secret.exe\r\nEPSV\r\nSTOR x.bin\r\n"
    server = b"220 hi\r\n230 in\r\n229 Entering Extended Passive Mode (|||6446|)\r\n550 no such file\r\n" \
             b"229 Entering Extended Passive Mode (!!!7000!)\r\n150 go\r\n"
    s = parse_session(client, server)
    assert s.transfers[0].data == DataEndpoint("client", None, 6446)
    assert (s.transfers[0].reply, s.transfers[0].accepted) == (550, False)
    assert (s.transfers[1].data.port, s.transfers[1].reply, s.transfers[1].accepted) == (7000, None, True)


def test_auth_tls_makes_the_session_unreadable() -> None:
    s = parse_session(b"AUTH TLS\r\n\x16\x03\x01garbage", b"220 hi\r\n234 go ahead\r\n\x16\x03\x03")
    assert s.encrypted and s.transfers == []


def test_a_transfer_without_port_or_pasv_uses_the_default_data_port() -> None:
    s = parse_session(b"RETR f\r\n", b"220 hi\r\n150 go\r\n226 ok\r\n")
    assert s.transfers[0].data is None


def test_not_ftp_is_said_so() -> None:
    s = parse_session(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n")
    assert s.malformed and s.transfers == []


@settings(max_examples=300, deadline=None)
@given(client=st.binary(max_size=2000), server=st.binary(max_size=2000))
def test_hostile_bytes_never_raise(client: bytes, server: bytes) -> None:
    s = parse_session(client, server)
    for t in s.transfers:
        assert t.data is None or 0 <= t.data.port < 65536
