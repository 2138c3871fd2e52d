"""Citrix ICA on its own TCP port (1494): the ICA detect string.

Why this check: on connect, an ICA server sends the 6-byte detect string ``7F 7F 'ICA' 00`` (defined as
``ICA_DETECT_STRING`` in Citrix's ICA 3.0 headers) and keeps repeating it until the client answers; nmap,
Nessus and libprotoident all identify ICA by it. The server's detect string is the certain part and is
enough here; when the client side is present and starts with the detect string too, the detail says so.
A client that starts with it while the server side was not captured is also accepted.

Not recognised: ICA inside TLS (Citrix Gateway on 443, or VDA "ICA over TLS"), which is TLS on the wire,
and the UDP transport EDT (Enlightened Data Transport), whose datagrams have no published fixed marker.
ICA wrapped in CGP (session reliability, 2598) is recognised by ``cgp``.
"""

from __future__ import annotations

NAME = "ica"

DETECT = b"\x7f\x7fICA\x00"


def _repeats(b: bytes) -> int:
    """How many back-to-back detect strings start ``b`` (bounded by the buffer)."""
    n = 0
    while b.startswith(DETECT, n * len(DETECT)) and n < 1024:
        n += 1
    return n


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when the server (or, with no server bytes captured, the client) sends the detect string."""
    if proto != 6:
        return None
    s, c = _repeats(server), _repeats(client)
    if s:
        text = f"Citrix ICA detect string from the server (×{s})"
        if c:
            return text + ", echoed by the client"
        return text + ("" if not client else "; client continues without echoing it")
    if c and not server:
        return f"Citrix ICA detect string from the client (×{c}); no server bytes seen"
    return None
