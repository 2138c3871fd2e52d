"""TLS: a ClientHello (with its server name and ALPN), or a server-only / mid-session record stream.

Why: on a screen-transfer channel TLS that did not start with a screen protocol's own negotiation is the
typical carrier of a tunnel (HTTPS proxy, VPN), so it must be named as such, with whatever the
handshake reveals in clear text: SNI (RFC 6066), ALPN (RFC 7301) and whether TLS 1.3 is offered.

Checks: the client's bytes start with handshake records (content type 22, version 3.0-3.4, length at
most 2^14 + 2048); the handshake messages they carry (a ClientHello may span records) start with type 1
and a client_version of 3.x. The body is walked field by field, each length checked against the bytes
actually present, so a cut or lying length ends the walk instead of raising; extensions are read only
as far as they were captured. When only the server side is present, a ServerHello is enough. A flow
captured after its handshake is recognised by a chain of at least two well-formed records from the
first byte (or one that ends exactly at the end of the bytes).
"""

from __future__ import annotations

from ._util import be16, be24, printable

NAME = "tls"

_MAX_RECORD = (1 << 14) + 2048
_TYPES = {20, 21, 22, 23}
_MAX_RECORDS = 64


def _record_ok(b: bytes, pos: int) -> int:
    """Length of the record whose header is at ``pos`` if the header is well-formed, else -1."""
    if pos + 5 > len(b) or b[pos] not in _TYPES or b[pos + 1] != 3 or b[pos + 2] > 4:
        return -1
    n = be16(b, pos + 3)
    return n if 0 < n <= _MAX_RECORD else -1


def _handshake_bytes(b: bytes) -> bytes:
    """The handshake-protocol bytes carried by the leading run of handshake records (bounded by ``b``)."""
    out, pos = [], 0
    for _ in range(_MAX_RECORDS):
        if pos >= len(b) or b[pos] != 22:
            break
        n = _record_ok(b, pos)
        if n < 0:
            break
        out.append(b[pos + 5 : pos + 5 + n])
        pos += 5 + n
    return b"".join(out)


def _client_hello(b: bytes) -> dict | None:
    """Parse the ClientHello at the start of ``b``; None unless it is one."""
    hs = _handshake_bytes(b)
    if len(hs) < 6 or hs[0] != 1 or hs[4] != 3:
        return None
    n = be24(hs, 1)
    if n < 38:
        return None
    body = hs[4 : 4 + n]
    info: dict = {"sni": None, "alpn": [], "tls13": False, "complete": False}
    pos = 2 + 32  # client_version, random
    if pos >= len(body):
        return info
    pos += 1 + body[pos]  # session_id
    cs = be16(body, pos)
    if cs < 0:
        return info
    pos += 2 + cs
    if pos >= len(body):
        return info
    pos += 1 + body[pos]  # compression_methods
    ext_len = be16(body, pos)
    if ext_len < 0:
        return info
    pos += 2
    end = min(len(body), pos + ext_len)
    for _ in range(256):  # each step consumes >= 4 bytes, so the buffer bounds this anyway
        etype, elen = be16(body, pos), be16(body, pos + 2)
        if etype < 0 or elen < 0 or pos + 4 > end:
            break
        data = body[pos + 4 : min(end, pos + 4 + elen)]
        if etype == 0:
            info["sni"] = _sni(data)
        elif etype == 16:
            info["alpn"] = _alpn(data)
        elif etype == 43:
            info["tls13"] = any(data[i : i + 2] == b"\x03\x04" for i in range(1, len(data) - 1, 2))
        pos += 4 + elen
    info["complete"] = pos == end
    return info


def _sni(data: bytes) -> str | None:
    pos = 2  # server_name_list length
    for _ in range(8):
        if pos + 3 > len(data):
            return None
        kind, n = data[pos], be16(data, pos + 1)
        name = data[pos + 3 : pos + 3 + n]
        if kind == 0 and name:
            return printable(name, 253)
        pos += 3 + max(n, 0)
    return None


def _alpn(data: bytes) -> list[str]:
    out, pos = [], 2  # protocol_name_list length
    while pos < len(data) and len(out) < 8:
        n = data[pos]
        out.append(printable(data[pos + 1 : pos + 1 + n], 32))
        pos += 1 + n
    return out


def _server_hello(b: bytes) -> bool:
    hs = _handshake_bytes(b)
    return len(hs) >= 6 and hs[0] == 2 and hs[4] == 3


def _record_chain(b: bytes) -> int:
    """Number of well-formed records chained from byte 0 (0 when the chain breaks before the bytes end)."""
    pos = count = 0
    while pos < len(b) and count < _MAX_RECORDS:
        n = _record_ok(b, pos)
        if n < 0:
            return 0 if pos + 5 <= len(b) else count  # a bad header is disqualifying; a cut one is not
        pos += 5 + n
        count += 1
    return count


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text for a TLS ClientHello (SNI/ALPN in the detail), a lone ServerHello or mid-session records."""
    if proto != 6:
        return None
    hello = _client_hello(client)
    if hello is not None:
        notes = [f"SNI {hello['sni']}" if hello["sni"] else "no SNI"]
        if hello["alpn"]:
            notes.append("ALPN " + ",".join(hello["alpn"]))
        if hello["tls13"]:
            notes.append("offers TLS 1.3")
        return f"TLS ClientHello ({'; '.join(notes)})"
    if not client and _server_hello(server):
        return "TLS ServerHello (client side not captured)"
    side = client or server
    count = _record_chain(side)
    if count >= 2 or (count == 1 and 5 + be16(side, 3) == len(side)):
        who = "client" if client else "server"
        return f"TLS records from the {who} without a visible handshake (flow captured mid-session)"
    return None
