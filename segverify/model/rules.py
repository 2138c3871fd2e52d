"""The vendor-independent firewall rule: what every importer produces and every analysis reads.

A rule's match is a small boolean expression over packet fields (``FieldIn``, ``And``, ``Or``,
``Not``), so any vendor construct (negation, object groups, multi-protocol services) can be said
exactly without the analysis knowing the vendor. Rules describe connection *initiation* on a
stateful firewall: replies of an allowed flow are implied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .addresses import ADDR_BITS, ALL_ADDRESSES, IntervalSet, int_to_addr

# Packet fields and their widths in bits. Addresses use the unified 129-bit space (see addresses.py).
FIELD_BITS: dict[str, int] = {
    "src": ADDR_BITS,
    "dst": ADDR_BITS,
    "proto": 8,
    "sport": 16,
    "dport": 16,
    "icmp_type": 8,
    "icmp_code": 8,
}

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
PROTO_SCTP = 132
PORT_PROTOS = IntervalSet.of(PROTO_TCP, PROTO_UDP, PROTO_SCTP)
ICMP_PROTOS = IntervalSet.of(PROTO_ICMP, PROTO_ICMPV6)
PROTO_NAMES = {PROTO_ICMP: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMPV6: "icmpv6", PROTO_SCTP: "sctp"}
PROTO_NUMBERS = {name: num for num, name in PROTO_NAMES.items()}

Action = Literal["allow", "deny"]


def full_domain(name: str) -> IntervalSet:
    if name in ("src", "dst"):
        return ALL_ADDRESSES
    return IntervalSet([(0, (1 << FIELD_BITS[name]) - 1)])


# --- match expressions -------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldIn:
    """The packet's ``field`` lies in ``values``."""

    field: str
    values: IntervalSet

    def __post_init__(self) -> None:
        # in_if/out_if are the engine's own: interface indexes inside one compiled firewall.
        if self.field not in FIELD_BITS and self.field not in ("in_if", "out_if"):
            raise ValueError(f"unknown packet field {self.field!r}")


@dataclass(frozen=True)
class And:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    part: Expr


Expr = FieldIn | And | Or | Not
TRUE: Expr = And(())
FALSE: Expr = Or(())


def _is_true(p: Expr) -> bool:
    """``p == TRUE`` without the dataclass comparison (loaders call this per rule part)."""
    return type(p) is And and not p.parts


def _is_false(p: Expr) -> bool:
    return type(p) is Or and not p.parts


def all_of(*parts: Expr) -> Expr:
    """Conjunction that drops trivially true parts, so simple rules stay simple."""
    kept = tuple(p for p in parts if not _is_true(p))
    if any(_is_false(p) for p in kept):
        return FALSE
    return kept[0] if len(kept) == 1 else And(kept)


def any_of(*parts: Expr) -> Expr:
    kept = tuple(p for p in parts if not _is_false(p))
    if any(_is_true(p) for p in kept):
        return TRUE
    return kept[0] if len(kept) == 1 else Or(kept)


def not_of(p: Expr) -> Expr:
    """Negation that folds constants and double negation, so simple rules stay simple."""
    if _is_true(p):
        return FALSE
    if _is_false(p):
        return TRUE
    if isinstance(p, Not):
        return p.part
    return Not(p)


def describe(expr: Expr) -> str:
    """A match in words an engineer reads at a glance: ``tcp dst 10.3.0.10 dport 3389``."""
    from .addresses import describe_addresses

    if expr == TRUE:
        return "any"
    if expr == FALSE:
        return "nothing"
    if isinstance(expr, FieldIn):
        if expr.field in ("src", "dst"):
            return f"{expr.field} {_describe_addresses(expr.values, describe_addresses)}"
        if expr.field == "proto":
            return "/".join(PROTO_NAMES.get(lo, str(lo)) if lo == hi else f"{lo}-{hi}" for lo, hi in expr.values)
        parts = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in expr.values)
        return f"{expr.field.replace('_', '-')} {parts}"
    if isinstance(expr, And):
        return " ".join(_paren(p) for p in expr.parts)
    if isinstance(expr, Or):
        return " or ".join(_paren(p) for p in expr.parts)
    return f"not {_paren(expr.part)}"


def _describe_addresses(values: IntervalSet, render) -> str:  # type: ignore[no-untyped-def]
    """``ipv4``/``ipv6`` for a whole family, ``not X`` when the complement (within the families
    present) is shorter to say, else the CIDRs."""
    from .addresses import ALL_V4, ALL_V6

    families = [fam for fam, name in ((ALL_V4, "ipv4"), (ALL_V6, "ipv6")) if values & fam]
    names = {id(ALL_V4): "ipv4", id(ALL_V6): "ipv6"}
    if families and all((values & fam) == fam for fam in families):
        return " or ".join(names[id(f)] for f in families)
    span = families[0]
    for fam in families[1:]:
        span = span | fam
    rest = span - values
    plain = render(values, limit=6)
    negated = "not " + render(rest, limit=6)
    return negated if len(rest.intervals) < len(values.intervals) else plain


def _paren(expr: Expr) -> str:
    text = describe(expr)
    return f"({text})" if isinstance(expr, (And, Or)) and len(expr.parts) > 1 else text


# --- packets -----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Packet:
    """One concrete initiating packet. Ports are 0 for protocols without ports, ICMP fields 0 otherwise."""

    src: int
    dst: int
    proto: int
    sport: int = 0
    dport: int = 0
    icmp_type: int = 0
    icmp_code: int = 0

    def get(self, name: str) -> int:
        return getattr(self, name)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "src": int_to_addr(self.src),
            "dst": int_to_addr(self.dst),
            "proto": PROTO_NAMES.get(self.proto, self.proto),
        }
        if self.proto in PORT_PROTOS:
            out["sport"] = self.sport
            out["dport"] = self.dport
        if self.proto in ICMP_PROTOS:
            out["icmp_type"] = self.icmp_type
            out["icmp_code"] = self.icmp_code
        return out

    def describe(self) -> str:
        proto = PROTO_NAMES.get(self.proto, str(self.proto))
        src, dst = int_to_addr(self.src), int_to_addr(self.dst)
        if self.proto in PORT_PROTOS:
            return f"{proto} {src}:{self.sport} → {dst}:{self.dport}"
        if self.proto in ICMP_PROTOS:
            return f"{proto} {src} → {dst} type {self.icmp_type} code {self.icmp_code}"
        return f"proto {proto} {src} → {dst}"


def evaluate(expr: Expr, packet: Packet) -> bool:
    """Concrete evaluation: the reference the packet-space engine must agree with."""
    if isinstance(expr, FieldIn):
        return packet.get(expr.field) in expr.values
    if isinstance(expr, And):
        return all(evaluate(p, packet) for p in expr.parts)
    if isinstance(expr, Or):
        return any(evaluate(p, packet) for p in expr.parts)
    return not evaluate(expr.part, packet)


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRef:
    """Where a rule was written: the file as the user named it, and its line."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Rule:
    """One ordered rule of a firewall. ``in_ifaces``/``out_ifaces`` of None match every interface.

    ``approximation`` is set when the importer could not model the vendor construct exactly and
    over-approximated it (an allow that might match taken as matching, a deny that might not
    match taken as not matching); the analysis reports it as UNSUPPORTED_RULE.
    """

    id: str
    action: Action
    match: Expr = TRUE
    in_ifaces: frozenset[str] | None = None
    out_ifaces: frozenset[str] | None = None
    source: SourceRef | None = None
    name: str | None = None
    approximation: str | None = None

    def applies(self, in_iface: str, out_iface: str) -> bool:
        return (self.in_ifaces is None or in_iface in self.in_ifaces) and (
            self.out_ifaces is None or out_iface in self.out_ifaces
        )

    def matches(self, packet: Packet, in_iface: str, out_iface: str) -> bool:
        return self.applies(in_iface, out_iface) and evaluate(self.match, packet)


@dataclass(frozen=True)
class RuleSet:
    """What an importer returns for one firewall: ordered rules, first match wins, then ``default``."""

    rules: tuple[Rule, ...]
    default: Action = "deny"
    notes: tuple[str, ...] = field(default=())

    def decide(self, packet: Packet, in_iface: str, out_iface: str) -> tuple[Action, Rule | None]:
        """First-match decision for one packet crossing from ``in_iface`` to ``out_iface``."""
        for rule in self.rules:
            if rule.matches(packet, in_iface, out_iface):
                return rule.action, rule
        return self.default, None
