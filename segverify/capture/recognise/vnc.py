"""VNC / RFB (RFC 6143): the protocol version handshake.

Why these checks: an RFB server speaks first with exactly 12 bytes ``RFB xxx.yyy\\n`` and the client
answers with its own 12-byte version line before anything else. Known versions are 3.3, 3.7, 3.8 (the
RFC), 3.889 (Apple Remote Desktop / macOS Screen Sharing), 3.5 (seen from old clients), 4.0 and 4.1
(RealVNC) and 5.0 (RealVNC); any other number in the same strict syntax is still RFB and the detail
says it is unusual. When both sides are present both must carry a version line; a client line alone is
accepted when the server side was not captured. VeNCrypt starts in clear RFB and so is recognised; VNC
wrapped whole in TLS or WebSocket (noVNC, websockify) is not.
"""

from __future__ import annotations

import re

NAME = "vnc"

_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")
KNOWN = {"003.003", "003.005", "003.007", "003.008", "003.889", "004.000", "004.001", "005.000"}


def _version(b: bytes) -> str | None:
    m = _VERSION.match(b[:12])
    return f"{m.group(1).decode()}.{m.group(2).decode()}" if m else None


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when the flow opens with RFB version lines."""
    if proto != 6:
        return None
    sv, cv = _version(server), _version(client)
    if sv is None and cv is None:
        return None
    if (server and sv is None) or (client and cv is None):
        return None  # one side speaks RFB and the other something else
    parts = []
    if sv:
        parts.append(f"server RFB {sv}" + ("" if sv in KNOWN else " (unusual version)"))
    if cv:
        parts.append(f"client RFB {cv}" + ("" if cv in KNOWN else " (unusual version)"))
    text = "RFB version handshake: " + ", ".join(parts)
    if not client:
        text += "; no client bytes seen"
    elif not server:
        text += "; no server bytes seen"
    return text
