"""Citrix CGP (Common Gateway Protocol, "session reliability", TCP 2598): the ``\\x1aCGP/01`` magic.

Why this check: CGP wraps ICA so a session survives a network drop; both ends open the connection with
the 7-byte magic ``1A 'CGP/01'`` (nDPI matches it at the start of a payload, libprotoident requires
``1A 'CGP'`` in both directions). Here the client must start with it and the server, when any server
bytes were captured, must too. CGP through Citrix Gateway on 443 is inside TLS and is not recognised.
"""

from __future__ import annotations

NAME = "cgp"

MAGIC = b"\x1aCGP/01"


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when the client (and the server, if it said anything) start with the CGP magic."""
    if proto != 6:
        return None
    c, s = client.startswith(MAGIC), server.startswith(MAGIC)
    if c and s:
        return "Citrix CGP magic \\x1aCGP/01 from both client and server"
    if c and not server:
        return "Citrix CGP magic \\x1aCGP/01 from the client; no server bytes seen"
    if s and not client:
        return "Citrix CGP magic \\x1aCGP/01 from the server; no client bytes seen"
    return None
