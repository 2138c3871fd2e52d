"""The vendor-independent network: segments of the three-tier model, devices between them, and
the declarations (channels, exceptions) that alone may make cross-family traffic legal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .addresses import IntervalSet, Prefix
from .rules import RuleSet, SourceRef

KIND_FAMILY: dict[str, str] = {
    "mynumber": "MN",
    "lgwan": "LG",
    "lgwan-wan": "LG",
    "internet": "IN",
    "security-cloud": "IN",
    "public": "IN",
    "sanitization": "SZ",
}
FAMILY_NAMES = {
    "MN": ("My Number (マイナンバー利用事務系)", "マイナンバー利用事務系"),
    "LG": ("LGWAN-connected (LGWAN接続系)", "LGWAN接続系"),
    "IN": ("Internet-connected (インターネット接続系)", "インターネット接続系"),
    "SZ": ("sanitization zone (無害化ゾーン)", "無害化ゾーン"),
}
MODELS = ("alpha", "alpha-prime", "beta", "beta-prime")
CHANNEL_KINDS = ("screen-transfer", "mail-text", "file-sanitization", "cloud-direct")
SCREEN_PROTOCOLS = ("rdp", "ica", "vnc", "pcoip", "blast")

Model = Literal["alpha", "alpha-prime", "beta", "beta-prime"]


@dataclass(frozen=True)
class Segment:
    name: str
    kind: str
    prefixes: tuple[Prefix, ...]
    vlans: tuple[int, ...] = ()
    source: SourceRef | None = None

    @property
    def family(self) -> str:
        return KIND_FAMILY[self.kind]


@dataclass(frozen=True)
class Host:
    name: str
    addresses: tuple[int, ...]
    source: SourceRef | None = None


@dataclass(frozen=True)
class Interface:
    name: str
    segment: str
    source: SourceRef | None = None


@dataclass(frozen=True)
class Firewall:
    name: str
    interfaces: tuple[Interface, ...]
    ruleset: RuleSet
    source: SourceRef | None = None
    config_path: str | None = None  # the vendor file the rules came from, if any
    config_format: str | None = None

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)


@dataclass(frozen=True)
class Router:
    """A device that forwards everything between its segments: across families it is a bypass."""

    name: str
    segments: tuple[str, ...]
    source: SourceRef | None = None


@dataclass(frozen=True)
class PortSpec:
    """``tcp/443``, ``udp/53``, ``tcp/8000-8010``: a protocol and the responder's ports."""

    proto: int
    ports: IntervalSet | None  # None: every port (protocols without ports)
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Endpoints:
    """A resolved list of names (segments, hosts, CIDRs, addresses) and the addresses it means."""

    names: tuple[str, ...]
    addresses: IntervalSet
    whole_segments: tuple[str, ...] = ()  # names that were whole segments (too broad for exceptions)
    wide_ranges: tuple[str, ...] = ()  # CIDRs wider than one address


@dataclass(frozen=True)
class Leg:
    peers: Endpoints
    ports: tuple[PortSpec, ...]


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str
    source: SourceRef | None = None
    protocol: str | None = None  # screen-transfer
    clients: Endpoints | None = None  # screen-transfer, cloud-direct
    servers: Endpoints | None = None
    ports: tuple[PortSpec, ...] = ()
    sanitizer: str | None = None  # mail-text, file-sanitization: a host name
    inbound: Leg | None = None
    outbound: Leg | None = None


@dataclass(frozen=True)
class ExceptionRule:
    name: str
    src: Endpoints
    dst: Endpoints
    ports: tuple[PortSpec, ...]
    reason: str = ""
    source: SourceRef | None = None


@dataclass
class Topology:
    path: str
    name: str
    model: str
    segments: dict[str, Segment]
    hosts: dict[str, Host]
    firewalls: dict[str, Firewall]
    routers: dict[str, Router]
    channels: tuple[Channel, ...]
    exceptions: tuple[ExceptionRule, ...]
    inputs: list[str] = field(default_factory=list)  # every file read, topology first
    source: SourceRef | None = None

    def segment_families(self) -> dict[str, str]:
        return {name: seg.family for name, seg in self.segments.items()}
