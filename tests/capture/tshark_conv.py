"""Parser for ``tshark -q -z conv,tcp -z conv,udp`` output (TShark 4.0), used as the flow-table oracle.

tshark names the endpoint that sent a conversation's first packet "A" (left) and the other "B". Its
columns are: frames/bytes B->A ("<-"), frames/bytes A->B ("->"), totals, start relative to the first
frame of the capture (seconds) and duration. Byte counts are printed with ``format_size``: "N bytes"
below 10000, otherwise truncated to whole kB/MB/... (SI, integer division) -- so a "kB" value only
says ``bytes // 1000``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"bytes": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
_ROW = re.compile(
    r"^(?P<a>\S+)\s+<->\s+(?P<b>\S+)\s+"
    r"(?P<bf>\d+)\s+(?P<bb>\d+)\s+(?P<bu>bytes|kB|MB|GB|TB)\s+"
    r"(?P<af>\d+)\s+(?P<ab>\d+)\s+(?P<au>bytes|kB|MB|GB|TB)\s+"
    r"(?P<tf>\d+)\s+(?P<tb>\d+)\s+(?P<tu>bytes|kB|MB|GB|TB)\s+"
    r"(?P<start>[\d.]+)\s+(?P<dur>[\d.]+)\s*$"
)


@dataclass(frozen=True)
class Size:
    """A byte count as tshark printed it: exact when ``unit == 1``, else ``value * unit`` truncated."""

    value: int
    unit: int

    def matches(self, n: int) -> bool:
        if self.unit == 1:
            return n == self.value
        return n // self.unit == self.value and n >= 10 * self.unit


@dataclass(frozen=True)
class ConvRow:
    proto: str  # "tcp" or "udp"
    a: tuple[str, int]  # (address text, port) of the endpoint that sent the first frame
    b: tuple[str, int]
    frames_ba: int
    bytes_ba: Size
    frames_ab: int
    bytes_ab: Size
    frames: int
    bytes: Size
    rel_start: float
    duration: float


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return str(ipaddress.ip_address(host)), int(port)


def parse_conv(path: Path) -> list[ConvRow]:
    rows: list[ConvRow] = []
    proto = None
    for line in path.read_text().splitlines():
        if line.startswith("TCP Conversations"):
            proto = "tcp"
        elif line.startswith("UDP Conversations"):
            proto = "udp"
        m = _ROW.match(line)
        if not m:
            continue
        assert proto is not None, line
        rows.append(
            ConvRow(
                proto,
                _endpoint(m["a"]),
                _endpoint(m["b"]),
                int(m["bf"]),
                Size(int(m["bb"]), _UNITS[m["bu"]]),
                int(m["af"]),
                Size(int(m["ab"]), _UNITS[m["au"]]),
                int(m["tf"]),
                Size(int(m["tb"]), _UNITS[m["tu"]]),
                float(m["start"]),
                float(m["dur"]),
            )  # fmt: skip
        )
    return rows
