"""Link, network and transport header decoding: a vectorised path for many frames and a scalar fallback.

Why two decoders: a capture of a busy network holds millions of frames, and a Python function call per
frame (~1 µs each, before it has looked at a single byte) already caps throughput near the goal of one
million packets per second. So the common shapes -- Ethernet with up to two VLAN tags, Linux cooked
SLL/SLL2, raw IP, IPv4 (with options, fragments) and IPv6 without extension headers, carrying
TCP/UDP/ICMP -- are decoded for a whole batch at once with numpy gathers on the block buffer. Everything
unusual (other link types, a third VLAN tag, IPv6 extension headers) is flagged and handed to
:func:`decode_frame`, a plain Python decoder that handles every case the batch path does and more. The
two must agree; the tests check that on every corpus frame.

Every read is bounded by the frame's captured length: the buffer the batch path reads from carries at
least :data:`PAD` zero bytes after its last record, and every offset the batch path computes from header
fields is at most ~150 bytes past the frame start, so a gather never leaves the buffer; fields that lie
beyond the captured bytes are masked out, never trusted.
"""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Link types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD12 = 12  # DLT_RAW on some BSDs, written into old pcap files as-is
LINKTYPE_RAW_BSD14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
RAW_LINKTYPES = frozenset({LINKTYPE_RAW_BSD12, LINKTYPE_RAW_BSD14, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6})

SCALAR_LINKTYPES = RAW_LINKTYPES | {LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL,
                                    LINKTYPE_LINUX_SLL2}  # fmt: skip
"""Link types :func:`decode_frame` understands."""

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
# IPv6 extension headers in the common (next header, length in 8-octet units - 1) format, plus AH (51)
# whose length is in 4-octet units - 2, and the fragment header (44, fixed 8 bytes).
IPV6_EXT_HEADERS = frozenset({0, 43, 44, 51, 60, 135, 139, 140, 253, 254})
MAX_IPV6_EXT_HEADERS = 16  # a hostile chain of extension headers must not loop for long

# Null/loopback address families: AF_INET is 2 everywhere, AF_INET6 differs by OS.
_AF_INET6 = frozenset({10, 24, 28, 30})

PAD = 256
"""Zero bytes the batch path needs after the last record of a buffer (largest header offset it reads)."""

# frag bits
FRAG_IS_FRAGMENT = 1  # the datagram is a fragment (MF set or offset > 0)
FRAG_FIRST = 2  # ... and this is the first fragment (offset 0): it carries the transport header
FRAG_MORE = 4  # more-fragments flag

# status bits
ST_NOT_IP = 1  # not an IPv4/IPv6 frame (ARP, LLDP, unknown link type ...)
ST_IP_BAD = 2  # an IP ethertype, but the IP header is truncated or malformed
ST_L4_TRUNC = 4  # transport header cut short by the capture or the IP length: some fields missing
ST_SLOW = 8  # decoded by the scalar fallback
ST_EXT_LIMIT = 16  # IPv6 extension header chain too long or truncated: proto is the last header reached
ST_NO_PORTS = 32  # TCP/UDP (not a later fragment) whose ports are not in the captured bytes

BATCH_DTYPE = np.dtype(
    [
        ("ts", "i8"),  # capture time, ns since the epoch
        ("pos", "i8"),  # file offset of the frame's first byte (of the decompressed stream for gzip)
        ("caplen", "u4"),  # bytes captured
        ("wirelen", "u4"),  # original length on the wire (what tshark counts as frame bytes)
        ("ifindex", "i4"),  # interface (pcapng: running number over all sections; pcap: 0)
        ("linktype", "u2"),
        ("vlan", "i4"),  # outermost 802.1Q/802.1ad VLAN id, -1 if untagged
        ("family", "u1"),  # 4, 6, or 0 when not IP
        ("proto", "u1"),  # IP protocol (for IPv6 the upper-layer header after extension headers)
        ("src4", "u4"),
        ("dst4", "u4"),
        ("src6hi", "u8"),
        ("src6lo", "u8"),
        ("dst6hi", "u8"),
        ("dst6lo", "u8"),
        ("sport", "u2"),
        ("dport", "u2"),
        ("tcp_flags", "u2"),  # 9 bits: NS CWR ECE URG ACK PSH RST SYN FIN
        ("seq", "u4"),
        ("ack", "u4"),
        ("icmp_type", "u1"),
        ("icmp_code", "u1"),
        ("ip_len", "u4"),  # IP datagram length the header claims (IPv6: payload length + 40)
        ("ip_id", "u4"),  # IPv4 identification / IPv6 fragment identification
        ("frag_off", "u2"),  # fragment offset in 8-byte units
        ("frag", "u1"),  # FRAG_* bits
        ("l3_off", "u2"),  # offset of the IP header in the frame
        ("pay_off", "u4"),  # offset of the TCP/UDP payload in the frame
        ("pay_len", "u4"),  # payload bytes present (bounded by the IP length and the captured length)
        ("status", "u1"),  # ST_* bits
    ]
)

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
TCP_CONTROL = TCP_SYN | TCP_FIN | TCP_RST  # the flags that open, close or reset a connection

_U64 = (1 << 64) - 1


def decode_batch(
    buf: bytes,
    off: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    ts: np.ndarray,
    ifindex: np.ndarray,
    linktype: np.ndarray,
    base: int,
    force_slow: bool = False,
    compiled: ModuleType | None = None,
) -> np.ndarray:
    """Decode ``len(off)`` frames of ``buf`` into a :data:`BATCH_DTYPE` array.

    ``off`` are the frame starts in ``buf`` (which must extend :data:`PAD` bytes past the last frame),
    ``base`` the file offset of ``buf[0]``. ``force_slow`` routes every frame through :func:`decode_frame`
    (for tests that compare the two decoders). ``compiled``: the compiled loops (:mod:`native`) decode the
    common shapes instead of the numpy pass; same fields, same frames left to :func:`decode_frame`.
    """
    n = len(off)
    out = np.zeros(n, dtype=BATCH_DTYPE)
    if n == 0:
        return out
    off = off.astype(np.int64, copy=False)
    cap = caplen.astype(np.int64)
    out["ts"] = ts
    out["pos"] = off + base
    out["caplen"] = caplen
    out["wirelen"] = wirelen
    out["ifindex"] = ifindex
    out["linktype"] = linktype
    if force_slow:
        slow = np.ones(n, dtype=bool)
    elif compiled is not None:
        slow = _decode_compiled(compiled, buf, off, cap, np.asarray(linktype).astype(np.int64), out)
    else:
        slow = _decode_vectorised(buf, off, cap, np.asarray(linktype).astype(np.int64), out)
    finish_slow(buf, out, slow, base)
    return out


def finish_slow(buf: bytes, out: np.ndarray, slow: np.ndarray, base: int) -> None:
    """Decode the frames the batch pass left (``slow``) with :func:`decode_frame`; frames of link types no
    decoder knows (802.11, ...) are not IP as far as we can tell: no Python per packet for them."""
    if not slow.any():
        return
    lts = out["linktype"]
    unknown = slow & ~np.isin(lts, tuple(SCALAR_LINKTYPES))
    if unknown.any():
        out["status"][unknown] = ST_NOT_IP
        out["vlan"][unknown] = -1
        slow = slow & ~unknown
    mv = memoryview(buf)
    for i in np.flatnonzero(slow).tolist():
        rec = out[i]
        o = int(rec["pos"]) - base
        row = decode_frame(mv[o : o + int(rec["caplen"])], int(lts[i]))
        for name, value in row.items():
            rec[name] = value


EXT6 = np.zeros(256, dtype=np.uint8)
EXT6[list(IPV6_EXT_HEADERS)] = 1
"""The IPv6 extension headers as a lookup table, for the compiled loops."""


def _decode_compiled(loops: ModuleType, buf: bytes, off: np.ndarray, cap: np.ndarray, lt: np.ndarray,
                     out: np.ndarray) -> np.ndarray:  # fmt: skip
    """:func:`_decode_vectorised` as one compiled loop over the frames (one pass, no temporary arrays)."""
    slow = np.zeros(len(off), dtype=bool)
    c = np.ascontiguousarray
    loops.decode(buf, c(off, np.int64), c(cap, np.int64), c(lt, np.int64), out, slow, EXT6)
    return slow


def _rows(b: np.ndarray, idx: np.ndarray, width: int) -> np.ndarray:
    """Copy ``width`` bytes starting at each ``idx`` into an (n, width) array: one gather per packet."""
    return sliding_window_view(b, width)[idx]


def _f(rows: np.ndarray, col: int, dt: str) -> np.ndarray:
    """The big-endian field of type ``dt`` at byte ``col`` of every row, as a native int64 array."""
    w = rows.shape[1]
    return np.ndarray((len(rows),), dtype=dt, buffer=rows, offset=col, strides=(w,)).astype(np.int64)


def _f64(rows: np.ndarray, col: int) -> np.ndarray:
    w = rows.shape[1]
    return np.ndarray((len(rows),), dtype=">u8", buffer=rows, offset=col, strides=(w,)).astype(np.uint64)


def _is_tpid(v: np.ndarray) -> np.ndarray:
    return (v == 0x8100) | (v == 0x88A8) | (v == 0x9100)


def _decode_vectorised(buf: bytes, off: np.ndarray, cap: np.ndarray, lt: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` for the common frame shapes; return the mask of frames the scalar decoder must redo.

    Three row gathers per packet (24 bytes at the frame start, 40 at the IP header, 20 at the transport
    header) and then column arithmetic on those small arrays: gathers are the expensive part.
    """
    n = len(off)
    b = np.frombuffer(buf, dtype=np.uint8)
    i64 = np.int64
    uniform = int(lt[0]) if (lt == lt[0]).all() else None

    # ---- link layer: ethertype and L3 offset per frame
    h = _rows(b, off, 24)
    et_eth = _f(h, 12, ">u2")
    vlan = np.full(n, -1, dtype=i64)
    eth = None if uniform == LINKTYPE_ETHERNET else lt == LINKTYPE_ETHERNET  # None: all Ethernet
    t1 = _is_tpid(et_eth)
    if eth is not None:
        t1 &= eth
    if t1.any():
        et1 = _f(h, 16, ">u2")
        t2 = t1 & _is_tpid(et1)
        et2 = _f(h, 20, ">u2")
        slow = t2 & _is_tpid(et2) & (cap >= 22)  # a third tag (captured): the scalar decoder walks any depth
        etype = np.where(t2, et2, np.where(t1, et1, et_eth))
        l3 = 14 + 4 * t1.astype(i64) + 4 * t2.astype(i64)
        vlan = np.where(t1 & (cap >= 18), _f(h, 14, ">u2") & 0xFFF, -1)
    else:
        slow = np.zeros(n, dtype=bool)
        etype = et_eth
        l3 = np.full(n, 14, dtype=i64)
    if uniform != LINKTYPE_ETHERNET:
        raw = np.isin(lt, tuple(RAW_LINKTYPES))
        ver0 = (h[:, 0] >> 4).astype(i64)
        et_raw = np.where(ver0 == 4, ETH_IPV4, np.where(ver0 == 6, ETH_IPV6, 0))
        et_raw = np.where(((lt == LINKTYPE_IPV4) & (ver0 != 4)) | ((lt == LINKTYPE_IPV6) & (ver0 != 6)), 0, et_raw)
        sll = lt == LINKTYPE_LINUX_SLL
        sll2 = lt == LINKTYPE_LINUX_SLL2
        etype = np.select([eth, sll, sll2, raw], [etype, _f(h, 14, ">u2"), _f(h, 0, ">u2"), et_raw], 0)
        l3 = np.select([eth, sll, sll2, raw], [l3, 16, 20, 0], 0)
        vlan = np.where(eth, vlan, -1)
        known = eth | sll | sll2 | raw
        # unknown link types, and VLAN tags inside SLL/SLL2 (rare): scalar path
        # (a tag only counts when the link header was captured whole: never decide on bytes past the capture)
        slow = (slow & eth) | ~known | ((sll | sll2) & _is_tpid(etype) & (cap >= l3))
        linkok = (cap >= np.maximum(l3, 1)) & ~slow
    else:
        linkok = (cap >= l3) & ~slow
    out["vlan"] = vlan

    # ---- network layer
    g = _rows(b, off + l3, 40)
    first = g[:, 0].astype(i64)
    ver = first >> 4
    want4 = linkok & (etype == ETH_IPV4)
    want6 = linkok & (etype == ETH_IPV6)
    ihl4 = (first & 15) * 4
    tot = _f(g, 2, ">u2")
    ok4 = want4 & (ver == 4) & (ihl4 >= 20) & (cap >= l3 + ihl4)
    ok4 &= (tot == 0) | (tot >= ihl4)  # total length 0: TSO capture, length comes from the frame
    any6 = want6.any()
    if any6:
        plen6 = _f(g, 4, ">u2")
        nh6 = g[:, 6].astype(i64)
        ok6 = want6 & (ver == 6) & (cap >= l3 + 40)
        # Extension headers go to the scalar decoder.
        ext6 = ok6 & np.isin(nh6, tuple(IPV6_EXT_HEADERS))
        slow |= ext6
        ok6 &= ~ext6
    else:
        ok6 = ext6 = want6
        plen6 = nh6 = np.zeros(n, dtype=i64)
    st = np.where(linkok & ~want4 & ~want6, ST_NOT_IP, 0)
    st |= np.where((want4 & ~ok4) | (want6 & ~ok6 & ~ext6), ST_IP_BAD, 0)
    st |= np.where(~linkok & ~slow, ST_NOT_IP, 0)

    proto = np.where(ok4, g[:, 9], np.where(ok6, nh6, 0)).astype(i64)
    frag = _f(g, 6, ">u2")
    fo = np.where(ok4, frag & 0x1FFF, 0)
    mf = ok4 & ((frag & 0x2000) != 0)
    isfrag = mf | (fo != 0)
    anyfrag = isfrag.any()
    iplen = np.where(ok4, np.where(tot == 0, cap - l3, tot), np.where(ok6, plen6 + 40, 0))
    # IPv6 payload length 0 without a jumbo option (TSO captures): the frame gives the length.
    iplen_eff = np.where(ok6 & (plen6 == 0), cap - l3, iplen) if any6 else iplen
    l4 = l3 + np.where(ok4, ihl4, 40)
    ipok = ok4 | ok6
    out["family"] = np.where(ok4, 4, np.where(ok6, 6, 0))
    out["proto"] = proto
    out["l3_off"] = np.where(ipok, l3, 0)
    out["ip_len"] = iplen
    out["ip_id"] = np.where(ok4, _f(g, 4, ">u2"), 0)
    if anyfrag:
        fbits = np.where(isfrag, FRAG_IS_FRAGMENT, 0) | np.where(isfrag & (fo == 0), FRAG_FIRST, 0)
        out["frag"] = fbits | np.where(mf, FRAG_MORE, 0)
        out["frag_off"] = fo
    if ok4.any():
        out["src4"] = np.where(ok4, _f(g, 12, ">u4"), 0)
        out["dst4"] = np.where(ok4, _f(g, 16, ">u4"), 0)
    if any6 and ok6.any():
        z = np.uint64(0)
        out["src6hi"] = np.where(ok6, _f64(g, 8), z)
        out["src6lo"] = np.where(ok6, _f64(g, 16), z)
        out["dst6hi"] = np.where(ok6, _f64(g, 24), z)
        out["dst6lo"] = np.where(ok6, _f64(g, 32), z)

    # ---- transport layer (not for later fragments)
    if anyfrag:
        ipok = ipok & ~(isfrag & (fo != 0))
    avail = np.minimum(cap, l3 + iplen_eff) - l4  # the IP length excludes Ethernet padding
    t = _rows(b, off + np.where(ipok, l4, 0), 20)
    tcp = ipok & (proto == PROTO_TCP)
    udp = ipok & (proto == PROTO_UDP)
    icmp = ipok & (((proto == PROTO_ICMP) & ok4) | ((proto == PROTO_ICMPV6) & ok6))
    ports = (tcp | udp) & (avail >= 4)
    out["sport"] = np.where(ports, _f(t, 0, ">u2"), 0)
    out["dport"] = np.where(ports, _f(t, 2, ">u2"), 0)
    doff = (t[:, 12] >> 4).astype(i64) * 4
    tfull = tcp & (avail >= 20) & (doff >= 20) & (doff <= avail)
    out["tcp_flags"] = np.where(tfull, _f(t, 12, ">u2") & 0x1FF, 0)
    out["seq"] = np.where(tfull, _f(t, 4, ">u4"), 0)
    out["ack"] = np.where(tfull, _f(t, 8, ">u4"), 0)
    ufull = udp & (avail >= 8)
    upay = np.clip(np.minimum(_f(t, 4, ">u2") - 8, avail - 8), 0, None)
    tpay = np.clip(avail - doff, 0, None)
    out["pay_off"] = np.where(tfull, l4 + doff, np.where(ufull, l4 + 8, 0))
    out["pay_len"] = np.where(tfull, tpay, np.where(ufull, upay, 0))
    iok = icmp & (avail >= 2)
    if iok.any():
        out["icmp_type"] = np.where(iok, t[:, 0], 0)
        out["icmp_code"] = np.where(iok, t[:, 1], 0)
    st |= np.where(((tcp & ~tfull) | (udp & ~ufull) | (icmp & ~iok)), ST_L4_TRUNC, 0)
    st |= np.where((tcp | udp) & ~ports, ST_NO_PORTS, 0)
    out["status"] = st
    return slow


_be16 = struct.Struct(">H").unpack_from
_be32 = struct.Struct(">I").unpack_from
_le32 = struct.Struct("<I").unpack_from


def _empty_row() -> dict[str, Any]:
    return {
        "vlan": -1, "family": 0, "proto": 0, "src4": 0, "dst4": 0, "src6hi": 0, "src6lo": 0,
        "dst6hi": 0, "dst6lo": 0, "sport": 0, "dport": 0, "tcp_flags": 0, "seq": 0, "ack": 0,
        "icmp_type": 0, "icmp_code": 0, "ip_len": 0, "ip_id": 0, "frag_off": 0, "frag": 0,
        "l3_off": 0, "pay_off": 0, "pay_len": 0, "status": ST_SLOW,
    }  # fmt: skip


def decode_frame(frame: bytes | memoryview, linktype: int) -> dict[str, Any]:
    """Decode one frame (exactly its captured bytes) with plain Python; return the batch fields.

    The reference decoder: slower, but it handles every link type and header chain the reader knows,
    and never reads past ``len(frame)``. Returned keys are the :data:`BATCH_DTYPE` fields that depend on
    the frame's content (not ts/pos/caplen/wirelen/ifindex/linktype).
    """
    row = _empty_row()
    n = len(frame)
    etype, l3 = _link(frame, n, linktype, row)
    if etype is None:
        row["status"] |= ST_NOT_IP
        return row
    if etype == ETH_IPV4:
        _ipv4(frame, n, l3, row)
    elif etype == ETH_IPV6:
        _ipv6(frame, n, l3, row)
    else:
        row["status"] |= ST_NOT_IP
    return row


def _link(frame: bytes | memoryview, n: int, lt: int, row: dict[str, Any]) -> tuple[int | None, int]:
    """Return (ethertype, L3 offset); ethertype None when the frame is not (recognisably) IP-bearing."""
    if lt == LINKTYPE_ETHERNET:
        if n < 14:
            return None, 0
        et, pos = _be16(frame, 12)[0], 14
    elif lt == LINKTYPE_LINUX_SLL:
        if n < 16:
            return None, 0
        et, pos = _be16(frame, 14)[0], 16
    elif lt == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return None, 0
        et, pos = _be16(frame, 0)[0], 20
    elif lt in RAW_LINKTYPES:
        if n < 1:
            return None, 0
        ver = frame[0] >> 4
        et = ETH_IPV4 if ver == 4 else ETH_IPV6 if ver == 6 else None
        if (lt == LINKTYPE_IPV4 and ver != 4) or (lt == LINKTYPE_IPV6 and ver != 6):
            et = None
        return et, 0
    elif lt in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            return None, 0
        fam = _be32(frame, 0)[0] if lt == LINKTYPE_LOOP else _le32(frame, 0)[0]
        if lt == LINKTYPE_NULL and fam > 0xFFFF:  # written on a big-endian host
            fam = _be32(frame, 0)[0]
        et = ETH_IPV4 if fam == 2 else ETH_IPV6 if fam in _AF_INET6 else None
        return et, 4
    else:
        return None, 0
    # Ethernet / SLL: walk any number of VLAN tags (bounded by the frame), record the outermost id.
    while et in VLAN_TPIDS:
        if pos + 4 > n:
            return None, 0
        if row["vlan"] < 0:
            row["vlan"] = _be16(frame, pos)[0] & 0xFFF
        et = _be16(frame, pos + 2)[0]
        pos += 4
    return et, pos


def _ipv4(frame: bytes | memoryview, n: int, l3: int, row: dict[str, Any]) -> None:
    if n < l3 + 20 or frame[l3] >> 4 != 4:
        row["status"] |= ST_IP_BAD
        return
    ihl = (frame[l3] & 15) * 4
    tot = _be16(frame, l3 + 2)[0]
    if ihl < 20 or n < l3 + ihl or (tot != 0 and tot < ihl):
        row["status"] |= ST_IP_BAD
        return
    iplen = tot if tot else n - l3
    fr = _be16(frame, l3 + 6)[0]
    fo, mf = fr & 0x1FFF, bool(fr & 0x2000)
    row.update(
        family=4, proto=frame[l3 + 9], l3_off=l3, ip_len=iplen, ip_id=_be16(frame, l3 + 4)[0],
        src4=_be32(frame, l3 + 12)[0], dst4=_be32(frame, l3 + 16)[0], frag_off=fo,
    )  # fmt: skip
    if mf or fo:
        row["frag"] = FRAG_IS_FRAGMENT | (FRAG_FIRST if fo == 0 else 0) | (FRAG_MORE if mf else 0)
        if fo:
            return
    _l4(frame, l3 + ihl, min(n, l3 + iplen), row, icmp=PROTO_ICMP)


def _ipv6(frame: bytes | memoryview, n: int, l3: int, row: dict[str, Any]) -> None:
    if n < l3 + 40 or frame[l3] >> 4 != 6:
        row["status"] |= ST_IP_BAD
        return
    plen = _be16(frame, l3 + 4)[0]
    hi = int.from_bytes(frame[l3 + 8 : l3 + 24], "big")
    lo = int.from_bytes(frame[l3 + 24 : l3 + 40], "big")
    row.update(
        family=6, l3_off=l3, ip_len=plen + 40, src6hi=hi >> 64, src6lo=hi & _U64, dst6hi=lo >> 64,
        dst6lo=lo & _U64,
    )  # fmt: skip
    ipend = min(n, l3 + 40 + plen) if plen else n  # payload length 0: jumbogram, trust the frame
    nh, pos = frame[l3 + 6], l3 + 40
    for _ in range(MAX_IPV6_EXT_HEADERS):
        if nh not in IPV6_EXT_HEADERS:
            break
        if pos + 8 > ipend:
            row["status"] |= ST_EXT_LIMIT
            row["proto"] = nh
            return
        if nh == 44:
            fr = _be16(frame, pos + 2)[0]
            fo, mf = fr >> 3, bool(fr & 1)
            row["frag_off"] = fo
            row["ip_id"] = _be32(frame, pos + 4)[0]
            if fo or mf:
                row["frag"] = FRAG_IS_FRAGMENT | (FRAG_FIRST if fo == 0 else 0) | (FRAG_MORE if mf else 0)
            size = 8
        elif nh == 51:
            size = (frame[pos + 1] + 2) * 4
        else:
            size = (frame[pos + 1] + 1) * 8
        nh, pos = frame[pos], pos + size
        if row["frag"] & FRAG_IS_FRAGMENT and row["frag_off"]:
            row["proto"] = nh  # later fragments: the upper layer is named but not present
            return
    else:
        if nh in IPV6_EXT_HEADERS:
            row["status"] |= ST_EXT_LIMIT
            row["proto"] = nh
            return
    row["proto"] = nh
    if pos > ipend:
        row["status"] |= ST_EXT_LIMIT | (ST_NO_PORTS if nh in (PROTO_TCP, PROTO_UDP) else 0)
        return
    _l4(frame, pos, ipend, row, icmp=PROTO_ICMPV6)


def _l4(frame: bytes | memoryview, l4: int, ipend: int, row: dict[str, Any], icmp: int) -> None:
    """Transport header at ``l4``, bounded by ``ipend`` (end of captured bytes or of the IP datagram)."""
    proto, avail = row["proto"], ipend - l4
    if proto in (PROTO_TCP, PROTO_UDP):
        if avail >= 4:
            row["sport"], row["dport"] = _be16(frame, l4)[0], _be16(frame, l4 + 2)[0]
        else:
            row["status"] |= ST_NO_PORTS
        if proto == PROTO_TCP:
            doff = (frame[l4 + 12] >> 4) * 4 if avail >= 20 else 0
            if avail >= 20 and 20 <= doff <= avail:
                row.update(
                    tcp_flags=_be16(frame, l4 + 12)[0] & 0x1FF, seq=_be32(frame, l4 + 4)[0],
                    ack=_be32(frame, l4 + 8)[0], pay_off=l4 + doff, pay_len=avail - doff,
                )  # fmt: skip
            else:
                row["status"] |= ST_L4_TRUNC
        elif avail >= 8:
            ulen = _be16(frame, l4 + 4)[0]
            row.update(pay_off=l4 + 8, pay_len=max(0, min(ulen - 8, avail - 8)))
        else:
            row["status"] |= ST_L4_TRUNC
    elif proto == icmp:
        if avail >= 2:
            row["icmp_type"], row["icmp_code"] = frame[l4], frame[l4 + 1]
        else:
            row["status"] |= ST_L4_TRUNC
