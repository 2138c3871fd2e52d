"""Small byte helpers shared by the recognisers.

Every helper is total on any input (never raises) and does work bounded by the bytes it is given or by
an explicit limit: the recognisers read first bytes of flows that may come from a hostile machine, and
length fields in those bytes are claims to check, never sizes to allocate or loop over.
"""

from __future__ import annotations

MAX_BYTES = 4096
"""How many first bytes per direction :func:`segverify.capture.recognise.identify` looks at."""


def be16(b: bytes, off: int) -> int:
    """Big-endian 16-bit value at ``off``, or -1 when the bytes end first (callers compare, never index)."""
    return (b[off] << 8) | b[off + 1] if off >= 0 and off + 2 <= len(b) else -1


def be24(b: bytes, off: int) -> int:
    return (b[off] << 16) | (b[off + 1] << 8) | b[off + 2] if off >= 0 and off + 3 <= len(b) else -1


def be32(b: bytes, off: int) -> int:
    return int.from_bytes(b[off : off + 4], "big") if off >= 0 and off + 4 <= len(b) else -1


def le16(b: bytes, off: int) -> int:
    return b[off] | (b[off + 1] << 8) if off >= 0 and off + 2 <= len(b) else -1


def le32(b: bytes, off: int) -> int:
    return int.from_bytes(b[off : off + 4], "little") if off >= 0 and off + 4 <= len(b) else -1


def hexdump(b: bytes, n: int = 12) -> str:
    """The first ``n`` bytes as spaced hex, with an ellipsis when there are more."""
    s = " ".join(f"{x:02x}" for x in b[:n])
    return s + " …" if len(b) > n else s


def printable(b: bytes, limit: int = 64) -> str:
    """Bytes from the wire as a short, safe, single-line string for a report (never raw control bytes).

    Printable ASCII is kept, everything else becomes ``\\xNN``; the result is cut at ``limit`` input bytes.
    """
    out = []
    for x in b[:limit]:
        out.append(chr(x) if 0x20 <= x < 0x7F and x != 0x5C else "\\\\" if x == 0x5C else f"\\x{x:02x}")
    s = "".join(out)
    return s + "…" if len(b) > limit else s


def first_line(b: bytes, limit: int = 1024) -> bytes | None:
    """The first line (without CR LF) if a LF occurs within ``limit`` bytes, else None."""
    i = b.find(b"\n", 0, limit)
    if i < 0:
        return None
    return b[:i].rstrip(b"\r")


def lines(b: bytes, max_lines: int = 64, limit: int = MAX_BYTES) -> list[bytes]:
    """Up to ``max_lines`` complete LF-terminated lines (CR stripped) from the first ``limit`` bytes."""
    out: list[bytes] = []
    pos = 0
    end = min(len(b), limit)
    while len(out) < max_lines:
        i = b.find(b"\n", pos, end)
        if i < 0:
            break
        out.append(b[pos:i].rstrip(b"\r"))
        pos = i + 1
    return out
