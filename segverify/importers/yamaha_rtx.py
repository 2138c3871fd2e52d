"""Yamaha RTX ``show config`` importer: the transit decision for an initiating packet.

The output is a flat, ordered, first-match RuleSet over the topology's interface names, which are
matched against the RTX's own names: ``lan1``, ``lan2``, ``lan1.2`` (VLAN), ``bridge1``, ``ppN``
(after ``pp select N``; ``anonymous`` for ``pp select anonymous``), ``tunnelN`` (after ``tunnel
select N``). Case, spaces and hyphens in the topology's names are ignored (``PP 1`` is ``pp1``).

What the file is read for
  * ``ip filter N ACTION SRC [DST [PROTOCOL [SRC_PORTS [DST_PORTS]]]]`` and ``ipv6 filter …``:
    every action (``pass``/``reject``/``restrict`` with ``-log``/``-nolog``); addresses ``*``,
    ``a.b.c.d`` with ``*`` octets, ``/n``, ``/a.b.c.d`` and ``/0xHEX`` masks (non-contiguous ones
    too), ranges ``a-b``, ``-b``, ``a-``, comma lists, IPv6 addresses, prefixes and ranges;
    protocols ``*``, numbers, ``tcp``, ``udp``, ``icmp``, ``icmp6``, ``gre``, ``esp``, ``ah``,
    ``tcpsyn``, ``tcpfin``, ``tcprst``, ``established``, ``tcpflag=V/M``, ``tcpflag!=V/M``,
    ``icmp-error``, ``icmp-info`` and comma lists of them; ports ``*``, numbers, Yamaha's port
    names (``PORT_NAMES``), ranges (``netbios_ns-netbios_ssn``), comma lists; ICMP type and code in
    the port slots when the protocol is ``icmp`` alone (Yamaha command reference, ``ip filter``).
  * ``ip filter dynamic N SRC DST APPLICATION [OPTION=…]`` and the second form ``… SRC DST filter
    LIST [in LIST] [out LIST]`` (and ``ipv6 filter dynamic``).
  * ``ip IF secure filter in|out N … [dynamic N …]`` and ``ipv6 IF secure filter …``, with ``IF``
    an interface name, or ``pp`` / ``tunnel`` inside ``pp select`` / ``tunnel select``;
    ``bridge member BRIDGE MEMBERS…``; ``ip IF address`` (an interface's primary address, for NAT);
    ``nat descriptor …`` and ``ip IF nat descriptor …``.
  Lines that mention filters or NAT but are not modelled (``ethernet … filter``, ``ip filter
  source-route``, ``ip IF intrusion detection`` …) and commands of unknown kinds are listed in the
  RuleSet's notes with their lines, never silently dropped; the many commands that cannot change
  which transit packets pass (``dhcp``, ``syslog``, ``ipsec`` …) are not.

Semantics of a packet entering by interface A and leaving by interface B (Yamaha command reference,
``ip INTERFACE secure filter``; corpus notes in SOURCES.md)
  * Each direction of each interface has at most one list per address family. The filters of a list
    are applied in the listed order (not by number); the first that matches decides; a list that
    nothing matches discards the packet; a direction without a list passes everything. The static
    filters come first, then the ``dynamic`` ones in their listed order: a dynamic filter passes the
    initiating packet it matches (it is the stateful allow that opens the return path), so a
    static verdict takes precedence over it. (Yamaha's standard lists put their rejects and a
    pass-all before ``dynamic``, which only makes sense in this order; the reference states no
    order outright, so this is recorded as an assumption in docs/vendors.md.) Filter numbers the
    file does not define match nothing (noted).
  * A transit packet must pass A's ``in`` list and then B's ``out`` list.
  * Bridges (``bridge member bridge1 lan1 tunnel1``): a member's own lists see every packet through
    that member, bridged or routed (the usual L2TPv3 practice of filtering DHCP on the tunnel member,
    as the corpus file does, relies on it); the bridge's lists see the packets routed through the
    bridge. So a member's in list is its own list and then the bridge's in list (out: the bridge's
    and then its own), and a packet bridged between two members passes the first's in list and the
    second's out list only.
  * An initiating TCP packet is a SYN (possibly with ECE/CWR): ``tcpsyn`` matches it,
    ``established`` / ``tcpfin`` / ``tcprst`` never do, ``tcpflag`` is evaluated on it.
  * Ports are compared only for TCP and UDP packets; with ``*`` or a list of protocols, a packet of
    another protocol matches without its ports (command reference, ``ip filter`` note).

The flattening (one first-match list; checked against a direct evaluator of the two lists by a
property test). For each address family, the topology's interfaces are grouped by the list they
have in each direction (interfaces without one form one group). For each ingress group G with list
f1 … fn (no list: one implicit pass-everything filter), in the list's order:
  * a reject fi becomes one deny rule restricted to ``in_ifaces=G`` (any egress);
  * a pass fi becomes, for each egress group H, the per-pair block ``fi ∧ g1``, … ``fi ∧ gm``
    (each with gj's action) for H's out list g1 … gm, closed by ``fi`` → deny (H's list matched
    nothing); all restricted to ``in_ifaces=G, out_ifaces=H``. If H has no list: ``fi`` → allow.
  * then one deny for G (its list matched nothing).
  A packet from A to B reaches the block of the first fi it matches: a reject denies it, and a
  pass hands it to B's whole out list, whose first match (or its discard) decides. That is exactly
  "A's in list passes and B's out list passes". Every rule also carries its family (``src`` in
  IPv4 or IPv6), so each pair of interfaces is fully decided and the default (deny) is never used.
  Filters that never match an initiating packet (``established`` …) are left out, and so is a gj
  identical to a reject earlier in G's list (that reject, which applies to every egress, has
  already taken all of its packets). The rules that are not one list's filters come first: the NAT
  rules, the second-form dynamic filters' ``in`` connections, and packets bridged between members
  of a bridge that has lists of its own (the members' lists composed by the same construction).

Rule ids and sources
  ``lan2 in: filter 200020`` (IPv6: ``ipv6 filter``; ``dynamic filter``) for a filter that decides
  alone; ``bridge1 in: filter 10 → lan2 out: filter 200099`` for a pair rule (the second filter
  decides); ``lan2 out: no filter matched`` for a list's discard. The source is the file and the
  line where the deciding filter is defined (where a list's discard is concerned: the ``secure
  filter`` line); the name says which ``secure filter`` line(s) and positions the filters come from.

Approximations (never optimistic; each marked on the rule with ``approximation``)
  * What the file does not determine: FQDN and ``map-e`` addresses, IPv6 addresses built from a
    delegated prefix (``ra-prefix@lan2::…``), unknown protocol or port names, ``icmp-error`` /
    ``icmp-info`` (whose ICMP types Yamaha does not list), huge non-contiguous masks, ``tcpflag``
    tests that depend on ECN bits: in a pass filter taken as matching, in a reject filter as not.
  * ``restrict`` (passes only while the line is connected): taken as ``pass``.
  * A dynamic application this importer does not know: it passes any packet.
  * Second-form dynamic filters: the ``out`` connections (same direction, opened after a trigger)
    are taken as passing like the trigger; the ``in`` connections (opened the other way after a
    trigger) become allow rules on top, in through (or out through) the list's interface.
  * A bridge as a topology interface, when every member has a list of its own: a packet also
    passes the list of the member it uses, which is not known; only the bridge's list is applied.
  * Filter sets (``ip IF secure filter name …``): the interface is taken as passing everything.
  * Static NAT. The RTX translates a received packet before its in filters and a sent packet after
    its out filters, so the filters see inner addresses. Each ``nat descriptor static`` mapping,
    ``nat descriptor masquerade static`` entry and ``masquerade incoming … forward`` of a
    descriptor applied on an interface becomes an allow rule on top, in through that interface, for
    the packets to the outer address (any address when the outer address is assigned dynamically)
    and port it rewrites: the rewritten packet is not followed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..model.addresses import ALL_V4, ALL_V6, V6_BASE, IntervalSet
from ..model.rules import (
    FALSE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    TRUE,
    And,
    Expr,
    FieldIn,
    Not,
    Or,
    Rule,
    RuleSet,
    SourceRef,
    all_of,
    any_of,
    not_of,
)

MAX_FILE_BYTES = 32 << 20
MAX_RULES = 200_000
MAX_MASK_INTERVALS = 4096
MAX_FILTER_NUMBER = 2_147_483_647

# Yamaha's port names for static filters (command reference, "ポート番号のニーモニック"). ``www`` is 80
# only here; in a dynamic filter it also covers 443 (see DYNAMIC_APPS).
PORT_NAMES: dict[str, tuple[int, ...]] = {
    "echo": (7,), "discard": (9,), "daytime": (13,), "chargen": (19,), "ftp": (20, 21), "ftpdata": (20,),
    "ssh": (22,), "telnet": (23,), "smtp": (25,), "time": (37,), "whois": (43,), "dns": (53,),
    "domain": (53,), "dhcps": (67,), "dhcpc": (68,), "tftp": (69,), "gopher": (70,), "finger": (79,),
    "http": (80,), "www": (80,), "pop3": (110,), "sunrpc": (111,), "ident": (113,), "nntp": (119,),
    "ntp": (123,), "ms-rpc": (135,), "netbios_ns": (137,), "netbios_dgm": (138,), "netbios_ssn": (139,),
    "imap": (143,), "snmp": (161,), "snmptrap": (162,), "bgp": (179,), "imap3": (220,), "ldap": (389,),
    "https": (443,), "ms-ds": (445,), "ike": (500,), "rlogin": (513,), "rwho": (513,), "rsh": (514,),
    "syslog": (514,), "printer": (515,), "talk": (517,), "route": (520,), "rip": (520,), "ripng": (521,),
    "uucp": (540,), "dhcpv6c": (546,), "dhcpv6s": (547,), "submission": (587,), "ms-sql": (1433,),
    "l2tp": (1701,), "netmeeting": (1720,), "pptp": (1723,), "radius": (1812,), "nfs": (2049,),
    "msblast": (4444,), "ipsec-nat-t": (4500,), "sip": (5060,),
}

# Dynamic filter applications: what the initiating packet of each is (protocol, destination ports;
# ICMP: protocol and type). Where Yamaha does not say which transport an application uses, both.
_T, _U = PROTO_TCP, PROTO_UDP
DYNAMIC_APPS: dict[str, tuple[tuple[int, tuple[int, ...] | None], ...]] = {
    "tcp": ((_T, None),), "udp": ((_U, None),),
    "ftp": ((_T, (21,)),), "tftp": ((_U, (69,)),), "domain": ((_U, (53,)), (_T, (53,))),
    "dns": ((_U, (53,)), (_T, (53,))), "www": ((_T, (80, 443)),), "http": ((_T, (80,)),),
    "https": ((_T, (443,)),), "smtp": ((_T, (25,)),), "submission": ((_T, (587,)),),
    "pop3": ((_T, (110,)),), "imap": ((_T, (143,)),), "imap3": ((_T, (220,)),), "telnet": ((_T, (23,)),),
    "ssh": ((_T, (22,)),), "echo": ((_T, (7,)), (_U, (7,))), "discard": ((_T, (9,)), (_U, (9,))),
    "daytime": ((_T, (13,)), (_U, (13,))), "chargen": ((_T, (19,)), (_U, (19,))),
    "time": ((_T, (37,)), (_U, (37,))), "whois": ((_T, (43,)),), "dhcps": ((_U, (67,)),),
    "dhcpc": ((_U, (68,)),), "gopher": ((_T, (70,)),), "finger": ((_T, (79,)),),
    "sunrpc": ((_T, (111,)), (_U, (111,))), "ident": ((_T, (113,)),), "nntp": ((_T, (119,)),),
    "ntp": ((_U, (123,)),), "ms-rpc": ((_T, (135,)), (_U, (135,))), "netbios_ns": ((_U, (137,)),),
    "netbios_dgm": ((_U, (138,)),), "netbios_ssn": ((_T, (139,)),), "snmp": ((_U, (161,)),),
    "snmptrap": ((_U, (162,)),), "bgp": ((_T, (179,)),), "ldap": ((_T, (389,)), (_U, (389,))),
    "ms-ds": ((_T, (445,)),), "ike": ((_U, (500,)),), "rlogin": ((_T, (513,)),), "rwho": ((_U, (513,)),),
    "rsh": ((_T, (514,)),), "syslog": ((_U, (514,)),), "printer": ((_T, (515,)),), "rip": ((_U, (520,)),),
    "ripng": ((_U, (521,)),), "dhcpv6c": ((_U, (546,)),), "dhcpv6s": ((_U, (547,)),),
    "ms-sql": ((_T, (1433,)),), "netmeeting": ((_T, (1720,)),), "radius": ((_U, (1812,)),),
    "l2tp": ((_U, (1701,)),), "pptp": ((_T, (1723,)),), "nfs": ((_T, (2049,)), (_U, (2049,))),
    "msblast": ((_T, (4444,)),), "ipsec-nat-t": ((_U, (4500,)),), "sip": ((_U, (5060,)), (_T, (5060,))),
}
DYNAMIC_ICMP_APPS = {"ping": (PROTO_ICMP, 8), "ping6": (PROTO_ICMPV6, 128)}

PROTOCOL_NAMES = {"gre": 47, "esp": 50, "ah": 51, "icmp6": PROTO_ICMPV6}
ACTIONS = {
    "pass": "pass", "pass-log": "pass", "pass-nolog": "pass",
    "reject": "reject", "reject-log": "reject", "reject-nolog": "reject",
    "restrict": "restrict", "restrict-log": "restrict", "restrict-nolog": "restrict",
}
# TCP flags of an initiating packet: a SYN, or a SYN with ECE and CWR (ECN negotiation).
INITIAL_TCP_FLAGS = (0x002, 0x0C2)
ICMP_ERROR_TYPES = IntervalSet.of(3, 4, 5, 11, 12)
ICMP_INFO_TYPES = IntervalSet.of(0, 8, 9, 10, 13, 14, 15, 16, 17, 18)

# First words of commands that cannot change which transit packets pass (administration, services of
# the router itself, routing, VPN set-up): not read and not noted.
QUIET_COMMANDS = frozenset({
    "administrator", "alarm", "auth", "bgp", "bridge", "console", "dashboard", "description", "dhcp", "dns",
    "external-memory", "heartbeat", "httpd", "ike", "ipsec", "l2tp", "lan", "lan-map", "login", "lua",
    "mail", "netvolante-dns", "ngn", "no", "nsd", "ntpdate", "operation", "ospf", "pp", "ppp", "pppoe",
    "provider", "pptp", "quit", "radius", "rip", "save", "schedule", "sftpd", "show", "sip", "snmp",
    "snmpv2c", "snmpv3", "sntpd", "speed", "sshd", "sshd-host", "statistics", "status", "switch",
    "syslog", "system", "tcp", "telnetd", "tftp", "timezone", "tunnel", "upnp", "user", "usbhost", "vlan",
    "wins", "ipv6", "ip", "nat", "hide", "vrrp", "wol", "cooperation", "mobile", "wlan", "ap",
})
# ``ip IF …`` / ``ipv6 IF …`` subcommands that can change what passes but are not modelled.
NOTED_IF_COMMANDS = {
    "intrusion": "intrusion detection can only drop packets; not modelled",
    "rip": "RIP filters change routes, not what passes; not modelled",
    "forward": "policy-based forwarding is not modelled",
    "secure": "not a secure filter list this importer knows",
    "filter": "not modelled",
}

_IFACE_NAME = re.compile(r"^(?:lan\d+(?:\.\d+)?|bridge\d+|vlan\d+|loopback\d+|null|wan\d+|usb\d+|wlan\d+)$")
_NUMBER = re.compile(r"^\d+$")
_V4_ADDR = re.compile(r"^(\d{1,3}|\*)\.(\d{1,3}|\*)\.(\d{1,3}|\*)\.(\d{1,3}|\*)$")
_PLAIN_V4 = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9*_](?:[A-Za-z0-9*_.-]*[A-Za-z0-9*_])?$")
_OPTION = re.compile(r"^[a-z-]+=\S*$")


# --- approximable matches ----------------------------------------------------------------------


@dataclass(frozen=True)
class _M:
    """A match known between two bounds: ``lower`` ⊆ what the device matches ⊆ ``upper``.

    Equal bounds are exact. A pass filter is modelled by its upper bound and a reject filter by its
    lower bound, so the imported rules never let through less than the device does.
    """

    upper: Expr
    lower: Expr
    reasons: tuple[str, ...] = ()

    @staticmethod
    def exact(expr: Expr) -> _M:
        return _M(expr, expr)


def _m_and(*parts: _M) -> _M:
    return _M(all_of(*(p.upper for p in parts)), all_of(*(p.lower for p in parts)), _reasons(parts))


def _m_or(*parts: _M) -> _M:
    return _M(any_of(*(p.upper for p in parts)), any_of(*(p.lower for p in parts)), _reasons(parts))


def _reasons(parts: Iterable[_M | _Set]) -> tuple[str, ...]:
    out: list[str] = []
    for p in parts:
        out.extend(r for r in p.reasons if r not in out)
    return tuple(out)


@dataclass(frozen=True)
class _Set:
    """A set of field values between two bounds (see ``_M``)."""

    upper: IntervalSet
    lower: IntervalSet
    reasons: tuple[str, ...] = ()

    def union(self, other: _Set) -> _Set:
        return _Set(self.upper | other.upper, self.lower | other.lower, _reasons((self, other)))

    def field(self, name: str, universe: IntervalSet) -> _M:
        return _M(_field(name, self.upper, universe), _field(name, self.lower, universe), self.reasons)


def _field(name: str, values: IntervalSet, universe: IntervalSet) -> Expr:
    if universe.issubset(values):
        return TRUE
    if not values:
        return FALSE
    return FieldIn(name, values)


def _exact_set(values: IntervalSet) -> _Set:
    return _Set(values, values)


# --- the file's structures ---------------------------------------------------------------------


@dataclass
class _Filter:
    """One ``ip filter N`` / ``ipv6 filter N`` definition."""

    family: int
    number: int
    line: int
    action: str  # pass | reject | restrict
    addresses: _M
    service: _M  # protocol, ports, ICMP type and code (what a dynamic filter's second form uses)

    @property
    def match(self) -> _M:
        return _m_and(self.addresses, self.service)


@dataclass
class _Dynamic:
    """One ``ip filter dynamic N`` / ``ipv6 filter dynamic N`` definition."""

    family: int
    number: int
    line: int
    src: _M
    dst: _M
    trigger: _M  # the initiating packet (addresses included)
    same_way: _M | None = None  # second form, ``out`` list: further connections the same way
    reverse: _M | None = None  # second form, ``in`` list: connections the other way (addresses swapped)


@dataclass
class _SecureList:
    """One ``ip IF secure filter in|out …`` line."""

    iface: str
    family: int
    direction: str
    line: int
    static: list[int]
    dynamic: list[int]
    filter_set: str | None = None  # ``secure filter name X``: not modelled


@dataclass
class _Entry:
    """One filter of an effective list: its action and the match it is modelled by."""

    action: str  # allow | deny
    match: Expr
    label: str | None
    line: int | None
    where: str | None
    approximation: str | None = None


@dataclass
class _EffList:
    """The list one direction of one topology interface really applies (None entries: passes all)."""

    key: tuple[object, ...]
    entries: tuple[_Entry, ...] | None
    default_label: str | None = None
    default_line: int | None = None
    default_where: str | None = None


@dataclass
class _NatStatic:
    descriptor: int
    ident: str
    line: int
    dst: _Set  # the outer addresses it rewrites (None: the descriptor's outer address)
    proto: int | None
    port: IntervalSet | None
    what: str


@dataclass
class _Config:
    path: str
    filters: dict[tuple[int, int], _Filter] = field(default_factory=dict)
    dynamics: dict[tuple[int, int], _Dynamic] = field(default_factory=dict)
    lists: dict[tuple[str, int, str], _SecureList] = field(default_factory=dict)
    bridges: dict[str, tuple[list[str], int]] = field(default_factory=dict)
    addresses: dict[str, int] = field(default_factory=dict)  # interface → primary IPv4 address
    mentioned: set[str] = field(default_factory=set)
    nat_types: dict[int, str] = field(default_factory=dict)
    nat_outer: dict[int, tuple[list[str], int]] = field(default_factory=dict)
    nat_entries: list[_NatStatic] = field(default_factory=list)
    nat_applied: dict[str, tuple[list[int], int]] = field(default_factory=dict)
    notes: dict[str, list[int]] = field(default_factory=dict)

    def note(self, key: str, line: int) -> None:
        lines = self.notes.setdefault(key, [])
        if len(lines) < 1000:
            lines.append(line)


# --- parsing -----------------------------------------------------------------------------------


def _decode(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(path, f"the file is larger than {MAX_FILE_BYTES >> 20} MiB")
    if b"\x00" in data:
        raise InputError(path, "the file is binary, not a Yamaha RTX configuration")
    for encoding in ("utf-8", "cp932"):  # RTX consoles write UTF-8 or Shift_JIS (descriptions)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


class _Parser:
    def __init__(self, path: str) -> None:
        self.cfg = _Config(path)
        self.path = path
        self.pp: str | None = None
        self.tunnel: str | None = None

    def error(self, line: int, message: str) -> InputError:
        return InputError(self.path, message, line)

    def parse(self, text: str) -> _Config:
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            self.command(line.split(), number)
        return self.cfg

    def command(self, tok: list[str], n: int) -> None:
        head = tok[0].lower()
        if _NUMBER.match(head) or head == "dynamic":
            raise self.error(n, f"a line cannot start with {tok[0]!r}: is this the rest of a line the console "
                                "wrapped? (export with a wider console, e.g. `console columns 200`)")
        if head == "pp" and len(tok) >= 2 and tok[1] == "select":
            self.pp = self.select(tok, n, "pp")
        elif head == "tunnel" and len(tok) >= 2 and tok[1] == "select":
            self.tunnel = self.select(tok, n, "tunnel")
        elif head in ("ip", "ipv6"):
            self.ip(tok, n, 4 if head == "ip" else 6)
        elif head == "nat" and len(tok) >= 2 and tok[1] == "descriptor":
            self.nat(tok, n)
        elif head == "bridge" and len(tok) >= 2 and tok[1] == "member":
            if len(tok) < 4 or not re.match(r"^bridge\d+$", tok[2]):
                raise self.error(n, "bridge member needs a bridge interface and its members")
            self.cfg.bridges[tok[2]] = ([t.lower() for t in tok[3:]], n)
            self.cfg.mentioned.update([tok[2], *(t.lower() for t in tok[3:])])
        elif head == "ethernet" and "filter" in tok:
            self.cfg.note("ethernet filters (MAC addresses; they can only drop packets)", n)
        elif head in ("url", "ids"):
            self.cfg.note(f"{head} filtering (can only drop packets)", n)
        elif head not in QUIET_COMMANDS:
            self.cfg.note(f"unknown command {tok[0]!r}", n)

    def select(self, tok: list[str], n: int, kind: str) -> str | None:
        if len(tok) != 3:
            raise self.error(n, f"{kind} select needs one {kind} number")
        arg = tok[2].lower()
        if arg == "none":
            return None
        if kind == "pp" and arg == "anonymous":
            return "anonymous"
        if not _NUMBER.match(arg) or int(arg) == 0 or int(arg) > 65535:
            raise self.error(n, f"{kind} select: {tok[2]!r} is not a {kind} number")
        return f"{kind}{int(arg)}"

    def iface(self, name: str, n: int) -> str:
        low = name.lower()
        if low == "pp":
            if self.pp is None:
                raise self.error(n, "an `ip pp` command outside `pp select N`")
            return self.pp
        if low == "tunnel":
            if self.tunnel is None:
                raise self.error(n, "an `ip tunnel` command outside `tunnel select N`")
            return self.tunnel
        if not _IFACE_NAME.match(low):
            raise self.error(n, f"{name!r} is not an RTX interface name")
        return low

    # ip / ipv6 ------------------------------------------------------------------------------

    def ip(self, tok: list[str], n: int, family: int) -> None:
        if len(tok) >= 3 and tok[1] == "filter":
            self.filter_command(tok, n, family)
            return
        if len(tok) < 3 or tok[1] in ("route", "routing", "host", "forward", "icmp", "fragment", "prefix",
                                       "interface", "stealth", "keepalive", "flow", "tos", "simple-traffic",
                                       "policy", "rip", "ospf", "bgp", "multicast", "pim", "igmp", "mld",
                                       "source-route", "inbound", "outbound", "nat"):
            if "filter" in tok:
                self.cfg.note(f"{' '.join(tok[:3])} (not modelled)", n)
            return
        sub = tok[2]
        if sub == "secure" and len(tok) >= 4 and tok[3] == "filter":
            self.secure_list(tok, n, family)
        elif sub == "nat" and len(tok) >= 4 and tok[3] == "descriptor" and family == 4:
            iface = self.iface(tok[1], n)
            self.cfg.mentioned.add(iface)
            nums: list[int] = []
            for t in tok[4:]:
                if t == "reverse":
                    continue
                if not _NUMBER.match(t):
                    raise self.error(n, f"nat descriptor: {t!r} is not a descriptor number")
                nums.append(int(t))
            if not nums:
                raise self.error(n, "nat descriptor needs a descriptor number")
            if "reverse" in tok:
                self.cfg.note("reverse NAT descriptors (taken like forward ones)", n)
            self.cfg.nat_applied[iface] = (nums, n)
        elif sub == "address" and family == 4 and len(tok) >= 4:
            iface = self.iface(tok[1], n)
            self.cfg.mentioned.add(iface)
            m = re.match(r"^(\d{1,3}(?:\.\d{1,3}){3})/\d{1,2}$", tok[3])
            if m:
                try:
                    self.cfg.addresses[iface] = int(ipaddress.IPv4Address(m.group(1)))
                except ValueError:
                    raise self.error(n, f"{tok[3]!r} is not an IPv4 address") from None
        else:
            if tok[1].lower() in ("pp", "tunnel") or _IFACE_NAME.match(tok[1].lower()):
                self.cfg.mentioned.add(self.iface(tok[1], n))
            if sub == "nat":
                self.cfg.note(f"{tok[0]} IF nat (IPv6 NAT is not modelled)", n)
            elif sub in NOTED_IF_COMMANDS or "filter" in tok[2:]:
                self.cfg.note(f"{tok[0]} IF {' '.join(tok[2:4])} ({NOTED_IF_COMMANDS.get(sub, 'not modelled')})", n)

    def filter_command(self, tok: list[str], n: int, family: int) -> None:
        what = tok[2].lower()
        kind = "ip" if family == 4 else "ipv6"
        if what == "dynamic":
            if len(tok) < 4:
                raise self.error(n, f"{kind} filter dynamic needs a filter number")
            if not _NUMBER.match(tok[3]):
                if tok[3] not in ("timer",):
                    self.cfg.note(f"{kind} filter dynamic {tok[3]} (not modelled)", n)
                return
            self.dynamic(tok, n, family)
        elif _NUMBER.match(what):
            self.static(tok, n, family)
        elif what in ("source-route", "directed-broadcast"):
            self.cfg.note(f"{kind} filter {what} (can only drop packets; not modelled)", n)
        elif what == "set":
            self.cfg.note(f"{kind} filter set (filter sets are not modelled)", n)
        else:
            self.cfg.note(f"{kind} filter {tok[2]} (unknown; not modelled)", n)

    def number(self, text: str, n: int, what: str) -> int:
        if not _NUMBER.match(text) or not 1 <= int(text) <= MAX_FILTER_NUMBER:
            raise self.error(n, f"{what}: {text!r} is not a filter number (1-{MAX_FILTER_NUMBER})")
        return int(text)

    def static(self, tok: list[str], n: int, family: int) -> None:
        number = self.number(tok[2], n, "filter")
        if len(tok) < 5:
            raise self.error(n, "a filter needs an action and a source address")
        if len(tok) > 9:
            raise self.error(n, f"unexpected {tok[9]!r} after the destination ports")
        action = ACTIONS.get(tok[3].lower())
        if action is None:
            raise self.error(n, f"{tok[3]!r} is not a filter action (pass, reject, restrict …)")
        rest = tok[4:] + ["*"] * (5 - len(tok[4:]))
        src, dst, proto, sports, dports = rest
        addresses = _m_and(self.addresses(src, family, n).field("src", _universe(family)),
                           self.addresses(dst, family, n).field("dst", _universe(family)))
        service = self.service(proto, sports, dports, family, n)
        key = (family, number)
        if key in self.cfg.filters:
            self.cfg.note("filters defined twice (the last definition is used)", n)
        self.cfg.filters[key] = _Filter(family, number, n, action, addresses, service)

    def dynamic(self, tok: list[str], n: int, family: int) -> None:
        number = self.number(tok[3], n, "dynamic filter")
        if len(tok) < 7:
            raise self.error(n, "a dynamic filter needs source, destination and an application")
        src_set = self.addresses(tok[4], family, n)
        dst_set = self.addresses(tok[5], family, n)
        universe = _universe(family)
        src, dst = src_set.field("src", universe), dst_set.field("dst", universe)
        rest = tok[6:]
        while rest and _OPTION.match(rest[-1]):
            if rest[-1].split("=")[0] not in ("syslog", "timeout"):
                self.cfg.note(f"dynamic filter option {rest[-1].split('=')[0]!r} (unknown)", n)
            rest = rest[:-1]
        if not rest:
            raise self.error(n, "a dynamic filter needs an application or `filter LIST`")
        dyn = _Dynamic(family, number, n, src, dst, _M.exact(FALSE))
        if rest[0] == "filter":
            parts: dict[str, list[int]] = {"filter": [], "in": [], "out": []}
            current = "filter"
            for t in rest[1:]:
                if t in ("in", "out"):
                    current = t
                else:
                    parts[current].append(self.number(t, n, "dynamic filter list"))
            if not parts["filter"]:
                raise self.error(n, "dynamic filter: `filter` needs at least one filter number")
            dyn.trigger = _m_and(src, dst, self.services(parts["filter"], family, n))
            if parts["out"]:
                dyn.same_way = _m_and(src, dst, self.services(parts["out"], family, n))
            if parts["in"]:
                rev = _m_and(src_set.field("dst", universe), dst_set.field("src", universe))
                dyn.reverse = _m_and(rev, self.services(parts["in"], family, n))
        else:
            if len(rest) != 1:
                raise self.error(n, f"unexpected {rest[1]!r} after the dynamic filter's application")
            dyn.trigger = _m_and(src, dst, _application(rest[0].lower()))
        key = (family, number)
        if key in self.cfg.dynamics:
            self.cfg.note("dynamic filters defined twice (the last definition is used)", n)
        self.cfg.dynamics[key] = dyn

    def services(self, numbers: list[int], family: int, n: int) -> _M:
        """The second form of a dynamic filter: the protocol and ports of static filters (their
        addresses and actions are ignored, as the command reference says). Filters are looked up
        when the configuration is complete."""
        return _M(_Deferred(family, tuple(numbers), "upper"), _Deferred(family, tuple(numbers), "lower"))  # type: ignore[arg-type]

    def secure_list(self, tok: list[str], n: int, family: int) -> None:
        iface = self.iface(tok[1], n)
        self.cfg.mentioned.add(iface)
        if len(tok) < 6:
            raise self.error(n, "secure filter needs a direction and filter numbers")
        direction = tok[4].lower()
        key_dirs = ("in", "out") if direction == "name" else (direction,)
        if direction == "name":
            if len(tok) != 6:
                raise self.error(n, "secure filter name needs one filter set name")
            for d in key_dirs:
                self.cfg.lists[(iface, family, d)] = _SecureList(iface, family, d, n, [], [], tok[5])
            return
        if direction not in ("in", "out"):
            raise self.error(n, f"secure filter: {tok[4]!r} is not in, out or name")
        static: list[int] = []
        dynamic: list[int] = []
        target = static
        for t in tok[5:]:
            if t == "dynamic":
                if target is dynamic:
                    raise self.error(n, "secure filter: `dynamic` appears twice")
                target = dynamic
                continue
            target.append(self.number(t, n, "secure filter"))
        key = (iface, family, direction)
        if key in self.cfg.lists:
            self.cfg.note("secure filter lists set twice (the last one is used)", n)
        self.cfg.lists[key] = _SecureList(iface, family, direction, n, static, dynamic)

    # NAT ------------------------------------------------------------------------------------

    def nat(self, tok: list[str], n: int) -> None:
        if len(tok) < 4:
            raise self.error(n, "incomplete nat descriptor command")
        sub, what = tok[2], tok[3]
        if sub == "type":
            if len(tok) != 5 or not _NUMBER.match(what):
                raise self.error(n, "nat descriptor type DESCRIPTOR TYPE")
            self.cfg.nat_types[int(what)] = tok[4]
        elif sub == "address" and what == "outer":
            if len(tok) < 6 or not _NUMBER.match(tok[4]):
                raise self.error(n, "nat descriptor address outer DESCRIPTOR ADDRESS…")
            self.cfg.nat_outer[int(tok[4])] = (tok[5:], n)
        elif sub == "static":
            self.nat_static(tok, n)
        elif sub == "masquerade" and what == "static":
            self.masquerade_static(tok, n)
        elif sub == "masquerade" and what == "incoming":
            if len(tok) < 6 or not _NUMBER.match(tok[4]):
                raise self.error(n, "nat descriptor masquerade incoming DESCRIPTOR ACTION [ADDRESS]")
            if tok[5] == "forward":
                if len(tok) != 7:
                    raise self.error(n, "masquerade incoming forward needs one inner address")
                self.v4(tok[6], n)
                self.cfg.nat_entries.append(_NatStatic(int(tok[4]), "incoming", n, _outer_placeholder(), None, None,
                                                       f"masquerade incoming forward to {tok[6]}"))
        elif sub in ("masquerade", "address", "timer", "log", "ftp", "sip"):
            return  # port ranges, inner address ranges, timers, logs: they open nothing
        else:
            self.cfg.note(f"nat descriptor {sub} (not modelled)", n)

    def v4(self, text: str, n: int) -> int:
        try:
            return int(ipaddress.IPv4Address(text))
        except ValueError:
            raise self.error(n, f"{text!r} is not an IPv4 address") from None

    def nat_static(self, tok: list[str], n: int) -> None:
        if len(tok) < 6 or len(tok) > 7 or not (_NUMBER.match(tok[3]) and _NUMBER.match(tok[4])):
            raise self.error(n, "nat descriptor static DESCRIPTOR ID OUTER=INNER [COUNT]")
        if "=" not in tok[5]:
            raise self.error(n, f"nat descriptor static: {tok[5]!r} is not OUTER=INNER")
        outer_text, inner_text = tok[5].split("=", 1)
        outer = self.v4(outer_text, n)
        self.v4(inner_text, n)
        count = 1
        if len(tok) == 7:
            if not _NUMBER.match(tok[6]) or not 1 <= int(tok[6]) <= 1 << 24:
                raise self.error(n, f"nat descriptor static: {tok[6]!r} is not an address count")
            count = int(tok[6])
        if outer + count - 1 >= 1 << 32:
            raise self.error(n, "nat descriptor static: the address range runs past 255.255.255.255")
        dst = _exact_set(IntervalSet([(outer, outer + count - 1)]))
        self.cfg.nat_entries.append(_NatStatic(int(tok[3]), f"static {tok[4]}", n, dst, None, None,
                                               f"static NAT {tok[5]}" + (f" ({count} addresses)" if count > 1 else "")))

    def masquerade_static(self, tok: list[str], n: int) -> None:
        # nat descriptor masquerade static DESCRIPTOR ID INNER_IP PROTOCOL [[OUTER_PORT=]INNER_PORT]
        if len(tok) < 8 or len(tok) > 9 or not (_NUMBER.match(tok[4]) and _NUMBER.match(tok[5])):
            raise self.error(n, "nat descriptor masquerade static DESCRIPTOR ID INNER PROTOCOL [PORT]")
        self.v4(tok[6], n)
        proto_text = tok[7].lower()
        proto = PROTOCOL_NAMES.get(proto_text) or {"tcp": PROTO_TCP, "udp": PROTO_UDP, "icmp": PROTO_ICMP}.get(
            proto_text)
        if proto is None:
            if not _NUMBER.match(proto_text) or int(proto_text) > 255:
                raise self.error(n, f"nat descriptor masquerade static: {tok[7]!r} is not a protocol")
            proto = int(proto_text)
        port: IntervalSet | None = None
        if len(tok) == 8 and proto in (PROTO_TCP, PROTO_UDP):
            raise self.error(n, f"nat descriptor masquerade static: {tok[7]} needs a port")
        if len(tok) == 9:
            if proto not in (PROTO_TCP, PROTO_UDP):
                raise self.error(n, f"nat descriptor masquerade static: a port with protocol {tok[7]!r}")
            outer_port = tok[8].split("=", 1)[0]
            values = _port_atom(outer_port)
            if values is None:
                m = re.match(r"^(\d+)-(\d+)$", outer_port)
                if not m or int(m.group(1)) > int(m.group(2)) or int(m.group(2)) > 65535:
                    raise self.error(n, f"nat descriptor masquerade static: {tok[8]!r} is not a port")
                values = IntervalSet([(int(m.group(1)), int(m.group(2)))])
            port = values
        self.cfg.nat_entries.append(_NatStatic(int(tok[4]), f"masquerade static {tok[5]}", n, _outer_placeholder(),
                                               proto, port, f"masquerade static to {tok[6]} {' '.join(tok[7:])}"))

    # addresses, protocols, ports -------------------------------------------------------------

    def addresses(self, text: str, family: int, n: int) -> _Set:
        out: _Set | None = None
        for element in text.split(","):
            part = _v4_element(element) if family == 4 else _v6_element(element)
            if part is None:
                raise self.error(n, f"{element!r} is not an {'IPv4' if family == 4 else 'IPv6'} address, "
                                    "range or prefix")
            out = part if out is None else out.union(part)
        assert out is not None
        return out

    def service(self, proto: str, sports: str, dports: str, family: int, n: int) -> _M:
        elements = [e.lower() for e in proto.split(",")]
        if any(not e for e in elements):
            raise self.error(n, f"{proto!r} is not a protocol list")
        src_ports = self.ports(sports, n, 65535, "port")
        dst_ports = self.ports(dports, n, 65535, "port")
        ports = _m_and(src_ports.field("sport", _ALL_PORTS), dst_ports.field("dport", _ALL_PORTS))
        alone = len(elements) == 1
        parts: list[_M] = []
        for e in elements:
            if e == "*":
                transport = IntervalSet.of(PROTO_TCP, PROTO_UDP)
                if ports == _M.exact(TRUE):
                    parts.append(ports)
                    continue
                parts.append(_m_or(_m_and(_M.exact(FieldIn("proto", transport)), ports),
                                   _M.exact(_field("proto", transport.complement(0, 255), _ALL_PROTOS))))
            elif e in ("tcp", "tcpsyn", "6"):
                parts.append(_m_and(_proto(PROTO_TCP), ports))
            elif e in ("established", "tcpfin", "tcprst"):
                continue  # never an initiating packet (a SYN has no ACK, FIN or RST)
            elif e.startswith("tcpflag"):
                flags = self.tcpflag(e, n)
                if flags is not None:
                    parts.append(_m_and(_proto(PROTO_TCP), ports, flags))
            elif e in ("udp", "17"):
                parts.append(_m_and(_proto(PROTO_UDP), ports))
            elif e in ("icmp", "1", "icmp6", "58"):
                number = PROTO_ICMP if e in ("icmp", "1") else PROTO_ICMPV6
                if not alone:
                    parts.append(_proto(number))
                    continue
                types = self.ports(sports, n, 255, "ICMP type").field("icmp_type", _ALL_BYTES)
                codes = self.ports(dports, n, 255, "ICMP code").field("icmp_code", _ALL_BYTES)
                typed = _m_and(_proto(number), types, codes)
                if number == PROTO_ICMPV6 and typed.upper != _proto(number).upper:
                    # Yamaha documents ICMP type and code in the port slots for `icmp` alone; for
                    # `icmp6` it is taken to do the same, but it may compare nothing there.
                    typed = _M(_proto(number).upper, typed.lower,
                               ("whether an ipv6 filter compares ICMPv6 type and code is not documented",))
                parts.append(typed)
            elif e in ("icmp-error", "icmp-info"):
                kinds = ICMP_ERROR_TYPES if e == "icmp-error" else ICMP_INFO_TYPES
                parts.append(_M(FieldIn("proto", IntervalSet.of(PROTO_ICMP)),
                                all_of(FieldIn("proto", IntervalSet.of(PROTO_ICMP)), FieldIn("icmp_type", kinds)),
                                (f"the ICMP types of {e} are not documented",)))
            elif e in PROTOCOL_NAMES:
                parts.append(_proto(PROTOCOL_NAMES[e]))
            elif _NUMBER.match(e):
                if int(e) > 255:
                    raise self.error(n, f"{e!r} is not a protocol number (0-255)")
                parts.append(_proto(int(e)))
            elif re.match(r"^[a-z][a-z0-9_-]*$", e):
                parts.append(_M(TRUE, FALSE, (f"unknown protocol name {e!r}",)))
            else:
                raise self.error(n, f"{e!r} is not a protocol")
        return _m_or(*parts) if parts else _M.exact(FALSE)

    def tcpflag(self, element: str, n: int) -> _M | None:
        m = re.match(r"^tcpflag(!?=)(0x[0-9a-f]+|\d+)/(0x[0-9a-f]+|\d+)$", element)
        if not m:
            raise self.error(n, f"{element!r} is not tcpflag=VALUE/MASK or tcpflag!=VALUE/MASK")
        value, mask = int(m.group(2), 0), int(m.group(3), 0)
        if value > 0xFFFF or mask > 0xFFFF:
            raise self.error(n, f"{element!r}: TCP flags are 16 bits")
        hits = {((f & mask) == value) != (m.group(1) == "!=") for f in INITIAL_TCP_FLAGS}
        if hits == {True}:
            return _M.exact(TRUE)
        if hits == {False}:
            return None
        return _M(TRUE, FALSE, (f"{element} depends on the SYN's ECN bits",))

    def ports(self, text: str, n: int, top: int, what: str) -> _Set:
        out: _Set | None = None
        for element in text.split(","):
            part = _port_element(element.lower(), top) if top == 65535 else _number_element(element, top)
            if part is None:
                raise self.error(n, f"{element!r} is not a {what}, {what} range or list")
            out = part if out is None else out.union(part)
        assert out is not None
        return out


@dataclass(frozen=True)
class _Deferred:
    """The service match of static filters a dynamic filter names (resolved after parsing)."""

    family: int
    numbers: tuple[int, ...]
    bound: str


_ALL_PORTS = IntervalSet([(0, 65535)])
_ALL_BYTES = IntervalSet([(0, 255)])
_ALL_PROTOS = _ALL_BYTES


def _universe(family: int) -> IntervalSet:
    return ALL_V4 if family == 4 else ALL_V6


def _proto(number: int) -> _M:
    return _M.exact(FieldIn("proto", IntervalSet.of(number)))


def _outer_placeholder() -> _Set:
    return _Set(IntervalSet(), IntervalSet())


def _application(name: str) -> _M:
    if name in DYNAMIC_APPS:
        parts = []
        for proto, ports in DYNAMIC_APPS[name]:
            expr = FieldIn("proto", IntervalSet.of(proto))
            if ports is not None:
                expr = all_of(expr, FieldIn("dport", IntervalSet.of(*ports)))
            parts.append(expr)
        return _M.exact(any_of(*parts))
    if name in DYNAMIC_ICMP_APPS:
        proto, kind = DYNAMIC_ICMP_APPS[name]
        return _M.exact(all_of(FieldIn("proto", IntervalSet.of(proto)), FieldIn("icmp_type", IntervalSet.of(kind))))
    return _M(TRUE, FALSE, (f"dynamic filter application {name!r} is not known: it is taken to pass anything",))


def _v4_element(text: str) -> _Set | None:
    if text == "*":
        return _exact_set(ALL_V4)
    if re.search(r"[A-Za-z]", text.partition("/")[0]):
        if text.lower() == "map-e" or _HOSTNAME.match(text):
            return _Set(ALL_V4, IntervalSet(), (f"{text!r} is resolved by the router (FQDN or map-e)",))
        return None
    if "-" in text:
        lo_text, _, hi_text = text.partition("-")
        if not lo_text and not hi_text:
            return None
        lo = _plain_v4(lo_text) if lo_text else 0
        hi = _plain_v4(hi_text) if hi_text else (1 << 32) - 1
        if lo is None or hi is None or lo > hi:
            return None
        return _exact_set(IntervalSet([(lo, hi)]))
    addr_text, slash, mask_text = text.partition("/")
    m = _V4_ADDR.match(addr_text)
    if not m:
        return None
    value = wild = 0
    for octet in m.groups():
        value <<= 8
        wild <<= 8
        if octet == "*":
            wild |= 0xFF
        elif int(octet) > 255:
            return None
        else:
            value |= int(octet)
    mask = 0xFFFFFFFF ^ wild
    if slash:
        given = _v4_mask(mask_text)
        if given is None:
            return None
        mask &= given
    return _masked(value, mask, 32, 0)


def _plain_v4(text: str) -> int | None:
    if not _PLAIN_V4.match(text):
        return None
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _v4_mask(text: str) -> int | None:
    if _NUMBER.match(text):
        bits = int(text)
        return None if bits > 32 else (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    if re.match(r"^0x[0-9a-fA-F]{1,8}$", text):
        return int(text, 16)
    return _plain_v4(text)


def _masked(value: int, mask: int, bits: int, base: int) -> _Set:
    """The addresses ``a`` with ``a & mask == value & mask``: one interval for a prefix mask, one per
    combination of the free bits above the lowest fixed one otherwise (a superset when too many)."""
    full = (1 << bits) - 1
    value &= mask
    if mask == 0:
        return _exact_set(IntervalSet([(base, base + full)]))
    low = (mask & -mask).bit_length() - 1  # the lowest fixed bit; every bit below it is free
    block = (1 << low) - 1
    free = [b for b in range(low, bits) if not (mask >> b) & 1]
    if (1 << len(free)) > MAX_MASK_INTERVALS:
        lead = 0
        while lead < bits and (mask >> (bits - 1 - lead)) & 1:
            lead += 1
        span = (1 << (bits - lead)) - 1
        top = value & ~span & full
        return _Set(IntervalSet([(base + top, base + top + span)]), IntervalSet(),
                    (f"mask {mask:#x} has too many gaps to list (taken as its covering prefix)",))
    intervals = []
    for combo in range(1 << len(free)):
        v = value
        for i, b in enumerate(free):
            if (combo >> i) & 1:
                v |= 1 << b
        intervals.append((base + v, base + v + block))
    return _exact_set(IntervalSet(intervals))


def _v6_element(text: str) -> _Set | None:
    if text == "*":
        return _exact_set(ALL_V6)
    if "@" in text or (":" not in text and re.search(r"[A-Za-z]", text) and _HOSTNAME.match(text)):
        return _Set(ALL_V6, IntervalSet(), (f"{text!r} is resolved by the router (FQDN or a delegated prefix)",))
    try:
        if "-" in text:
            lo_text, _, hi_text = text.partition("-")
            lo = int(ipaddress.IPv6Address(lo_text)) if lo_text else 0
            hi = int(ipaddress.IPv6Address(hi_text)) if hi_text else (1 << 128) - 1
            if lo > hi:
                return None
            return _exact_set(IntervalSet([(V6_BASE + lo, V6_BASE + hi)]))
        net = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        return None
    lo = V6_BASE + int(net.network_address)
    return _exact_set(IntervalSet([(lo, lo + net.num_addresses - 1)]))


def _number_element(text: str, top: int) -> _Set | None:
    """An ICMP type or code: ``*``, a number, ``a-b``."""
    if text == "*":
        return _exact_set(IntervalSet([(0, top)]))
    m = re.match(r"^(\d+)(?:-(\d+))?$", text)
    if not m:
        return None
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    return _exact_set(IntervalSet([(lo, hi)])) if lo <= hi <= top else None


def _port_atom(text: str) -> IntervalSet | None:
    if _NUMBER.match(text):
        value = int(text)
        return IntervalSet.of(value) if value <= 65535 else None
    if text in PORT_NAMES:
        return IntervalSet.of(*PORT_NAMES[text])
    return None


def _port_element(text: str, top: int) -> _Set | None:
    """``*``, a number, a name, or a range with either end open (``1024-``, ``-1023``)."""
    everything = IntervalSet([(0, top)])
    if text == "*":
        return _exact_set(everything)
    atom = _port_atom(text)
    if atom is not None:
        return _exact_set(atom) if atom.issubset(everything) else None
    for i, ch in enumerate(text):
        if ch != "-":
            continue
        left, right = text[:i], text[i + 1:]
        lo = _port_atom(left) if left else IntervalSet.of(0)
        hi = _port_atom(right) if right else IntervalSet.of(top)
        if lo is None or hi is None or (not left and not right):
            continue
        a, b = lo.intervals[0][0], hi.intervals[-1][1]
        if a > b or b > top:
            return None
        return _exact_set(IntervalSet([(a, b)]))
    if top == 65535 and re.match(r"^[a-z][a-z0-9_-]*$", text):
        return _Set(everything, IntervalSet(), (f"unknown port name {text!r}",))
    return None


# --- from lists to rules -----------------------------------------------------------------------


class _Builder:
    def __init__(self, cfg: _Config, interfaces: Sequence[str]) -> None:
        self.cfg = cfg
        self.path = cfg.path
        self.interfaces = list(dict.fromkeys(interfaces))
        self.by_vendor: dict[str, list[str]] = {}
        for name in self.interfaces:
            self.by_vendor.setdefault(_canonical(name), []).append(name)
        self.member_of: dict[str, str] = {}
        for bridge, (members, _line) in cfg.bridges.items():
            for m in members:
                self.member_of[m] = bridge
        self.rules: list[Rule] = []
        self.notes: list[str] = []

    def names(self, vendor: str) -> frozenset[str]:
        return frozenset(self.by_vendor.get(vendor, ()))

    def emit(self, rule: Rule) -> None:
        if rule.match == FALSE:
            return
        if len(self.rules) >= MAX_RULES:
            raise InputError(self.path, f"the secure filter lists flatten to more than {MAX_RULES} rules "
                                        "(interfaces × filters): too large to analyse")
        self.rules.append(rule)

    # resolving -------------------------------------------------------------------------------

    def resolve(self) -> None:
        """Replace the dynamic filters' references to static filters by those filters' services."""
        for dyn in self.cfg.dynamics.values():
            dyn.trigger = self.resolved(dyn.trigger, dyn)
            if dyn.same_way is not None:
                dyn.same_way = self.resolved(dyn.same_way, dyn)
            if dyn.reverse is not None:
                dyn.reverse = self.resolved(dyn.reverse, dyn)

    def resolved(self, m: _M, dyn: _Dynamic) -> _M:
        def walk(expr: object, bound: str) -> Expr:
            if isinstance(expr, _Deferred):
                parts = []
                for number in expr.numbers:
                    f = self.cfg.filters.get((expr.family, number))
                    if f is None:
                        self.cfg.note(f"dynamic filter {dyn.number} names filter {number}, which is not defined "
                                      "(it matches nothing)", dyn.line)
                        continue
                    parts.append(f.service.upper if bound == "upper" else f.service.lower)
                    reasons.extend(r for r in f.service.reasons if r not in reasons)
                return any_of(*parts)
            if isinstance(expr, FieldIn):
                return expr
            if isinstance(expr, Not):
                return not_of(walk(expr.part, "lower" if bound == "upper" else "upper"))
            assert isinstance(expr, (And, Or))
            parts_ = tuple(walk(p, bound) for p in expr.parts)
            return all_of(*parts_) if isinstance(expr, And) else any_of(*parts_)

        reasons: list[str] = list(m.reasons)
        upper, lower = walk(m.upper, "upper"), walk(m.lower, "lower")
        return _M(upper, lower, tuple(reasons))

    # effective lists -------------------------------------------------------------------------

    def raw_list(self, vendor: str, family: int, direction: str) -> _EffList:
        sl = self.cfg.lists.get((vendor, family, direction))
        if sl is None:
            return _EffList(("none",), None)
        where = f"{'ip' if family == 4 else 'ipv6'} {vendor} secure filter {direction} (line {sl.line})"
        if sl.filter_set is not None:
            entry = _Entry("allow", TRUE, f"{vendor} {direction}: filter set {sl.filter_set}", sl.line, where,
                           "filter sets are not modelled: the interface is taken as passing everything")
            return _EffList((vendor, family, direction), (entry,))
        kind = "filter" if family == 4 else "ipv6 filter"
        entries: list[_Entry] = []
        for pos, number in enumerate(sl.static, start=1):
            f = self.cfg.filters.get((family, number))
            if f is None:
                self.cfg.note(f"{kind} {number} is in a secure filter list but not defined (it matches nothing)",
                              sl.line)
                continue
            m = f.match
            label = f"{vendor} {direction}: {kind} {number}"
            pos_where = f"{where} #{pos}"
            if f.action == "reject":
                entries.append(_Entry("deny", m.lower, label, f.line, pos_where, _why(m.reasons)))
            else:
                reasons = list(m.reasons)
                if f.action == "restrict":
                    reasons.append("restrict passes only while the line is connected: taken as pass")
                entries.append(_Entry("allow", m.upper, label, f.line, pos_where, _why(reasons)))
        for pos, number in enumerate(sl.dynamic, start=len(sl.static) + 1):
            dyn = self.cfg.dynamics.get((family, number))
            if dyn is None:
                self.cfg.note(f"{'ip' if family == 4 else 'ipv6'} filter dynamic {number} is in a secure filter "
                              "list but not defined (it matches nothing)", sl.line)
                continue
            label = f"{vendor} {direction}: {'dynamic' if family == 4 else 'ipv6 dynamic'} filter {number}"
            pos_where = f"{where} #{pos} (dynamic)"
            entries.append(_Entry("allow", dyn.trigger.upper, label, dyn.line, pos_where, _why(dyn.trigger.reasons)))
            if dyn.same_way is not None:
                entries.append(_Entry("allow", dyn.same_way.upper, label + " (out connections)", dyn.line, pos_where,
                                      _why((*dyn.same_way.reasons, "connections a trigger opens the same way are "
                                                                   "taken as passing at any time"))))
        return _EffList((vendor, family, direction), tuple(entries), f"{vendor} {direction}: no filter matched",
                        sl.line, where)

    def effective(self, vendor: str, family: int, direction: str) -> _EffList:
        """The list one direction of a topology interface applies, bridges folded in (see the module doc)."""
        own = self.raw_list(vendor, family, direction)
        if vendor in self.cfg.bridges:
            members = self.cfg.bridges[vendor][0]
            if members and all(self.raw_list(m, family, direction).entries is not None for m in members):
                reason = (f"a packet through {vendor} also passes the {direction} list of the member it uses, "
                          "which is not known here: only the bridge's own list is applied")
                if own.entries is None:
                    entry = _Entry("allow", TRUE, f"{vendor} {direction}: bridge members", None,
                                   f"secure filter {direction} of the members of {vendor}", reason)
                    return _EffList(("bridge", vendor, family, direction), (entry,))
                return _EffList(own.key, tuple(_Entry(e.action, e.match, e.label, e.line, e.where,
                                                      _why((e.approximation, reason))) for e in own.entries),
                                own.default_label, own.default_line, own.default_where)
            return own
        bridge = self.member_of.get(vendor)
        if bridge is None:
            return own
        routed = self.raw_list(bridge, family, direction)
        return _compose(own, routed) if direction == "in" else _compose(routed, own)

    # flattening ------------------------------------------------------------------------------

    def groups(self, family: int, direction: str) -> list[tuple[frozenset[str], _EffList]]:
        by_key: dict[tuple[object, ...], tuple[list[str], _EffList]] = {}
        for name in self.interfaces:
            eff = self.effective(_canonical(name), family, direction)
            by_key.setdefault(eff.key, ([], eff))[0].append(name)
        return [(frozenset(names), eff) for names, eff in by_key.values()]

    def flatten(self, family: int) -> None:
        fam = FieldIn("src", _universe(family))
        implicit = _Entry("allow", TRUE, None, None, None)
        outs = self.groups(family, "out")
        for g_names, lin in self.groups(family, "in"):
            no_in = f"no secure filter in on {', '.join(sorted(g_names))}"
            complete = False
            denied: set[Expr] = set()  # matches the in list already denies: an out filter with one is shadowed
            for e in lin.entries if lin.entries is not None else (implicit,):
                if e.match == FALSE:
                    continue
                if e.action == "deny":
                    self.emit(Rule(e.label or "", "deny", all_of(fam, e.match), g_names, None, self.src(e.line),
                                   e.where, e.approximation))
                    denied.add(e.match)
                else:
                    for h_names, lout in outs:
                        self.block(fam, e, g_names, h_names, lout, no_in, denied)
                if e.match == TRUE:
                    complete = True
                    break
            if lin.entries is not None and not complete:
                self.emit(Rule(lin.default_label or "", "deny", fam, g_names, None, self.src(lin.default_line),
                               lin.default_where))

    def block(self, fam: Expr, e: _Entry, g_names: frozenset[str], h_names: frozenset[str], lout: _EffList,
              no_in: str, denied: set[Expr]) -> None:
        """The out list of ``h_names`` for the packets ``e`` passed in through ``g_names``."""
        first = e.where or no_in
        if lout.entries is None:
            label = e.label or "(no secure filter)"
            self.emit(Rule(label, "allow", all_of(fam, e.match), g_names, h_names, self.src(e.line),
                           f"{first}; no secure filter out on {', '.join(sorted(h_names))}", e.approximation))
            return
        for g in lout.entries:
            match = all_of(e.match, g.match)
            if match == FALSE or g.match in denied:
                continue
            self.emit(Rule(_join(e.label, g.label), g.action, all_of(fam, match), g_names, h_names,
                           self.src(g.line), f"{first}; {g.where}", _why((e.approximation, g.approximation))))
            if g.match == TRUE:
                return
        self.emit(Rule(_join(e.label, lout.default_label), "deny", all_of(fam, e.match), g_names, h_names,
                       self.src(lout.default_line), f"{first}; {lout.default_where}", e.approximation))

    def src(self, line: int | None) -> SourceRef:
        return SourceRef(self.path, line)

    # rules on top ----------------------------------------------------------------------------

    def top_rules(self) -> None:
        self.nat_rules()
        for (vendor, family, direction), sl in sorted(self.cfg.lists.items(), key=lambda kv: kv[1].line):
            names = self.names(vendor)
            if not names:
                continue
            for number in sl.dynamic:
                dyn = self.cfg.dynamics.get((family, number))
                if dyn is None or dyn.reverse is None or dyn.reverse.upper == FALSE:
                    continue
                ins, outs = (names, None) if direction == "out" else (None, names)
                self.emit(Rule(f"{vendor} {direction}: {'dynamic' if family == 4 else 'ipv6 dynamic'} filter "
                               f"{number} (in connections)", "allow",
                               all_of(FieldIn("src", _universe(family)), dyn.reverse.upper), ins, outs,
                               self.src(dyn.line), f"secure filter {direction} line {sl.line}",
                               _why((*dyn.reverse.reasons, "connections a trigger opens the other way are taken as "
                                                           "passing at any time, whatever the other lists say"))))
        self.bridged_rules()

    def nat_rules(self) -> None:
        for vendor, (descriptors, line) in sorted(self.cfg.nat_applied.items(), key=lambda kv: kv[1][1]):
            names = self.names(vendor)
            if not names:
                continue
            for entry in self.cfg.nat_entries:
                if entry.descriptor not in descriptors:
                    continue
                outer, why_outer = self.outer(entry, vendor)
                parts: list[Expr] = [FieldIn("src", ALL_V4), _field("dst", outer, ALL_V4)]
                if entry.proto is not None:
                    parts.append(FieldIn("proto", IntervalSet.of(entry.proto)))
                if entry.port is not None:
                    parts.append(FieldIn("dport", entry.port))
                why = (f"{entry.what} (nat descriptor {entry.descriptor}) on {vendor} (line {line}) rewrites packets "
                       f"to {why_outer} before {vendor}'s in filters: such packets are taken as passing")
                self.emit(Rule(f"nat descriptor {entry.descriptor} {entry.ident}", "allow", all_of(*parts), names, None,
                               self.src(entry.line), f"ip {vendor} nat descriptor (line {line})", why))

    def outer(self, entry: _NatStatic, vendor: str) -> tuple[IntervalSet, str]:
        if entry.dst.upper:
            return entry.dst.upper, "its outer addresses"
        spec, _line = self.cfg.nat_outer.get(entry.descriptor, (["ipcp"], 0))
        values = IntervalSet()
        for token in spec:
            if token == "primary" and vendor in self.cfg.addresses:
                values = values | IntervalSet.of(self.cfg.addresses[vendor])
                continue
            element = _v4_element(token) if re.match(r"^[\d.-]+$", token) else None
            if element is None or element.reasons:
                return ALL_V4, "an outer address assigned at run time (any address)"
            values = values | element.upper
        return (values, "the outer address") if values else (ALL_V4, "an outer address assigned at run time")

    def bridged_rules(self) -> None:
        """Packets bridged between two members of one bridge pass the members' own lists only (the
        bridge's lists are for routed packets). Only needed where the bridge has a list of that family."""
        for bridge, (members, _line) in self.cfg.bridges.items():
            inside = [m for m in members if self.names(m)]
            for family in (4, 6):
                if len(inside) < 2 or not any((bridge, family, d) in self.cfg.lists for d in ("in", "out")):
                    continue
                fam = FieldIn("src", _universe(family))
                for a in inside:
                    for b in inside:
                        if a == b:
                            continue
                        both = _compose(self.raw_list(a, family, "in"), self.raw_list(b, family, "out"))
                        self.emit_list(fam, both, self.names(a), self.names(b),
                                       f"bridged from {a} to {b} (no secure filter on either)")

    def emit_list(self, fam: Expr, eff: _EffList, ins: frozenset[str], outs: frozenset[str], none: str) -> None:
        """One effective list as rules for one set of interface pairs, its discard included."""
        if eff.entries is None:
            self.emit(Rule("(no secure filter)", "allow", fam, ins, outs, self.src(None), none))
            return
        for e in eff.entries:
            self.emit(Rule(e.label or "", e.action, all_of(fam, e.match), ins, outs, self.src(e.line), e.where,
                           e.approximation))
            if e.match == TRUE:
                return
        self.emit(Rule(eff.default_label or "", "deny", fam, ins, outs, self.src(eff.default_line), eff.default_where))

    # notes ----------------------------------------------------------------------------------

    def collect_notes(self) -> tuple[str, ...]:
        out: list[str] = []
        for (vendor, family, direction), sl in sorted(self.cfg.lists.items(), key=lambda kv: kv[1].line):
            if not self.names(vendor):
                out.append(f"line {sl.line}: {'ip' if family == 4 else 'ipv6'} {vendor} secure filter {direction} "
                           f"applies to {vendor}, which is none of the topology's interfaces")
        for vendor, (_d, line) in self.cfg.nat_applied.items():
            if not self.names(vendor):
                out.append(f"line {line}: NAT on {vendor}, which is none of the topology's interfaces")
        for name in self.interfaces:
            if _canonical(name) not in self.cfg.mentioned:
                out.append(f"interface {name} is not mentioned in the file: without a secure filter it passes "
                           "everything")
        for key, lines in sorted(self.cfg.notes.items(), key=lambda kv: kv[1][0]):
            unique = sorted(set(lines))
            shown = ", ".join(str(n) for n in unique[:10]) + (", …" if len(unique) > 10 else "")
            out.append(f"{key} (line{'s' if len(unique) > 1 else ''} {shown})")
        return tuple(out)


def _why(reasons: Iterable[str | None]) -> str | None:
    kept: list[str] = []
    for r in reasons:
        if not r:
            continue
        for part in r.split("; "):
            if part not in kept:
                kept.append(part)
    return "; ".join(kept) if kept else None


def _join(*labels: str | None) -> str:
    kept = [label for label in labels if label]
    return " → ".join(kept) if kept else "(no secure filter)"


class _TooLarge(Exception):
    """Two lists of one path compose to more than MAX_RULES entries."""


def _compose(first: _EffList, then: _EffList) -> _EffList:
    """One list that passes exactly what passes ``first`` and then ``then`` (the per-pair block
    construction of the module doc, for two lists of one path)."""
    if first.entries is None:
        return then
    if then.entries is None:
        return first
    entries: list[_Entry] = []
    complete = False
    for e in first.entries:
        if e.match == FALSE:
            continue
        if e.action == "deny":
            entries.append(e)
        else:
            closed = False
            for g in then.entries:
                match = all_of(e.match, g.match)
                if match == FALSE:
                    continue
                entries.append(_Entry(g.action, match, _join(e.label, g.label), g.line, f"{e.where}; {g.where}",
                                      _why((e.approximation, g.approximation))))
                if len(entries) > MAX_RULES:
                    raise _TooLarge
                if g.match == TRUE:
                    closed = True
                    break
            if not closed:
                entries.append(_Entry("deny", e.match, _join(e.label, then.default_label), then.default_line,
                                      f"{e.where}; {then.default_where}", e.approximation))
        if e.match == TRUE:
            complete = True
            break
    if complete:
        return _EffList(("compose", first.key, then.key), tuple(entries))
    return _EffList(("compose", first.key, then.key), tuple(entries), first.default_label, first.default_line,
                    first.default_where)


def _canonical(name: str) -> str:
    low = re.sub(r"[\s_-]+", "", name.lower())
    return "anonymous" if low in ("anonymous", "ppanonymous") else low


def load(path: str, interfaces: Sequence[str]) -> RuleSet:
    """Read a Yamaha RTX ``show config`` and return the transit decision over ``interfaces``."""
    cfg = _Parser(path).parse(_decode(path))
    builder = _Builder(cfg, interfaces)
    builder.resolve()
    try:
        builder.top_rules()
        for family in (4, 6):
            builder.flatten(family)
    except _TooLarge:
        raise InputError(path, f"a bridge's and its member's secure filter lists compose to more than {MAX_RULES} "
                               "rules: too large to analyse") from None
    return RuleSet(tuple(builder.rules), "deny", builder.collect_notes())
