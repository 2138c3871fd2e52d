"""Which segment an address belongs to: longest prefix wins, exactly as routing would decide."""

from __future__ import annotations

from .addresses import IntervalSet, Prefix
from .topology import Segment


class SegmentMap:
    """Longest-prefix ownership of the address space by segments.

    ``owned[name]`` is the exact set of addresses whose longest matching prefix belongs to that
    segment; addresses in no segment are in ``unowned``.
    """

    def __init__(self, segments: dict[str, Segment]) -> None:
        entries: list[tuple[Prefix, str]] = [(p, s.name) for s in segments.values() for p in s.prefixes]
        # Longest prefixes claim their addresses first; a shorter one only gets what is left.
        entries.sort(key=lambda e: (-e[0].length, e[0].lo, e[1]))
        claimed = IntervalSet()
        owned: dict[str, list[tuple[int, int]]] = {name: [] for name in segments}
        for prefix, name in entries:
            mine = IntervalSet([(prefix.lo, prefix.hi)]) - claimed
            owned[name].extend(mine.intervals)
            claimed = claimed | IntervalSet([(prefix.lo, prefix.hi)])
        self.owned: dict[str, IntervalSet] = {n: IntervalSet(iv) for n, iv in owned.items()}
        self.covered = claimed
        # For point lookups: the disjoint owned intervals with their segment, sorted.
        pieces = sorted((lo, hi, n) for n, s in self.owned.items() for lo, hi in s)
        self._los = [p[0] for p in pieces]
        self._pieces = pieces

    def lookup(self, addr: int) -> str | None:
        import bisect

        i = bisect.bisect_right(self._los, addr) - 1
        if i >= 0 and addr <= self._pieces[i][1]:
            return self._pieces[i][2]
        return None

    def segments_of(self, addresses: IntervalSet) -> list[str]:
        """Every segment that owns at least one address of ``addresses``, in name order."""
        return sorted(n for n, s in self.owned.items() if s & addresses)
