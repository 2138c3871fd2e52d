"""RDP's UDP transport: the MS-RDPEUDP SYN / SYN+ACK handshake ([MS-RDPEUDP] 2.2.2, 3.1.5.1).

Why these checks: the client's first datagram is an RDPUDP_FEC_HEADER (snSourceAck, uReceiveWindowSize,
uFlags, all big-endian) with snSourceAck = ``0xFFFFFFFF``, a non-zero receive window and RDPUDP_FLAG_SYN
(``0x0001``) set, followed by an RDPUDP_SYNDATA_PAYLOAD (initial sequence number, up- and down-stream
MTU, each 1132..1232), optional RDPUDP_CORRELATION_ID_PAYLOAD (flag ``0x0800``, 32 bytes) and
RDPUDP_SYNDATAEX_PAYLOAD (flag ``0x1000``, 4 bytes + a 32-byte cookie hash for version 3), and the
datagram is zero-padded to 1232 bytes. The server answers with SYN+ACK (``0x0005``) whose snSourceAck is
the client's initial sequence number, so a reply is checked against the request, not just for shape.
Everything after the handshake (DTLS/TLS over RDPEUDP, or RDPEUDP2) is not inspected, and neither is RD
Gateway's own UDP transport (MS-TSGU, DTLS on 3391), which is not RDPEUDP on the wire.

``client``/``server`` are concatenated datagram payloads, so datagram boundaries are not known: the
padding is checked over the bytes present up to offset 1232 (a SYN cut short by a small snap length and
followed by another datagram fails, which errs on the side of "not recognised").
"""

from __future__ import annotations

from ._util import be16, be32

NAME = "rdp-udp"

_SYN, _FIN, _ACK, _DATA = 0x0001, 0x0002, 0x0004, 0x0008
_CORRELATION_ID, _SYNEX = 0x0800, 0x1000
_KNOWN_FLAGS = 0x1FFF
_SYN_SIZE = 1232
_MTU_MIN, _MTU_MAX = 1132, 1232


def _syn(b: bytes, want_ack: bool) -> dict | None:
    """Parse a SYN (``want_ack`` False) or SYN+ACK datagram at the start of ``b``; None if it is not one."""
    if len(b) < 16:
        return None
    ack, window, flags = be32(b, 0), be16(b, 4), be16(b, 6)
    if window <= 0 or not flags & _SYN or flags & ~_KNOWN_FLAGS or flags & (_FIN | _DATA):
        return None
    if bool(flags & _ACK) != want_ack or (not want_ack and ack != 0xFFFFFFFF):
        return None
    isn, up, down = be32(b, 8), be16(b, 12), be16(b, 14)
    if not (_MTU_MIN <= up <= _MTU_MAX and _MTU_MIN <= down <= _MTU_MAX):
        return None
    end = 16 + (32 if flags & _CORRELATION_ID else 0)
    version = None
    if flags & _SYNEX:
        version = be16(b, end + 2) if len(b) >= end + 4 else None
        end += 4 + 32  # the cookie hash, when present; zero otherwise
    if any(b[end:_SYN_SIZE]):
        return None  # not zero padding: this datagram is not a SYN as RDPEUDP sends it
    return {"ack": ack, "flags": flags, "isn": isn, "mtu": (up, down), "version": version,
            "padded": len(b) >= _SYN_SIZE}  # fmt: skip


def match(client: bytes, server: bytes, proto: int) -> str | None:
    """Evidence text when the first client datagram is an RDPEUDP SYN (and the reply, if any, its SYN+ACK)."""
    if proto != 17:
        return None
    syn = _syn(client, want_ack=False)
    if syn is None:
        return None
    opts = []
    if syn["flags"] & _CORRELATION_ID:
        opts.append("correlation id")
    if syn["version"] is not None:
        opts.append(f"SYNEX version 0x{syn['version']:04x}")
    opts.append("padded to 1232" if syn["padded"] else "padding not fully captured")
    text = f"RDPEUDP SYN (ISN 0x{syn['isn']:08x}, MTU {syn['mtu'][0]}/{syn['mtu'][1]}, {', '.join(opts)})"
    if not server:
        return text + "; no server reply seen"
    reply = _syn(server, want_ack=True)
    if reply is None or reply["ack"] != syn["isn"]:
        return None  # the responder did not complete an RDPEUDP handshake for this SYN
    return text + f" → SYN+ACK acknowledging it (server ISN 0x{reply['isn']:08x})"
