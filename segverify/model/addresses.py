"""Addresses of both families in one integer space, and exact sets of integers as intervals.

IPv4 and IPv6 share one 129-bit space so that every analysis handles both with the same code:
an IPv4 address ``a`` is the integer ``a`` (below 2**32), an IPv6 address ``b`` is ``2**128 + b``.
The two families can never overlap, and ``::/0`` does not swallow IPv4 the way IPv4-mapped
addresses would.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

ADDR_BITS = 129
V6_BASE = 1 << 128
V4_SIZE = 1 << 32
V4_ALL = (0, V4_SIZE - 1)
V6_ALL = (V6_BASE, (V6_BASE << 1) - 1)


def is_v6(addr: int) -> bool:
    return addr >= V6_BASE


def addr_to_int(text: str) -> int:
    """Parse one IPv4 or IPv6 address; raises ValueError with a readable message."""
    ip = ipaddress.ip_address(text.strip())
    return int(ip) if ip.version == 4 else V6_BASE + int(ip)


@functools.lru_cache(maxsize=1 << 16)
def int_to_addr(value: int) -> str:
    """An address of the unified space as text. Cached: a flow table names the same hosts over and over
    (160k flows of the bench name a few thousand addresses), and ``ipaddress`` costs a microsecond each."""
    if value >= V6_BASE:
        return str(ipaddress.IPv6Address(value - V6_BASE))
    if not 0 <= value < V4_SIZE:
        raise ValueError(f"not an address of the unified space: {value}")
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


@dataclass(frozen=True, order=True)
class Prefix:
    """A CIDR in the unified space: ``lo`` is the first address, ``length`` the prefix length in its family."""

    lo: int
    length: int
    v6: bool

    @property
    def bits(self) -> int:
        return 128 if self.v6 else 32

    @property
    def hi(self) -> int:
        return self.lo + (1 << (self.bits - self.length)) - 1

    def __str__(self) -> str:
        return f"{int_to_addr(self.lo)}/{self.length}"

    @property
    def is_single(self) -> bool:
        return self.length == self.bits


_V4_CIDR = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?")


_PREFIXES: dict[str, Prefix] = {}


def parse_prefix(text: str) -> Prefix:
    """Parse ``10.0.0.0/8``, ``fd00::/48`` or a bare address (a /32 or /128).

    Host bits set (``10.2.0.1/16``) are refused: it is nearly always a typo for the network.
    Results are kept per text (rule files repeat the same networks thousands of times).
    """
    hit = _PREFIXES.get(text)
    if hit is not None:
        return hit
    prefix = _parse_prefix(text)
    if len(_PREFIXES) < 200_000:
        _PREFIXES[text] = prefix
    return prefix


def _parse_prefix(text: str) -> Prefix:
    raw = str(text).strip()
    m = _V4_CIDR.fullmatch(raw)
    if m:  # the common case, without ipaddress's generality (rule files hold thousands of these)
        octets = [int(g) for g in m.groups()[:4]]
        length = int(m.group(5)) if m.group(5) is not None else 32
        if all(o <= 255 for o in octets) and length <= 32 and not any(
            len(g) > 1 and g[0] == "0" for g in m.groups()[:4]
        ):
            value = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
            if value & ((1 << (32 - length)) - 1) == 0:
                return Prefix(value, length, False)
    try:
        net = ipaddress.ip_network(raw, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            loose = ipaddress.ip_network(raw, strict=False)
            raise ValueError(f"{raw!r} has host bits set (did you mean {loose}?)") from None
        raise ValueError(f"{raw!r} is not an IPv4 or IPv6 address or CIDR") from None
    v6 = net.version == 6
    base = V6_BASE if v6 else 0
    return Prefix(base + int(net.network_address), net.prefixlen, v6)


class IntervalSet:
    """An exact, immutable set of integers: sorted, disjoint, non-adjacent inclusive intervals.

    Used for addresses, ports, protocols and ICMP types alike, so the model can say any match
    exactly and the concrete evaluator can test membership in O(log n).
    """

    __slots__ = ("_hash", "_iv", "_los")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(intervals):
            if lo > hi:
                continue
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        self._iv: tuple[tuple[int, int], ...] = tuple(merged)
        self._los: list[int] | None = None  # built on the first membership test
        self._hash: int | None = None

    @classmethod
    def _canonical(cls, intervals: tuple[tuple[int, int], ...]) -> IntervalSet:
        """A set from intervals already sorted, disjoint and non-adjacent (no checks: loaders
        build hundreds of thousands of one-interval sets)."""
        out = cls.__new__(cls)
        out._iv = intervals
        out._los = None
        out._hash = None
        return out

    @classmethod
    def of(cls, *values: int) -> IntervalSet:
        if len(values) == 1:
            return cls._canonical(((values[0], values[0]),))
        return cls((v, v) for v in values)

    @classmethod
    def interval(cls, lo: int, hi: int) -> IntervalSet:
        """[lo, hi] (empty when lo > hi)."""
        return cls._canonical(((lo, hi),) if lo <= hi else ())

    @classmethod
    def prefixes(cls, prefixes: Iterable[Prefix]) -> IntervalSet:
        return cls((p.lo, p.hi) for p in prefixes)

    @property
    def intervals(self) -> tuple[tuple[int, int], ...]:
        return self._iv

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._iv)

    def __bool__(self) -> bool:
        return bool(self._iv)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntervalSet) and self._iv == other._iv

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash(self._iv)
        return h

    def __repr__(self) -> str:
        return f"IntervalSet({list(self._iv)!r})"

    def __contains__(self, value: int) -> bool:
        los = self._los
        if los is None:
            los = self._los = [lo for lo, _ in self._iv]
        i = bisect.bisect_right(los, value) - 1
        return i >= 0 and value <= self._iv[i][1]

    def size(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self._iv)

    def union(self, other: IntervalSet) -> IntervalSet:
        if not other._iv:
            return self
        if not self._iv:
            return other
        return IntervalSet(self._iv + other._iv)

    __or__ = union

    def complement(self, lo: int, hi: int) -> IntervalSet:
        """Everything in [lo, hi] not in this set."""
        out: list[tuple[int, int]] = []
        cur = lo
        for a, b in self._iv:
            if b < lo or a > hi:
                continue
            if a > cur:
                out.append((cur, a - 1))
            cur = max(cur, b + 1)
        if cur <= hi:
            out.append((cur, hi))
        return IntervalSet(out)

    def intersection(self, other: IntervalSet) -> IntervalSet:
        out: list[tuple[int, int]] = []
        i = j = 0
        a, b = self._iv, other._iv
        while i < len(a) and j < len(b):
            lo = max(a[i][0], b[j][0])
            hi = min(a[i][1], b[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return IntervalSet(out)

    __and__ = intersection

    def difference(self, other: IntervalSet) -> IntervalSet:
        if not self._iv or not other._iv:
            return self
        lo, hi = self._iv[0][0], self._iv[-1][1]
        return self.intersection(other.complement(lo, hi))

    __sub__ = difference

    def issubset(self, other: IntervalSet) -> bool:
        return not self.difference(other)


ALL_ADDRESSES = IntervalSet([V4_ALL, V6_ALL])
ALL_V4 = IntervalSet([V4_ALL])
ALL_V6 = IntervalSet([V6_ALL])


def describe_addresses(values: IntervalSet, limit: int = 4) -> str:
    """A short human form of an address set: CIDRs where the intervals are prefixes."""
    parts: list[str] = []
    for lo, hi in values:
        parts.extend(str(p) for p in interval_to_prefixes(lo, hi))
        if len(parts) > limit:
            break
    if len(parts) > limit:
        return ", ".join(parts[:limit]) + ", …"
    return ", ".join(parts)


def interval_to_prefixes(lo: int, hi: int) -> list[Prefix]:
    """Split an address interval (within one family) into the fewest CIDR prefixes."""
    v6 = lo >= V6_BASE
    base = V6_BASE if v6 else 0
    bits = 128 if v6 else 32
    a, b = lo - base, hi - base
    out: list[Prefix] = []
    while a <= b:
        size = a & -a if a else 1 << bits
        while size > b - a + 1:
            size >>= 1
        out.append(Prefix(base + a, bits - (size.bit_length() - 1), v6))
        a += size
    return out
