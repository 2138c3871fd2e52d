"""HTTP/1.x body and FTP transfer extraction from reassembled streams, including hostile framing."""

from __future__ import annotations

import base64
import gzip
import time
import tracemalloc
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segverify.capture.content import judge
from segverify.capture.http import DOWNLOAD, MAX_DECODED, UPLOAD, ftp_transfers, http_bodies

PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\0" * 50 + b"\x40\0\0\0" + b"PE\0\0\x4c\x01"


def chunked(data: bytes, size: int = 7, trailers: bytes = b"") -> bytes:
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size])
                   for i in range(0, len(data), size))  # fmt: skip
    return out + b"0\r\n" + trailers + b"\r\n"


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head += f"Content-Length: {len(body)}\r\n"
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


def test_chunked_gzip_with_trailers() -> None:
    payload = "会議資料 minutes\n".encode() * 200
    server = response(chunked(gzip.compress(payload), trailers=b"X-Checksum: abc\r\n"), "Transfer-Encoding: chunked",
                      "Content-Encoding: gzip", "Content-Type: text/plain")  # fmt: skip
    server += response(b"second")
    client = b"GET /files/minutes.txt HTTP/1.1\r\nHost: cdr\r\n\r\nGET /b HTTP/1.1\r\nHost: cdr\r\n\r\n"
    bodies = http_bodies(client, server)
    assert [b.data for b in bodies] == [payload, b"second"]
    first = bodies[0]
    assert (first.direction, first.method, first.uri, first.status) == (DOWNLOAD, "GET", "/files/minutes.txt", 200)
    assert (first.filename, first.content_type, first.inspectable) == ("minutes.txt", "text/plain", True)
    assert judge(first.data, first.filename).clean is True


def test_pipelined_requests_head_1xx_204_304_keep_alive() -> None:
    client = (b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
              b"HEAD /big.iso HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /gone HTTP/1.1\r\n\r\n"
              b"GET /cached HTTP/1.1\r\n\r\n"
              b"GET /setup.exe HTTP/1.1\r\n\r\n")  # fmt: skip
    server = (response(b"AAA")
              + b"HTTP/1.1 200 OK\r\nContent-Length: 999999\r\n\r\n"  # HEAD: no body despite the length
              + b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
              + b"HTTP/1.1 304 Not Modified\r\n\r\n"
              + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
              + response(PE, 'Content-Disposition: attachment; filename="setup.exe"'))  # fmt: skip
    bodies = http_bodies(client, server)
    assert [(b.uri, b.data) for b in bodies] == [("/a.txt", b"AAA"), ("/setup.exe", PE)]
    assert all(b.inspectable for b in bodies)
    v = judge(bodies[1].data, bodies[1].filename)
    assert v.clean is False and "setup.exe" in v.reasons[0]


def test_body_delimited_by_connection_close() -> None:
    server = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall the rest"
    bodies = http_bodies(b"GET /x.txt HTTP/1.0\r\n\r\n", server)
    assert [b.data for b in bodies] == [b"all the rest"]


def test_multipart_upload_each_file_part() -> None:
    mp = (b"--XyZ\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n"
          b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"report.pdf\"\r\n"
          b"Content-Type: application/pdf\r\n\r\n" + PE + b"\r\n"
          b"--XyZ\r\nContent-Disposition: form-data; name=\"g\"; filename*=UTF-8''%E8%B3%87%E6%96%99.txt\r\n\r\n"
          b"plain\r\n--XyZ\r\nContent-Disposition: form-data; name=\"h\"; filename=\"b64.bin\"\r\n"
          b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PE) + b"\r\n--XyZ--\r\n")  # fmt: skip
    client = (b'POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary="XyZ"\r\n'
              b"Content-Length: %d\r\n\r\n" % len(mp)) + mp  # fmt: skip
    bodies = http_bodies(client, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    assert [(b.filename, b.data) for b in bodies] == [("report.pdf", PE), ("資料.txt", b"plain"), ("b64.bin", PE)]
    assert all(b.direction == UPLOAD and b.method == "POST" and b.inspectable for b in bodies)
    assert judge(bodies[0].data, bodies[0].filename).clean is False


def test_unterminated_multipart_is_truncated() -> None:
    mp = b'--B\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\npartial data'
    client = b"POST /u HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n" % len(
        mp) + mp  # fmt: skip
    (body,) = http_bodies(client, b"")
    assert body.filename == "a.bin" and body.truncated and not body.inspectable


def test_put_upload_filename_from_uri_and_chunked_request() -> None:
    client = b"PUT /share/%E5%A0%B1%E5%91%8A.docx?v=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    client += chunked(b"x" * 30)
    (body,) = http_bodies(client, b"HTTP/1.1 201 Created\r\n\r\n")
    assert (body.direction, body.method, body.filename, body.data) == (UPLOAD, "PUT", "報告.docx", b"x" * 30)


def test_deflate_zlib_and_raw() -> None:
    for enc in (zlib.compress(b"hello"), zlib.compress(b"hello")[2:-4]):
        (body,) = http_bodies(b"GET /d HTTP/1.1\r\n\r\n", response(enc, "Content-Encoding: deflate"))
        assert body.data == b"hello" and body.inspectable


def test_gzip_bomb_is_capped_truncated_and_not_clean() -> None:
    bomb = gzip.compress(b"\0" * (MAX_DECODED + 4096), compresslevel=9)
    tracemalloc.start()
    t = time.monotonic()
    (body,) = http_bodies(b"GET /bomb HTTP/1.1\r\n\r\n", response(bomb, "Content-Encoding: gzip"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.monotonic() - t < 30
    assert peak < 4 * MAX_DECODED
    assert len(body.data) == MAX_DECODED and body.truncated and "cap" in body.note
    assert judge(body.data, body.filename, body.truncated).clean is None


def test_content_length_beyond_capture_is_truncated_without_allocation() -> None:
    tracemalloc.start()
    bodies = http_bodies(b"GET /a HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\nabc")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 << 20
    (body,) = bodies
    assert body.data == b"abc" and body.truncated and "3 of 99999999999999" in body.note


def test_huge_chunk_size_is_truncated() -> None:
    (body,) = http_bodies(b"", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\nabc")
    assert body.data == b"abc" and body.truncated
    (body,) = http_bodies(b"", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc")
    assert "invalid chunk size" in body.note


def test_malformed_headers_are_reported_not_dropped() -> None:
    bodies = http_bodies(b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n", b"HTTP/1.1 200 OK\r\nX : y\r\n\r\nbody")
    notes = [b.note for b in bodies]
    assert any("malformed header line" in n and "client" in n for n in notes)
    assert any("malformed header line" in n and "server" in n for n in notes)
    assert not any(b.inspectable for b in bodies)


def test_not_http_at_all() -> None:
    (body,) = http_bodies(b"", b"\x16\x03\x03\x00\x10 tls record bytes")
    assert "not HTTP/1.x" in body.note and body.data.startswith(b"\x16\x03")


def test_smuggling_style_framing_is_flagged() -> None:
    server = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    (body,) = http_bodies(b"GET /a HTTP/1.1\r\n\r\n", server)
    assert body.data == b"abc" and "request smuggling" in body.note
    (body,) = http_bodies(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
    assert "invalid Content-Length" in body.note


def test_partial_content_and_unsupported_encoding() -> None:
    (body,) = http_bodies(b"GET /a HTTP/1.1\r\n\r\n", response(b"abc", status="206 Partial Content"))
    assert body.truncated and "206" in body.note
    (body,) = http_bodies(b"GET /a HTTP/1.1\r\n\r\n", response(b"\x1b\x00", "Content-Encoding: br"))
    assert "unsupported Content-Encoding" in body.note and not body.inspectable


def test_corrupt_gzip_body() -> None:
    (body,) = http_bodies(b"GET /a HTTP/1.1\r\n\r\n", response(b"\x1f\x8bnot gzip at all", "Content-Encoding: gzip"))
    assert "gzip" in body.note and not body.inspectable


def test_switching_protocols_stops_parsing() -> None:
    client = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f"
    server = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    assert http_bodies(client, server) == []


def test_response_without_request_side() -> None:
    (body,) = http_bodies(b"", response(b"data"))
    assert body.method is None and body.data == b"data"


# ------------------------------------------------------------------------------------------------
# FTP


def test_ftp_passive_active_and_extended() -> None:
    client = (b"USER anonymous\r\nPASS x\r\nTYPE I\r\nPASV\r\nRETR in/a.docx\r\n"
              b"PORT 192,0,2,7,19,136\r\nSTOR out/b.exe\r\nEPRT |2|2001:db8::7|5001|\r\nAPPE log.txt\r\n"
              b"REST 100\r\nEPSV\r\nRETR big.iso\r\nEPSV\r\nSTOU\r\nQUIT\r\n")  # fmt: skip
    server = (b"220-Welcome\r\n220-to the CDR\r\n220 ready\r\n331 pw\r\n230 ok\r\n200 binary\r\n"
              b"227 Entering Passive Mode (192,0,2,1,195,80).\r\n150 opening\r\n226 done\r\n"
              b"200 PORT ok\r\n150 opening\r\n226 done\r\n200 EPRT ok\r\n150 ok\r\n226 done\r\n"
              b"350 restarting\r\n229 Entering Extended Passive Mode (|||50001|)\r\n150 ok\r\n226 done\r\n"
              b"229 Entering Extended Passive Mode (|||50002|)\r\n150 FILE: upload.0001\r\n226 done\r\n"
              b"221 bye\r\n")  # fmt: skip
    cmds = ftp_transfers(client, server)
    transfers = [c for c in cmds if c.direction]
    assert [(c.verb, c.argument, c.direction, c.reply) for c in transfers] == [
        ("RETR", "in/a.docx", DOWNLOAD, 226),
        ("STOR", "out/b.exe", UPLOAD, 226),
        ("APPE", "log.txt", UPLOAD, 226),
        ("RETR", "big.iso", DOWNLOAD, 226),
        ("STOU", "upload.0001", UPLOAD, 226),
    ]
    assert [(c.host, c.port, c.passive) for c in transfers] == [
        ("192.0.2.1", 50000, True),
        ("192.0.2.7", 5000, False),
        ("2001:db8::7", 5001, False),
        (None, 50001, True),
        (None, 50002, True),
    ]
    assert [c.offset for c in transfers] == [0, 0, 0, 100, 0]
    assert [c.verb for c in cmds if not c.direction] == ["PASV", "PORT", "EPRT", "REST", "EPSV", "EPSV"]


def test_ftp_tls_and_garbage() -> None:
    cmds = ftp_transfers(b"AUTH TLS\r\n\x16\x03\x01\x02\x00garbage\r\n", b"220 hi\r\n234 go ahead\r\n\x16\x03\x03")
    assert cmds[-1].verb == "AUTH" and "TLS" in cmds[-1].note
    (cmd,) = ftp_transfers(b"RETR a\r\n", b"")
    assert cmd.reply is None and "no data endpoint" in cmd.note


# ------------------------------------------------------------------------------------------------
# hostile input

HTTPISH = st.lists(
    st.sampled_from([b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"Content-Length: 5\r\n", b"\r\n", b"abc",
                     b"Transfer-Encoding: chunked\r\n", b"5\r\n", b"0\r\n", b"Content-Encoding: gzip\r\n",
                     b"Content-Type: multipart/form-data; boundary=b\r\n", b"--b\r\n", b"--b--\r\n",
                     b"HEAD /x HTTP/1.0\r\n", b"HTTP/1.1 101 Switching\r\n", b"HTTP/1.1 100 Continue\r\n",
                     gzip.compress(b"zz"), b"\x00\xff"]),  # fmt: skip
    max_size=30,
).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048), HTTPISH), st.one_of(st.binary(max_size=2048), HTTPISH))
def test_http_bodies_never_raises(client: bytes, server: bytes) -> None:
    for b in http_bodies(client, server):
        assert isinstance(b.data, bytes)
        assert len(b.data) <= MAX_DECODED
        assert b.direction in (UPLOAD, DOWNLOAD)
        judge(b.data, b.filename, b.truncated)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1024), st.binary(max_size=1024))
def test_ftp_transfers_never_raises(client: bytes, server: bytes) -> None:
    for c in ftp_transfers(client, server):
        assert isinstance(c.verb, str)
