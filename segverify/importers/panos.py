"""PAN-OS XML configuration importer: the security policy's decision for an initiating packet.

The output is a flat, ordered, first-match RuleSet over the topology's interface names, which for
this format are the firewall's ZONE names: a rule from zone A to zone B applies to packets that
enter by ``A`` and leave by ``B``.

How the file is read
  * The XML export (``<config>``, also the API's ``<response><result><config>`` wrapper and the
    ``<policy>`` document of ``show config pushed-shared-policy``). The parser is expat with line
    numbers kept for every element; DOCTYPE and ENTITY declarations are refused (entity expansion
    is the classic XML bomb), the size, element count and depth are bounded.
  * Each ``/config/devices/entry/vsys/entry``: its ``rulebase/security/rules/entry`` top-down, first
    match, with the Panorama rulebases around it as PAN-OS evaluates them: shared pre-rules,
    panorama (or the one device group's) pre-rules, the vsys's own rules, panorama post-rules,
    shared post-rules; then the default rules ``intrazone-default`` (allow, one rule per zone: same
    zone in and out) and ``interzone-default`` (deny), both as overridden under
    ``default-security-rules``. Objects are looked up in the rule's own namespace first (the vsys,
    or panorama / the device group), then in ``shared``, then among the predefined ones.
  * A rule's id is its name (``VSYS/NAME`` for a vsys's own rules when the file holds several vsys),
    its name the ``description``, its source the line of its ``<entry name="…">``. A NAT rule's id
    is ``nat:NAME``; the default rules keep PAN-OS's names. A rule that applies to several zone
    pairs (interzone with shared zones, intrazone, the intrazone default) becomes several model
    rules with the same id.
  * Zones: ``from``/``to`` members (``any``: every zone), ``rule-type`` universal (every pair),
    intrazone (same zone only) and interzone (different zones only: split into one rule per zone
    where the two lists share zones). Zone definitions (``zone/entry/network/layer3/member`` …)
    scope the rules of each vsys when there are several and are checked against the topology.
  * Addresses: objects (``ip-netmask`` with or without host bits, ``ip-range``, ``ip-wildcard``),
    static address groups (nested, loops refused), literal addresses, prefixes and ranges in rules,
    IPv4 and IPv6, ``any``, and ``negate-source``/``negate-destination``.
  * Services: ``any``, objects (``protocol/tcp|udp|sctp/port`` lists and ranges, ``source-port``),
    service groups (nested, loops refused), the predefined ``service-http`` (tcp/80,8080) and
    ``service-https`` (tcp/443).
  * ``disabled yes`` rules are not emitted; of the actions, deny, drop and the three resets all
    refuse the connection.
  * Left out, with a note on the RuleSet: the other rulebases (decryption, QoS, policy-based
    forwarding, application override, authentication, DoS …: none lets through what the security
    rules deny) and source NAT (the policy sees the initiator's own addresses).

Approximations (never optimistic; each marked on the rule with ``approximation``)
  A condition the file does not decide has a lower and an upper bound; an allow rule takes the
  upper bound (it matches whatever it might match), a deny rule the lower one (it matches only
  what it surely matches), and negation swaps the two. This is the upper closure of a first-match
  list: the allowed set only grows.
  * ``application`` other than ``any``: the first packets of a session pass before the application
    is identified, so an allow rule with applications is taken as matching every application, a
    deny rule as matching none.
  * ``service application-default``: the applications' default ports are not in the file; any port
    for an allow, none for a deny.
  * Dynamic address groups, FQDN objects, external dynamic lists, regions, ``ip-wildcard`` masks too
    scattered to list, names the file does not define (objects pushed by Panorama, say): any
    address for an allow, none for a deny.
  * ``source-user``, URL ``category``, HIP profiles, ``schedule``, Panorama ``target`` and any rule
    element this importer does not know: taken as matching for an allow, not for a deny.
  * Destination NAT (``destination-translation``, ``dynamic-destination-translation``, bi-directional
    static source NAT): the security policy sees the original destination but the packet leaves
    with the translated one. Each such rule becomes an approximated allow on top for its translated
    destination (the rewrite is not followed through the policy).
  * Several vsys: a vsys's rules apply between its own zones; a zone name defined in several vsys
    cannot be told apart, so deny rules do not apply to it. Traffic between zones of different vsys
    is taken as allowed when an ``external`` zone exists, denied otherwise.
  * Conflicting overrides of a default rule (the vsys and Panorama disagree): taken as allow.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.parsers import expat

from ..errors import InputError
from ..model.addresses import ALL_ADDRESSES, V6_BASE, IntervalSet
from ..model.rules import (
    FALSE,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    TRUE,
    Expr,
    FieldIn,
    Rule,
    RuleSet,
    SourceRef,
    all_of,
    any_of,
)

MAX_BYTES = 64 << 20
MAX_ELEMENTS = 3_000_000
MAX_DEPTH = 128
MAX_RULES = 200_000  # model rules after the zone expansion
MAX_WILDCARD_BITS = 12  # an ip-wildcard whose free bits make more than 2**12 intervals is approximated
MAX_REASON = 300

EMPTY = IntervalSet()
ALL_PORTS = IntervalSet([(0, 65535)])

ACTIONS = {"allow": "allow", "deny": "deny", "drop": "deny", "reset-client": "deny", "reset-server": "deny",
           "reset-both": "deny"}
RULE_TYPES = ("universal", "intrazone", "interzone")
SERVICE_PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "sctp": PROTO_SCTP}

# (protocol, destination ports, source ports or None for any)
Atom = tuple[int, IntervalSet, IntervalSet | None]

# The predefined services (PAN-OS "Objects > Services": service-http is tcp/80 and 8080,
# service-https tcp/443; Batfish's ServiceBuiltIn has the same table).
PREDEFINED_SERVICES: dict[str, tuple[Atom, ...]] = {
    "service-http": ((PROTO_TCP, IntervalSet.of(80, 8080), None),),
    "service-https": ((PROTO_TCP, IntervalSet.of(443), None),),
}
# Palo Alto's predefined external dynamic lists: contents delivered by content updates.
PREDEFINED_EDLS = frozenset({"panw-highrisk-ip-list", "panw-known-ip-list", "panw-bulletproof-ip-list",
                             "panw-torexit-ip-list"})

# Rule elements that restrict what matches but that the file cannot decide: "any" (or absence) is
# exact, anything else an unknown condition.
UNDECIDED_LISTS = {
    "source-user": "the users behind an address are learnt at run time",
    "category": "URL categories are not modelled",
    "source-hip": "host information profiles are learnt at run time",
    "destination-hip": "host information profiles are learnt at run time",
    "hip-profiles": "host information profiles are learnt at run time",
    "source-imsi": "mobile subscriber identities are not modelled",
    "source-imei": "mobile equipment identities are not modelled",
    "source-nw-slice": "network slices are not modelled",
}
# Rule elements that change nothing about which packets a rule matches or whether it allows them.
INFORMATIONAL = frozenset({"description", "tag", "group-tag", "log-setting", "log-start", "log-end",
                           "profile-setting", "option", "qos", "icmp-unreachable", "audit-comment",
                           "uuid"})
SECURITY_ELEMENTS = frozenset({"from", "to", "source", "destination", "service", "application",
                               "negate-source", "negate-destination", "rule-type", "disabled", "action",
                               "schedule", "target"}) | INFORMATIONAL | frozenset(UNDECIDED_LISTS)
SINGLE_ELEMENTS = ("from", "to", "source", "destination", "service", "application", "negate-source",
                   "negate-destination", "rule-type", "disabled", "action", "schedule", "target", "description")
# Rulebases other than security and nat: none of them can let through what the security policy
# denies (decryption, QoS, policy-based forwarding, application override, authentication, DoS …).
OTHER_RULEBASES_NOTE = "cannot allow what the security rules deny; not modelled"
ZONE_TYPES = ("layer3", "layer2", "virtual-wire", "tap", "tunnel", "external")

_PORT_RANGE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
_REGION = re.compile(r"^[A-Z]{2}$")


# --- XML with line numbers ---------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    """One XML element: its tag, attributes, children, text and the line of its start tag."""

    tag: str
    attrs: dict[str, str]
    line: int
    children: list[_Node] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def all(self, tag: str) -> list[_Node]:
        return [c for c in self.children if c.tag == tag]

    def child(self, tag: str) -> _Node | None:
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def find(self, *tags: str) -> _Node | None:
        node: _Node | None = self
        for tag in tags:
            node = node.child(tag) if node is not None else None
        return node


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse_xml(path: str, data: bytes) -> _Node:
    """The element tree of ``data`` with line numbers; InputError for anything but plain XML.

    DOCTYPE and ENTITY declarations are refused outright: a configuration export never has them,
    and internal entities are how an XML bomb multiplies a small file into gigabytes.
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True
    stack: list[_Node] = []
    roots: list[_Node] = []
    count = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS:
            raise _Refused(parser.CurrentLineNumber, f"more than {MAX_ELEMENTS} XML elements")
        if len(stack) >= MAX_DEPTH:
            raise _Refused(parser.CurrentLineNumber, f"XML nested more than {MAX_DEPTH} deep")
        node = _Node(tag, attrs, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            stack[-1].parts.append(data)

    def doctype(*_: object) -> None:
        raise _Refused(parser.CurrentLineNumber, "DOCTYPE declarations are refused (entity expansion)")

    def entity(*_: object) -> None:
        raise _Refused(parser.CurrentLineNumber, "ENTITY declarations are refused (entity expansion)")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise InputError(path, exc.message, exc.line) from None
    except expat.ExpatError as exc:
        raise InputError(path, f"not well-formed XML: {expat.ErrorString(exc.code)}", exc.lineno) from None
    if not roots:
        raise InputError(path, "no XML element found", 1)
    return roots[0]


# --- bounded sets: what surely matches, what might ---------------------------------------------


def _merge(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r for g in groups for r in g))


@dataclass(frozen=True)
class _Addr:
    """An address set known between ``lo`` (surely in it) and ``hi`` (possibly in it)."""

    lo: IntervalSet
    hi: IntervalSet
    reasons: tuple[str, ...] = ()

    @staticmethod
    def exact(values: IntervalSet) -> _Addr:
        return _Addr(values, values)

    @staticmethod
    def unknown(reason: str) -> _Addr:
        return _Addr(EMPTY, ALL_ADDRESSES, (reason,))

    @staticmethod
    def union(items: Sequence[_Addr]) -> _Addr:
        if len(items) == 1:
            return items[0]
        lo = IntervalSet(iv for a in items for iv in a.lo.intervals)
        hi = IntervalSet(iv for a in items for iv in a.hi.intervals)
        return _Addr(lo, hi, _merge(*(a.reasons for a in items)))

    def negated(self) -> _Addr:
        return _Addr(ALL_ADDRESSES - self.hi, ALL_ADDRESSES - self.lo, self.reasons)


@dataclass(frozen=True)
class _Svc:
    """A service set between ``lo`` and ``hi``: tuples of atoms, None meaning every packet."""

    lo: tuple[Atom, ...] | None
    hi: tuple[Atom, ...] | None
    reasons: tuple[str, ...] = ()

    @staticmethod
    def exact(atoms: tuple[Atom, ...] | None) -> _Svc:
        return _Svc(atoms, atoms)

    @staticmethod
    def unknown(reason: str) -> _Svc:
        return _Svc((), None, (reason,))

    @staticmethod
    def union(items: Sequence[_Svc]) -> _Svc:
        if len(items) == 1:
            return items[0]

        def join(sides: list[tuple[Atom, ...] | None]) -> tuple[Atom, ...] | None:
            if any(s is None for s in sides):
                return None
            return tuple(dict.fromkeys(a for s in sides for a in s))  # type: ignore[union-attr]

        return _Svc(join([s.lo for s in items]), join([s.hi for s in items]), _merge(*(s.reasons for s in items)))


def _addr_expr(name: str, values: IntervalSet) -> Expr:
    if values == ALL_ADDRESSES:
        return TRUE
    if not values:
        return FALSE
    return FieldIn(name, values)


def _svc_expr(atoms: tuple[Atom, ...] | None) -> Expr:
    if atoms is None:
        return TRUE
    merged: dict[tuple[int, IntervalSet | None], list[tuple[int, int]]] = {}
    for proto, dports, sports in atoms:
        merged.setdefault((proto, sports), []).extend(dports.intervals)
    terms: list[Expr] = []
    for (proto, sports), dports in merged.items():
        dset = IntervalSet(dports)
        terms.append(all_of(
            FieldIn("proto", IntervalSet.of(proto)),
            TRUE if dset == ALL_PORTS else FieldIn("dport", dset),
            TRUE if sports is None or sports == ALL_PORTS else FieldIn("sport", sports),
        ))
    return any_of(*terms)


# --- namespaces and rules ----------------------------------------------------------------------


@dataclass(eq=False)
class _Namespace:
    """Where objects are looked up: a vsys, ``panorama`` or a device group, then ``shared``."""

    name: str
    addresses: dict[str, _Node] = field(default_factory=dict)
    groups: dict[str, _Node] = field(default_factory=dict)
    edls: dict[str, _Node] = field(default_factory=dict)
    services: dict[str, _Node] = field(default_factory=dict)
    service_groups: dict[str, _Node] = field(default_factory=dict)
    parent: _Namespace | None = None


@dataclass(eq=False)
class _Container:
    """A place holding rulebases: a vsys, ``shared``, ``panorama`` or a device group."""

    name: str
    node: _Node
    ns: _Namespace
    zones: dict[str, tuple[str, tuple[str, ...], int]] = field(default_factory=dict)  # name → type, members, line


@dataclass
class _Built:
    """One security rule, resolved: zones, the match an allow or deny takes, and why it is approximate."""

    rid: str
    action: str
    match: Expr
    zones_from: frozenset[str] | None
    zones_to: frozenset[str] | None
    rule_type: str
    line: int
    name: str | None
    reasons: tuple[str, ...]


class _Importer:
    def __init__(self, path: str, interfaces: Sequence[str]) -> None:
        self.path = path
        self.interfaces = tuple(dict.fromkeys(interfaces))
        self.topo = frozenset(self.interfaces)
        self.notes: list[str] = []
        self.addr_cache: dict[tuple[int, str], _Addr] = {}
        self.svc_cache: dict[tuple[int, str], _Svc] = {}
        self.in_progress: set[tuple[int, str]] = set()
        self.built_cache: dict[tuple[int, int], _Built | None] = {}
        self.emitted = 0

    def err(self, message: str, line: int | None) -> InputError:
        return InputError(self.path, message, line)

    # -- small readers --

    def name_of(self, node: _Node) -> str:
        name = node.attrs.get("name", "").strip()
        if not name:
            raise self.err(f"<{node.tag}> without a name", node.line)
        return name

    def entries(self, node: _Node | None) -> list[_Node]:
        """The ``<entry>`` children of a container; anything else in it is an error."""
        if node is None:
            return []
        out = []
        for c in node.children:
            if c.tag != "entry":
                raise self.err(f"unexpected <{c.tag}> in <{node.tag}> (expected <entry>)", c.line)
            self.name_of(c)
            out.append(c)
        return out

    def members(self, node: _Node | None) -> list[tuple[str, int]] | None:
        """The ``<member>`` values of a list element; None when it is absent or empty."""
        if node is None:
            return None
        out: list[tuple[str, int]] = []
        for c in node.children:
            if c.tag != "member":
                raise self.err(f"unexpected <{c.tag}> in <{node.tag}> (expected <member>)", c.line)
            if not c.text:
                raise self.err(f"empty <member> in <{node.tag}>", c.line)
            out.append((c.text, c.line))
        if not out and node.text:  # a single value written as text (NAT's <service>any</service>)
            out.append((node.text, node.line))
        return out or None

    def yes_no(self, node: _Node | None) -> bool:
        if node is None:
            return False
        if node.text not in ("yes", "no"):
            raise self.err(f"<{node.tag}> must be yes or no, not {node.text!r}", node.line)
        return node.text == "yes"

    def single(self, node: _Node, tags: Iterable[str]) -> None:
        seen: dict[str, int] = {}
        for c in node.children:
            if c.tag in tags and c.tag in seen:
                raise self.err(f"<{c.tag}> given twice in {node.attrs.get('name', node.tag)!r}", c.line)
            seen[c.tag] = c.line

    # -- objects --

    def namespace(self, name: str, node: _Node | None, parent: _Namespace | None) -> _Namespace:
        ns = _Namespace(name, parent=parent)
        if node is None:
            return ns
        for tag, table in (("address", ns.addresses), ("address-group", ns.groups), ("external-list", ns.edls),
                           ("service", ns.services), ("service-group", ns.service_groups)):
            for section in node.all(tag):
                for entry in self.entries(section):
                    key = self.name_of(entry)
                    if key in table:
                        raise self.err(f"{tag} {key!r} defined twice in {name} (first at line {table[key].line})",
                                       entry.line)
                    table[key] = entry
        return ns

    def address(self, name: str, ns: _Namespace, line: int, depth: int = 0) -> _Addr:
        """The address set a source/destination member or group member names."""
        if name == "any":
            return _Addr.exact(ALL_ADDRESSES)
        scope: _Namespace | None = ns
        while scope is not None:
            for table, kind in ((scope.addresses, "address"), (scope.groups, "group"), (scope.edls, "edl")):
                node = table.get(name)
                if node is not None:
                    return self.address_object(kind, node, scope, depth)
            scope = scope.parent
        literal = self.literal(name)
        if literal is not None:
            return _Addr.exact(literal)
        if name in PREDEFINED_EDLS:
            return _Addr.unknown(f"{name} is a predefined external dynamic list: its contents are not in the file")
        if _REGION.match(name):
            return _Addr.unknown(f"region {name}: the addresses of a country are not in the file")
        return _Addr.unknown(f"address {name!r} is not defined in the file (pushed by Panorama?)")

    def address_object(self, kind: str, node: _Node, ns: _Namespace, depth: int) -> _Addr:
        key = (id(node), kind)
        hit = self.addr_cache.get(key)
        if hit is not None:
            return hit
        name = self.name_of(node)
        if key in self.in_progress:
            raise self.err(f"address group loop through {name!r}", node.line)
        if depth > MAX_DEPTH:
            raise self.err(f"address groups nested more than {MAX_DEPTH} deep at {name!r}", node.line)
        self.in_progress.add(key)
        try:
            if kind == "address":
                result = self.address_value(node, name)
            elif kind == "edl":
                result = _Addr.unknown(f"external dynamic list {name!r}: its contents are fetched at run time")
            else:
                result = self.address_group(node, name, ns, depth)
        finally:
            self.in_progress.discard(key)
        self.addr_cache[key] = result
        return result

    def address_value(self, node: _Node, name: str) -> _Addr:
        kinds = [c for c in node.children if c.tag in ("ip-netmask", "ip-range", "ip-wildcard", "fqdn")]
        others = [c.tag for c in node.children if c.tag not in ("ip-netmask", "ip-range", "ip-wildcard", "fqdn",
                                                                 "description", "tag", "disable-override")]
        if len(kinds) != 1:
            what = "no" if not kinds else "more than one"
            raise self.err(f"address {name!r} has {what} ip-netmask, ip-range, ip-wildcard or fqdn", node.line)
        value = kinds[0]
        text = value.text
        if value.tag == "fqdn":
            return _Addr.unknown(f"address {name!r} is the FQDN {text!r}: resolved at run time")
        if value.tag == "ip-wildcard":
            result = self.wildcard(text, name, value.line)
        else:
            parsed = self.literal(text)
            if parsed is None or (value.tag == "ip-range") != ("-" in text):
                raise self.err(f"address {name!r}: cannot read {value.tag} {text!r}", value.line)
            result = _Addr.exact(parsed)
        if others:
            reason = f"address {name!r} has <{others[0]}>, which is not modelled"
            return _Addr(EMPTY, ALL_ADDRESSES, _merge(result.reasons, (reason,)))
        return result

    def literal(self, text: str) -> IntervalSet | None:
        """An address, prefix (host bits allowed, as PAN-OS does) or ``a-b`` range; None if it is none."""
        text = text.strip()
        try:
            if "-" in text:
                first, last = text.split("-", 1)
                a, b = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
                if a.version != b.version or int(a) > int(b):
                    return None
                base = V6_BASE if a.version == 6 else 0
                return IntervalSet([(base + int(a), base + int(b))])
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None
        base = V6_BASE if net.version == 6 else 0
        return IntervalSet([(base + int(net.network_address), base + int(net.broadcast_address))])

    def wildcard(self, text: str, name: str, line: int) -> _Addr:
        """``10.0.1.0/0.0.254.255``: the mask's 1 bits are free. Exact while the intervals are few."""
        try:
            addr_text, mask_text = text.split("/", 1)
            addr, mask = ipaddress.ip_address(addr_text.strip()), ipaddress.ip_address(mask_text.strip())
        except ValueError:
            raise self.err(f"address {name!r}: cannot read ip-wildcard {text!r}", line) from None
        if addr.version != mask.version:
            raise self.err(f"address {name!r}: ip-wildcard mixes IPv4 and IPv6", line)
        base = V6_BASE if addr.version == 6 else 0
        m = int(mask)
        a = int(addr) & ~m
        trailing = (m ^ (m + 1)).bit_length() - 1  # number of trailing 1 bits
        size = 1 << trailing
        free = [b for b in range(trailing, addr.max_prefixlen) if m >> b & 1]
        if len(free) > MAX_WILDCARD_BITS:
            return _Addr(IntervalSet([(base + a, base + a + size - 1)]), IntervalSet([(base + a, base + (a | m))]),
                         (f"address {name!r}: ip-wildcard {text} spans too many ranges to list",))
        intervals = []
        for k in range(1 << len(free)):
            v = a
            for i, b in enumerate(free):
                if k >> i & 1:
                    v |= 1 << b
            intervals.append((base + v, base + v + size - 1))
        return _Addr.exact(IntervalSet(intervals))

    def address_group(self, node: _Node, name: str, ns: _Namespace, depth: int) -> _Addr:
        static, dynamic = node.child("static"), node.child("dynamic")
        if static is None and dynamic is None:
            raise self.err(f"address group {name!r} is neither static nor dynamic", node.line)
        parts: list[_Addr] = []
        if dynamic is not None:
            filt = dynamic.find("filter")
            what = f" ({filt.text})" if filt is not None and filt.text else ""
            parts.append(_Addr.unknown(f"dynamic address group {name!r}{what}: members are registered at run time"))
        if static is not None:
            for member, line in self.members(static) or []:
                parts.append(self.address(member, ns, line, depth + 1))
        return _Addr.union(parts) if parts else _Addr.exact(EMPTY)

    def addresses(self, node: _Node | None, ns: _Namespace, what: str) -> _Addr:
        items = self.members(node)
        if items is None:
            return _Addr.unknown(f"no <{what}>")
        return _Addr.union([self.address(name, ns, line) for name, line in items])

    def service(self, name: str, ns: _Namespace, line: int, depth: int = 0) -> _Svc:
        scope: _Namespace | None = ns
        while scope is not None:
            for table, kind in ((scope.services, "service"), (scope.service_groups, "group")):
                node = table.get(name)
                if node is not None:
                    return self.service_object(kind, node, scope, depth)
            scope = scope.parent
        if name in PREDEFINED_SERVICES:
            return _Svc.exact(PREDEFINED_SERVICES[name])
        if name == "any":
            return _Svc.exact(None)
        if name == "application-default":
            return _Svc.unknown("service application-default: the applications' default ports are not in the file")
        return _Svc.unknown(f"service {name!r} is not defined in the file (pushed by Panorama?)")

    def service_object(self, kind: str, node: _Node, ns: _Namespace, depth: int) -> _Svc:
        key = (id(node), kind)
        hit = self.svc_cache.get(key)
        if hit is not None:
            return hit
        name = self.name_of(node)
        if key in self.in_progress:
            raise self.err(f"service group loop through {name!r}", node.line)
        if depth > MAX_DEPTH:
            raise self.err(f"service groups nested more than {MAX_DEPTH} deep at {name!r}", node.line)
        self.in_progress.add(key)
        try:
            if kind == "service":
                result = self.service_value(node, name)
            else:
                items = self.members(node.child("members")) or []
                items += [(c.text, c.line) for c in node.all("member")]  # older exports
                parts = [self.service(m, ns, line, depth + 1) for m, line in items]
                result = _Svc.union(parts) if parts else _Svc.exact(())
        finally:
            self.in_progress.discard(key)
        self.svc_cache[key] = result
        return result

    def service_value(self, node: _Node, name: str) -> _Svc:
        protocol = node.child("protocol")
        if protocol is None or not protocol.children:
            raise self.err(f"service {name!r} has no protocol", node.line)
        atoms: list[Atom] = []
        reasons: list[str] = []
        for proto_node in protocol.children:
            proto = SERVICE_PROTOCOLS.get(proto_node.tag)
            if proto is None:
                reasons.append(f"service {name!r}: protocol <{proto_node.tag}> is not modelled")
                continue
            port = proto_node.child("port")
            if port is None:
                raise self.err(f"service {name!r} has no destination port", proto_node.line)
            dports = self.ports(port)
            source = proto_node.child("source-port")
            sports = self.ports(source) if source is not None else None
            atoms.append((proto, dports, sports))
        if reasons:
            return _Svc(tuple(atoms), None, tuple(reasons))
        return _Svc.exact(tuple(atoms))

    def ports(self, node: _Node) -> IntervalSet:
        intervals = []
        for item in node.text.split(","):
            m = _PORT_RANGE.match(item.strip())
            if not m:
                raise self.err(f"cannot read port {item.strip()!r}", node.line)
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) else lo
            if hi > 65535 or lo > hi:
                raise self.err(f"port range {item.strip()!r} out of range", node.line)
            intervals.append((lo, hi))
        return IntervalSet(intervals)

    def services(self, node: _Node | None, ns: _Namespace) -> _Svc:
        items = self.members(node)
        if items is None:
            return _Svc.unknown("no <service>")
        return _Svc.union([self.service(name, ns, line) for name, line in items])

    # -- containers --

    def container(self, name: str, node: _Node, ns: _Namespace) -> _Container:
        c = _Container(name, node, ns)
        for section in node.all("zone"):
            for entry in self.entries(section):
                zname = self.name_of(entry)
                if zname in c.zones:
                    raise self.err(f"zone {zname!r} defined twice in {name}", entry.line)
                kind, members = "layer3", ()
                network = entry.child("network")
                if network is not None:
                    for t in network.children:
                        if t.tag in ZONE_TYPES:
                            kind = t.tag
                            members = tuple(m for m, _ in self.members(t) or [])
                c.zones[zname] = (kind, members, entry.line)
        return c

    def rulebase_rules(self, rulebase: _Node | None, kind: str) -> list[_Node]:
        if rulebase is None:
            return []
        return self.entries(rulebase.find(kind, "rules"))

    # -- security rules --

    def build(self, node: _Node, ns: _Namespace, prefix: str) -> _Built | None:
        key = (id(node), id(ns))
        if key in self.built_cache:
            return self.built_cache[key]
        built = self.build_rule(node, ns, prefix)
        self.built_cache[key] = built
        return built

    def build_rule(self, node: _Node, ns: _Namespace, prefix: str) -> _Built | None:
        name = self.name_of(node)
        self.single(node, SINGLE_ELEMENTS)
        if self.yes_no(node.child("disabled")):
            return None
        reasons: list[str] = []
        action_node = node.child("action")
        if action_node is None:
            action = "allow"
            reasons.append("no <action>: taken as allow")
        else:
            if action_node.text not in ACTIONS:
                raise self.err(f"unknown action {action_node.text!r} in rule {name!r}", action_node.line)
            action = ACTIONS[action_node.text]
        allow = action == "allow"
        rt_node = node.child("rule-type")
        rule_type = rt_node.text if rt_node is not None else "universal"
        if rule_type not in RULE_TYPES:
            raise self.err(f"unknown rule-type {rule_type!r} in rule {name!r}", rt_node.line if rt_node else node.line)
        zones: list[frozenset[str] | None] = []
        for tag in ("from", "to"):
            items = self.members(node.child(tag))
            if items is None:
                reasons.append(f"no <{tag}> zone")
                zones.append(None if allow else frozenset())
            elif any(m == "any" for m, _ in items):
                zones.append(None)
            else:
                zones.append(frozenset(m for m, _ in items))
        src = self.addresses(node.child("source"), ns, "source")
        if self.yes_no(node.child("negate-source")):
            src = src.negated()
        dst = self.addresses(node.child("destination"), ns, "destination")
        if self.yes_no(node.child("negate-destination")):
            dst = dst.negated()
        svc = self.services(node.child("service"), ns)
        parts: list[Expr] = []
        for field_name, a in (("src", src), ("dst", dst)):
            parts.append(_addr_expr(field_name, a.hi if allow else a.lo))
            if a.lo != a.hi:
                reasons.extend(a.reasons)
        parts.append(_svc_expr(svc.hi if allow else svc.lo))
        if svc.lo != svc.hi:
            reasons.extend(svc.reasons)
        undecided = self.undecided(node, name)
        if undecided:
            reasons.extend(undecided)
            if not allow:
                parts.append(FALSE)
        desc = node.child("description")
        match = all_of(*parts)
        rid = f"{prefix}{name}"
        return _Built(rid, action, match, zones[0], zones[1], rule_type, node.line,
                      desc.text if desc is not None and desc.text else None, _merge(reasons))

    def undecided(self, node: _Node, name: str) -> list[str]:
        """Why the rule's other conditions may or may not hold (applications, users, schedules …)."""
        out: list[str] = []
        apps = self.members(node.child("application"))
        if apps is None:
            out.append("no <application>")
        elif not any(a == "any" for a, _ in apps):
            listed = ", ".join(a for a, _ in apps[:4]) + (", …" if len(apps) > 4 else "")
            out.append(f"application {listed}: the first packets pass before the application is identified")
        for tag, why in UNDECIDED_LISTS.items():
            items = self.members(node.child(tag))
            if items is not None and not any(m == "any" for m, _ in items):
                out.append(f"{tag} {items[0][0]}: {why}")
        schedule = node.child("schedule")
        if schedule is not None and schedule.text:
            out.append(f"schedule {schedule.text}: time of day is not modelled")
        target = node.child("target")
        if target is not None and (self.yes_no(target.child("negate")) or target.find("devices", "entry")):
            out.append("target: the rule is pushed to some devices only")
        for c in node.children:
            if c.tag not in SECURITY_ELEMENTS:
                out.append(f"<{c.tag}> is not modelled")
        return out

    # -- zones to interface sets --

    def zone_pairs(self, b: _Built, scope: frozenset[str] | None
                   ) -> list[tuple[frozenset[str] | None, frozenset[str] | None]]:
        """The (ingress, egress) interface sets a rule applies to, rule-type included."""
        universe = self.topo if scope is None else scope

        def resolve(zones: frozenset[str] | None) -> frozenset[str] | None:
            if zones is None:
                return scope
            return zones & universe

        f, t = resolve(b.zones_from), resolve(b.zones_to)
        fu = universe if f is None else f
        tu = universe if t is None else t
        pairs: list[tuple[frozenset[str] | None, frozenset[str] | None]] = []
        if b.rule_type == "universal":
            pairs.append((f, t))
        elif b.rule_type == "intrazone":
            pairs.extend((frozenset({z}), frozenset({z})) for z in self.ordered(fu & tu))
        else:
            common = fu & tu
            if not common:
                pairs.append((f, t))
            else:
                if fu - common:
                    pairs.append((fu - common, t))
                for z in self.ordered(common):
                    if tu - {z}:
                        pairs.append((frozenset({z}), tu - {z}))
        return pairs or [(frozenset(), frozenset())]

    def ordered(self, names: frozenset[str]) -> list[str]:
        return [n for n in self.interfaces if n in names]

    def emit(self, out: list[Rule], rule: Rule) -> None:
        self.emitted += 1
        if self.emitted > MAX_RULES:
            raise self.err(f"more than {MAX_RULES} rules after expanding zones", rule.source.line if rule.source
                           else None)
        out.append(rule)

    # -- the whole file --

    def run(self) -> RuleSet:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise self.err(f"cannot read the file: {exc.strerror or exc}", None) from None
        if len(data) > MAX_BYTES:
            raise self.err(f"larger than {MAX_BYTES >> 20} MiB", None)
        root = parse_xml(self.path, data)
        if root.tag == "response":
            inner = root.find("result")
            nested = [c for c in inner.children if c.tag in ("config", "policy")] if inner is not None else []
            if not nested:
                raise self.err("an API <response> without <result><config>", root.line)
            root = nested[0]
        if root.tag not in ("config", "policy"):
            raise self.err(f"not a PAN-OS configuration: the root element is <{root.tag}>, not <config>",
                           root.line)
        shared_node = root.child("shared")
        shared_ns = self.namespace("shared", shared_node, None)
        panorama_node = root.child("panorama")
        vsys_nodes: list[_Node] = []
        device_groups: list[_Node] = []
        for device in self.entries(root.child("devices")):
            vsys_nodes.extend(self.entries(device.child("vsys")))
            device_groups.extend(self.entries(device.child("device-group")))
        if panorama_node is None and device_groups and not vsys_nodes:
            if len(device_groups) > 1:
                names = ", ".join(self.name_of(d) for d in device_groups[:5])
                raise self.err(f"a Panorama configuration with {len(device_groups)} device groups ({names}): "
                               "export the firewall's own configuration", device_groups[1].line)
            panorama_node = device_groups[0]
            self.notes.append(f"Panorama configuration: device group {self.name_of(panorama_node)!r} taken as the "
                              "rules pushed to this firewall")
        elif device_groups:
            self.notes.append(f"{len(device_groups)} Panorama device group(s) not read: the vsys rules are used")
        panorama_ns = self.namespace("panorama", panorama_node, shared_ns) if panorama_node is not None else None
        shared = self.container("shared", shared_node, panorama_ns or shared_ns) if shared_node is not None else None
        panorama = self.container("panorama", panorama_node, panorama_ns) if panorama_node and panorama_ns else None
        vsyses: list[_Container] = []
        seen: dict[str, int] = {}
        for node in vsys_nodes:
            vname = self.name_of(node)
            if vname in seen:
                raise self.err(f"vsys {vname!r} defined twice (first at line {seen[vname]})", node.line)
            seen[vname] = node.line
            vsyses.append(self.container(vname, node, self.namespace(vname, node, shared_ns)))
        for ns in [shared_ns, *([panorama_ns] if panorama_ns else []), *(v.ns for v in vsyses)]:
            self.validate(ns)
        has_pushed = any(c is not None and (c.node.child("pre-rulebase") or c.node.child("post-rulebase"))
                         for c in (shared, panorama))
        if not vsyses:
            if not has_pushed:
                raise self.err("no vsys found (/config/devices/entry/vsys/entry) and no Panorama rulebase", root.line)
            vsyses.append(_Container("(pushed)", _Node("vsys", {}, root.line), shared_ns))
        return self.flatten(vsyses, shared, panorama)

    def validate(self, ns: _Namespace) -> None:
        """Read every object once, used or not: a malformed object is a malformed file (and loops
        are found wherever they are). Results are cached for the rules."""
        for kind, table in (("address", ns.addresses), ("group", ns.groups), ("edl", ns.edls)):
            for node in table.values():
                self.address_object(kind, node, ns, 0)
        for kind, table in (("service", ns.services), ("group", ns.service_groups)):
            for node in table.values():
                self.service_object(kind, node, ns, 0)

    def flatten(self, vsyses: list[_Container], shared: _Container | None, panorama: _Container | None) -> RuleSet:
        multi = len(vsyses) > 1
        if multi:
            self.notes.append(f"{len(vsyses)} vsys: each one's rules apply between its own zones")
        pre = [c for c in (shared, panorama) if c is not None]
        post = [c for c in (panorama, shared) if c is not None]
        # zone scopes: declared zones and the zones a vsys's own rules name
        scopes: dict[str, frozenset[str] | None] = {}
        for v in vsyses:
            if not multi:
                scopes[v.name] = None
                continue
            names = set(v.zones)
            for entry in self.rulebase_rules(v.node.child("rulebase"), "security"):
                for tag in ("from", "to"):
                    names.update(m for m, _ in self.members(entry.child(tag)) or [] if m != "any")
            scopes[v.name] = frozenset(names) & self.topo
        owners: dict[str, list[str]] = {}
        for v in vsyses:
            for z in scopes[v.name] or ():
                owners.setdefault(z, []).append(v.name)
        ambiguous = frozenset(z for z, vs in owners.items() if len(vs) > 1)
        self.check_zones(vsyses, multi, owners)
        rules: list[Rule] = []
        defaults: list[Rule] = []
        for v in vsyses:
            scope = scopes[v.name]
            prefix = f"{v.name}/" if multi else ""
            sources: list[tuple[_Container, str, str]] = [(c, "pre-rulebase", "") for c in pre]
            sources.append((v, "rulebase", prefix))
            sources += [(c, "post-rulebase", "") for c in post]
            self.note_rulebases(sources)
            for c, rb, pfx in sources:
                self.nat_rules(rules, c, rb, pfx, scope, ambiguous)
            names: dict[str, int] = {}
            for c, rb, pfx in sources:
                for entry in self.rulebase_rules(c.node.child(rb), "security"):
                    rname = self.name_of(entry)
                    if rname in names:
                        raise self.err(f"security rule {rname!r} defined twice (first at line {names[rname]})",
                                       entry.line)
                    names[rname] = entry.line
                    built = self.build(entry, c.ns, pfx)
                    if built is not None:
                        self.emit_built(rules, built, scope, ambiguous)
            defaults.extend(self.default_rules(v, sources, scope, prefix, ambiguous))
        if multi:
            rules.extend(self.cross_vsys(vsyses, scopes, ambiguous))
        for r in defaults:
            self.emit(rules, r)
        default = "deny"
        if not multi and defaults and defaults[-1].id == "interzone-default":
            default = defaults[-1].action
        return RuleSet(tuple(rules), default, tuple(self.notes))  # type: ignore[arg-type]

    def emit_built(self, out: list[Rule], b: _Built, scope: frozenset[str] | None,
                   ambiguous: frozenset[str]) -> None:
        source = SourceRef(self.path, b.line)
        for fin, fout in self.zone_pairs(b, scope):
            reasons = b.reasons
            if b.action == "deny" and ambiguous and ((fin or frozenset()) | (fout or frozenset())) & ambiguous:
                fin = fin - ambiguous if fin is not None else None
                fout = fout - ambiguous if fout is not None else None
                reasons = _merge(reasons, ("a zone defined in several vsys: the deny is not applied to it",))
            self.emit(out, Rule(b.rid, b.action, b.match, fin, fout, source, b.name,  # type: ignore[arg-type]
                                self.reason(reasons)))

    def reason(self, reasons: Iterable[str]) -> str | None:
        text = "; ".join(dict.fromkeys(reasons))
        if not text:
            return None
        return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"

    def note_rulebases(self, sources: list[tuple[_Container, str, str]]) -> None:
        for c, rb, _ in sources:
            node = c.node.child(rb)
            if node is None:
                continue
            for part in node.children:
                if part.tag not in ("security", "nat", "default-security-rules"):
                    note = f"{c.name} {rb} {part.tag} (line {part.line}): {OTHER_RULEBASES_NOTE}"
                    if note not in self.notes:
                        self.notes.append(note)

    def nat_rules(self, out: list[Rule], c: _Container, rb: str, prefix: str, scope: frozenset[str] | None,
                  ambiguous: frozenset[str]) -> None:
        """Destination NAT as approximated allows on top: the translated packets are taken as passing."""
        source_only = 0
        for entry in self.rulebase_rules(c.node.child(rb), "nat"):
            name = self.name_of(entry)
            self.single(entry, SINGLE_ELEMENTS)
            if self.yes_no(entry.child("disabled")):
                continue
            translations: list[tuple[_Node, str]] = []
            for tag in ("destination-translation", "dynamic-destination-translation"):
                t = entry.child(tag)
                if t is not None:
                    translations.append((t, tag))
            static = entry.find("source-translation", "static-ip")
            bidir = static is not None and self.yes_no(static.child("bi-directional"))
            if not translations and not bidir:
                source_only += 1
                continue
            from_items = self.members(entry.child("from"))
            to_items = self.members(entry.child("to"))
            from_zones = None if not from_items or any(m == "any" for m, _ in from_items) else frozenset(
                m for m, _ in from_items)
            to_zones = None if not to_items or any(m == "any" for m, _ in to_items) else frozenset(
                m for m, _ in to_items)
            src = self.addresses(entry.child("source"), c.ns, "source")
            svc = self.services(entry.child("service"), c.ns)
            for t, tag in translations:
                address = t.child("translated-address")
                if address is not None and address.text:
                    dst = _Addr.union([self.address(address.text, c.ns, address.line)])
                else:
                    dst = _Addr.unknown("no translated-address")
                port = t.child("translated-port")
                svc_expr = TRUE if port is not None else _svc_expr(svc.hi)
                match = all_of(_addr_expr("src", src.hi), _addr_expr("dst", dst.hi), svc_expr)
                why = (f"{tag} to {address.text if address is not None else '?'}: the translated packets are "
                       "taken as passing (the policy's check of the original destination is not followed)")
                b = _Built(f"{prefix}nat:{name}", "allow", match, from_zones, None, "universal", entry.line,
                           None, (why,))
                self.emit_built(out, b, scope, ambiguous)
            if bidir:
                assert static is not None
                why = ("bi-directional static NAT: connections toward the translated address reach the original "
                       "source; taken as passing")
                match = _addr_expr("dst", src.hi)
                b = _Built(f"{prefix}nat:{name}", "allow", match, to_zones, None, "universal", entry.line,
                           None, (why,))
                self.emit_built(out, b, scope, ambiguous)
        if source_only:
            note = (f"{c.name} {rb}: {source_only} source NAT rule(s) do not change the initiator's addresses as the "
                    "security policy sees them")
            if note not in self.notes:
                self.notes.append(note)

    def default_rules(self, v: _Container, sources: list[tuple[_Container, str, str]],
                      scope: frozenset[str] | None, prefix: str, ambiguous: frozenset[str]) -> list[Rule]:
        """``intrazone-default`` (one rule per zone) then ``interzone-default``, as overridden."""
        overrides: dict[str, list[tuple[str, int]]] = {"intrazone-default": [], "interzone-default": []}
        for c, rb, _ in sources:
            if rb == "pre-rulebase":
                continue
            node = c.node.find(rb, "default-security-rules")
            if node is None:
                continue
            for entry in self.entries(node.child("rules")):
                name = self.name_of(entry)
                if name not in overrides:
                    raise self.err(f"unknown default rule {name!r} (intrazone-default or interzone-default)",
                                   entry.line)
                action = entry.child("action")
                if action is not None:
                    if action.text not in ACTIONS:
                        raise self.err(f"unknown action {action.text!r} in default rule {name!r}", action.line)
                    overrides[name].append((ACTIONS[action.text], entry.line))
        out: list[Rule] = []
        universe = self.topo if scope is None else scope
        for name, fallback in (("intrazone-default", "allow"), ("interzone-default", "deny")):
            given = overrides[name]
            actions = {a for a, _ in given}
            reasons: list[str] = []
            if not actions:
                action = fallback
            elif len(actions) == 1:
                action = actions.pop()
            else:
                action = "allow"
                reasons.append(f"{name} is overridden both ways (vsys and Panorama): taken as allow")
            line = given[0][1] if given else None
            source = SourceRef(self.path, line)
            rid = f"{prefix}{name}"
            if name == "intrazone-default":
                zones = self.ordered(universe)
                if action == "deny":
                    zones = [z for z in zones if z not in ambiguous]
                for z in zones:
                    out.append(Rule(rid, action, TRUE, frozenset({z}), frozenset({z}), source,  # type: ignore[arg-type]
                                    None, self.reason(reasons)))
            else:
                fin = fout = scope
                if action == "deny" and scope is not None:
                    fin = fout = scope - ambiguous
                out.append(Rule(rid, action, TRUE, fin, fout, source, None, self.reason(reasons)))  # type: ignore[arg-type]
        return out

    def cross_vsys(self, vsyses: list[_Container], scopes: dict[str, frozenset[str] | None],
                   ambiguous: frozenset[str]) -> list[Rule]:
        """Between zones of different vsys: through external zones only."""
        owned = frozenset().union(*(s or frozenset() for s in scopes.values()))
        external = [(v.name, z) for v in vsyses for z, (kind, _, _) in v.zones.items() if kind == "external"]
        out: list[Rule] = []
        for v in vsyses:
            scope = scopes[v.name] or frozenset()
            fin, fout = scope, owned - scope
            if not fin or not fout:
                continue
            if external:
                reason = (f"traffic between vsys passes external zones ({external[0][1]} in {external[0][0]}…): "
                          "both vsys policies are not followed; taken as allowed")
                out.append(Rule(f"{v.name}/(inter-vsys)", "allow", TRUE, fin, fout, None, None, reason))
            else:
                fin = fin - ambiguous
                if fin:
                    out.append(Rule(f"{v.name}/(inter-vsys)", "deny", TRUE, fin, fout - ambiguous, None, None, None))
        return out

    def check_zones(self, vsyses: list[_Container], multi: bool, owners: dict[str, list[str]]) -> None:
        declared = {z: v.name for v in vsyses for z in v.zones}
        if not declared:
            return
        iface_zone = {m: z for v in vsyses for z, (_, members, _) in v.zones.items() for m in members}
        for name in self.interfaces:
            if name in declared:
                continue
            if name in iface_zone:
                self.notes.append(f"{name} is an interface of zone {iface_zone[name]}: the topology must name zones")
            elif not multi or name not in owners:
                self.notes.append(f"zone {name} of the topology is not defined in the file")


def load(path: str, interfaces: Sequence[str]) -> RuleSet:
    """The security policy of a PAN-OS XML configuration as a first-match RuleSet over zone names."""
    return _Importer(path, interfaces).run()
