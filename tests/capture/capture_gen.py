"""Writers for pcap and pcapng bytes, packed by hand so tests control every field (and can damage them)."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import strategies as st


def pcap_header(endian: str = "<", nano: bool = False, snaplen: int = 65535, linktype: int = 1) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(ts_ns: int, data: bytes, endian: str = "<", nano: bool = False, orig: int | None = None) -> bytes:
    sec, frac = divmod(ts_ns, 1_000_000_000)
    if not nano:
        frac //= 1000
    return struct.pack(endian + "IIII", sec, frac, len(data), len(data) if orig is None else orig) + data


def pcap_bytes(
    frames: list[bytes], endian: str = "<", nano: bool = False, linktype: int = 1, t0: int = 1_600_000_000 * 10**9
) -> bytes:
    """A pcap with ``frames`` one millisecond apart from ``t0`` (ns)."""
    out = [pcap_header(endian, nano, linktype=linktype)]
    for i, f in enumerate(frames):
        out.append(pcap_record(t0 + i * 1_000_000, f, endian, nano))
    return b"".join(out)


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def ng_block(btype: int, body: bytes, endian: str = "<", trailer: int | None = None) -> bytes:
    body = _pad4(body)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n if trailer is None else trailer)


def ng_option(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + _pad4(value)


def ng_shb(endian: str = "<") -> bytes:
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    return ng_block(0x0A0D0D0A, body, endian)


def ng_idb(
    linktype: int, endian: str = "<", snaplen: int = 262144, tsresol: int | None = None, tsoffset: int = 0
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += ng_option(9, bytes([tsresol]), endian)
    if tsoffset:
        opts += ng_option(14, struct.pack(endian + "q", tsoffset), endian)
    if opts:
        opts += struct.pack(endian + "HH", 0, 0)
    return ng_block(1, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts, endian)


def ng_epb(
    ifid: int, ticks: int, data: bytes, endian: str = "<", orig: int | None = None, trailer: int | None = None
) -> bytes:
    body = struct.pack(
        endian + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data) if orig is None else orig
    )
    return ng_block(6, body + _pad4(data), endian, trailer)


def ng_spb(data: bytes, endian: str = "<", orig: int | None = None) -> bytes:
    return ng_block(3, struct.pack(endian + "I", len(data) if orig is None else orig) + _pad4(data), endian)


def ng_pb(ifid: int, ticks: int, data: bytes, endian: str = "<") -> bytes:
    body = struct.pack(endian + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return ng_block(2, body + _pad4(data), endian)


def eth() -> Any:
    """An Ethernet header with fixed MACs (without a destination scapy tries to resolve one, slowly)."""
    from scapy.layers.l2 import Ether

    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def tcp_frame(src: str, dst: str, sport: int, dport: int, flags: str = "A", seq: int = 0, payload: bytes = b"",
              vlans: tuple[int, ...] = ()) -> bytes:  # fmt: skip
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    l2 = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for i, v in enumerate(vlans):
        l2 = l2 / (Dot1AD(vlan=v) if i == 0 and len(vlans) > 1 else Dot1Q(vlan=v))
    return bytes(l2 / ip / TCP(sport=sport, dport=dport, flags=flags, seq=seq) / payload)


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"x") -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6

    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return bytes(eth() / ip / UDP(sport=sport, dport=dport) / payload)


# The damage the hostile-input tests draw for ``mutate``: byte overwrites within the first 2,000 bytes, and
# one blob inserted there.
EDITS = st.lists(st.tuples(st.integers(0, 1999), st.integers(0, 255)), max_size=12)
INSERTS = st.tuples(st.integers(0, 1999), st.binary(max_size=64))


def mutate(data: bytes, edits: list[tuple[int, int]], insert: tuple[int, bytes]) -> bytearray:
    """``data`` with bytes overwritten (``edits``: position, value; positions past the end ignored) and a blob
    inserted (``insert``: position, bytes): the hostile-input tests' damage."""
    out = bytearray(data)
    for pos, val in edits:
        if pos < len(out):
            out[pos] = val
    at, blob = insert
    out[at:at] = blob
    return out
