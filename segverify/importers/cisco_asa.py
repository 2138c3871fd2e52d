"""Cisco ASA ``show running-config`` importer: the transit decision for an initiating packet.

The output is a flat, ordered, first-match RuleSet over the topology's interface names, which are
matched against the ASA's ``nameif`` names.

What the file is read for
  * ``interface`` blocks: ``nameif``, ``security-level`` (default 0, or 100 for a nameif ``inside``),
    ``ip address`` / ``ipv6 address`` (for the ``interface IF`` address keyword).
  * ``same-security-traffic permit inter-interface|intra-interface``.
  * ``name ADDRESS ALIAS`` (host aliases usable wherever an address is).
  * ``object network`` (``host``, ``subnet``, ``range``, ``fqdn``), ``object service`` (``service
    tcp|udp|tcp-udp|sctp [source OP …] [destination OP …]``, ``service icmp|icmp6 [TYPE [CODE]]``,
    ``service PROTOCOL``), and ``object-group network|service|protocol|icmp-type`` with nesting
    (``group-object``, ``network-object``, ``port-object``, ``service-object``, ``protocol-object``,
    ``icmp-object``). Nesting loops are input errors.
  * ``access-list NAME [extended] permit|deny …`` with every address form (``any``, ``any4``,
    ``any6``, ``host``, ADDRESS MASK, IPv6 prefixes, ``object``, ``object-group``, ``interface``),
    ports (``eq``/``neq``/``lt``/``gt``/``range``, the ASA's port names, port object-groups),
    service objects and groups in the protocol slot, ICMP types and codes, ``remark``,
    ``log …``, ``time-range``, ``inactive``, and ``line N`` insertion.
  * ``access-group NAME in|out interface IF [per-user-override|control-plane]`` and
    ``access-group NAME global``.
  * Two forms only Batfish's test files use are read as Batfish reads them: ``object-group group
    TYPE NAME``, and ``object PROTOCOL`` / ``object icmp-TYPE`` naming no defined object.
  Commands that cannot change which transit packets pass (``QUIET_COMMANDS``: hostname, logging,
  routes, AAA, management access …) are skipped; every other command is listed in the RuleSet's
  notes by keyword with its lines (``NOTED_COMMANDS`` says why for NAT, inspection, VPN …).

Semantics of a packet entering by interface A and leaving by interface B (Cisco ASA configuration
guide, "Access Rules": interface access rule, then global access rule, then implicit deny;
"Allow Same Security Level Communication")
  1. Same security level: A ≠ B on the same level needs ``same-security-traffic permit
     inter-interface``; A = B (hairpin) needs ``… intra-interface``. Without it the packet is dropped
     whatever the ACLs say (Batfish models the ASA the same way).
  2. Ingress: if A has an inbound ACL or a global ACL exists, the inbound ACL of A and then the
     global ACL are one first-match list ending in one implicit deny (a permit in A's ACL is final;
     a packet A's ACL does not match goes on to the global ACL). Otherwise security levels decide:
     from a higher level to a lower one (or an equal one, once step 1 allowed it) is permitted,
     from lower to higher denied.
  3. Egress: the outbound ACL of B, if any, with its own implicit deny.
  The packet passes when every step permits it.

The flattening (one first-match list, interface conditions per rule; proved equal to a direct
evaluator of the three steps by a property test)
  a. Topology interfaces that are no nameif of the file: an approximated allow for everything in or
     out of them (the file cannot say what such an interface does).
  b. Step 1: one deny per ingress interface for the egress interfaces it may not reach.
  c. Step 3 before step 2 (the verdict is the conjunction, so the order of the checks does not
     change it): for each outbound ACL, its deny entries, each restricted to the packets no earlier
     permit entry of that ACL matches (only the permits that overlap the deny are named), then
     "not permitted by any of its permits" as its implicit deny; all restricted to B.
     Packets that get past these are exactly the ones the outbound ACL permits.
  d. Step 2: each inbound ACL's entries restricted to its interfaces, then (with no global ACL)
     its implicit deny; then the global ACL's entries and its implicit deny; then, for interfaces
     with neither, ``(security-level)`` allow and deny rules per interface.
  Rule ids are ``ACL line N`` (N counted as ``show access-list`` numbers the ACL: remarks take a
  line too, see ``REMARKS_COUNT``), ``ACL (implicit deny)``, ``(same-security-traffic)`` and
  ``(security-level)``; the source is the file and line of the entry (of the ``access-group`` for
  an implicit deny, of the ``security-level`` for the level rules); the name is the remark above.

Approximations (never optimistic; each marked on the rule with ``approximation``)
  * What the file does not determine: FQDN objects, undefined objects or groups, unknown port,
    protocol or ICMP type names, members of a kind this importer does not know, identity and
    TrustSec conditions (``user``, ``security-group``), ``time-range``. In a permit the unknown part
    is taken as matching anything, in a deny as matching nothing (the exactly known part still
    matches), and permits used as guards of an outbound deny use their permit (widest) reading.
  * An ``access-group`` naming an ACL the file does not define, or a ``standard``, ``webtype`` or
    (FTD) ``advanced`` one: taken as no ACL there (an ``ethertype`` ACL really filters no IP: noted).
  * ``per-user-override``: the interface ACL may be replaced per user; its interface is taken as
    permitting everything inbound.
  * A topology interface that is no nameif of the file: everything through it is allowed.
  * NAT is not followed (from 8.3 on, ACLs are written with real addresses: exact as long as the
    topology's packets carry real addresses). Before 9.0, ``any`` meant IPv4 only and IPv6 had ACLs
    of its own, which are not read: such a file has its IPv6 taken as allowed.
  Interface state (``shutdown``, ``management-only``) is not read: an interface is taken as passing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..errors import InputError
from ..model.addresses import ALL_ADDRESSES, ALL_V4, ALL_V6, V6_BASE, IntervalSet, addr_to_int
from ..model.rules import (
    FALSE,
    PROTO_ICMP,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    TRUE,
    Expr,
    FieldIn,
    Not,
    Rule,
    RuleSet,
    SourceRef,
    all_of,
    any_of,
)

MAX_FILE_BYTES = 64 << 20
MAX_DEPTH = 64  # object-group nesting
MAX_WORK = 5_000_000  # members and terms processed while resolving objects, and guard sizes
MAX_REASON = 300
# ``show access-list`` gives remarks a line number of their own (``access-list X line 1 remark …``),
# so rule ids count them. Set to False to count access control entries only.
REMARKS_COUNT = True

ALL_PORTS = IntervalSet([(0, 65535)])
ALL_BYTE = IntervalSet([(0, 255)])
PORT_PROTOS = IntervalSet.of(PROTO_TCP, PROTO_UDP, PROTO_SCTP)

# --- vocabulary (Cisco ASA configuration guide, "Addresses, Protocols, and Ports") --------------

PROTOCOLS: dict[str, int | None] = {
    "ip": None, "ipv4": None, "ipv6": None, "icmp": 1, "igmp": 2, "ipinip": 4, "ipip": 4, "tcp": 6, "egp": 8,
    "igrp": 9, "udp": 17, "gre": 47, "pptp": 47, "esp": 50, "ipsec": 50, "ah": 51, "icmp6": 58,
    "ipv6-icmp": 58, "eigrp": 88, "ospf": 89, "nos": 94, "pim": 103, "pcp": 108, "snp": 109, "vrrp": 112,
    "l2tp": 115, "sctp": 132,
}

# Port literals; a name used with TCP and UDP has the same number in both (biff/exec 512,
# login/who 513, cmd/rsh/syslog 514). kerberos is 750 and radius 1645/1646 on the ASA.
PORTS: dict[str, int] = {
    "aol": 5190, "bgp": 179, "biff": 512, "bootpc": 68, "bootps": 67, "chargen": 19, "cifs": 3020,
    "citrix-ica": 1494, "cmd": 514, "ctiqbe": 2748, "daytime": 13, "discard": 9, "dnsix": 195,
    "domain": 53, "echo": 7, "exec": 512, "finger": 79, "ftp": 21, "ftp-data": 20, "gopher": 70,
    "h323": 1720, "hostname": 101, "http": 80, "https": 443, "ident": 113, "imap4": 143, "irc": 194,
    "isakmp": 500, "kerberos": 750, "klogin": 543, "kshell": 544, "ldap": 389, "ldaps": 636,
    "login": 513, "lotusnotes": 1352, "lpd": 515, "mobile-ip": 434, "nameserver": 42,
    "netbios-dgm": 138, "netbios-ns": 137, "netbios-ssn": 139, "nfs": 2049, "nntp": 119, "ntp": 123,
    "pcanywhere-data": 5631, "pcanywhere-status": 5632, "pim-auto-rp": 496, "pop2": 109, "pop3": 110,
    "pptp": 1723, "radius": 1645, "radius-acct": 1646, "rip": 520, "rsh": 514, "rtsp": 554,
    "secureid-udp": 5510, "sip": 5060, "smtp": 25, "snmp": 161, "snmptrap": 162, "sqlnet": 1521,
    "ssh": 22, "sunrpc": 111, "syslog": 514, "tacacs": 49, "talk": 517, "telnet": 23, "tftp": 69,
    "time": 37, "uucp": 540, "vxlan": 4789, "who": 513, "whois": 43, "www": 80, "xdmcp": 177,
    "diameter": 3868, "rpc": 111,
}

ICMP_TYPES: dict[str, int] = {
    "echo-reply": 0, "unreachable": 3, "source-quench": 4, "redirect": 5, "alternate-address": 6,
    "echo": 8, "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
    "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14, "information-request": 15,
    "information-reply": 16, "mask-request": 17, "mask-reply": 18, "traceroute": 30,
    "conversion-error": 31, "mobile-redirect": 32,
}
ICMP6_TYPES: dict[str, int] = {
    "unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4, "echo": 128,
    "echo-reply": 129, "membership-query": 130, "membership-report": 131, "membership-reduction": 132,
    "router-solicitation": 133, "router-advertisement": 134, "neighbor-solicitation": 135,
    "neighbor-advertisement": 136, "neighbor-redirect": 137, "router-renumbering": 138,
}
LOG_LEVELS = frozenset({"emergencies", "alerts", "critical", "errors", "warnings", "notifications",
                        "informational", "debugging"})
PORT_OPERATORS = frozenset({"eq", "neq", "lt", "gt", "range"})

# Commands that say nothing about which transit packets pass: read and dropped without a note.
QUIET_COMMANDS = frozenset({
    "hostname", "domain-name", "enable", "passwd", "names", "dns", "dns-guard", "ftp", "pager",
    "logging", "mtu", "asdm", "arp", "route", "timeout", "user-identity", "aaa", "aaa-server", "http",
    "snmp-server", "telnet", "ssh", "console", "dhcpd", "dhcprelay", "ntp", "ssl", "username",
    "prompt", "call-home", "profile", "jumbo-frame", "failover", "monitor-interface", "boot",
    "license", "terminal", "cryptochecksum:", "end", "banner", "clock", "icmp", "ipv6", "no",
    "service", "router", "tftp-server", "management-access", "privilege", "auto-update", "crashinfo",
    "xlate", "flow-export", "dynamic-access-policy-record", "archive", "class",
    "anyconnect", "mac-address", "fragment", "ip", "object-group-search", "access-list-compile",
    "smart-licensing", "license-server", "cluster", "nve", "quit", "exit", "group-delimiter",
    "resource", "context", "admin-context", "config-url", "allocate-interface", "tls-proxy",
    "certificate", "crypto",
})
# Commands that can change what passes but are not modelled: kept in the notes with their lines.
NOTED_COMMANDS = {
    "nat": "NAT is not followed (ACLs from 8.3 on use real addresses)",
    "static": "pre-8.3 static NAT: ACLs of such files use mapped addresses",
    "global": "pre-8.3 NAT pool",
    "sysopt": "sysopt (e.g. connection permit-vpn lets VPN traffic bypass interface ACLs) is not modelled",
    "service-policy": "inspection policies (which may drop traffic) are not modelled",
    "policy-map": "inspection policies are not modelled",
    "class-map": "inspection policies are not modelled",
    "threat-detection": "threat detection and shunning are not modelled",
    "shun": "shunning is not modelled",
    "group-policy": "VPN filters are not modelled",
    "tunnel-group": "VPN tunnels are not modelled",
    "webvpn": "clientless VPN is not modelled",
    "established": "the established command is not modelled",
    "firewall": "transparent mode (bridge groups, EtherType rules) is not modelled",
}


# --- the file's structures ---------------------------------------------------------------------


@dataclass
class _Block:
    """A top-level command and its indented lines."""

    kind: str
    name: str
    line: int
    header: list[str]
    children: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass
class _IfaceDef:
    hw: str
    line: int
    nameif: str | None = None
    nameif_line: int | None = None
    level: int | None = None
    level_line: int | None = None
    addresses: list[tuple[int, int]] = field(default_factory=list)
    address_unknown: str | None = None
    children: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass
class _Elem:
    """One element of an access-list: a remark, an entry, or an entry of another ACL type."""

    kind: str  # "remark" | "ace" | "other"
    line: int
    tokens: list[str]
    text: str = ""


@dataclass
class _AccessGroup:
    acl: str
    line: int
    direction: str  # "in" | "out" | "global"
    iface: str | None
    option: str | None = None


@dataclass(frozen=True)
class _Addr:
    """An address set: ``values`` exactly known, ``loose`` when more may belong to it."""

    values: IntervalSet
    reasons: tuple[str, ...] = ()

    @property
    def loose(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class _Term:
    """One service: protocols and, where given, ports and ICMP type/code (None = any).

    ``loose`` names the fields whose values are only partly known: the values here are the known
    part (the narrow reading a deny uses); the wide reading (a permit's) lets those fields be anything.
    """

    protos: IntervalSet | None
    sport: IntervalSet | None = None
    dport: IntervalSet | None = None
    itype: IntervalSet | None = None
    icode: IntervalSet | None = None
    loose: frozenset[str] = frozenset()
    reasons: tuple[str, ...] = ()

    def wide(self) -> _Term:
        if not self.loose:
            return self
        changes = {f: None for f in self.loose}
        return replace(self, **changes)  # type: ignore[arg-type]

    def expr(self) -> Expr:
        parts: list[Expr] = []
        for name, values in (("proto", self.protos), ("sport", self.sport), ("dport", self.dport),
                             ("icmp_type", self.itype), ("icmp_code", self.icode)):
            if values is None:
                continue
            if not values:
                return FALSE
            parts.append(FieldIn(name, values))
        return all_of(*parts)

    def overlaps(self, other: _Term) -> bool:
        for a, b in ((self.protos, other.protos), (self.sport, other.sport), (self.dport, other.dport),
                     (self.itype, other.itype), (self.icode, other.icode)):
            if a is not None and b is not None and not (a & b):
                return False
            if (a is not None and not a) or (b is not None and not b):
                return False
        return True


def _narrow(a: IntervalSet | None, b: IntervalSet | None) -> IntervalSet | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


@dataclass
class _Ace:
    """One access control entry, resolved for its action (wide for a permit, narrow for a deny)."""

    acl: str
    number: int
    line: int
    action: str  # "allow" | "deny"
    src: IntervalSet
    dst: IntervalSet
    terms: tuple[_Term, ...]
    remark: str | None
    approximation: str | None
    inactive: bool
    never: bool = False  # a deny whose condition cannot be known to hold: matches nothing
    _expr: Expr | None = field(default=None, repr=False, compare=False)

    @property
    def rule_id(self) -> str:
        return f"{self.acl} line {self.number}"

    def expr(self) -> Expr:
        """The match (one shared object: guards of outbound denies reuse it)."""
        if self._expr is None:
            if self.never or not self.src or not self.dst:
                self._expr = FALSE
            else:
                svc = any_of(*(t.expr() for t in self.terms))
                src = TRUE if self.src == ALL_ADDRESSES else FieldIn("src", self.src)
                dst = TRUE if self.dst == ALL_ADDRESSES else FieldIn("dst", self.dst)
                self._expr = all_of(src, dst, svc)
        return self._expr

    def overlaps(self, other: _Ace) -> bool:
        """Whether some packet matches both (True when unsure: an extra guard is harmless)."""
        if self.never or other.never or not (self.src & other.src) or not (self.dst & other.dst):
            return False
        if len(self.terms) * len(other.terms) > 256:
            return True
        return any(a.overlaps(b) for a in self.terms for b in other.terms)


class _Cursor:
    """Tokens of one line, read left to right; running out is an input error on that line."""

    def __init__(self, importer: _Importer, tokens: list[str], line: int) -> None:
        self.imp = importer
        self.tokens = tokens
        self.i = 0
        self.line = line

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self, what: str) -> str:
        tok = self.peek()
        if tok is None:
            raise self.imp.error(f"{what} expected at the end of the line", self.line)
        self.i += 1
        return tok

    def done(self) -> bool:
        return self.i >= len(self.tokens)


# --- the importer ------------------------------------------------------------------------------


class _Importer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.interfaces: list[_IfaceDef] = []
        self.by_nameif: dict[str, _IfaceDef] = {}
        self.objects: dict[str, _Block] = {}
        self.groups: dict[str, _Block] = {}
        self.acls: dict[str, list[_Elem]] = {}
        self.acl_first_line: dict[str, int] = {}
        self.access_groups: list[_AccessGroup] = []
        self.inter: int | None = None  # line of same-security-traffic permit inter-interface
        self.intra: int | None = None
        self.aliases: dict[str, int] = {}
        self.version: tuple[int, int] | None = None
        self.notes: dict[str, list[int]] = {}
        self.work = 0
        self._net_memo: dict[tuple[str, str], _Addr] = {}
        self._svc_memo: dict[tuple[str, str], tuple[_Term, ...]] = {}
        self._set_memo: dict[tuple[str, str], tuple[IntervalSet, tuple[str, ...]]] = {}
        self.aces: dict[str, list[_Ace]] = {}
        self.acl_types: dict[str, set[str]] = {}

    def error(self, message: str, line: int | None) -> InputError:
        return InputError(self.path, message, line)

    def note(self, key: str, line: int) -> None:
        lines = self.notes.setdefault(key, [])
        if len(lines) < 1000:
            lines.append(line)

    def spend(self, amount: int = 1) -> None:
        self.work += amount
        if self.work > MAX_WORK:
            raise self.error("the configuration is too large to resolve (object nesting or ACL size)", None)

    # -- reading --

    def read_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise self.error(f"cannot read the file: {exc.strerror or exc}", None) from None
        if len(data) > MAX_FILE_BYTES:
            raise self.error(f"file larger than {MAX_FILE_BYTES >> 20} MiB", None)
        if b"\x00" in data:
            raise self.error("binary data, not a show running-config text", None)
        return data.decode("utf-8", errors="replace").split("\n")

    def parse(self) -> None:
        lines = self.read_lines()
        block: _Block | None = None
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\r").rstrip()
            if not line.strip():
                continue
            if line[0] in " \t":
                if block is not None:
                    block.children.append((number, line.split()))
                continue
            if line.startswith(("!", ":")):
                block = None
                continue
            tokens = line.split()
            block = self.command(number, tokens, line)
        if not (self.interfaces or self.acls or self.objects or self.groups or self.access_groups
                or self.version):
            raise self.error("no ASA configuration found (no interface, object, access-list or version line)",
                             None)
        for iface in self.interfaces:
            self.finish_interface(iface)
        # every definition is read, used or not, so that a malformed one is reported
        for name, blk in self.objects.items():
            if blk.kind == "network":
                self.net_object(name, blk.line)
            else:
                self.service_object(name, blk.line)
        for name, blk in self.groups.items():
            if blk.kind == "network":
                self.net_group(name, blk.line, ())
            elif blk.kind == "service":
                self.service_group(name, blk.line, ())
            elif blk.kind in ("protocol", "icmp-type"):
                self.set_group(blk.kind, name, blk.line, ())
        for name, elems in self.acls.items():
            self.aces[name] = self.build_acl(name, elems)

    def command(self, number: int, tokens: list[str], text: str) -> _Block | None:
        """One top-level command; returns the block its indented lines belong to."""
        word = tokens[0].lower()
        if word == "interface":
            if len(tokens) < 2:
                raise self.error("interface name expected", number)
            iface = _IfaceDef(" ".join(tokens[1:]), number)
            self.interfaces.append(iface)
            blk = _Block("interface", iface.hw, number, tokens)
            iface.children = blk.children  # the same list: indented lines land on the interface
            return blk
        if word == "object":
            if len(tokens) != 3 or tokens[1] not in ("network", "service"):
                if len(tokens) >= 3:
                    self.note(f"object {tokens[1]}: object kind not modelled (references to it are approximated)",
                              number)
                    return _Block("ignored", "", number, tokens)
                raise self.error("'object network NAME' or 'object service NAME' expected", number)
            return self.definition(self.objects, tokens[1], tokens[2], number, tokens)
        if word == "object-group":
            rest = tokens[1:]
            if rest and rest[0] == "group":  # a form Batfish's own test files use
                self.note("object-group group TYPE NAME: read as object-group TYPE NAME", number)
                rest = rest[1:]
            if len(rest) < 2:
                raise self.error("'object-group TYPE NAME' expected", number)
            kind, name = rest[0], rest[1]
            if kind not in ("network", "service", "protocol", "icmp-type", "user", "security"):
                self.note(f"object-group {kind}: group kind not modelled (references to it are approximated)",
                          number)
                return _Block("ignored", "", number, tokens)
            extra = rest[2:]
            if kind == "service" and extra and extra[0] not in ("tcp", "udp", "tcp-udp"):
                raise self.error(f"unknown service group protocol {extra[0]!r} (tcp, udp or tcp-udp)", number)
            if (kind != "service" and extra) or len(extra) > 1:
                raise self.error(f"unexpected {' '.join(extra)!r} after the group name", number)
            return self.definition(self.groups, kind, name, number, rest)
        if word == "access-list":
            self.access_list(number, tokens, text)
            return None
        if word == "access-group":
            self.access_group(number, tokens)
            return None
        if word == "same-security-traffic":
            if len(tokens) != 3 or tokens[1] != "permit" or tokens[2] not in ("inter-interface", "intra-interface"):
                raise self.error("'same-security-traffic permit inter-interface|intra-interface' expected", number)
            if tokens[2] == "inter-interface":
                self.inter = number
            else:
                self.intra = number
            return None
        if word == "name" and len(tokens) >= 3:
            try:
                self.aliases[tokens[2]] = addr_to_int(tokens[1])
            except ValueError:
                raise self.error(f"cannot read address {tokens[1]!r} of name {tokens[2]!r}", number) from None
            return None
        if word in ("asa", "pix", "fwsm") and len(tokens) >= 3 and tokens[1].lower() == "version":
            m = re.match(r"(\d+)\.(\d+)", tokens[2])
            if m:
                self.version = (int(m.group(1)), int(m.group(2)))
            return None
        if word == "ipv6" and len(tokens) > 1 and tokens[1] == "access-list":
            self.note("ipv6 access-list: the pre-9.0 IPv6 ACLs are not modelled", number)
            return _Block("ignored", "", number, tokens)
        if word in QUIET_COMMANDS or word.startswith("cryptochecksum"):
            return _Block("ignored", "", number, tokens)
        reason = NOTED_COMMANDS.get(word, "command not modelled")
        self.note(f"{word}: {reason}", number)
        return _Block("ignored", "", number, tokens)

    def definition(self, table: dict[str, _Block], kind: str, name: str, number: int,
                   header: list[str]) -> _Block:
        other_table = self.groups if table is self.objects else self.objects
        if name in other_table:  # objects and object-groups share one namespace
            other = other_table[name]
            raise self.error(f"{name!r} is already defined at line {other.line}", number)
        old = table.get(name)
        if old is not None:
            if old.kind != kind:
                raise self.error(f"{name!r} is already an {old.kind} object (line {old.line})", number)
            return old  # re-entering an object adds to it, as the CLI does
        blk = _Block(kind, name, number, header)
        table[name] = blk
        return blk

    def access_list(self, number: int, tokens: list[str], text: str) -> None:
        if len(tokens) < 3:
            raise self.error("'access-list NAME …' expected", number)
        name = tokens[1]
        rest = tokens[2:]
        position: int | None = None
        if rest[0] == "line":
            if len(rest) < 3 or not rest[1].isdigit():
                raise self.error("'line N' expects a line number", number)
            position = int(rest[1])
            rest = rest[2:]
        head = rest[0]
        if head == "remark":
            m = re.search(r"\sremark\s?(.*)$", text)
            elem = _Elem("remark", number, [], (m.group(1) if m else "").strip())
        elif head == "extended":
            elem = _Elem("ace", number, rest[1:])
        elif head in ("permit", "deny"):
            elem = _Elem("ace", number, rest)
        elif head in ("standard", "ethertype", "webtype", "advanced"):
            elem = _Elem("other", number, rest, head)
        else:
            raise self.error(f"unknown access-list form {head!r} (remark, extended, permit or deny expected)",
                             number)
        elems = self.acls.setdefault(name, [])
        self.acl_first_line.setdefault(name, number)
        if position is None:
            elems.append(elem)
        elif 1 <= position <= len(elems) + 1:
            elems.insert(position - 1, elem)
        else:
            raise self.error(f"line {position} is beyond the end of access-list {name} ({len(elems)} lines)",
                             number)

    def access_group(self, number: int, tokens: list[str]) -> None:
        if len(tokens) == 3 and tokens[2] == "global":
            self.access_groups.append(_AccessGroup(tokens[1], number, "global", None))
            return
        if len(tokens) in (5, 6) and tokens[2] in ("in", "out") and tokens[3] == "interface":
            option = tokens[5] if len(tokens) == 6 else None
            if option not in (None, "per-user-override", "control-plane"):
                raise self.error(f"unknown access-group option {option!r}", number)
            self.access_groups.append(_AccessGroup(tokens[1], number, tokens[2], tokens[4], option))
            return
        raise self.error("'access-group NAME in|out interface IF' or 'access-group NAME global' expected", number)

    def finish_interface(self, iface: _IfaceDef) -> None:
        for number, toks in iface.children:
            if toks[0] == "nameif" and len(toks) == 2:
                iface.nameif, iface.nameif_line = toks[1], number
            elif toks[0] == "security-level" and len(toks) == 2:
                if not toks[1].isdigit() or int(toks[1]) > 100:
                    raise self.error(f"security-level {toks[1]!r} is not a number from 0 to 100", number)
                iface.level, iface.level_line = int(toks[1]), number
            elif toks[:2] == ["ip", "address"] and len(toks) >= 3:
                if toks[2] in ("dhcp", "pppoe"):
                    iface.address_unknown = f"the address of {iface.hw} is assigned by {toks[2]}"
                    continue
                if len(toks) < 4:
                    raise self.error("'ip address ADDRESS MASK' expected", number)
                for tok in [toks[2]] + ([toks[5]] if len(toks) >= 6 and toks[4] == "standby" else []):
                    value = self.host(tok, number)
                    iface.addresses.append((value, value))
            elif toks[:2] == ["ipv6", "address"] and len(toks) >= 3:
                if toks[2] in ("autoconfig", "dhcp"):
                    iface.address_unknown = f"the IPv6 address of {iface.hw} is autoconfigured"
                    continue
                addr = toks[2].split("/")[0]
                value = self.host(addr, number)
                iface.addresses.append((value, value))
            elif toks[:2] == ["no", "nameif"]:
                iface.nameif = None
        if iface.nameif is not None:
            if iface.nameif in self.by_nameif:
                other = self.by_nameif[iface.nameif]
                raise self.error(f"nameif {iface.nameif!r} is also given to {other.hw} (line {other.line})",
                                 iface.nameif_line)
            if iface.level is None:
                iface.level = 100 if iface.nameif == "inside" else 0
            self.by_nameif[iface.nameif] = iface

    # -- addresses --

    def host(self, tok: str, line: int) -> int:
        if tok in self.aliases:
            return self.aliases[tok]
        try:
            return addr_to_int(tok)
        except ValueError:
            raise self.error(f"cannot read address {tok!r}", line) from None

    def masked(self, addr_tok: str, mask_tok: str, line: int) -> IntervalSet:
        value = self.host(addr_tok, line)
        if value >= V6_BASE:
            raise self.error(f"an IPv6 address takes a prefix length, not a mask: {addr_tok} {mask_tok}", line)
        try:
            mask = int(ipaddress.IPv4Address(mask_tok))
        except ValueError:
            raise self.error(f"cannot read netmask {mask_tok!r}", line) from None
        inverse = (~mask) & 0xFFFFFFFF
        if inverse & (inverse + 1):
            raise self.error(f"netmask {mask_tok} is not contiguous", line)
        if value & inverse:
            raise self.error(f"address {addr_tok} has bits outside netmask {mask_tok}", line)
        return IntervalSet([(value, value | inverse)])

    def prefix(self, tok: str, line: int) -> IntervalSet:
        try:
            net = ipaddress.ip_network(tok, strict=True)
        except ValueError:
            raise self.error(f"cannot read prefix {tok!r}", line) from None
        base = V6_BASE if net.version == 6 else 0
        return IntervalSet([(base + int(net.network_address), base + int(net.broadcast_address))])

    def address(self, cur: _Cursor) -> _Addr:
        tok = cur.take("an address")
        line = cur.line
        if tok == "any":
            return _Addr(ALL_V4 if self.version and self.version < (9, 0) else ALL_ADDRESSES)
        if tok == "any4":
            return _Addr(ALL_V4)
        if tok == "any6":
            return _Addr(ALL_V6)
        if tok == "host":
            value = self.host(cur.take("a host address"), line)
            return _Addr(IntervalSet.of(value))
        if tok == "interface":
            return self.iface_address(cur.take("an interface name"))
        if tok == "object":
            return self.net_object(cur.take("an object name"), line)
        if tok == "object-group":
            return self.net_group(cur.take("an object-group name"), line, ())
        if "/" in tok:
            return _Addr(self.prefix(tok, line))
        return _Addr(self.masked(tok, cur.take("a netmask"), line))

    def iface_address(self, name: str) -> _Addr:
        iface = self.by_nameif.get(name)
        if iface is None:
            return _Addr(IntervalSet(), (f"interface {name!r} is not a nameif of the file",))
        values = IntervalSet(iface.addresses)
        if iface.address_unknown:
            return _Addr(values, (iface.address_unknown,))
        return _Addr(values)

    def net_object(self, name: str, line: int) -> _Addr:
        key = ("object", name)
        hit = self._net_memo.get(key)
        if hit is not None:
            return hit
        blk = self.objects.get(name)
        if blk is None:
            return _Addr(IntervalSet(), (f"network object {name!r} is not defined",))
        if blk.kind != "network":
            raise self.error(f"object {name!r} is a {blk.kind} object, not a network object", line)
        result = _Addr(IntervalSet(), (f"network object {name!r} has no address",))
        for number, toks in blk.children:
            self.spend()
            kind = toks[0]
            if kind == "host" and len(toks) == 2:
                result = _Addr(IntervalSet.of(self.host(toks[1], number)))
            elif kind == "subnet" and len(toks) == 3:
                result = _Addr(self.masked(toks[1], toks[2], number))
            elif kind == "subnet" and len(toks) == 2:
                result = _Addr(self.prefix(toks[1], number))
            elif kind == "range" and len(toks) == 3:
                lo, hi = self.host(toks[1], number), self.host(toks[2], number)
                if (lo >= V6_BASE) != (hi >= V6_BASE) or lo > hi:
                    raise self.error(f"range {toks[1]} {toks[2]} is empty or mixes address families", number)
                result = _Addr(IntervalSet([(lo, hi)]))
            elif kind == "fqdn":
                result = _Addr(IntervalSet(), (f"network object {name!r} is an FQDN ({toks[-1]}): its addresses "
                                               f"are resolved at run time",))
            elif kind in ("description", "nat"):
                continue
            else:
                raise self.error(f"unknown network object line {' '.join(toks)!r}", number)
        self._net_memo[key] = result
        return result

    def net_group(self, name: str, line: int, stack: tuple[str, ...]) -> _Addr:
        key = ("group", name)
        hit = self._net_memo.get(key)
        if hit is not None:
            return hit
        blk = self.groups.get(name)
        if blk is None:
            return _Addr(IntervalSet(), (f"object-group {name!r} is not defined",))
        if blk.kind != "network":
            raise self.error(f"object-group {name!r} is a {blk.kind} group, not a network group", line)
        if name in stack:
            raise self.error(f"object-group loop: {' → '.join((*stack, name))}", line)
        if len(stack) >= MAX_DEPTH:
            raise self.error(f"object-groups nested deeper than {MAX_DEPTH}", line)
        parts: list[tuple[int, int]] = []
        reasons: list[str] = []
        for number, toks in blk.children:
            self.spend()
            kind = toks[0]
            if kind == "network-object" and len(toks) >= 2:
                if toks[1] == "host" and len(toks) == 3:
                    parts.append((self.host(toks[2], number),) * 2)
                elif toks[1] == "object" and len(toks) == 3:
                    sub = self.net_object(toks[2], number)
                    parts.extend(sub.values)
                    reasons.extend(sub.reasons)
                elif len(toks) == 2 and "/" in toks[1]:
                    parts.extend(self.prefix(toks[1], number))
                elif len(toks) == 2:
                    parts.append((self.host(toks[1], number),) * 2)
                elif len(toks) == 3:
                    parts.extend(self.masked(toks[1], toks[2], number))
                else:
                    raise self.error(f"cannot read {' '.join(toks)!r}", number)
            elif kind == "group-object" and len(toks) == 2:
                sub = self.net_group(toks[1], number, (*stack, name))
                parts.extend(sub.values)
                reasons.extend(sub.reasons)
                self.spend(len(sub.values.intervals))
            elif kind == "description":
                continue
            else:
                reasons.append(f"{' '.join(toks)!r} in object-group {name} (line {number}) is not modelled")
        result = _Addr(IntervalSet(parts), tuple(dict.fromkeys(reasons)))
        self._net_memo[key] = result
        return result

    # -- ports, protocols, ICMP types --

    def port(self, tok: str, line: int) -> int | None:
        """A port number or name; None for a name this importer does not know."""
        if tok.isdigit():
            value = int(tok)
            if value > 65535:
                raise self.error(f"port {tok} out of range", line)
            return value
        if tok in PORTS:
            return PORTS[tok]
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", tok):
            return None
        raise self.error(f"cannot read port {tok!r}", line)

    def port_spec(self, cur: _Cursor, op: str) -> tuple[IntervalSet, tuple[str, ...]]:
        """``OP PORT [PORT]`` after the operator was read; unknown names give a loose empty set."""
        line = cur.line
        if op == "range":
            a_tok, b_tok = cur.take("a port"), cur.take("a second port")
            a, b = self.port(a_tok, line), self.port(b_tok, line)
            if a is None or b is None:
                return IntervalSet(), (f"unknown port name in 'range {a_tok} {b_tok}'",)
            if a > b:
                raise self.error(f"invalid port range {a_tok} {b_tok}", line)
            return IntervalSet([(a, b)]), ()
        tok = cur.take("a port")
        value = self.port(tok, line)
        if value is None:
            return IntervalSet(), (f"unknown port name {tok!r}",)
        if op == "eq":
            return IntervalSet.of(value), ()
        if op == "neq":
            return ALL_PORTS - IntervalSet.of(value), ()
        if op == "lt":
            return IntervalSet([(0, value - 1)]), ()
        return IntervalSet([(value + 1, 65535)]), ()

    def protocol(self, tok: str, line: int) -> tuple[IntervalSet | None, tuple[str, ...]]:
        """Protocol name or number: None for any (``ip``); a loose empty set for an unknown name."""
        if tok.isdigit():
            if int(tok) > 255:
                raise self.error(f"protocol number {tok} out of range", line)
            return IntervalSet.of(int(tok)), ()
        low = tok.lower()
        if low == "tcp-udp":
            return IntervalSet.of(PROTO_TCP, PROTO_UDP), ()
        if low in PROTOCOLS:
            num = PROTOCOLS[low]
            return (None if num is None else IntervalSet.of(num)), ()
        if re.fullmatch(r"[a-z][a-z0-9_.-]*", low):
            return IntervalSet(), (f"unknown protocol {tok!r}",)
        raise self.error(f"cannot read protocol {tok!r}", line)

    def icmp_type(self, tok: str, v6: bool, line: int) -> tuple[IntervalSet, tuple[str, ...]]:
        if tok.isdigit():
            if int(tok) > 255:
                raise self.error(f"ICMP type {tok} out of range", line)
            return IntervalSet.of(int(tok)), ()
        table = ICMP6_TYPES if v6 else ICMP_TYPES
        if tok in table:
            return IntervalSet.of(table[tok]), ()
        return IntervalSet(), (f"unknown ICMP{'v6' if v6 else ''} type {tok!r}",)

    def service_tokens(self, cur: _Cursor, owner: str) -> _Term:
        """``PROTO [source OP …] [destination OP …]`` or ``icmp [TYPE [CODE]]``: one service."""
        line = cur.line
        proto_tok = cur.take("a protocol")
        protos, reasons = self.protocol(proto_tok, line)
        term = _Term(protos, loose=frozenset({"protos"}) if reasons else frozenset(), reasons=reasons)
        low = proto_tok.lower()
        if low in ("icmp", "icmp6", "ipv6-icmp"):
            if not cur.done():
                types, r = self.icmp_type(cur.take("an ICMP type"), low != "icmp", line)
                term = replace(term, itype=types, loose=term.loose | ({"itype"} if r else set()),
                               reasons=term.reasons + r)
                if not cur.done():
                    code = cur.take("an ICMP code")
                    if not code.isdigit() or int(code) > 255:
                        raise self.error(f"cannot read ICMP code {code!r}", line)
                    term = replace(term, icode=IntervalSet.of(int(code)))
        elif protos is not None and protos and protos.issubset(PORT_PROTOS):
            while not cur.done():
                which = cur.take("source or destination")
                if which in PORT_OPERATORS:  # the old form: an operator alone is the destination
                    which, op = "destination", which
                elif which in ("source", "destination"):
                    op = cur.take("a port operator")
                else:
                    raise self.error(f"unexpected {which!r} in {owner}", line)
                if op not in PORT_OPERATORS:
                    raise self.error(f"unexpected {op!r} in {owner} (a port operator expected)", line)
                values, r = self.port_spec(cur, op)
                fld = "sport" if which == "source" else "dport"
                term = replace(term, **{fld: _narrow(getattr(term, fld), values)},  # type: ignore[arg-type]
                               loose=term.loose | ({fld} if r else set()), reasons=term.reasons + r)
        if not cur.done():
            raise self.error(f"unexpected {' '.join(cur.tokens[cur.i:])!r} in {owner}", line)
        return term

    def service_object(self, name: str, line: int) -> tuple[_Term, ...] | None:
        """A service object's services; None when no such object is defined."""
        key = ("object", name)
        hit = self._svc_memo.get(key)
        if hit is not None:
            return hit
        blk = self.objects.get(name)
        if blk is None:
            return None
        if blk.kind != "service":
            raise self.error(f"object {name!r} is a {blk.kind} object, not a service object", line)
        result: tuple[_Term, ...] = (_Term(IntervalSet(), loose=frozenset({"protos"}),
                                           reasons=(f"service object {name!r} has no service",)),)
        for number, toks in blk.children:
            self.spend()
            if toks[0] == "service" and len(toks) >= 2:
                result = (self.service_tokens(_Cursor(self, toks[1:], number), f"service object {name}"),)
            elif toks[0] != "description":
                raise self.error(f"unknown service object line {' '.join(toks)!r}", number)
        self._svc_memo[key] = result
        return result

    def service_group(self, name: str, line: int, stack: tuple[str, ...]) -> tuple[_Term, ...]:
        key = ("group", name)
        hit = self._svc_memo.get(key)
        if hit is not None:
            return hit
        blk = self.groups.get(name)
        if blk is None:
            return (_Term(IntervalSet(), loose=frozenset({"protos"}),
                          reasons=(f"object-group {name!r} is not defined",)),)
        if blk.kind != "service":
            raise self.error(f"object-group {name!r} is a {blk.kind} group, not a service group", line)
        self.check_nesting(name, stack, line)
        typed = blk.header[2] if len(blk.header) > 2 else None
        group_protos = self.protocol(typed, line)[0] if typed else None
        terms: list[_Term] = []
        for number, toks in blk.children:
            self.spend()
            kind = toks[0]
            if kind == "port-object" and len(toks) >= 3 and toks[1] in PORT_OPERATORS:
                cur = _Cursor(self, toks[2:], number)
                values, r = self.port_spec(cur, toks[1])
                if not cur.done():
                    raise self.error(f"unexpected {' '.join(toks[cur.i + 2:])!r}", number)
                if typed:
                    terms.append(_Term(group_protos, dport=values, loose=frozenset({"dport"} if r else ()),
                                       reasons=r))
                else:
                    why = f"port-object in service group {name} without a protocol (line {number}): taken as tcp-udp"
                    terms.append(_Term(IntervalSet.of(PROTO_TCP, PROTO_UDP), dport=values,
                                       loose=frozenset({"protos"} | ({"dport"} if r else set())),
                                       reasons=(why, *r)))
            elif kind == "service-object" and len(toks) >= 2:
                if toks[1] == "object" and len(toks) == 3:
                    sub = self.service_object(toks[2], number)
                    terms.extend(sub if sub is not None else (
                        _Term(IntervalSet(), loose=frozenset({"protos"}),
                              reasons=(f"service object {toks[2]!r} is not defined",)),))
                else:
                    terms.append(self.service_tokens(_Cursor(self, toks[1:], number), f"object-group {name}"))
            elif kind == "group-object" and len(toks) == 2:
                sub_terms = self.service_group(toks[1], number, (*stack, name))
                self.spend(len(sub_terms))
                terms.extend(sub_terms)
            elif kind == "description":
                continue
            else:
                terms.append(_Term(IntervalSet(), loose=frozenset({"protos"}),
                                   reasons=(f"{' '.join(toks)!r} in object-group {name} (line {number}) "
                                            f"is not modelled",)))
        result = tuple(terms)
        self._svc_memo[key] = result
        return result

    def check_nesting(self, name: str, stack: tuple[str, ...], line: int) -> None:
        if name in stack:
            raise self.error(f"object-group loop: {' → '.join((*stack, name))}", line)
        if len(stack) >= MAX_DEPTH:
            raise self.error(f"object-groups nested deeper than {MAX_DEPTH}", line)

    def set_group(self, kind: str, name: str, line: int, stack: tuple[str, ...],
                  v6: bool = False) -> tuple[IntervalSet | None, tuple[str, ...]]:
        """A protocol group's protocols (None: any) or an icmp-type group's types."""
        key = (kind, name)
        hit = self._set_memo.get(key)
        if hit is not None:
            return hit
        blk = self.groups.get(name)
        if blk is None:
            return IntervalSet(), (f"object-group {name!r} is not defined",)
        if blk.kind != kind:
            raise self.error(f"object-group {name!r} is a {blk.kind} group, not a {kind} group", line)
        self.check_nesting(name, stack, line)
        values = IntervalSet()
        reasons: list[str] = []
        member = "protocol-object" if kind == "protocol" else "icmp-object"
        any_value = False
        for number, toks in blk.children:
            self.spend()
            if toks[0] == member and len(toks) == 2:
                if kind == "protocol":
                    got, r = self.protocol(toks[1], number)
                    if got is None:
                        any_value = True
                        continue
                else:
                    got, r = self.icmp_type(toks[1], v6, number)
                values = values | got
                reasons.extend(r)
            elif toks[0] == "group-object" and len(toks) == 2:
                got_sub, r = self.set_group(kind, toks[1], number, (*stack, name), v6)
                if got_sub is None:
                    any_value = True
                else:
                    values = values | got_sub
                reasons.extend(r)
            elif toks[0] != "description":
                reasons.append(f"{' '.join(toks)!r} in object-group {name} (line {number}) is not modelled")
        result: tuple[IntervalSet | None, tuple[str, ...]] = (None if any_value else values,
                                                              tuple(dict.fromkeys(reasons)))
        self._set_memo[key] = result
        return result

    def group_kind(self, name: str | None) -> str | None:
        blk = self.groups.get(name) if name is not None else None
        return blk.kind if blk is not None else None

    # -- access control entries --

    def build_acl(self, name: str, elems: list[_Elem]) -> list[_Ace]:
        out: list[_Ace] = []
        number = 0
        remarks: list[str] = []
        types = self.acl_types.setdefault(name, set())
        for elem in elems:
            if elem.kind == "remark":
                if REMARKS_COUNT:
                    number += 1
                remarks.append(elem.text)
                continue
            number += 1
            if elem.kind == "other":
                types.add(elem.text)
                remarks = []
                continue
            types.add("extended")
            ace = self.ace(name, number, elem, " / ".join(r for r in remarks if r) or None)
            remarks = []
            out.append(ace)
            self.spend(len(ace.terms))
        return out

    def ace(self, acl: str, number: int, elem: _Elem, remark: str | None) -> _Ace:
        line = elem.line
        cur = _Cursor(self, elem.tokens, line)
        action = cur.take("permit or deny")
        if action not in ("permit", "deny"):
            raise self.error(f"permit or deny expected, not {action!r}", line)
        reasons: list[str] = []
        conditional: list[str] = []  # conditions the file cannot decide (identity, time)

        # the protocol slot: a protocol, a protocol or service group, or a service object
        ports_allowed = False
        icmp_v: bool | None = None  # ICMP types may follow (False: ICMP, True: ICMPv6)
        tok = cur.take("a protocol")
        if tok == "object-group":
            gname = cur.take("an object-group name")
            kind = self.group_kind(gname)
            if kind == "protocol":
                protos, r = self.set_group("protocol", gname, line, ())
                terms = [_Term(protos, loose=frozenset({"protos"} if r else ()), reasons=r)]
                ports_allowed = protos is not None and bool(protos) and protos.issubset(PORT_PROTOS)
            elif kind == "service" or kind is None:
                terms = list(self.service_group(gname, line, ()))
            else:
                raise self.error(f"object-group {gname!r} is a {kind} group, not a protocol or service group",
                                 line)
        elif tok == "object":
            oname = cur.take("an object name")
            found = self.service_object(oname, line)
            terms = list(found) if found is not None else [self.inline_object(oname)]
        else:
            protos, r = self.protocol(tok, line)
            terms = [_Term(protos, loose=frozenset({"protos"} if r else ()), reasons=r)]
            ports_allowed = protos is not None and bool(protos) and protos.issubset(PORT_PROTOS)
            if tok.lower() == "icmp":
                icmp_v = False
            elif tok.lower() in ("icmp6", "ipv6-icmp"):
                icmp_v = True

        self.identity(cur, conditional)
        src = self.address(cur)
        src_ports = self.ports(cur, ports_allowed)
        self.identity(cur, conditional)
        dst = self.address(cur)
        dst_ports = self.ports(cur, ports_allowed)
        for fld, spec in (("sport", src_ports), ("dport", dst_ports)):
            if spec is None:
                continue
            values, r = spec
            terms = [replace(t, **{fld: _narrow(getattr(t, fld), values)},  # type: ignore[arg-type]
                             loose=t.loose | ({fld} if r else set()), reasons=t.reasons + r) for t in terms]
        if icmp_v is not None and cur.peek() not in (None, "log", "time-range", "inactive"):
            tok = cur.take("an ICMP type")
            if tok == "object-group":
                gname = cur.take("an object-group name")
                types, r = self.set_group("icmp-type", gname, line, (), icmp_v)
            else:
                types, r = self.icmp_type(tok, icmp_v, line)
            code: IntervalSet | None = None
            nxt = cur.peek()
            if nxt is not None and nxt.isdigit():
                cur.i += 1
                if int(nxt) > 255:
                    raise self.error(f"ICMP code {nxt} out of range", line)
                code = IntervalSet.of(int(nxt))
            terms = [replace(t, itype=types, icode=code, loose=t.loose | ({"itype"} if r else set()),
                             reasons=t.reasons + r) for t in terms]

        inactive = False
        while not cur.done():
            tok = cur.take("an option")
            if tok == "log":
                nxt = cur.peek()
                if nxt in ("disable", "default") or (nxt is not None and (nxt in LOG_LEVELS or nxt.isdigit())):
                    cur.i += 1
                if cur.peek() == "interval":
                    cur.i += 1
                    if not cur.take("an interval").isdigit():
                        raise self.error("log interval must be a number of seconds", line)
            elif tok == "time-range":
                conditional.append(f"time-range {cur.take('a time-range name')}: active only at some times")
            elif tok == "inactive":
                inactive = True
            else:
                raise self.error(f"unexpected {tok!r} in access-list entry", line)

        permit = action == "permit"
        for t in terms:
            reasons.extend(t.reasons)
        reasons.extend(src.reasons)
        reasons.extend(dst.reasons)
        if permit:
            src_v = ALL_ADDRESSES if src.loose else src.values
            dst_v = ALL_ADDRESSES if dst.loose else dst.values
            use = tuple(t.wide() for t in terms)
        else:
            src_v, dst_v = src.values, dst.values
            use = tuple(terms)
        reasons.extend(conditional)
        approx = None
        if reasons:
            how = "taken as matching" if permit else "taken as not matching"
            approx = "; ".join(dict.fromkeys(reasons)) + f" ({how})"
            if len(approx) > MAX_REASON:
                approx = approx[:MAX_REASON - 1] + "…"
        return _Ace(acl, number, line, "allow" if permit else "deny", src_v, dst_v, use, remark, approx,
                    inactive, never=not permit and bool(conditional))

    def inline_object(self, name: str) -> _Term:
        """``object NAME`` with no such object: Batfish's inline forms (``object ospf``,
        ``object icmp-echo``), else an undefined reference."""
        low = name.lower()
        if low in PROTOCOLS and PROTOCOLS[low] is not None:
            return _Term(IntervalSet.of(PROTOCOLS[low]))  # type: ignore[arg-type]
        if low.startswith("icmp-") and low[5:] in ICMP_TYPES:
            return _Term(IntervalSet.of(PROTO_ICMP), itype=IntervalSet.of(ICMP_TYPES[low[5:]]))
        return _Term(IntervalSet(), loose=frozenset({"protos"}), reasons=(f"service object {name!r} is not defined",))

    def identity(self, cur: _Cursor, conditional: list[str]) -> None:
        """Identity-firewall and TrustSec conditions before an address: recorded, not modelled."""
        while cur.peek() in ("user", "user-group", "object-group-user", "security-group", "object-group-security"):
            kw = cur.take("a condition")
            if kw == "security-group":
                sub = cur.take("name or tag")
                value = cur.take("a security group")
                conditional.append(f"security-group {sub} {value}: TrustSec tags are not in the file")
            else:
                conditional.append(f"{kw} {cur.take('a user or group')}: identity is not in the file")

    def ports(self, cur: _Cursor, allowed: bool) -> tuple[IntervalSet, tuple[str, ...]] | None:
        tok = cur.peek()
        if tok in PORT_OPERATORS:
            if not allowed:
                raise self.error(f"port operator {tok!r} for a protocol without ports", cur.line)
            cur.i += 1
            return self.port_spec(cur, tok)  # type: ignore[arg-type]
        if tok == "object-group" and allowed and self.group_kind(cur.peek(1)) == "service":
            gname = cur.peek(1)
            cur.i += 2
            terms = self.service_group(gname, cur.line, ())  # type: ignore[arg-type]
            values = IntervalSet()
            reasons: list[str] = []
            for t in terms:
                values = values | (ALL_PORTS if t.dport is None else t.dport)
                reasons.extend(t.reasons)
            return values, tuple(dict.fromkeys(reasons))
        return None


# --- from the parsed file to one first-match list ---------------------------------------------


class _Flattener:
    def __init__(self, imp: _Importer, interfaces: Sequence[str]) -> None:
        self.imp = imp
        self.path = imp.path
        self.topo = tuple(dict.fromkeys(interfaces))
        self.rules: list[Rule] = []
        self.notes: list[str] = []

    def src(self, line: int | None) -> SourceRef:
        return SourceRef(self.path, line)

    def acl_entries(self, name: str) -> list[_Ace] | None:
        """An ACL's active extended entries; None when the file has no extended ACL of that name."""
        if name not in self.imp.acls or "extended" not in self.imp.acl_types.get(name, set()):
            return None
        return [a for a in self.imp.aces[name] if not a.inactive]

    def run(self) -> RuleSet:
        imp = self.imp
        known = [t for t in self.topo if t in imp.by_nameif]
        unknown = [t for t in self.topo if t not in imp.by_nameif]
        level = {t: imp.by_nameif[t].level for t in known}
        level_line = {t: imp.by_nameif[t].level_line or imp.by_nameif[t].nameif_line for t in known}

        # which ACLs are applied where (a later access-group replaces an earlier one)
        inbound: dict[str, _AccessGroup] = {}
        outbound: dict[str, _AccessGroup] = {}
        global_group: _AccessGroup | None = None
        for ag in imp.access_groups:
            if ag.direction == "global":
                global_group = ag
                continue
            if ag.option == "control-plane":
                self.notes.append(f"line {ag.line}: access-group {ag.acl} control-plane filters traffic to the "
                                  f"ASA itself, not transit traffic")
                continue
            if ag.iface not in imp.by_nameif:
                self.notes.append(f"line {ag.line}: access-group {ag.acl} names interface {ag.iface!r}, which is "
                                  f"no nameif of the file: it can never apply")
                continue
            if ag.iface not in known:
                self.notes.append(f"line {ag.line}: access-group {ag.acl} is on {ag.iface}, which the topology "
                                  f"does not list for this firewall")
            (inbound if ag.direction == "in" else outbound)[ag.iface] = ag  # type: ignore[index]

        def usable(ag: _AccessGroup | None, where: Sequence[str]) -> bool:
            """Whether the ACL exists as an extended ACL; if not, a marker rule says it is taken as absent."""
            if ag is None:
                return False
            if self.acl_entries(ag.acl) is not None:
                return True
            types = imp.acl_types.get(ag.acl)
            if types == {"ethertype"}:
                self.notes.append(f"line {ag.line}: access-group {ag.acl} is an ethertype ACL: "
                                  f"it does not filter IP traffic")
                return False
            if types:
                rid = f"{ag.acl} ({'/'.join(sorted(types))})"
                why = (f"access-group names a {'/'.join(sorted(types))} access-list {ag.acl}, which this importer "
                       f"does not read: taken as no ACL there")
            else:
                rid = f"{ag.acl} (undefined)"
                why = f"access-group names access-list {ag.acl}, which the file does not define: taken as no ACL there"
            self.rules.append(Rule(
                rid, "deny", FALSE,
                in_ifaces=frozenset(where) if ag.direction == "in" else None,
                out_ifaces=frozenset(where) if ag.direction == "out" else None,
                source=self.src(ag.line), approximation=why))
            return False

        # a. interfaces the file does not know
        for name in unknown:
            why = (f"{name} is no nameif of the file (nameifs: {', '.join(sorted(imp.by_nameif)) or 'none'}): "
                   f"traffic through it is taken as allowed")
            self.rules.append(Rule(f"({name}: no such nameif)", "allow", TRUE, in_ifaces=frozenset({name}),
                                   source=self.src(None), approximation=why))
            self.rules.append(Rule(f"({name}: no such nameif)", "allow", TRUE, out_ifaces=frozenset({name}),
                                   source=self.src(None), approximation=why))
        if imp.version is not None and imp.version < (9, 0):
            why = (f"ASA {imp.version[0]}.{imp.version[1]} filters IPv6 with separate ipv6 access-lists, "
                   f"which are not modelled: IPv6 is taken as allowed")
            self.rules.append(Rule("(IPv6 before 9.0)", "allow", FieldIn("src", ALL_V6), source=self.src(None),
                                   approximation=why))

        # b. same security level
        for a in known:
            hairpin = [a] if imp.intra is None else []
            same = [b for b in known if b != a and level[b] == level[a]] if imp.inter is None else []
            if hairpin:
                self.rules.append(Rule(
                    "(same-security-traffic)", "deny", TRUE, frozenset({a}), frozenset(hairpin),
                    self.src(level_line[a]),
                    f"{a} → {a}: leaving by the interface it came in needs same-security-traffic permit "
                    f"intra-interface"))
            if same:
                self.rules.append(Rule(
                    "(same-security-traffic)", "deny", TRUE, frozenset({a}), frozenset(same),
                    self.src(level_line[a]),
                    f"{a} → {', '.join(same)}: same security level {level[a]} needs same-security-traffic "
                    f"permit inter-interface"))

        # c. outbound ACLs (step 3) before the inbound decision (step 2): the verdict is their conjunction
        by_acl: dict[str, list[str]] = {}
        for b in known:
            ag = outbound.get(b)
            if ag is not None and usable(ag, [b]):
                by_acl.setdefault(ag.acl, []).append(b)
        for acl, outs in by_acl.items():
            lines = [outbound[b].line for b in outs]
            self.egress(acl, frozenset(outs), min(lines))

        # d. inbound ACLs, the global ACL, security levels (step 2)
        global_ok = global_group is not None and usable(global_group, [])
        in_by_acl: dict[str, list[str]] = {}
        per_user: list[str] = []
        for a in known:
            ag = inbound.get(a)
            if ag is not None and usable(ag, [a]):
                in_by_acl.setdefault(ag.acl, []).append(a)
                if ag.option == "per-user-override":
                    per_user.append(a)
        for a in per_user:
            ag = inbound[a]
            self.rules.append(Rule(
                f"{ag.acl} (per-user-override)", "allow", TRUE, in_ifaces=frozenset({a}), source=self.src(ag.line),
                approximation=f"access-group {ag.acl} per-user-override: per-user ACLs from the AAA server may "
                              f"replace it, so everything entering {a} is taken as permitted"))
        for acl, ins in in_by_acl.items():
            ins_set = frozenset(ins)
            for ace in self.acl_entries(acl) or []:
                self.rules.append(self.rule(ace, in_ifaces=ins_set))
            if not global_ok:
                self.rules.append(Rule(
                    f"{acl} (implicit deny)", "deny", TRUE, in_ifaces=ins_set,
                    source=self.src(min(inbound[a].line for a in ins)),
                    name=f"implicit deny at the end of access-list {acl}"))
        if global_ok:
            assert global_group is not None
            for ace in self.acl_entries(global_group.acl) or []:
                self.rules.append(self.rule(ace))
            self.rules.append(Rule(
                f"{global_group.acl} (implicit deny)", "deny", TRUE, source=self.src(global_group.line),
                name=f"implicit deny after the global access-list {global_group.acl}"))
        else:
            for a in known:
                if a in in_by_acl:
                    continue
                down = [b for b in known if level[b] < level[a] or (level[b] == level[a] and (
                    (b == a and imp.intra is not None) or (b != a and imp.inter is not None)))]
                up = [b for b in known if level[b] > level[a]]
                if down:
                    self.rules.append(Rule(
                        "(security-level)", "allow", TRUE, frozenset({a}), frozenset(down), self.src(level_line[a]),
                        f"{a} has no inbound ACL: security level {level[a]} may reach lower (or, where allowed, "
                        f"equal) levels"))
                if up:
                    self.rules.append(Rule(
                        "(security-level)", "deny", TRUE, frozenset({a}), frozenset(up), self.src(level_line[a]),
                        f"{a} has no inbound ACL: security level {level[a]} may not reach higher levels"))

        applied = {ag.acl for ag in imp.access_groups}
        for name in imp.acls:
            if name not in applied:
                self.notes.append(f"line {imp.acl_first_line[name]}: access-list {name} is applied by no "
                                  f"access-group")
        for key, lines in sorted(imp.notes.items(), key=lambda kv: kv[1][0]):
            shown = ", ".join(map(str, lines[:10])) + (", …" if len(lines) > 10 else "")
            self.notes.append(f"{key} (line{'s' if len(lines) > 1 else ''} {shown})")
        return RuleSet(tuple(self.rules), "deny", tuple(self.notes))

    def rule(self, ace: _Ace, in_ifaces: frozenset[str] | None = None) -> Rule:
        return Rule(ace.rule_id, ace.action, ace.expr(), in_ifaces, None,  # type: ignore[arg-type]
                    self.src(ace.line), ace.remark, ace.approximation)

    def egress(self, acl: str, outs: frozenset[str], group_line: int) -> None:
        """An outbound ACL as rules that deny exactly what it does not permit (see the module docstring)."""
        permits: list[_Ace] = []
        for ace in self.acl_entries(acl) or []:
            if ace.action == "allow":
                permits.append(ace)
                continue
            self.imp.spend(len(permits) // 4 + 1)
            guards = [p for p in permits if p.overlaps(ace)]
            self.imp.spend(len(guards) + 1)
            match = all_of(ace.expr(), Not(any_of(*(p.expr() for p in guards)))) if guards else ace.expr()
            self.rules.append(Rule(ace.rule_id, "deny", match, None, outs, self.src(ace.line), ace.remark,
                                   self.joined(ace.approximation, guards)))
        self.imp.spend(len(permits) + 1)
        rest = Not(any_of(*(p.expr() for p in permits))) if permits else TRUE
        self.rules.append(Rule(f"{acl} (implicit deny)", "deny", rest, None, outs, self.src(group_line),
                               f"implicit deny at the end of access-list {acl} (outbound)",
                               self.joined(None, permits)))

    @staticmethod
    def joined(own: str | None, guards: list[_Ace]) -> str | None:
        parts = [own] if own else []
        parts.extend(f"{p.rule_id} read widely: {p.approximation}" for p in guards if p.approximation)
        if not parts:
            return None
        text = "; ".join(parts)
        return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def _parse(path: str) -> _Importer:
    imp = _Importer(path)
    imp.parse()
    return imp


def load(path: str, interfaces: Sequence[str]) -> RuleSet:
    """The ASA's transit decision for an initiating packet, as one first-match RuleSet."""
    return _Flattener(_parse(path), interfaces).run()


def acl_ruleset(path: str, acl: str) -> RuleSet:
    """One access-list of the file on its own: its active entries, then its implicit deny.

    For reading an ACL that no access-group applies (and for tests); interfaces play no part.
    """
    imp = _parse(path)
    flat = _Flattener(imp, ())
    entries = flat.acl_entries(acl)
    if entries is None:
        raise InputError(path, f"no extended access-list {acl!r} in the file", None)
    rules = [flat.rule(a) for a in entries]
    rules.append(Rule(f"{acl} (implicit deny)", "deny", TRUE, source=SourceRef(path, imp.acl_first_line[acl]),
                      name=f"implicit deny at the end of access-list {acl}"))
    return RuleSet(tuple(rules), "deny")
