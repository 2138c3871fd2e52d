"""Extract files from reassembled HTTP/1.x and FTP control streams, for the file-sanitization check.

Why this exists: ``segverify replay`` must show that every file a file-sanitization channel (ファイル無害化)
delivers on its outbound leg is free of active content. Delivery is by HTTP (a download from the
sanitizer's portal, or an upload by the sanitizer to a file server) or by FTP. This module turns the two
reassembled byte streams of one TCP connection into the file bodies they carried; :mod:`.content` judges
them.

The input is hostile (it crossed a security boundary, or was crafted to defeat this very check), so:

* nothing here raises: whatever cannot be parsed becomes an :class:`HttpBody` whose ``note`` says what
  was wrong, with the unparsed bytes as ``data``. A body with a ``note`` or ``truncated`` set must be
  reported as *not inspectable*, never as clean (:attr:`HttpBody.inspectable`);
* nothing is allocated from a length field: a ``Content-Length`` or chunk size larger than what the
  capture holds gives the bytes that are present and ``truncated=True``;
* decompression (``Content-Encoding: gzip``/``deflate``) stops at :data:`MAX_DECODED` bytes of output and
  reports ``truncated`` -- a decompression bomb costs at most that much;
* work is linear in the input, with caps on header size, header count and multipart parts.

Which bodies are returned: every non-empty message body in either direction -- request bodies (POST, PUT,
... uploads; each file part of a ``multipart/*`` body separately) and response bodies of any status (a
browser renders an error page as readily as a download). The caller filters by ``status``/``method`` if
its policy needs to. A response delimited by connection close is complete only if the connection ended
with FIN: the caller, which knows, should treat it as truncated otherwise.
"""

from __future__ import annotations

import binascii
import re
import zlib
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_DECODED", "FtpCommand", "HttpBody", "ftp_transfers", "http_bodies"]

MAX_DECODED = 64 * 1024 * 1024
"""Largest decompressed body; beyond it the body is cut and ``truncated`` is set (decompression bombs)."""
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 256
MAX_PARTS = 1000
_MAX_CHUNK_LINE = 4096

UPLOAD = "upload"
"""Direction of a request body: client -> server."""
DOWNLOAD = "download"
"""Direction of a response body: server -> client."""

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) +(\S+) +HTTP/(\d)\.(\d) *")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) +(\d{3})(?: .*)?")
_REQUEST_PREFIX = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+( +\S*( +(H(T(T(P(/.*)?)?)?)?)?)?)?\Z", re.S)
_STATUS_PREFIX = re.compile(rb"(H(T(T(P(/.*)?)?)?)?)?\Z", re.S)
_PARAM = re.compile(r";\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+\*?)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^;]*)")


@dataclass(slots=True)
class HttpBody:
    """One file-carrying message body.

    ``direction`` is :data:`UPLOAD` (a request body) or :data:`DOWNLOAD` (a response body). ``method``,
    ``uri`` come from the request (None when the request was not seen), ``status`` from the response (None
    for uploads). ``filename`` is from ``Content-Disposition`` (``filename*`` first) or else the URI's last
    path segment. ``data`` is the body after transfer and content decoding. ``truncated`` says ``data`` is
    not the whole file (capture ended, decompression cap, ``206 Partial Content``); ``note`` says what
    could not be parsed or decoded. Either makes the body not inspectable.
    """

    direction: str
    method: str | None
    uri: str | None
    status: int | None
    content_type: str | None
    filename: str | None
    data: bytes
    truncated: bool
    note: str

    @property
    def inspectable(self) -> bool:
        """True only when ``data`` is the complete, correctly decoded file."""
        return not self.truncated and not self.note


@dataclass(slots=True)
class _Head:
    """A parsed request or status line plus headers (names lowercased, values latin-1 decoded)."""

    method: str | None
    uri: str | None
    status: int | None
    headers: list[tuple[str, str]]
    end: int  # offset just after the blank line

    def get(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


class _Malformed(Exception):
    """The stream stops being parseable HTTP at this point; the message says why."""


# --------------------------------------------------------------------------------------------------
# heads


def _parse_head(buf: bytes, pos: int, request: bool) -> _Head:
    """Parse one start line and header block at ``pos``; leading blank lines are tolerated (RFC 9112 2.2)."""
    n = len(buf)
    while pos < n and buf[pos] in (13, 10):
        pos += 1
    limit = min(n, pos + MAX_HEAD_BYTES)
    eol = buf.find(b"\n", pos, limit)
    if eol < 0:
        if limit - pos >= MAX_HEAD_BYTES:
            raise _Malformed(f"start line longer than {MAX_HEAD_BYTES} bytes")
        partial = buf[pos:limit]
        if (_REQUEST_PREFIX if request else _STATUS_PREFIX).match(partial):
            raise _Malformed("stream ends inside the start line")
        raise _Malformed(f"not HTTP/1.x: {partial[:40]!r}")
    line = buf[pos:eol].rstrip(b"\r")
    method = uri = None
    status = None
    if request:
        m = _REQUEST_LINE.fullmatch(line)
        if not m:
            raise _Malformed(f"not an HTTP/1.x request line: {line[:80]!r}")
        method, uri = m.group(1).decode("latin-1"), m.group(2).decode("latin-1")
    else:
        m = _STATUS_LINE.fullmatch(line)
        if not m:
            raise _Malformed(f"not an HTTP/1.x status line: {line[:80]!r}")
        status = int(m.group(3))
    headers: list[tuple[str, str]] = []
    p = eol + 1
    while True:
        eol = buf.find(b"\n", p, limit)
        if eol < 0:
            if limit < n:
                raise _Malformed(f"header block longer than {MAX_HEAD_BYTES} bytes")
            raise _Malformed("stream ends inside the header block")
        line = buf[p:eol].rstrip(b"\r")
        p = eol + 1
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if not headers:
                raise _Malformed("header continuation line without a header")
            k, v = headers[-1]
            headers[-1] = (k, f"{v} {line.strip().decode('latin-1')}")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise _Malformed(f"malformed header line: {line[:80]!r}")
        if len(headers) >= MAX_HEADERS:
            raise _Malformed(f"more than {MAX_HEADERS} header lines")
        headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    return _Head(method, uri, status, headers, p)


def _codings(values: list[str]) -> list[str]:
    return [c.strip().lower() for v in values for c in v.split(",") if c.strip()]


def _content_length(head: _Head) -> int | None:
    """The Content-Length, None when absent; differing or non-numeric values are malformed (smuggling)."""
    vals = {c.strip() for v in head.get("content-length") for c in v.split(",")}
    if not vals:
        return None
    if len(vals) != 1 or not next(iter(vals)).isdigit():
        raise _Malformed(f"invalid Content-Length {sorted(vals)[:3]!r}")
    return int(next(iter(vals)))


# --------------------------------------------------------------------------------------------------
# bodies


@dataclass(slots=True)
class _Raw:
    """A body after transfer decoding."""

    data: bytes
    end: int
    truncated: bool
    note: str


def _dechunk(buf: bytes, pos: int) -> _Raw:
    """Decode ``Transfer-Encoding: chunked`` from ``pos``, trailers included; never trusts a size."""
    pieces: list[bytes] = []
    n = len(buf)
    while True:
        eol = buf.find(b"\n", pos, min(n, pos + _MAX_CHUNK_LINE))
        if eol < 0:
            if n - pos >= _MAX_CHUNK_LINE:
                return _Raw(b"".join(pieces), n, True, "chunk-size line too long")
            return _Raw(b"".join(pieces), n, True, "capture ends inside the chunked body")
        size_txt = buf[pos:eol].split(b";", 1)[0].strip(b" \t\r")
        if not size_txt or len(size_txt) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in size_txt):
            return _Raw(b"".join(pieces), n, True, f"invalid chunk size {buf[pos:eol][:40]!r}")
        size = int(size_txt, 16)
        pos = eol + 1
        if size == 0:
            # trailer section: header lines up to a blank line
            limit = min(n, pos + MAX_HEAD_BYTES)
            while True:
                eol = buf.find(b"\n", pos, limit)
                if eol < 0:
                    # a capture that stops right after the last chunk lost only the final CRLF
                    return _Raw(b"".join(pieces), n, False, "" if pos >= n else "unterminated chunked trailer")
                line = buf[pos:eol].rstrip(b"\r")
                pos = eol + 1
                if not line:
                    return _Raw(b"".join(pieces), pos, False, "")
        piece = buf[pos : pos + size]
        pieces.append(piece)
        pos += len(piece)
        if len(piece) < size:
            return _Raw(b"".join(pieces), n, True, f"capture ends inside a chunk ({len(piece)} of {size} bytes)")
        if buf[pos : pos + 2] == b"\r\n":
            pos += 2
        elif buf[pos : pos + 1] == b"\n":
            pos += 1
        elif pos >= n:
            return _Raw(b"".join(pieces), n, True, "capture ends after a chunk")
        else:
            return _Raw(b"".join(pieces), n, True, "chunk data not followed by CRLF")


def _inflate(data: bytes, wbits: int, cap: int) -> tuple[bytes, bool, bool]:
    """Decompress with an output cap; returns (output, hit_cap, stream_complete). Raises zlib.error."""
    out = bytearray()
    rest = data
    complete = False
    while rest:
        d = zlib.decompressobj(wbits)
        buf = rest
        while buf and not d.eof:
            out += d.decompress(buf, cap + 1 - len(out))
            if len(out) > cap:
                return bytes(out[:cap]), True, False
            buf = d.unconsumed_tail
        if not d.eof:
            return bytes(out), False, False
        complete = True
        rest = d.unused_data
        if wbits != 16 + zlib.MAX_WBITS or not rest.startswith(b"\x1f\x8b"):
            break  # only gzip has concatenated members; anything else after the end is ignored
    return bytes(out), False, complete


def _content_decode(data: bytes, codings: list[str], truncated: bool) -> tuple[bytes, bool, str]:
    """Undo Content-Encoding (last applied first). Output capped at :data:`MAX_DECODED`."""
    for coding in reversed(codings):
        if coding in ("identity", "") or not data:
            continue
        try:
            if coding in ("gzip", "x-gzip"):
                out, capped, complete = _inflate(data, 16 + zlib.MAX_WBITS, MAX_DECODED)
            elif coding == "deflate":
                try:  # RFC says zlib-wrapped; some servers send raw deflate
                    out, capped, complete = _inflate(data, zlib.MAX_WBITS, MAX_DECODED)
                except zlib.error:
                    out, capped, complete = _inflate(data, -zlib.MAX_WBITS, MAX_DECODED)
            else:
                return data, truncated, f"unsupported Content-Encoding {coding!r}; body left encoded"
        except zlib.error as exc:
            return data, truncated, f"corrupt {coding} Content-Encoding: {exc}"
        if capped:
            return out, True, f"{coding} output exceeds the {MAX_DECODED} byte cap (decompression bomb?); cut"
        if not complete and not truncated:
            return out, True, f"{coding} stream is incomplete or corrupt"
        data = out  # an incomplete stream of a body already cut by the capture: keep what decoded
    return data, truncated, ""


def _header_text(value: str) -> str:
    """Header values arrive as latin-1 here; recover UTF-8 or Shift_JIS file names that browsers send raw."""
    raw = value.encode("latin-1", "replace")
    for enc in ("utf-8", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return value


def _params(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _PARAM.findall(value):
        v = v.strip()
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out.setdefault(k.lower(), v)
    return out


def _disposition_filename(values: list[str]) -> str | None:
    for value in values:
        params = _params(value)
        ext = params.get("filename*")
        if ext and "'" in ext:
            charset, _, rest = ext.partition("'")
            _, _, encoded = rest.partition("'")
            try:
                name = unquote(encoded, encoding=charset or "utf-8", errors="replace")
            except LookupError:
                name = unquote(encoded, encoding="utf-8", errors="replace")
            if name:
                return name
        if params.get("filename"):
            return _header_text(params["filename"])
    return None


def _uri_filename(uri: str | None) -> str | None:
    if not uri:
        return None
    try:
        path = urlsplit(uri).path if "://" in uri else uri.split("?", 1)[0].split("#", 1)[0]
    except ValueError:
        path = uri.split("?", 1)[0]
    seg = path.rsplit("/", 1)[-1]
    return unquote(seg, errors="replace") or None


def _multipart(raw: bytes, boundary: str, truncated: bool, base: HttpBody) -> list[HttpBody]:
    """Split a ``multipart/*`` body; each part with a filename or a Content-Type becomes a body."""
    delim = b"--" + boundary.encode("latin-1", "replace")
    first = raw.find(delim)
    if first < 0:
        return [_with(base, raw, truncated, f"multipart boundary {boundary[:70]!r} not found in body")]
    out: list[HttpBody] = []
    pos = first + len(delim)
    n = len(raw)
    for _ in range(MAX_PARTS + 1):
        if raw[pos : pos + 2] == b"--":
            return out  # closing delimiter
        if len(out) >= MAX_PARTS:
            out.append(_with(base, b"", truncated, f"more than {MAX_PARTS} multipart parts; rest not extracted"))
            return out
        eol = raw.find(b"\n", pos)
        if eol < 0:
            out.append(_with(base, b"", True, "multipart body ends after a boundary"))
            return out
        part_start = eol + 1
        nxt = raw.find(b"\n" + delim, part_start)  # one scan per part: linear in the body
        sep = 1
        if nxt > part_start and raw[nxt - 1] == 13:
            nxt, sep = nxt - 1, 2
        complete = nxt >= 0
        part = raw[part_start : nxt if complete else n]
        try:
            head = _parse_head(b"HTTP/1.1 200 \r\n" + part, 0, request=False)
            body = (b"HTTP/1.1 200 \r\n" + part)[head.end :]
            note = ""
        except _Malformed as exc:
            head, body, note = _Head(None, None, None, [], 0), part, f"malformed multipart part headers: {exc}"
        disp = head.get("content-disposition")
        ctype = (head.get("content-type") or [None])[0]
        filename = _disposition_filename(disp)
        cte = ((head.get("content-transfer-encoding") or [""])[0]).strip().lower()
        if cte == "base64" and not note:
            try:
                body = binascii.a2b_base64(body)
            except binascii.Error as exc:
                note = f"corrupt base64 part: {exc}"
        elif cte not in ("", "binary", "7bit", "8bit") and not note:
            note = f"unsupported part Content-Transfer-Encoding {cte!r}"
        if filename is not None or ctype is not None or note or not complete:
            out.append(
                HttpBody(
                    base.direction, base.method, base.uri, base.status, ctype, filename or base.filename, body,
                    truncated or not complete, note or ("" if complete else "multipart body ends inside a part"),
                )
            )
        if not complete:
            return out
        pos = nxt + sep + len(delim)
    return out


def _with(base: HttpBody, data: bytes, truncated: bool, note: str) -> HttpBody:
    return HttpBody(base.direction, base.method, base.uri, base.status, base.content_type, base.filename, data,
                    truncated, note)  # fmt: skip


def _finish(
    raw: _Raw, head: _Head, direction: str, method: str | None, uri: str | None, status: int | None, extra_note: str
) -> list[HttpBody]:
    """Turn a transfer-decoded body into HttpBody values: content decoding, filename, multipart split."""
    ctype = (head.get("content-type") or [None])[0]
    filename = _disposition_filename(head.get("content-disposition")) or _uri_filename(uri)
    truncated = raw.truncated or status == 206
    notes = [x for x in (extra_note, raw.note) if x]
    if status == 206:
        notes.append("206 Partial Content: only part of the file")
    data, truncated, cnote = _content_decode(raw.data, _codings(head.get("content-encoding")), truncated)
    if cnote:
        notes.append(cnote)
    base = HttpBody(direction, method, uri, status, ctype, filename, data, truncated, "; ".join(notes))
    if not data and not base.note:
        return []
    if ctype and ctype.lower().startswith("multipart/") and not cnote:
        boundary = _params(ctype).get("boundary")
        if not boundary:
            return [_with(base, data, truncated, "; ".join([*notes, "multipart body without a boundary"]))]
        parts = _multipart(data, boundary, truncated, base)
        if base.note:
            parts = [_with(p, p.data, p.truncated, "; ".join(x for x in (base.note, p.note) if x)) for p in parts]
            if not parts:
                parts = [base]
        return parts
    return [base]


def _framing_note(head: _Head) -> str:
    if head.get("transfer-encoding") and head.get("content-length"):
        return "both Transfer-Encoding and Content-Length present (request smuggling?); used chunked"
    return ""


# --------------------------------------------------------------------------------------------------
# connections


@dataclass(slots=True)
class _Req:
    head: _Head
    bodies: list[HttpBody]
    end: int


def _parse_requests(buf: bytes) -> tuple[list[_Req], tuple[int, str] | None]:
    """All requests of the client stream, and (offset, reason) where parsing had to stop, if it did."""
    reqs: list[_Req] = []
    pos = 0
    n = len(buf)
    while True:
        while pos < n and buf[pos] in (13, 10):
            pos += 1
        if pos >= n:
            return reqs, None
        start = pos
        try:
            head = _parse_head(buf, pos, request=True)
            te = _codings(head.get("transfer-encoding"))
            cl = _content_length(head)
            note = _framing_note(head)
            if te:
                if te[-1] != "chunked":
                    raise _Malformed(f"request Transfer-Encoding {te!r} does not end in chunked")
                raw = _dechunk(buf, head.end)
                non_chunked = [c for c in te[:-1] if c != "identity"]
                if non_chunked:
                    raw.data, raw.truncated, tnote = _content_decode(raw.data, non_chunked, raw.truncated)
                    raw.note = "; ".join(x for x in (raw.note, tnote) if x)
            elif cl:
                body = buf[head.end : head.end + cl]
                miss = cl - len(body)
                raw = _Raw(body, head.end + len(body), miss > 0,
                           f"capture ends after {len(body)} of {cl} bytes" if miss > 0 else "")  # fmt: skip
            else:
                raw = _Raw(b"", head.end, False, "")
        except _Malformed as exc:
            return reqs, (start, str(exc))
        bodies = _finish(raw, head, UPLOAD, head.method, head.uri, None, note)
        reqs.append(_Req(head, bodies, raw.end))
        pos = raw.end
        if raw.truncated or raw.end >= n:
            return reqs, None


def _http_bodies(client: bytes, server: bytes) -> list[HttpBody]:
    reqs, cerr = _parse_requests(client)
    responses: list[list[HttpBody]] = []
    serr: tuple[int, str] | None = None
    pos = 0
    n = len(server)
    j = 0  # index of the request the next final response answers
    while True:
        while pos < n and server[pos] in (13, 10):
            pos += 1
        if pos >= n:
            break
        start = pos
        req = reqs[j] if j < len(reqs) else None
        method = req.head.method if req else None
        uri = req.head.uri if req else None
        try:
            head = _parse_head(server, pos, request=False)
            status = head.status or 0
            if 100 <= status < 200 and status != 101:
                pos = head.end  # interim response: the final one follows for the same request
                continue
            tunnel = status == 101 or (method == "CONNECT" and 200 <= status < 300)
            note = _framing_note(head)
            te = _codings(head.get("transfer-encoding"))
            if tunnel or method == "HEAD" or status in (204, 304) or status < 200:
                raw = _Raw(b"", head.end, False, "")
            elif te and te[-1] == "chunked":
                raw = _dechunk(server, head.end)
                extra = [c for c in te[:-1] if c != "identity"]
                if extra:
                    raw.data, raw.truncated, tnote = _content_decode(raw.data, extra, raw.truncated)
                    raw.note = "; ".join(x for x in (raw.note, tnote) if x)
            elif te:
                raw = _Raw(server[head.end :], n, False, "")
                raw.data, raw.truncated, raw.note = _content_decode(raw.data, [c for c in te if c != "identity"], False)
            else:
                cl = _content_length(head)
                if cl is None:
                    raw = _Raw(server[head.end :], n, False, "")  # delimited by connection close
                else:
                    body = server[head.end : head.end + cl]
                    miss = cl - len(body)
                    raw = _Raw(body, head.end + len(body), miss > 0,
                               f"capture ends after {len(body)} of {cl} bytes" if miss > 0 else "")  # fmt: skip
        except _Malformed as exc:
            serr = (start, str(exc))
            break
        if req is None and (reqs or cerr):
            note = "; ".join(x for x in (note, "response without a matching request") if x)
        responses.append(_finish(raw, head, DOWNLOAD, method, uri, head.status, note))
        j += 1
        pos = raw.end
        if tunnel:
            # the rest of both streams is another protocol (WebSocket, TLS through a proxy, ...)
            if req is not None:
                del reqs[j:]
                if cerr and cerr[0] >= req.end:
                    cerr = None
            break
        if raw.truncated:
            break
    out: list[HttpBody] = []
    for i in range(max(len(reqs), len(responses))):
        if i < len(reqs):
            out.extend(reqs[i].bodies)
        if i < len(responses):
            out.extend(responses[i])
    if cerr is not None:
        off, why = cerr
        out.append(HttpBody(UPLOAD, None, None, None, None, None, client[off:], False,
                            f"client stream not parseable as HTTP/1.x at offset {off}: {why}"))  # fmt: skip
    if serr is not None:
        off, why = serr
        req = reqs[j] if j < len(reqs) else None
        out.append(HttpBody(DOWNLOAD, req.head.method if req else None, req.head.uri if req else None, None, None,
                            None, server[off:], False,
                            f"server stream not parseable as HTTP/1.x at offset {off}: {why}"))  # fmt: skip
    return out


def http_bodies(client: bytes, server: bytes) -> list[HttpBody]:
    """Every non-empty message body of one HTTP/1.x connection, in message order; never raises.

    ``client`` and ``server`` are the reassembled client->server and server->client byte streams.
    Requests and responses are paired in order (pipelining, keep-alive); interim 1xx responses are
    skipped; HEAD, 204 and 304 responses have no body; after ``101 Switching Protocols`` or a successful
    ``CONNECT`` parsing stops. Unparseable input yields a body whose ``note`` says why.
    """
    try:
        return _http_bodies(bytes(client), bytes(server))
    except Exception as exc:  # noqa: BLE001 - a parser bug must surface as "not inspectable", not a crash
        return [HttpBody(DOWNLOAD, None, None, None, None, None, b"", True,
                         f"internal HTTP parser error: {type(exc).__name__}: {exc}")]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# FTP


@dataclass(slots=True)
class FtpCommand:
    """One FTP control command relevant to file transfer, with the reply it got.

    ``verb`` is RETR/STOR/STOU/APPE (transfers), PORT/EPRT/PASV/EPSV (data endpoints), REST (restart
    offset), or AUTH/CCC when the control channel became encrypted (later commands invisible: ``note``).
    ``argument`` is the file name for a transfer (for STOU, the name the server reported, if any).
    ``host``/``port`` is the data endpoint: for PORT/EPRT the client's listening address, for PASV/EPSV the
    server's from its 227/229 reply (EPSV gives no host: it is the control connection's server); a transfer
    carries the endpoint in force when it was issued, ``passive`` saying which side listens. ``reply`` is
    the final reply code (226/250 = success). ``offset`` is a REST offset in force for a transfer: the
    data connection then holds only the file's tail (``truncated`` for the judge).
    """

    verb: str
    argument: str
    reply: int | None
    direction: str = ""  # "download" (RETR), "upload" (STOR/STOU/APPE), "" otherwise
    host: str | None = None
    port: int | None = None
    passive: bool | None = None
    offset: int = 0
    note: str = ""


_FTP_TRANSFERS = {"RETR": DOWNLOAD, "STOR": UPLOAD, "STOU": UPLOAD, "APPE": UPLOAD}
_PASV_REPLY = re.compile(r"(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3})")
_EPSV_REPLY = re.compile(r"\((.)\1\1(\d{1,5})\1\)")


def _ftp_text(line: bytes) -> str:
    for enc in ("utf-8", "cp932"):
        try:
            return line.decode(enc)
        except UnicodeDecodeError:
            continue
    return line.decode("latin-1")


def _ftp_replies(server: bytes) -> list[tuple[int, str]]:
    """Replies as (code, text); multi-line replies ``ddd-`` ... ``ddd `` are joined."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, list[str]] | None = None
    for raw in server.split(b"\n"):
        line = _ftp_text(raw.rstrip(b"\r"))
        code_txt = line[:3]
        if pending is not None:
            pending[1].append(line)
            if code_txt == str(pending[0]) and line[3:4] == " ":
                out.append((pending[0], "\n".join(pending[1])))
                pending = None
            continue
        if len(line) >= 3 and code_txt.isdigit():
            if line[3:4] == "-":
                pending = (int(code_txt), [line])
            else:
                out.append((int(code_txt), line))
    if pending is not None:
        out.append((pending[0], "\n".join(pending[1])))
    return out


def _ports(parts: list[str]) -> tuple[str, int] | None:
    try:
        nums = [int(x) for x in parts]
    except ValueError:
        return None
    if len(nums) != 6 or any(not 0 <= x <= 255 for x in nums):
        return None
    return ".".join(map(str, nums[:4])), nums[4] * 256 + nums[5]


def ftp_transfers(control_client: bytes, control_server: bytes) -> list[FtpCommand]:
    """Transfers and data endpoints announced on one FTP control connection, in order; never raises.

    The caller pairs each transfer with the data connection to its ``host``/``port`` (or, for EPSV and
    active mode without PORT, by order) and judges the bytes under the transfer's file name.
    """
    try:
        return _ftp_transfers(bytes(control_client), bytes(control_server))
    except Exception as exc:  # noqa: BLE001
        return [FtpCommand("?", "", None, note=f"internal FTP parser error: {type(exc).__name__}: {exc}")]


def _ftp_transfers(client: bytes, server: bytes) -> list[FtpCommand]:
    replies = _ftp_replies(server)
    r = 0
    while r < len(replies) and replies[r][0] // 100 == 1:  # greeting: optional 120, then 220 (or 421)
        r += 1
    r += 1 if r < len(replies) else 0

    def reply_for() -> tuple[int | None, list[tuple[int, str]]]:
        nonlocal r
        seen = []
        while r < len(replies):
            code, text = replies[r]
            r += 1
            seen.append((code, text))
            if code // 100 != 1:
                return code, seen
        return None, seen

    out: list[FtpCommand] = []
    endpoint: tuple[str | None, int | None, bool | None] = (None, None, None)
    rest_offset = 0
    mode_z = False
    for raw in client.split(b"\n"):
        line = _ftp_text(raw.rstrip(b"\r"))
        if not line.strip():
            continue
        verb, _, arg = line.strip().partition(" ")
        verb = verb.upper()
        if not verb.isalpha() or len(verb) > 4:
            continue  # not a command line (garbage); its reply, if any, is not consumed
        code, seen = reply_for()
        if verb == "PORT":
            ep = _ports(arg.strip().split(","))
            note = "" if ep else f"unparseable PORT argument {arg[:60]!r}"
            endpoint = (ep[0], ep[1], False) if ep else (None, None, False)
            out.append(FtpCommand(verb, arg.strip(), code, "", endpoint[0], endpoint[1], False, note=note))
        elif verb == "EPRT":
            fields = arg.strip()[1:].split(arg.strip()[:1]) if arg.strip() else []
            ok = len(fields) >= 3 and fields[2].isdigit() and int(fields[2]) < 65536
            endpoint = (fields[1], int(fields[2]), False) if ok else (None, None, False)
            out.append(FtpCommand(verb, arg.strip(), code, "", endpoint[0], endpoint[1], False,
                                  note="" if ok else f"unparseable EPRT argument {arg[:60]!r}"))  # fmt: skip
        elif verb in ("PASV", "EPSV"):
            text = seen[-1][1] if seen else ""
            host: str | None = None
            port: int | None = None
            if verb == "PASV" and code == 227 and (m := _PASV_REPLY.search(text)):
                ep = _ports(list(m.groups()))
                if ep:
                    host, port = ep
            elif verb == "EPSV" and code == 229 and (m := _EPSV_REPLY.search(text)):
                port = int(m.group(2)) if int(m.group(2)) < 65536 else None
            note = "" if port is not None else f"no data endpoint in reply {text[:60]!r}"
            endpoint = (host, port, True)
            out.append(FtpCommand(verb, arg.strip(), code, "", host, port, True, note=note))
        elif verb == "REST":
            rest_offset = int(arg.strip()) if arg.strip().isdigit() else 0
            out.append(FtpCommand(verb, arg.strip(), code, offset=rest_offset))
        elif verb == "MODE":
            mode_z = arg.strip().upper() == "Z" and code is not None and code // 100 == 2
        elif verb in _FTP_TRANSFERS:
            name = arg.strip()
            if verb == "STOU" and not name:
                for _, text in seen:
                    if m := re.search(r"FILE:\s*(\S+)", text):
                        name = m.group(1)
                        break
            notes = []
            if endpoint[1] is None:
                notes.append("no data endpoint announced (default data port or unseen)")
            if mode_z:
                notes.append("MODE Z: data connection is deflate-compressed")
            out.append(FtpCommand(verb, name, code, _FTP_TRANSFERS[verb], endpoint[0], endpoint[1], endpoint[2],
                                  rest_offset, "; ".join(notes)))  # fmt: skip
            endpoint = (None, None, None) if endpoint[2] else endpoint  # a passive endpoint serves one transfer
            rest_offset = 0  # REST applies to the next transfer only (PASV/TYPE may come in between)
        elif verb in ("AUTH", "CCC") or (verb == "PROT" and arg.strip().upper() == "P"):
            if verb == "AUTH" and code == 234:
                out.append(FtpCommand(verb, arg.strip(), code,
                                      note="control channel switched to TLS; later commands are not visible"))
                break
            if verb == "PROT" and code is not None and code // 100 == 2:
                out.append(FtpCommand(verb, arg.strip(), code, note="data connections are TLS-protected"))
    return out
