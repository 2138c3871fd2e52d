"""PCoIP (Teradici / HP Anyware; VMware Horizon): deliberately recognises nothing.

What is public: TCP 4172 carries the session handshake, and it is TLS; UDP 4172 carries the session data
as UDP-encapsulated ESP (or native IPsec ESP for Tera1 devices), with an unencrypted "PCoIP transport
header" in front on firmware 4.1+ / View 5.1+ (Teradici's administrator guides, "PCoIP Packet Format").
The layout of that transport header is only shown as a diagram, with no field values, and no open
dissector (Wireshark, Zeek, nDPI, libprotoident) recognises PCoIP from its bytes. The TCP side is
indistinguishable from any other TLS and the UDP side from any other ESP-in-UDP, which is exactly what
a VPN tunnel looks like.

So nothing here is certain enough to pass a flow as PCoIP: :func:`match` always returns None, and a
channel declared as ``pcoip`` cannot be confirmed from packet bytes. The TLS handshake on tcp/4172 is
still reported (by ``tls``, with its SNI), which is the evidence an auditor can judge by hand.
"""

from __future__ import annotations

NAME = "pcoip"

LIMITATION = (
    "PCoIP cannot be confirmed from packet bytes: its TCP handshake is TLS and its UDP data is "
    "ESP-in-UDP with an undocumented transport header, both indistinguishable from a VPN tunnel"
)


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Always None: see the module docstring for why no byte pattern is certain enough."""
    return None
