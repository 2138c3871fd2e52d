"""VMware (Omnissa) Horizon Blast Extreme: deliberately recognises nothing.

What is public: Blast Extreme runs as a secure WebSocket, i.e. TLS from the first byte, to the agent on
TCP 22443 (or through Unified Access Gateway on 443 / 8443), and optionally over UDP 22443 with VMware's
BEAT transport, whose datagram format is not published. The WebSocket upgrade and everything that would
name Blast are inside TLS; the ClientHello carries at most a server name, which an administrator chooses
and a tunnel can copy. No open dissector recognises Blast from its bytes.

So :func:`match` always returns None, and generic TLS is never taken for Blast: a channel declared as
``blast`` cannot be confirmed from packet bytes. The TLS handshake is still reported by ``tls`` (with
SNI and ALPN), which is the evidence an auditor can judge by hand.
"""

from __future__ import annotations

NAME = "blast"

LIMITATION = (
    "Blast Extreme cannot be confirmed from packet bytes: it is a WebSocket inside TLS from the first "
    "byte (and BEAT over UDP is unpublished), so it looks like any other TLS session"
)


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Always None: see the module docstring for why no byte pattern is certain enough."""
    return None
