"""Plain HTTP (RFC 9112 request line; RFC 9113 cleartext preface), with tunnels called out.

Why: HTTP on a screen-transfer channel is never screen transfer, and some HTTP is a tunnel outright:
``CONNECT host:port`` asks a proxy for a raw TCP pipe, ``Upgrade: websocket`` turns the connection into an
arbitrary bidirectional stream, and ``RPC_IN_DATA``/``RPC_OUT_DATA`` (RPC over HTTP) and
``RDG_IN_DATA``/``RDG_OUT_DATA`` (RD Gateway's HTTP transport) carry other protocols inside. The detail
says which, so a report can tell "web page" from "tunnel".

Checks: the client's first line is ``METHOD SP request-target SP HTTP/1.0|1.1`` with a known method and a
target without spaces or control bytes, terminated by LF within the first 4 KiB; headers are read up to
the blank line (bounded) for Host and Upgrade. ``PRI * HTTP/2.0`` + ``SM`` is the HTTP/2 cleartext
preface. With no client bytes captured, a server status line ``HTTP/1.x NNN`` is accepted.
"""

from __future__ import annotations

import re

from ._util import first_line, lines, printable

NAME = "http"

METHODS = frozenset(
    b"GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK "
    b"REPORT SEARCH MKCALENDAR RPC_IN_DATA RPC_OUT_DATA RDG_IN_DATA RDG_OUT_DATA".split()
)
_TUNNEL_METHODS = {
    b"RPC_IN_DATA": "RPC over HTTP", b"RPC_OUT_DATA": "RPC over HTTP",
    b"RDG_IN_DATA": "RD Gateway HTTP transport", b"RDG_OUT_DATA": "RD Gateway HTTP transport",
}  # fmt: skip
_REQUEST = re.compile(rb"([A-Z_]{3,12}) ([\x21-\x7e]{1,4000}) HTTP/(1\.[01])")
_STATUS = re.compile(rb"HTTP/(1\.[01]) ([1-5]\d\d)(?: |$)")
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _headers(b: bytes) -> dict[bytes, bytes]:
    """Lower-cased header names to values, from after the request line to the blank line (bounded)."""
    out: dict[bytes, bytes] = {}
    for line in lines(b, max_lines=100)[1:]:
        if not line:
            break
        name, sep, value = line.partition(b":")
        if sep:
            out.setdefault(name.strip().lower(), value.strip())
    return out


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text for an HTTP request (tunnels named), the HTTP/2 preface, or a lone HTTP response."""
    if proto != 6:
        return None
    if client.startswith(_H2_PREFACE):
        return "HTTP/2 cleartext connection preface"
    line = first_line(client, 4096)
    if line is not None:
        m = _REQUEST.fullmatch(line)
        if m and m.group(1) in METHODS:
            method, target, version = m.group(1), m.group(2), m.group(3).decode()
            hdr = _headers(client)
            host = f" (Host {printable(hdr[b'host'], 80)})" if b"host" in hdr else ""
            if method == b"CONNECT":
                return f"HTTP/{version} CONNECT {printable(target, 120)}: a proxy tunnel request"
            if method in _TUNNEL_METHODS:
                what = _TUNNEL_METHODS[method]
                return f"HTTP/{version} {method.decode()} {printable(target, 80)}{host}: {what}, a tunnel"
            text = f"HTTP/{version} {method.decode()} {printable(target, 80)}{host}"
            if hdr.get(b"upgrade", b"").lower().startswith(b"websocket"):
                text += " with Upgrade: websocket (a WebSocket can carry any protocol)"
            elif b"upgrade" in hdr:
                text += f" with Upgrade: {printable(hdr[b'upgrade'], 40)}"
            return text
    if not client:
        sline = first_line(server, 1024)
        if sline is not None and _STATUS.match(sline):
            return f"HTTP response {printable(sline, 60)} (request not captured)"
    return None
