"""SOCKS4/4a (de-facto spec) and SOCKS5 (RFC 1928): a proxy handshake, i.e. a tunnel by definition.

Why: a SOCKS greeting on a screen-transfer channel means the channel is being used as a generic proxy.
SOCKS5's greeting is tiny (``05 n methods...``), so it is accepted only when more agrees: the server picks
one of the offered methods (or ``FF``, none acceptable), or the client pipelines a well-formed request
(``05 cmd 00 atyp ...``), or - with neither side saying more - the client sent exactly the greeting.
SOCKS4 needs ``04``, command 1/2, a port, an address, a NUL-terminated user id (and for 4a a host name
after address 0.0.0.x), and a server reply ``00 5A..5D`` if captured. The destination goes in the detail.
"""

from __future__ import annotations

from ._util import be16, printable

NAME = "socks"

_CMDS = {1: "CONNECT", 2: "BIND", 3: "UDP ASSOCIATE"}
_METHODS = {0: "no auth", 1: "GSSAPI", 2: "username/password"}


def _dest5(b: bytes) -> str | None:
    """``host:port`` of a SOCKS5 request at the start of ``b`` (``05 cmd 00 atyp addr port``), or None."""
    if len(b) < 7 or b[0] != 5 or b[1] not in _CMDS or b[2] != 0:
        return None
    atyp = b[3]
    if atyp == 1:
        end, host = 8, ".".join(str(x) for x in b[4:8])
    elif atyp == 3:
        n = b[4]
        end, host = 5 + n, printable(b[5 : 5 + n], 80)
        if n == 0:
            return None
    elif atyp == 4:
        end = 20
        host = "[" + ":".join(b[i : i + 2].hex() for i in range(4, 20, 2)) + "]"
    else:
        return None
    port = be16(b, end)
    if port < 0:
        return None
    return f"{_CMDS[b[1]]} {host}:{port}"


def _socks5(client: bytes, server: bytes) -> str | None:
    if len(client) < 3 or client[0] != 5 or not 1 <= client[1] <= 32 or len(client) < 2 + client[1]:
        return None
    methods = client[2 : 2 + client[1]]
    rest = client[2 + client[1] :]
    if 2 in methods and rest[:1] == b"\x01":  # RFC 1929 username/password sub-negotiation
        ulen = rest[1] if len(rest) > 1 else 0
        plen_at = 2 + ulen
        rest = rest[plen_at + 1 + rest[plen_at] :] if len(rest) > plen_at else b""
    dest = _dest5(rest)
    reply_ok = len(server) >= 2 and server[0] == 5 and (server[1] in methods or server[1] == 0xFF)
    if server and not reply_ok:
        return None
    if not reply_ok and dest is None and rest:
        return None
    names = ", ".join(_METHODS.get(m, f"0x{m:02x}") for m in methods[:8])
    text = f"SOCKS5 greeting (methods {names})"
    if dest:
        text += f" → {dest}"
    if reply_ok and server[1] == 0xFF:
        text += "; server accepts no method"
    return text + ": a proxy tunnel"


def _socks4(client: bytes, server: bytes) -> str | None:
    if len(client) < 9 or client[0] != 4 or client[1] not in (1, 2):
        return None
    nul = client.find(b"\x00", 8, 8 + 256)
    if nul < 0:
        return None
    port, ip = be16(client, 2), client[4:8]
    host = ".".join(str(x) for x in ip)
    if ip[:3] == b"\x00\x00\x00" and ip[3]:  # SOCKS4a: the host name follows the user id
        end = client.find(b"\x00", nul + 1, nul + 1 + 256)
        if end <= nul + 1:
            return None
        host = printable(client[nul + 1 : end], 80)
    if server and not (len(server) >= 2 and server[0] == 0 and 0x5A <= server[1] <= 0x5D):
        return None
    return f"SOCKS4 {_CMDS[client[1]]} {host}:{port}: a proxy tunnel"


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text for a SOCKS4/4a request or a SOCKS5 greeting that the rest of the flow agrees with."""
    if proto != 6:
        return None
    return _socks5(client, server) or _socks4(client, server)
