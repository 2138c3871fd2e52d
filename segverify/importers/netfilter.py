"""What the iptables and nftables importers share: Linux netfilter's semantics for an initiating packet.

Both front ends end in the same kernel, so they share its model: the expression atoms a rule is built
from before the packet's context is known (a condition the file does not determine, the ingress or
egress interface, the conntrack state, the RETURN guards of a chain), protocol and service names, which
ICMP messages can open a connection, and the resolution of those atoms into the model's plain rules
(unknowns by polarity, states expanded, interfaces split into classes of the topology's names).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..model.addresses import ALL_V4, ALL_V6, IntervalSet
from ..model.rules import (
    FALSE,
    FIELD_BITS,
    TRUE,
    And,
    Expr,
    FieldIn,
    Not,
    Or,
    full_domain,
    not_of,
)

_INF = math.inf

# --- internal expression atoms -----------------------------------------------------------------
# Each netfilter importer builds the model's And/Or/Not over FieldIn plus these atoms. They are gone
# from every rule an importer returns: states are expanded, unknowns resolved by polarity, and
# interface atoms split into interface classes.


@dataclass(frozen=True)
class Unknown:
    """A condition the file does not determine (an ipset's members, a MAC address, a rate …)."""

    reason: str


@dataclass(frozen=True)
class Iface:
    """The packet's ingress (``in``) or egress (``out``) interface is one of ``names``."""

    direction: str
    names: frozenset[str]


@dataclass(frozen=True)
class State:
    """The packet's conntrack state is one of ``states``."""

    states: frozenset[str]


@dataclass(frozen=True, eq=False)
class Guards:
    """The disjunction of the RETURN / goto conditions met so far in one chain invocation.

    A persistent list (each node adds one term), so that the rules after the k-th RETURN share the
    first k terms and resolving it costs one step per node rather than k per rule.
    """

    prev: Guards | None
    term: IExpr


IExpr = object  # Expr | Unknown | Iface | State | Guards, nested in And/Or/Not


def and_i(*parts: IExpr) -> IExpr:
    return all_of_i(parts)


def all_of_i(parts: Iterable[IExpr]) -> IExpr:
    kept: list[IExpr] = []
    for p in parts:
        if p == FALSE:
            return FALSE
        if p == TRUE:
            continue
        kept.append(p)
    return kept[0] if len(kept) == 1 else And(tuple(kept))  # type: ignore[arg-type]


def any_of_i(parts: Iterable[IExpr]) -> IExpr:
    kept: list[IExpr] = []
    for p in parts:
        if p == TRUE:
            return TRUE
        if p == FALSE:
            continue
        kept.append(p)
    return kept[0] if len(kept) == 1 else Or(tuple(kept))  # type: ignore[arg-type]


def not_i(p: IExpr) -> IExpr:
    return not_of(p)  # type: ignore[arg-type]


# --- vocabulary --------------------------------------------------------------------------------

PROTOCOLS: dict[str, int] = {
    "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "ipip": 94, "st": 5, "tcp": 6, "egp": 8,
    "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33,
    "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45,
    "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "skip": 57, "icmpv6": 58, "ipv6-icmp": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ospfigp": 89,
    "ax.25": 93, "ipx-in-ip": 111, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112,
    "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135, "ipv6-mh": 135, "mh": 135,
    "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142,
    "ethernet": 143,
}
PROTO_UDPLITE = 136
PROTO_DCCP = 33

SERVICES: dict[str, int] = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "time": 37, "whois": 43,
    "tacacs": 49, "domain": 53, "bootps": 67, "bootpc": 68, "tftp": 69, "gopher": 70, "finger": 79,
    "http": 80, "www": 80, "kerberos": 88, "pop3": 110, "sunrpc": 111, "auth": 113, "ident": 113,
    "nntp": 119, "ntp": 123, "epmap": 135, "netbios-ns": 137, "netbios-dgm": 138, "netbios-ssn": 139,
    "imap": 143, "imap2": 143, "snmp": 161, "snmp-trap": 162, "bgp": 179, "irc": 194, "ldap": 389,
    "https": 443, "microsoft-ds": 445, "kpasswd": 464, "isakmp": 500, "syslog": 514, "printer": 515,
    "submission": 587, "ldaps": 636, "rsync": 873, "imaps": 993, "pop3s": 995, "socks": 1080,
    "openvpn": 1194, "ms-sql-s": 1433, "radius": 1812, "nfs": 2049, "mysql": 3306,
    "ms-wbt-server": 3389, "sip": 5060, "postgresql": 5432, "x11": 6000, "http-alt": 8080,
}

ICMP_TYPES: dict[str, tuple[int, int | None] | None] = {
    "any": None, "echo-reply": (0, None), "pong": (0, None), "destination-unreachable": (3, None),
    "network-unreachable": (3, 0), "host-unreachable": (3, 1), "protocol-unreachable": (3, 2),
    "port-unreachable": (3, 3), "fragmentation-needed": (3, 4), "source-route-failed": (3, 5),
    "network-unknown": (3, 6), "host-unknown": (3, 7), "network-prohibited": (3, 9),
    "host-prohibited": (3, 10), "tos-network-unreachable": (3, 11), "tos-host-unreachable": (3, 12),
    "communication-prohibited": (3, 13), "host-precedence-violation": (3, 14),
    "precedence-cutoff": (3, 15), "source-quench": (4, None), "redirect": (5, None),
    "network-redirect": (5, 0), "host-redirect": (5, 1), "tos-network-redirect": (5, 2),
    "tos-host-redirect": (5, 3), "echo-request": (8, None), "ping": (8, None),
    "router-advertisement": (9, None), "router-solicitation": (10, None), "time-exceeded": (11, None),
    "ttl-exceeded": (11, None), "ttl-zero-during-transit": (11, 0), "ttl-zero-during-reassembly": (11, 1),
    "parameter-problem": (12, None), "ip-header-bad": (12, 0), "required-option-missing": (12, 1),
    "timestamp-request": (13, None), "timestamp-reply": (14, None), "address-mask-request": (17, None),
    "address-mask-reply": (18, None),
}
ICMPV6_TYPES: dict[str, tuple[int, int | None] | None] = {
    "any": None, "destination-unreachable": (1, None), "no-route": (1, 0),
    "communication-prohibited": (1, 1), "beyond-scope": (1, 2), "address-unreachable": (1, 3),
    "port-unreachable": (1, 4), "failed-policy": (1, 5), "reject-route": (1, 6),
    "packet-too-big": (2, None), "time-exceeded": (3, None), "ttl-exceeded": (3, None),
    "ttl-zero-during-transit": (3, 0), "ttl-zero-during-reassembly": (3, 1),
    "parameter-problem": (4, None), "bad-header": (4, 0), "unknown-header-type": (4, 1),
    "unknown-option": (4, 2), "echo-request": (128, None), "ping": (128, None), "echo-reply": (129, None),
    "pong": (129, None), "mld-listener-query": (130, None), "mld-listener-report": (131, None),
    "mld-listener-done": (132, None), "mld-listener-reduction": (132, None),
    "router-solicitation": (133, None), "router-advertisement": (134, None),
    "neighbour-solicitation": (135, None), "neighbor-solicitation": (135, None),
    "neighbour-advertisement": (136, None), "neighbor-advertisement": (136, None), "redirect": (137, None),
}

# Linux conntrack: the ICMP types that can open a "connection" (nf_conntrack_proto_icmp.c valid_new);
# every other lone ICMP message is INVALID. ICMPv6 likewise, and neighbour discovery / MLD are
# UNTRACKED (nf_conntrack_proto_icmpv6.c noct_valid_new).
ICMP_NEW_TYPES = IntervalSet.of(8, 13, 15, 17)
ICMPV6_NEW_TYPES = IntervalSet.of(128, 139)
ICMPV6_UNTRACKED_TYPES = IntervalSet.of(130, 131, 132, 133, 134, 135, 136, 143)


# --- simplification and resolution -------------------------------------------------------------

_FIELD_ORDER = tuple(FIELD_BITS)


_FULL = {name: full_domain(name) for name in FIELD_BITS}


def _full(fld: str) -> IntervalSet:
    return _FULL[fld]


def _field_in(fld: str, values: IntervalSet) -> Expr:
    if not values:
        return FALSE
    full = _FULL[fld]
    iv = values.intervals
    if iv[0][0] <= full.intervals[0][0] and iv[-1][1] >= full.intervals[-1][1] and _subset(full, values):
        return TRUE
    return FieldIn(fld, values)


def _subset(a: IntervalSet, b: IntervalSet) -> bool:
    """``a`` ⊆ ``b``, without building intermediate sets."""
    iv = b.intervals
    for lo, hi in a.intervals:
        i = bisect.bisect_right(iv, (lo, _INF)) - 1
        if i < 0 or iv[i][1] < hi:
            return False
    return True


def _disjoint(a: IntervalSet, b: IntervalSet) -> bool:
    x, y = a.intervals, b.intervals
    i = j = 0
    while i < len(x) and j < len(y):
        if x[i][1] < y[j][0]:
            i += 1
        elif y[j][1] < x[i][0]:
            j += 1
        else:
            return False
    return True


def _prune(x: Expr, box: dict[str, IntervalSet]) -> Expr:
    """``x`` simplified under the assumption that the packet lies in ``box``."""
    if isinstance(x, FieldIn):
        have = box.get(x.field)
        if have is None:
            return x
        if _disjoint(have, x.values):
            return FALSE
        if _subset(have, x.values):
            return TRUE
        return x
    if isinstance(x, And):
        parts = []
        for p in x.parts:
            q = _prune(p, box)
            if q == FALSE:
                return FALSE
            if q != TRUE:
                parts.append(q)
        if len(parts) == len(x.parts) and all(a is b for a, b in zip(parts, x.parts, strict=True)):
            return x
        return _mk_and(parts)
    if isinstance(x, Or):
        parts = []
        for p in x.parts:
            q = _prune(p, box)
            if q == TRUE:
                return TRUE
            if q != FALSE:
                parts.append(q)
        if len(parts) == len(x.parts) and all(a is b for a, b in zip(parts, x.parts, strict=True)):
            return x
        return _mk_or(parts)
    if isinstance(x, Not):
        q = _prune(x.part, box)
        return x if q is x.part else _mk_not(q)
    return x


def _mk_not(x: Expr) -> Expr:
    if x == TRUE:
        return FALSE
    if x == FALSE:
        return TRUE
    if isinstance(x, Not):
        return x.part
    if isinstance(x, FieldIn):
        return _field_in(x.field, _full(x.field) - x.values)
    return Not(x)


def _mk_or(parts: Iterable[Expr]) -> Expr:
    flat: list[Expr] = []
    for p in parts:
        if p == TRUE:
            return TRUE
        if p == FALSE:
            continue
        if isinstance(p, Or):
            flat.extend(p.parts)
        else:
            flat.append(p)
    fields: dict[str, list[tuple[int, int]]] = {}
    others: list[Expr] = []
    seen: set[Expr] = set()
    for p in flat:
        if isinstance(p, FieldIn):
            fields.setdefault(p.field, []).extend(p.values.intervals)
        elif p not in seen:
            seen.add(p)
            others.append(p)
    out: list[Expr] = []
    for fld in _FIELD_ORDER:
        if fld in fields:
            f = _field_in(fld, IntervalSet(fields[fld]))
            if f == TRUE:
                return TRUE
            if f != FALSE:
                out.append(f)
    out.extend(others)
    if not out:
        return FALSE
    return out[0] if len(out) == 1 else Or(tuple(out))


def _mk_and(parts: Iterable[Expr]) -> Expr:
    pending = list(parts)
    for _ in range(4):
        flat: list[Expr] = []
        stack = list(reversed(pending))
        while stack:
            p = stack.pop()
            if p == FALSE:
                return FALSE
            if p == TRUE:
                continue
            if isinstance(p, And):
                stack.extend(reversed(p.parts))
            else:
                flat.append(p)
        box: dict[str, IntervalSet] = {}
        others: list[Expr] = []
        for p in flat:
            if isinstance(p, FieldIn):
                box[p.field] = box[p.field] & p.values if p.field in box else p.values
                if not box[p.field]:
                    return FALSE
            else:
                others.append(p)
        # a packet's addresses are of one family: the source's family bounds the destination
        for a, b in (("src", "dst"), ("dst", "src")):
            if a in box and b in box:
                for fam in (ALL_V4, ALL_V6):
                    if box[a].issubset(fam) and not box[b].issubset(fam):
                        box[b] = box[b] & fam
                        if not box[b]:
                            return FALSE
        changed = False
        pruned: list[Expr] = []
        seen: set[Expr] = set()
        for p in others:
            q = _prune(p, box)
            if q is not p:
                changed = True
            if q == FALSE:
                return FALSE
            if q == TRUE or q in seen:
                continue
            seen.add(q)
            pruned.append(q)
        out: list[Expr] = []
        for fld in _FIELD_ORDER:
            if fld in box:
                f = _field_in(fld, box[fld])
                if f != TRUE:
                    out.append(f)
        out.extend(pruned)
        if not changed or not any(isinstance(p, FieldIn | And) for p in pruned):
            break
        pending = out
    if not out:
        return TRUE
    return out[0] if len(out) == 1 else And(tuple(out))


class Resolver:
    """Turns internal expressions into model expressions for one rule's action.

    States are expanded; an unknown condition becomes TRUE where that enlarges an allow rule or
    shrinks a deny rule (by its polarity under negations), FALSE otherwise; interface atoms stay
    (as objects the caller substitutes per interface class).
    """

    def __init__(self, states: Callable[[frozenset[str]], IExpr]) -> None:
        self.states = states
        self.memo: dict[tuple[int, bool, bool], tuple[object, Expr, frozenset[str]]] = {}

    def run(self, expr: IExpr, maximize: bool) -> tuple[Expr, frozenset[str]]:
        return self._go(expr, True, maximize)

    def _go(self, x: IExpr, positive: bool, maximize: bool) -> tuple[Expr, frozenset[str]]:
        key = (id(x), positive, maximize)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is x:
            return hit[1], hit[2]
        reasons: frozenset[str] = frozenset()
        out: Expr
        if isinstance(x, FieldIn):
            out = _field_in(x.field, x.values)
        elif isinstance(x, Unknown):
            out = TRUE if positive == maximize else FALSE
            reasons = frozenset((x.reason,))
        elif isinstance(x, Iface):
            out = x  # type: ignore[assignment]
        elif isinstance(x, State):
            out, reasons = self._go(self.states(x.states), positive, maximize)
        elif isinstance(x, And | Or):
            subs = [self._go(p, positive, maximize) for p in x.parts]
            reasons = frozenset().union(*(r for _, r in subs)) if subs else frozenset()
            out = _mk_and(s for s, _ in subs) if isinstance(x, And) else _mk_or(s for s, _ in subs)
        elif isinstance(x, Not):
            inner, reasons = self._go(x.part, not positive, maximize)
            out = _mk_not(inner)
        elif isinstance(x, Guards):
            out, reasons = self._guards(x, positive, maximize)
        else:  # pragma: no cover - the parser builds no other node
            raise TypeError(f"not an expression: {x!r}")
        self.memo[key] = (x, out, reasons)
        return out, reasons


    def _guards(self, x: Guards, positive: bool, maximize: bool) -> tuple[Expr, frozenset[str]]:
        # walk back to the newest node already resolved, then resolve forward one term at a time
        todo: list[Guards] = []
        node: Guards | None = x
        acc: Expr = FALSE
        reasons: frozenset[str] = frozenset()
        while node is not None:
            hit = self.memo.get((id(node), positive, maximize))
            if hit is not None and hit[0] is node:
                acc, reasons = hit[1], hit[2]
                break
            todo.append(node)
            node = node.prev
        for node in reversed(todo):
            term, why = self._go(node.term, positive, maximize)
            acc = _mk_or((acc, term))
            reasons = reasons | why
            self.memo[(id(node), positive, maximize)] = (node, acc, reasons)
        return acc, reasons


def subst_states(x: IExpr, states: Callable[[frozenset[str]], IExpr],
                  memo: dict[int, tuple[object, IExpr]]) -> IExpr:
    hit = memo.get(id(x))
    if hit is not None and hit[0] is x:
        return hit[1]
    if isinstance(x, State):
        out = states(x.states)
    elif isinstance(x, And):
        out = all_of_i(subst_states(p, states, memo) for p in x.parts)
    elif isinstance(x, Or):
        out = any_of_i(subst_states(p, states, memo) for p in x.parts)
    elif isinstance(x, Not):
        out = not_i(subst_states(x.part, states, memo))
    elif isinstance(x, Guards):
        out = any_of_i(subst_states(g.term, states, memo) for g in _guard_terms(x))
    else:
        out = x
    memo[id(x)] = (x, out)
    return out


def _guard_terms(x: Guards) -> list[Guards]:
    nodes: list[Guards] = []
    node: Guards | None = x
    while node is not None:
        nodes.append(node)
        node = node.prev
    return nodes[::-1]


def collect_ifaces(x: Expr, acc: dict[Iface, None]) -> None:
    if isinstance(x, Iface):
        acc[x] = None
    elif isinstance(x, And | Or):
        for p in x.parts:
            collect_ifaces(p, acc)
    elif isinstance(x, Not):
        collect_ifaces(x.part, acc)


def subst_ifaces(x: Expr, value: Callable[[Iface], bool]) -> Expr:
    if isinstance(x, Iface):
        return TRUE if value(x) else FALSE
    if isinstance(x, And):
        return _mk_and(subst_ifaces(p, value) for p in x.parts)
    if isinstance(x, Or):
        return _mk_or(subst_ifaces(p, value) for p in x.parts)
    if isinstance(x, Not):
        return _mk_not(subst_ifaces(x.part, value))
    return x


# --- the importer ------------------------------------------------------------------------------


def raw_states(states: frozenset[str]) -> IExpr:
    # In raw PREROUTING conntrack has not run yet: every packet is seen without a connection.
    return TRUE if "INVALID" in states else FALSE


def interface_classes(interfaces: Sequence[str],
             atoms: list[Iface]) -> list[tuple[dict[Iface, bool], frozenset[str]]]:
    if not atoms:
        return [({}, frozenset(interfaces))]
    groups: dict[tuple[bool, ...], list[str]] = {}
    for name in interfaces:
        groups.setdefault(tuple(name in a.names for a in atoms), []).append(name)
    return [({a: bit for a, bit in zip(atoms, key, strict=True)}, frozenset(names))
            for key, names in groups.items()]
