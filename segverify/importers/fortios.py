"""FortiOS configuration backup importer: the forward-policy decision of a FortiGate for an initiating packet.

The output is a flat, ordered, first-match RuleSet over the topology's interface names.

How the file is read
  * The CLI tree: ``config PATH`` … ``end`` blocks, ``edit NAME`` … ``next`` entries (nested to any
    depth, e.g. ``config vdom`` / ``edit root`` / ``config firewall policy``), ``set``/``select``,
    ``unset``, ``append``, ``unselect``, ``move A before|after B``, ``delete``, ``purge``, ``rename A
    to B``, ``clone A to B``; ``#`` comment lines (the ``#config-version=`` header among them); words
    in double or single quotes, which may span lines (certificates, replacement messages). Reopening a
    block or an entry edits it in place, as the CLI does. An unknown command is an input error.
  * ``set protocol`` on a custom service that changes its protocol clears the protocol's settings
    (port ranges, ICMP type/code, protocol number), and ``unset icmptype`` clears the ICMP code too,
    as FortiOS does.
  * Multi-VDOM backups (``config vdom`` / ``edit NAME`` holding the VDOM's tables, ``config global``
    the shared ones): each VDOM's policies apply only between that VDOM's interfaces (``set vdom`` of
    ``config system interface``), and ``any`` means the VDOM's own interfaces.

Semantics (FortiOS, from the CLI reference and Fortinet's knowledge base)
  * ``config firewall policy`` runs in the order of the file — the order ``show`` prints and ``move``
    changes — not by ``edit`` number; first match wins. ``set status disable`` policies are not
    emitted. A policy without ``set action`` denies; ``accept`` and ``ipsec`` allow. After the last
    policy come the zones' ``intrazone allow`` (Fortinet KB 264457: an explicit policy is matched
    before the intrazone setting), then the implicit deny (policy 0): the RuleSet's default.
  * A policy matches IPv4 packets through ``srcaddr``/``dstaddr`` and IPv6 packets through
    ``srcaddr6``/``dstaddr6`` (FortiOS 6.4 and later); a family whose two lists are not both set is
    not matched. ``config firewall policy6`` (FortiOS 6.2 and earlier) is read too, IPv6 only, with ids
    ``policy6:N``. ``*-negate enable`` negates the whole list (within the family); ``service-negate``
    the service.
  * Addresses: ``ipmask`` (``a.b.c.d m.m.m.m`` or ``/len``; no ``subnet`` means 0.0.0.0/0),
    ``iprange``, ``wildcard`` (address and a possibly non-contiguous mask), ``interface-subnet`` (the
    named interface's own subnet), IPv6 ``ipprefix`` and ``iprange``; ``addrgrp``/``addrgrp6`` nested,
    with ``exclude enable`` and ``exclude-member`` (members minus excluded members). Loops and more than
    ``MAX_GROUP_DEPTH`` levels are input errors.
  * Services: ``protocol TCP/UDP/SCTP`` (the default) with ``tcp-portrange``/``udp-portrange``/
    ``sctp-portrange`` items ``DST[:SRC]`` (each ``lo[-hi]``; no SRC means source ports 1-65535),
    ``ICMP``/``ICMP6`` with optional ``icmptype``/``icmpcode``, ``IP`` with ``protocol-number`` (0: every
    protocol); ``service group`` nested. The predefined objects FortiOS ships (``ALL``, ``HTTP``,
    ``HTTPS``, ``DNS``, ``RDP``, ``SAMBA``, ``PING``, ``ALL_TCP`` …, the addresses ``all``/``none``, the
    schedule ``always``) are used when the file does not define them; their definitions are those of
    FortiOS's factory ``config firewall service custom``.
  * Interfaces: a ``srcintf``/``dstintf`` name selects the topology interfaces with that name; a zone
    (``config system zone``, SD-WAN zones) also selects the topology interfaces named after its member
    interfaces. So the topology may name the firewall's interfaces by zone (``LG``, ``INET``) or by
    physical interface (``port1``); both read the same. ``any`` selects every topology interface (of
    the VDOM). A name that is no topology interface, zone or member selects nothing.
  * ``config system zone`` ``intrazone allow`` lets every packet between the zone's interfaces (the
    zone's name and its members' names in the topology) through after the policies; ``deny`` (the
    default) leaves intra-zone traffic to the policies.
  * ``config firewall acl``/``acl6`` entries drop what they match on their ingress ``interface`` before
    any policy: they become deny rules ahead of the policies (ids ``acl:N``, ``acl6:N``).

Approximations (never optimistic; each marked on the rule with ``approximation``)
  Every object resolves to a lower and an upper bound of what it matches; they differ only where the
  file does not determine it. An accept policy uses the upper bound, a deny policy the lower bound
  (negation swaps them), so the allowed set only grows.
  * Addresses the file cannot resolve: ``fqdn``, ``geography``, ``dynamic``/SDN, ``mac``, wildcard
    FQDN, an ``interface-subnet`` of an unknown interface, a wildcard of more than
    ``MAX_WILDCARD_INTERVALS`` intervals (its span), names defined nowhere: upper = the whole family,
    lower = nothing (a wide wildcard: its span / nothing). Likewise a service that is neither defined
    nor predefined, proxy-only services, a service's ``fqdn`` or application match; a service's
    ``iprange`` (documented for proxy services) limits it in a deny only. An object setting this module
    does not know keeps the object's upper bound and empties its lower bound.
  * Conditions the file does not decide: a ``schedule`` other than ``always``, ``users``/``groups``/
    ``fsso-groups``, Internet Service Database matches (``internet-service*``), applications and URL
    categories, TOS, reputation, ZTNA tags, a policy keyword this module does not know: an accept policy
    is taken as matching without them, a deny policy as not matching.
  * Destination NAT (``config firewall vip``/``vip6``/``vipgrp``): FortiOS rewrites the destination
    before the policy lookup, and the rewritten traffic does not meet ordinary deny policies (only those
    with ``match-vip``). An accept policy naming a VIP therefore gets, ahead of every rule of the
    firewall, an allow of the VIP's external addresses (``extip``, ``extport`` with ``portforward``) and
    of its mapped addresses (``mappedip``, ``mappedport``, the policy's service), from the policy's
    sources between its interfaces. Both the pre- and post-NAT packets are taken as passing; the
    ``extintf`` and ``src-filter`` limits are not applied. A deny policy's VIPs match nothing here.
  * NAT46/NAT64 policies (``policy46``/``policy64``) and multicast policies: an accept becomes an allow
    of everything between its interfaces (multicast destinations for multicast policies), ahead of the
    rules; NGFW policy-based mode (``config firewall security-policy``): the security policies are not
    read, the firewall policies' accepts are taken as final.
  * A policy naming an interface that is a zone member (FortiOS refuses that): in an accept it is taken
    as the whole zone where the topology names the zone.
  * An intra-zone allow of a zone with one member (FortiOS before 7.4.4 does not apply it) is taken as
    allowing, unless the backup's ``#config-version`` says 7.4.4 or later.
  * Multi-VDOM: a topology interface that belongs to no VDOM the file names is included in the VDOMs'
    accepts with ``any`` and in no deny; with inter-VDOM links, traffic between two VDOMs' interfaces is
    allowed on an approximated rule (the route through the link is not followed).
  * ``srcaddr-negate`` with IPv6 addresses and no ``srcaddr6-negate`` (the meaning changed between
    releases): both readings, united for an accept, intersected for a deny.

Not modelled (outside a forward policy's decision, listed in the RuleSet's notes where the file has
them): source NAT (``nat enable``, IP pools, central SNAT) — the packet is judged with the addresses it
arrives with; security profiles (AV, IPS, web filter) that may block content after the connection is
allowed; DoS policies, local-in policies, explicit/transparent proxy policies; routing.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from ..errors import InputError
from ..model.addresses import ALL_ADDRESSES, ALL_V4, ALL_V6, V6_BASE, IntervalSet
from ..model.rules import (
    FALSE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    TRUE,
    And,
    Expr,
    FieldIn,
    Rule,
    RuleSet,
    SourceRef,
    all_of,
    any_of,
    not_of,
)

MAX_BYTES = 64 << 20  # a backup is a few MB; refuse anything absurd before reading it
MAX_DEPTH = 32  # nested config/edit blocks
MAX_GROUP_DEPTH = 64  # nested address/service/VIP groups
MAX_WILDCARD_INTERVALS = 4096  # a wildcard address wider than this is approximated by its span
MAX_REASON = 300
PROTO_UDPLITE = 136
DEFAULTS_PATH = "(FortiOS factory defaults)"

FAMILY_ALL = {4: ALL_V4, 6: ALL_V6}
DEFAULT_SOURCE_PORTS = IntervalSet([(1, 65535)])  # a port range without ``:SRC``
MULTICAST = IntervalSet([(224 << 24, (240 << 24) - 1), (V6_BASE + (0xFF << 120), V6_BASE + (1 << 128) - 1)])


# --- reading the CLI text ----------------------------------------------------------------------


@dataclass
class _Stmt:
    words: list[str]
    line: int


_LEAD = re.compile(r"[ \t\r\f\v]*")
_TOKEN = re.compile(
    r"""[ \t\r\f\v]+|(\n)|"([^"\\]*(?:\\.[^"\\]*)*)"|'([^'\\]*(?:\\.[^'\\]*)*)'|([^\s"']+)""", re.S)
_ESCAPE = re.compile(r"""\\(["'\\])""")
_VERSION = re.compile(r"#config-version=[^\n]*?-(\d+)\.(\d+)\.(\d+)-")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read the FortiOS configuration: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InputError(path, f"the file is larger than {MAX_BYTES >> 20} MB: not a configuration backup")
    text = data.decode("utf-8", errors="replace")
    return text[1:] if text.startswith("\ufeff") else text  # a BOM from an editor on Windows


def _statements(path: str, text: str) -> list[_Stmt]:
    """Split the text into statements (one per line, but a quoted word may span lines)."""
    out: list[_Stmt] = []
    words: list[str] = []
    pos, line, start, end = 0, 1, 1, len(text)
    while pos < end:
        if not words:
            pos = _LEAD.match(text, pos).end()  # type: ignore[union-attr]
            if pos < end and text[pos] == "#":  # a comment line (the header among them)
                nl = text.find("\n", pos)
                pos = end if nl < 0 else nl
                continue
            start = line
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InputError(path, "unterminated quoted string", line)
        pos = m.end()
        if m.group(1) is not None:
            if words:
                out.append(_Stmt(words, start))
                words = []
            line += 1
        elif m.group(4) is not None:
            words.append(m.group(4))
        elif m.group(2) is not None or m.group(3) is not None:
            raw = m.group(2) if m.group(2) is not None else m.group(3)
            line += raw.count("\n")
            words.append(_ESCAPE.sub(r"\1", raw) if "\\" in raw else raw)
    if words:
        out.append(_Stmt(words, start))
    return out


# --- the configuration tree --------------------------------------------------------------------


@dataclass
class _Field:
    values: list[str]
    line: int


@dataclass(eq=False)
class _Node:
    """A ``config`` block (settings, nested blocks, ordered entries) or an ``edit`` entry."""

    kind: str  # "top" | "config" | "edit"
    name: str
    line: int
    fields: dict[str, _Field] = field(default_factory=dict)
    blocks: dict[str, _Node] = field(default_factory=dict)
    entries: dict[str, _Node] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)

    def ordered(self) -> list[_Node]:
        return [self.entries[k] for k in self.order]

    def get(self, key: str) -> list[str] | None:
        f = self.fields.get(key)
        return None if f is None else f.values

    def line_of(self, key: str) -> int:
        f = self.fields.get(key)
        return f.line if f is not None else self.line

    def lookup(self, name: str) -> _Node | None:
        """An entry by name, following renames (references written before a rename follow it)."""
        for _ in range(len(self.renamed) + 1):
            hit = self.entries.get(name)
            if hit is not None:
                return hit
            if name not in self.renamed:
                return None
            name = self.renamed[name]
        return None


_SERVICE_PROTOCOL_FIELDS = ("protocol-number", "icmptype", "icmpcode", "tcp-portrange", "udp-portrange",
                            "sctp-portrange", "udplite-portrange")


def _service_protocol(node: _Node) -> str:
    values = node.get("protocol")
    return values[0].upper() if values else "TCP/UDP/SCTP"


class _TreeBuilder:
    """Runs the statements the way the CLI would, into one tree."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.top = _Node("top", "", 0)
        self.stack: list[_Node] = [self.top]
        self.paths: list[str] = [""]

    def err(self, message: str, line: int) -> InputError:
        return InputError(self.path, message, line)

    def run(self, stmts: Sequence[_Stmt]) -> _Node:
        for st in stmts:
            self.statement(st)
        if len(self.stack) > 1:
            inner = self.stack[-1]
            what = f"config {self.paths[-1]}" if inner.kind == "config" else f"edit {inner.name}"
            raise self.err(f"'{what}' is not closed (the file ends inside it)", inner.line)
        return self.top

    def statement(self, st: _Stmt) -> None:
        cmd, args, line = st.words[0], st.words[1:], st.line
        cur = self.stack[-1]
        if cmd == "config":
            if not args:
                raise self.err("'config' needs a path", line)
            if len(self.stack) > MAX_DEPTH:
                raise self.err(f"blocks nested more than {MAX_DEPTH} deep", line)
            key = " ".join(args).lower()
            node = cur.blocks.get(key)
            if node is None:
                node = cur.blocks[key] = _Node("config", key, line)
            self.stack.append(node)
            self.paths.append(key)
        elif cmd == "edit":
            if cur.kind != "config":
                raise self.err("'edit' outside a config block", line)
            if len(args) != 1:
                raise self.err(f"'edit' takes one name, got {len(args)}", line)
            name = args[0]
            entry = cur.entries.get(name)
            if entry is None:
                entry = cur.entries[name] = _Node("edit", name, line)
                cur.order.append(name)
            self.stack.append(entry)
            self.paths.append(self.paths[-1])
        elif cmd == "next":
            if cur.kind != "edit":
                raise self.err("'next' without an open 'edit'", line)
            self.pop()
        elif cmd == "end":
            if cur.kind == "edit":  # a CLI script may close the entry and its block with one 'end'
                self.pop()
                cur = self.stack[-1]
            if cur.kind != "config":
                raise self.err("'end' without an open 'config'", line)
            self.pop()
        elif cmd in ("set", "select", "unset", "append", "unselect"):
            self.setting(cur, cmd, args, line)
        elif cmd in ("move", "delete", "purge", "rename", "clone"):
            self.table_command(cur, cmd, args, line)
        else:
            raise self.err(f"unknown command {cmd!r}", line)

    def pop(self) -> None:
        self.stack.pop()
        self.paths.pop()

    def setting(self, cur: _Node, cmd: str, args: list[str], line: int) -> None:
        if cur.kind == "top":
            raise self.err(f"'{cmd}' outside a config block", line)
        if not args:
            raise self.err(f"'{cmd}' needs a keyword", line)
        key, values = args[0].lower(), args[1:]
        in_service = cur.kind == "edit" and self.paths[-1] == "firewall service custom"
        if cmd == "unset":
            if values:
                raise self.err(f"'unset' takes one keyword, got {len(args)} words", line)
            cur.fields.pop(key, None)
            if in_service and key == "icmptype":  # clearing the type clears the code too
                cur.fields.pop("icmpcode", None)
            return
        if cmd in ("set", "select"):
            if in_service and key == "protocol" and values and values[0].upper() != _service_protocol(cur):
                for k in _SERVICE_PROTOCOL_FIELDS:  # a new protocol starts from its defaults
                    cur.fields.pop(k, None)
            cur.fields[key] = _Field(list(values), line)
            return
        if not values:
            raise self.err(f"'{cmd} {key}' needs values", line)
        existing = cur.fields.get(key)
        if cmd == "append":
            if existing is None:
                cur.fields[key] = _Field(list(values), line)
            else:
                existing.values.extend(v for v in values if v not in existing.values)
                existing.line = line
        else:  # unselect
            if existing is not None:
                gone = set(values)
                existing.values = [v for v in existing.values if v not in gone]
                existing.line = line

    def table_command(self, cur: _Node, cmd: str, args: list[str], line: int) -> None:
        if cur.kind != "config":
            raise self.err(f"'{cmd}' outside a config block", line)

        def need(name: str) -> None:
            if name not in cur.entries:
                raise self.err(f"'{cmd}': no entry {name!r} in config {self.paths[-1]}", line)

        if cmd == "purge":
            if args:
                raise self.err("'purge' takes no arguments", line)
            cur.entries.clear()
            cur.order.clear()
        elif cmd == "delete":
            if len(args) != 1:
                raise self.err("'delete' takes one name", line)
            need(args[0])
            del cur.entries[args[0]]
            cur.order.remove(args[0])
        elif cmd == "move":
            if len(args) != 3 or args[1] not in ("before", "after"):
                raise self.err("expected 'move ID before|after ID'", line)
            a, where, b = args
            need(a)
            need(b)
            if a == b:
                return
            cur.order.remove(a)
            at = cur.order.index(b)
            cur.order.insert(at if where == "before" else at + 1, a)
        else:  # rename / clone
            if len(args) != 3 or args[1] != "to":
                raise self.err(f"expected '{cmd} NAME to NAME'", line)
            a, _, b = args
            need(a)
            if b in cur.entries:
                raise self.err(f"'{cmd}': an entry {b!r} already exists", line)
            if cmd == "rename":
                entry = cur.entries.pop(a)
                entry.name = b
                cur.entries[b] = entry
                cur.order[cur.order.index(a)] = b
                cur.renamed[a] = b
            else:
                clone = copy.deepcopy(cur.entries[a])
                clone.name, clone.line = b, line
                cur.entries[b] = clone
                cur.order.append(b)


def _tree(path: str, text: str) -> _Node:
    stmts = _statements(path, text)
    if not stmts:
        raise InputError(path, "no configuration found (the file holds no 'config' block)")
    return _TreeBuilder(path).run(stmts)


# --- FortiOS's predefined objects ---------------------------------------------------------------

# FortiOS's factory definitions (``config firewall service custom`` and friends of a fresh unit; the
# same in 6.0-7.4), used for names a backup references without defining them.
_DEFAULTS_TEXT = """
config firewall address
    edit "all"
    next
    edit "none"
        set subnet 0.0.0.0 255.255.255.255
    next
    edit "SSLVPN_TUNNEL_ADDR1"
        set type iprange
        set start-ip 10.212.134.200
        set end-ip 10.212.134.210
    next
end
config firewall address6
    edit "all"
    next
    edit "none"
        set ip6 ::/128
    next
    edit "SSLVPN_TUNNEL_IPv6_ADDR1"
        set ip6 fdff:ffff::/120
    next
end
config firewall schedule recurring
    edit "always"
        set day sunday monday tuesday wednesday thursday friday saturday
    next
end
config firewall service custom
    edit "ALL"
        set protocol IP
    next
    edit "ALL_TCP"
        set tcp-portrange 1-65535
    next
    edit "ALL_UDP"
        set udp-portrange 1-65535
    next
    edit "ALL_ICMP"
        set protocol ICMP
    next
    edit "ALL_ICMP6"
        set protocol ICMP6
    next
    edit "GRE"
        set protocol IP
        set protocol-number 47
    next
    edit "AH"
        set protocol IP
        set protocol-number 51
    next
    edit "ESP"
        set protocol IP
        set protocol-number 50
    next
    edit "AOL"
        set tcp-portrange 5190-5194
    next
    edit "BGP"
        set tcp-portrange 179
    next
    edit "DHCP"
        set udp-portrange 67-68
    next
    edit "DNS"
        set tcp-portrange 53
        set udp-portrange 53
    next
    edit "FINGER"
        set tcp-portrange 79
    next
    edit "FTP"
        set tcp-portrange 21
    next
    edit "FTP_GET"
        set tcp-portrange 21
    next
    edit "FTP_PUT"
        set tcp-portrange 21
    next
    edit "GOPHER"
        set tcp-portrange 70
    next
    edit "H323"
        set tcp-portrange 1720 1503
        set udp-portrange 1719
    next
    edit "HTTP"
        set tcp-portrange 80
    next
    edit "HTTPS"
        set tcp-portrange 443
    next
    edit "IKE"
        set udp-portrange 500 4500
    next
    edit "IMAP"
        set tcp-portrange 143
    next
    edit "IMAPS"
        set tcp-portrange 993
    next
    edit "Internet-Locator-Service"
        set tcp-portrange 389
    next
    edit "IRC"
        set tcp-portrange 6660-6669
    next
    edit "L2TP"
        set tcp-portrange 1701
        set udp-portrange 1701
    next
    edit "LDAP"
        set tcp-portrange 389
    next
    edit "NetMeeting"
        set tcp-portrange 1720
    next
    edit "NFS"
        set tcp-portrange 111 2049
        set udp-portrange 111 2049
    next
    edit "NNTP"
        set tcp-portrange 119
    next
    edit "NTP"
        set tcp-portrange 123
        set udp-portrange 123
    next
    edit "OSPF"
        set protocol IP
        set protocol-number 89
    next
    edit "PC-Anywhere"
        set tcp-portrange 5631
        set udp-portrange 5632
    next
    edit "PING"
        set protocol ICMP
        set icmptype 8
    next
    edit "TIMESTAMP"
        set protocol ICMP
        set icmptype 13
    next
    edit "INFO_REQUEST"
        set protocol ICMP
        set icmptype 15
    next
    edit "INFO_ADDRESS"
        set protocol ICMP
        set icmptype 17
    next
    edit "ONC-RPC"
        set tcp-portrange 111
        set udp-portrange 111
    next
    edit "DCE-RPC"
        set tcp-portrange 135
        set udp-portrange 135
    next
    edit "POP3"
        set tcp-portrange 110
    next
    edit "POP3S"
        set tcp-portrange 995
    next
    edit "PPTP"
        set tcp-portrange 1723
    next
    edit "QUAKE"
        set udp-portrange 26000 27000 27910 27960
    next
    edit "RAUDIO"
        set udp-portrange 7070
    next
    edit "REXEC"
        set tcp-portrange 512
    next
    edit "RIP"
        set udp-portrange 520
    next
    edit "RLOGIN"
        set tcp-portrange 513:512-1023
    next
    edit "RSH"
        set tcp-portrange 514:512-1023
    next
    edit "SCCP"
        set tcp-portrange 2000
    next
    edit "SIP"
        set tcp-portrange 5060
        set udp-portrange 5060
    next
    edit "SIP-MSNmessenger"
        set tcp-portrange 1863
    next
    edit "SAMBA"
        set tcp-portrange 139
    next
    edit "SMTP"
        set tcp-portrange 25
    next
    edit "SMTPS"
        set tcp-portrange 465
    next
    edit "SNMP"
        set tcp-portrange 161-162
        set udp-portrange 161-162
    next
    edit "SSH"
        set tcp-portrange 22
    next
    edit "SYSLOG"
        set udp-portrange 514
    next
    edit "TALK"
        set udp-portrange 517-518
    next
    edit "TELNET"
        set tcp-portrange 23
    next
    edit "TFTP"
        set udp-portrange 69
    next
    edit "MGCP"
        set udp-portrange 2427 2727
    next
    edit "UUCP"
        set tcp-portrange 540
    next
    edit "VDOLIVE"
        set tcp-portrange 7000-7010
    next
    edit "WAIS"
        set tcp-portrange 210
    next
    edit "WINFRAME"
        set tcp-portrange 1494 2598
    next
    edit "X-WINDOWS"
        set tcp-portrange 6000-6063
    next
    edit "PING6"
        set protocol ICMP6
        set icmptype 128
    next
    edit "MS-SQL"
        set tcp-portrange 1433 1434
    next
    edit "MYSQL"
        set tcp-portrange 3306
    next
    edit "RDP"
        set tcp-portrange 3389
    next
    edit "VNC"
        set tcp-portrange 5900
    next
    edit "DHCP6"
        set udp-portrange 546 547
    next
    edit "SQUID"
        set tcp-portrange 3128
    next
    edit "SOCKS"
        set tcp-portrange 1080
        set udp-portrange 1080
    next
    edit "WINS"
        set tcp-portrange 1512
        set udp-portrange 1512
    next
    edit "RADIUS"
        set udp-portrange 1812 1813
    next
    edit "RADIUS-OLD"
        set udp-portrange 1645 1646
    next
    edit "CVSPSERVER"
        set tcp-portrange 2401
        set udp-portrange 2401
    next
    edit "AFS3"
        set tcp-portrange 7000-7009
        set udp-portrange 7000-7009
    next
    edit "TRACEROUTE"
        set udp-portrange 33434-33535
    next
    edit "RTSP"
        set tcp-portrange 554 7070 8554
        set udp-portrange 554
    next
    edit "MMS"
        set tcp-portrange 1755
        set udp-portrange 1024-5000
    next
    edit "KERBEROS"
        set tcp-portrange 88 464
        set udp-portrange 88 464
    next
    edit "LDAP_UDP"
        set udp-portrange 389
    next
    edit "SMB"
        set tcp-portrange 445
    next
    edit "NONE"
        set tcp-portrange 0
    next
    edit "webproxy"
        set proxy enable
        set protocol ALL
        set tcp-portrange 0-65535:0-65535
    next
end
config firewall service group
    edit "Email Access"
        set member "DNS" "IMAP" "IMAPS" "POP3" "POP3S" "SMTP" "SMTPS"
    next
    edit "Web Access"
        set member "DNS" "HTTP" "HTTPS"
    next
    edit "Windows AD"
        set member "DCE-RPC" "DNS" "KERBEROS" "LDAP" "LDAP_UDP" "SAMBA" "SMB"
    next
    edit "Exchange Server"
        set member "DCE-RPC" "DNS" "HTTPS"
    next
end
"""


@cache
def _defaults() -> _Node:
    return _tree(DEFAULTS_PATH, _DEFAULTS_TEXT)


# --- value parsing -----------------------------------------------------------------------------


def _v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _v4_mask(text: str) -> int:
    """A netmask (``255.255.255.0``) or a prefix length (``24``) as a prefix length."""
    if text.isdigit() and int(text) <= 32:
        return int(text)
    mask = _v4(text)
    length = 32 - (((~mask) & 0xFFFFFFFF).bit_length())
    if mask != ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF):
        raise ValueError(f"{text} is not a contiguous netmask")
    return length


def _v4_network(values: list[str]) -> IntervalSet:
    """``a.b.c.d m.m.m.m``, ``a.b.c.d/len`` or ``a.b.c.d/m.m.m.m``; host bits are masked off as FortiOS does."""
    if len(values) == 2:
        addr, length = _v4(values[0]), _v4_mask(values[1])
    elif len(values) == 1 and "/" in values[0]:
        a, _, m = values[0].partition("/")
        addr, length = _v4(a), _v4_mask(m)
    elif len(values) == 1:
        addr, length = _v4(values[0]), 32
    else:
        raise ValueError("expected an address and a netmask")
    size = 1 << (32 - length)
    lo = addr & ~(size - 1) & 0xFFFFFFFF
    return IntervalSet([(lo, lo + size - 1)])


def _v6_network(text: str) -> IntervalSet:
    net = ipaddress.IPv6Network(text, strict=False)
    lo = V6_BASE + int(net.network_address)
    return IntervalSet([(lo, lo + net.num_addresses - 1)])


def _wildcard(addr: int, mask: int) -> IntervalSet | None:
    """``{a : a & mask == addr & mask}`` as intervals, or None when it has too many."""
    free = ~mask & 0xFFFFFFFF
    low_free = (mask & -mask) - 1 if mask else 0xFFFFFFFF  # free bits below the lowest mask bit
    high_free = free & ~low_free
    count = 1 << bin(high_free).count("1")
    if count > MAX_WILDCARD_INTERVALS:
        return None
    base = addr & mask
    bits = [1 << i for i in range(32) if high_free >> i & 1]
    out = []
    for n in range(count):
        lo = base
        for i, bit in enumerate(bits):
            if n >> i & 1:
                lo |= bit
        out.append((lo, lo + low_free))
    return IntervalSet(out)


def _port_range(text: str) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    if not lo_s.isdigit() or (dash and not hi_s.isdigit()):
        raise ValueError(f"cannot read port range {text!r}")
    lo = int(lo_s)
    hi = int(hi_s) if dash else lo
    if hi > 65535:
        raise ValueError(f"port {hi} out of range (0-65535)")
    if lo > hi:
        raise ValueError(f"invalid port range {text!r} (low above high)")
    return lo, hi


def _uint(text: str, top: int, what: str) -> int:
    if not text.isdigit() or int(text) > top:
        raise ValueError(f"{what} {text!r} is not a number from 0 to {top}")
    return int(text)


# --- match bounds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Set:
    """What an address object matches: at least ``lower``, at most ``upper`` (equal unless ``reasons``)."""

    lower: IntervalSet
    upper: IntervalSet
    reasons: tuple[str, ...] = ()

    @staticmethod
    def exact(values: IntervalSet) -> _Set:
        return _Set(values, values)

    @staticmethod
    def unknown(family: int, reason: str) -> _Set:
        return _Set(IntervalSet(), FAMILY_ALL[family], (reason,))


def _union(sets: Sequence[_Set]) -> _Set:
    if len(sets) == 1:
        return sets[0]
    lower = IntervalSet([iv for s in sets for iv in s.lower])
    upper = IntervalSet([iv for s in sets for iv in s.upper])
    return _Set(lower, upper, _reasons(r for s in sets for r in s.reasons))


def _negate(s: _Set, family: int) -> _Set:
    whole = FAMILY_ALL[family]
    return _Set(whole - s.upper, whole - s.lower, s.reasons)


def _reasons(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class _Atom:
    """One service term: a protocol set with ports, ICMP type/code, a destination range (None: any)."""

    proto: IntervalSet | None
    sport: IntervalSet | None = None
    dport: IntervalSet | None = None
    itype: IntervalSet | None = None
    icode: IntervalSet | None = None
    dst: IntervalSet | None = None

    def expr(self) -> Expr:
        parts = [FieldIn(name, values) for name, values in (
            ("proto", self.proto), ("sport", self.sport), ("dport", self.dport), ("icmp_type", self.itype),
            ("icmp_code", self.icode), ("dst", self.dst)) if values is not None]
        return all_of(*parts)


ANY_ATOM = _Atom(None)


@dataclass(frozen=True)
class _Svc:
    """What a service matches: at least the ``lower`` atoms, at most the ``upper`` ones."""

    lower: tuple[_Atom, ...]
    upper: tuple[_Atom, ...]
    reasons: tuple[str, ...] = ()

    @staticmethod
    def unknown(reason: str) -> _Svc:
        return _Svc((), (ANY_ATOM,), (reason,))


def _atoms_expr(atoms: Sequence[_Atom]) -> Expr:
    """The union of atoms, those differing only in destination ports merged into one term."""
    if ANY_ATOM in atoms:
        return TRUE
    merged: dict[tuple[object, ...], IntervalSet | None] = {}
    for a in atoms:
        key = (a.proto, a.sport, a.itype, a.icode, a.dst)
        if key in merged:
            old = merged[key]
            merged[key] = None if old is None or a.dport is None else old | a.dport
        else:
            merged[key] = a.dport
    return any_of(*(_Atom(k[0], k[1], d, k[2], k[3], k[4]).expr()  # type: ignore[arg-type]
                    for k, d in merged.items()))


@dataclass(frozen=True)
class _Vip:
    """A destination NAT object: its external and (an upper bound of its) mapped side."""

    name: str
    ext: IntervalSet
    mapped: IntervalSet
    protos: IntervalSet | None  # with portforward: the forwarded protocol
    extport: IntervalSet | None
    mappedport: IntervalSet | None
    reasons: tuple[str, ...]

    def expr(self, service: Expr) -> Expr:
        """Both sides of the translation. The policy's service applies to the translated packet: on the
        external side too when the ports are not translated, not at all there when they are."""
        if self.protos is None:
            return _and(any_of(FieldIn("dst", self.ext), FieldIn("dst", self.mapped)), service)
        ext = _and(FieldIn("dst", self.ext), *self.port_parts(self.extport))
        mapped = _and(FieldIn("dst", self.mapped), *self.port_parts(self.mappedport), service)
        return any_of(ext, mapped)

    def port_parts(self, ports: IntervalSet | None) -> list[Expr]:
        parts: list[Expr] = []
        if self.protos is not None:
            parts.append(FieldIn("proto", self.protos))
        if ports is not None:
            parts.append(FieldIn("dport", ports))
        return parts


def _nonempty(name: str, values: IntervalSet) -> Expr:
    return FieldIn(name, values) if values else FALSE


def _and(*parts: Expr) -> Expr:
    """A conjunction with nested conjunctions spliced in and conditions on one field intersected:
    one flat term reads (and compiles) best."""
    flat: list[Expr] = []
    fields: dict[str, int] = {}
    for p in parts:
        for q in p.parts if isinstance(p, And) else (p,):
            if isinstance(q, FieldIn) and q.field in fields:
                at = fields[q.field]
                both = flat[at].values & q.values  # type: ignore[union-attr]
                if not both:
                    return FALSE
                flat[at] = FieldIn(q.field, both)
                continue
            if isinstance(q, FieldIn):
                fields[q.field] = len(flat)
            flat.append(q)
    return all_of(*flat)


# --- keywords ----------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Settings of a policy that do not change which packets it matches when a connection starts: names,
# logging, NAT, security profiles (they may block content later, not the initiation), shaping, offload.
_POLICY_NEUTRAL = _words("""
name uuid comments comment label global-label logtraffic logtraffic-start log-http-transaction capture-packet
nat nat46 nat64 ippool poolname poolname6 natip fixedport permit-any-host permit-stun-host port-preserve
port-random central-nat utm-status inspection-mode profile-type profile-group profile-protocol-options
ssl-ssh-profile av-profile webfilter-profile dnsfilter-profile emailfilter-profile spamfilter-profile dlp-sensor
dlp-profile file-filter-profile ips-sensor application-list voip-profile sctp-filter-profile icap-profile
cifs-profile waf-profile ssh-filter-profile videofilter-profile casb-profile virtual-patch-profile
diameter-filter-profile ips-voip-filter traffic-shaper traffic-shaper-reverse per-ip-shaper tcp-mss-sender
tcp-mss-receiver diffserv-forward diffserv-reverse diffservcode-forward diffservcode-rev diffserv-copy
auto-asic-offload np-acceleration wccp session-ttl vlan-cos-fwd vlan-cos-rev timeout-send-rst send-deny-packet
block-notification match-vip match-vip-only firewall-session-dirty anti-replay tcp-session-without-syn
schedule-timeout rtp-nat rtp-addr dsri delay-tcp-npu-session passive-wan-health-measurement fec
identity-based-route custom-log-fields replacemsg-override-group vpntunnel inbound outbound natinbound
natoutbound redirect-url webproxy-forward-server webproxy-profile webcache webcache-https http-policy-redirect
ssh-policy-redirect ztna-policy-redirect decrypted-traffic-mirror geoip-anycast geoip-match reputation-direction
reputation-direction6 ssl-mirror ssl-mirror-intf learning-mode auth-path auth-cert auth-redirect-addr disclaimer
email-collect fsso-agent-for-ntlm ntlm ntlm-guest ntlm-enabled-browsers captive-portal-exempt dynamic-shaping
tos tos-negate policy-expiry-date policy-expiry-date-utc pcp-outbound pcp-inbound pcp-poolname cgn-eif
cgn-eim cgn-log-server-grp cgn-resource-quota cgn-session-quota cgn-sw-eif-ctrl ztna-tags-match-logic
ztna-device-ownership ips-sensor-status ztna-ems-tag-negate internet-service-fortiguard status action
srcintf dstintf srcaddr dstaddr srcaddr4 dstaddr4 srcaddr6 dstaddr6 srcaddr-negate dstaddr-negate
srcaddr6-negate dstaddr6-negate service service-negate schedule policyid uuid-idx rsso fsso
""")

# Settings that limit a policy to packets the file cannot tell apart: an accept is taken as matching
# without them, a deny as not matching.
_POLICY_LIST_LIMITS = {
    "users": "the user's identity (users) is not modelled",
    "groups": "the user's identity (groups) is not modelled",
    "fsso-groups": "the user's identity (FSSO groups) is not modelled",
    "devices": "device identification is not modelled",
    "application": "application control decides after the first packets",
    "app-category": "application control decides after the first packets",
    "app-group": "application control decides after the first packets",
    "url-category": "URL categories are decided after the first packets",
    "src-vendor-mac": "MAC vendors are not modelled",
    "vlan-filter": "VLAN tags are not modelled",
    "network-service-dynamic": "dynamic (SDN) services are not in the file",
    "network-service-src-dynamic": "dynamic (SDN) services are not in the file",
    "ztna-ems-tag": "ZTNA tags are not in the file",
    "ztna-ems-tag-secondary": "ZTNA tags are not in the file",
    "ztna-geo-tag": "ZTNA tags are not in the file",
    "sgt": "security group tags are not modelled",
}
_POLICY_ENABLE_LIMITS = {
    "ztna-status": "ZTNA tags are not in the file",
    "policy-expiry": "the policy's expiry date depends on the time",
    "sgt-check": "security group tags are not modelled",
    "radius-mac-auth-bypass": "MAC authentication is not modelled",
}
_ISDB_PREFIXES = ("internet-service6-src", "internet-service-src", "internet-service6", "internet-service")

_ADDRESS_KNOWN = _words("""
uuid comment color associated-interface allow-routing fabric-object visibility type subnet start-ip end-ip
wildcard fqdn country sub-type sdn interface cache-ttl obj-type dirty node-ip-only clearpass-spt fsso-group
obj-id macaddr start-mac end-mac sdn-addr-type epg-name tenant organization filter policy-group global-object
route-tag hw-vendor hw-model os sw-version obj-tag tag-detection-level tag-type wildcard-fqdn ip6 template
host host-type sdn-tag name passive-fqdn-learning
""")
_GROUP_KNOWN = _words("""
uuid comment color visibility proxy fabric-object category allow-routing type exclude member exclude-member name
""")
_SERVICE_KNOWN = _words("""
uuid category comment color visibility proxy helper check-reset-range session-ttl tcp-halfclose-timer
tcp-halfopen-timer tcp-timewait-timer tcp-rst-timer udp-idle-timer fabric-object name protocol protocol-number
icmptype icmpcode tcp-portrange udp-portrange sctp-portrange udplite-portrange iprange fqdn app-service-type
app-category application
""")

# Tables read elsewhere or that cannot widen what a forward policy lets through.
_FIREWALL_READ = frozenset({
    "firewall policy", "firewall policy6", "firewall consolidated policy", "firewall address",
    "firewall address6", "firewall addrgrp", "firewall addrgrp6", "firewall service custom",
    "firewall service group", "firewall vip", "firewall vip6", "firewall vipgrp", "firewall vipgrp6",
    "firewall acl", "firewall acl6", "firewall policy46", "firewall policy64", "firewall multicast-policy",
    "firewall multicast-policy6", "firewall security-policy", "firewall schedule recurring",
    "firewall schedule onetime", "firewall schedule group",
})
_FIREWALL_NOTES = {
    "firewall dos-policy": "DoS policies (anomaly thresholds) may drop traffic; not modelled",
    "firewall dos-policy6": "DoS policies (anomaly thresholds) may drop traffic; not modelled",
    "firewall interface-policy": "interface policies (IPS/AV inspection) may drop content; not modelled",
    "firewall interface-policy6": "interface policies (IPS/AV inspection) may drop content; not modelled",
    "firewall ttl-policy": "TTL policies may drop traffic; not modelled",
    "firewall local-in-policy": "local-in policies concern traffic to the FortiGate itself",
    "firewall local-in-policy6": "local-in policies concern traffic to the FortiGate itself",
    "firewall proxy-policy": "proxy policies (explicit/transparent proxy) are not modelled",
    "firewall central-snat-map": "central source NAT is not followed",
    "firewall shaping-policy": "traffic shaping does not decide",
}


# --- the importer ------------------------------------------------------------------------------


@dataclass
class _Scope:
    """One VDOM's tables (or the whole file's, without VDOMs)."""

    name: str
    blocks: dict[str, _Node]
    shared: dict[str, _Node]  # ``config global`` (system interface, vdom-links)

    def table(self, path: str) -> _Node | None:
        return self.blocks.get(path) or self.shared.get(path)


@dataclass
class _Zone:
    name: str
    members: list[str]
    intrazone: str
    line: int
    description: str | None


@dataclass
class _Ifaces:
    """The topology interfaces a ``srcintf``/``dstintf`` list selects: exactly, and at most."""

    exact: frozenset[str]
    upper: frozenset[str]
    reasons: tuple[str, ...] = ()


class _Importer:
    def __init__(self, path: str, interfaces: Sequence[str]) -> None:
        self.path = path
        self.interfaces = tuple(dict.fromkeys(interfaces))
        self.topo = frozenset(self.interfaces)
        self.notes: list[str] = []
        self.version: tuple[int, int, int] | None = None

    def err(self, message: str, line: int | None) -> InputError:
        return InputError(self.path, message, line)

    # -- the file's layout --

    def scopes(self, top: _Node) -> list[_Scope]:
        vdoms = top.blocks.get("vdom")
        if vdoms is not None and any(e.blocks for e in vdoms.entries.values()):
            glob = top.blocks.get("global")
            shared = glob.blocks if glob is not None else {k: v for k, v in top.blocks.items() if k != "vdom"}
            return [_Scope(e.name, e.blocks, shared) for e in vdoms.ordered()]
        return [_Scope("", top.blocks, top.blocks)]

    def run(self) -> RuleSet:
        text = _read(self.path)
        m = _VERSION.search(text[:4096])
        if m:
            self.version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        top = _tree(self.path, text)
        scopes = self.scopes(top)
        self.multi = len(scopes) > 1
        self.iface_vdom: dict[str, str] = {}
        ifaces = scopes[0].shared.get("system interface")
        for entry in ifaces.ordered() if ifaces is not None else []:
            vdom = entry.get("vdom")
            if vdom:
                self.iface_vdom[entry.name] = vdom[0]
        readers = [_ScopeReader(self, s) for s in scopes]
        owned_all: set[str] = set()
        for r in readers:
            owned_all |= r.owned
        self.unknown = self.topo - owned_all if self.multi else frozenset()
        if self.multi and self.unknown:
            self.notes.append("topology interfaces in no VDOM of the file: " + ", ".join(sorted(self.unknown)))
        hoisted: list[Rule] = []
        body: list[Rule] = []
        for r in readers:
            first, rest = r.rules()
            hoisted.extend(first)
            body.extend(rest)
        body.extend(self.inter_vdom(scopes, readers))
        return RuleSet(tuple(hoisted + body), "deny", tuple(dict.fromkeys(self.notes)))

    def inter_vdom(self, scopes: list[_Scope], readers: list[_ScopeReader]) -> list[Rule]:
        if not self.multi:
            return []
        shared = scopes[0].shared
        links = shared.get("system vdom-link")
        ifaces = shared.get("system interface")
        linked = bool(links and links.entries) or bool(ifaces and any(
            (e.get("type") or [""])[0] == "vdom-link" or re.fullmatch(r"npu\d+_vlink\d+", e.name)
            for e in ifaces.entries.values()))
        if not linked:
            return []
        out: list[Rule] = []
        line = links.line if links and links.entries else (ifaces.line if ifaces else None)
        for a in readers:
            for b in readers:
                if a is b or not a.owned or not b.owned:
                    continue
                out.append(Rule(
                    f"(inter-VDOM {a.scope.name}->{b.scope.name})", "allow", TRUE, frozenset(a.owned),
                    frozenset(b.owned), SourceRef(self.path, line),
                    approximation=f"traffic from VDOM {a.scope.name} to VDOM {b.scope.name} may cross an "
                                  "inter-VDOM link; the route through it is not followed: taken as allowed"))
        return out


class _ScopeReader:
    """Objects and policies of one VDOM."""

    def __init__(self, imp: _Importer, scope: _Scope) -> None:
        self.imp = imp
        self.path = imp.path
        self.scope = scope
        self.defaults = _defaults()
        self.zones = self.read_zones()
        self.member_of: dict[str, str] = {m: z.name for z in self.zones.values() for m in z.members}
        if imp.multi:
            names = {n for n, v in imp.iface_vdom.items() if v == scope.name}
            names |= set(self.zones)
            for z in self.zones.values():
                names |= set(z.members)
            self.owned = frozenset(imp.topo & names)
        else:
            self.owned = imp.topo
        self.addr_memo: dict[tuple[int, str], _Set] = {}
        self.vip_memo: dict[tuple[int, str], list[_Vip]] = {}
        self.svc_memo: dict[str, _Svc] = {}
        self.sched_memo: dict[str, tuple[str, ...]] = {}

    def err(self, message: str, line: int | None) -> InputError:
        return InputError(self.path, message, line)

    def table(self, path: str) -> _Node | None:
        return self.scope.table(path)

    def rule_id(self, raw: str) -> str:
        return f"{self.scope.name}:{raw}" if self.imp.multi else raw

    # -- zones and interfaces --

    def read_zones(self) -> dict[str, _Zone]:
        zones: dict[str, _Zone] = {}
        owner: dict[str, str] = {}
        table = self.scope.blocks.get("system zone")
        for entry in table.ordered() if table is not None else []:
            members = list(dict.fromkeys(entry.get("interface") or []))
            intrazone = (entry.get("intrazone") or ["deny"])[0].lower()
            if intrazone not in ("allow", "deny"):
                raise self.err(f"zone {entry.name}: intrazone must be allow or deny, not {intrazone!r}",
                               entry.line_of("intrazone"))
            for m in members:
                if m in owner:
                    raise self.err(f"interface {m} is in zone {owner[m]} and zone {entry.name}",
                                   entry.line_of("interface"))
                owner[m] = entry.name
            desc = entry.get("description")
            zones[entry.name] = _Zone(entry.name, members, intrazone, entry.line, desc[0] if desc else None)
        for path, default_zone in (("system sdwan", None), ("system virtual-wan-link", "virtual-wan-link")):
            sdwan = self.scope.blocks.get(path)
            if sdwan is None:
                continue
            sd_zones = sdwan.blocks.get("zone")
            for entry in sd_zones.ordered() if sd_zones is not None else []:
                zones.setdefault(entry.name, _Zone(entry.name, [], "deny", entry.line, None))
            members = sdwan.blocks.get("members")
            for entry in members.ordered() if members is not None else []:
                iface = entry.get("interface")
                zone = (entry.get("zone") or [default_zone or "virtual-wan-link"])[0]
                if iface:
                    z = zones.setdefault(zone, _Zone(zone, [], "deny", entry.line, None))
                    z.members.append(iface[0])
        return zones

    def ifaces(self, names: list[str]) -> _Ifaces:
        owned = self.owned
        if "any" in names:
            upper = owned | self.imp.unknown
            reasons = ((f"interfaces {', '.join(sorted(self.imp.unknown))} belong to no VDOM of the file: "
                        f"taken as part of VDOM {self.scope.name}'s 'any'"),) if self.imp.unknown else ()
            return _Ifaces(owned, upper, reasons)
        exact: set[str] = set()
        extra: set[str] = set()
        reasons: list[str] = []
        for n in names:
            if n in owned:
                exact.add(n)
            zone = self.zones.get(n)
            if zone is not None:
                exact.update(m for m in zone.members if m in owned)
            parent = self.member_of.get(n)
            if parent is not None and parent in owned:
                extra.add(parent)
                reasons.append(f"interface {n} is a member of zone {parent} (FortiOS refuses policies on a "
                               f"zone member): taken as all of {parent} in an accept, none of it in a deny")
        return _Ifaces(frozenset(exact), frozenset(exact | extra), tuple(reasons))

    def iface_set(self, names: frozenset[str]) -> frozenset[str] | None:
        return None if names == self.imp.topo else names

    # -- addresses --

    def addr_tables(self, family: int) -> tuple[str, str]:
        return ("firewall address", "firewall addrgrp") if family == 4 else ("firewall address6", "firewall addrgrp6")

    def find(self, paths: Sequence[str], name: str) -> tuple[str, _Node] | None:
        for source in (self.scope, None):
            for p in paths:
                table = self.table(p) if source is not None else self.defaults.blocks.get(p)
                if table is not None:
                    hit = table.lookup(name)
                    if hit is not None:
                        return p, hit
        return None

    def address(self, name: str, family: int, line: int, depth: int = 0, seen: frozenset[str] = frozenset()) -> _Set:
        key = (family, name)
        hit = self.addr_memo.get(key)
        if hit is not None:
            return hit
        if name in seen:
            raise self.err(f"address group loop through {name!r}", line)
        if depth > MAX_GROUP_DEPTH:
            raise self.err(f"address groups nested more than {MAX_GROUP_DEPTH} deep", line)
        kind = "address" if family == 4 else "address6"
        found = self.find(self.addr_tables(family), name)
        if found is None:
            other = self.find(self.addr_tables(10 - family), name)
            why = (f"{kind} {name!r} is an IPv{10 - family} object" if other is not None
                   else f"{kind} {name!r} is defined neither in the file nor by FortiOS")
            result = _Set.unknown(family, f"{why}: taken as any IPv{family} address in an accept, none in a deny")
        elif found[0].endswith("addrgrp") or found[0].endswith("addrgrp6"):
            result = self.group(found[1], family, depth, seen | {name})
        else:
            result = self.address_entry(found[1], family)
        self.addr_memo[key] = result
        return result

    def group(self, node: _Node, family: int, depth: int, seen: frozenset[str]) -> _Set:
        members = node.get("member") or []
        parts = [self.address(m, family, node.line_of("member"), depth + 1, seen) for m in members]
        result = _union(parts) if parts else _Set.exact(IntervalSet())
        if (node.get("exclude") or ["disable"])[0].lower() == "enable":
            excluded = node.get("exclude-member") or []
            line = node.line_of("exclude-member")
            ex = [self.address(m, family, line, depth + 1, seen) for m in excluded]
            if ex:
                minus = _union(ex)
                result = _Set(result.lower - minus.upper, result.upper - minus.lower,
                              _reasons(result.reasons + minus.reasons))
        reasons = self.unknown_keys(node, _GROUP_KNOWN, "address group")
        category = (node.get("category") or ["default"])[0].lower()
        if category != "default":
            reasons += (f"address group {node.name} is a {category} group: its members are not in the file",)
            return _Set(IntervalSet(), FAMILY_ALL[family], result.reasons + reasons)
        if reasons:
            return _Set(IntervalSet(), result.upper, result.reasons + reasons)
        return result

    def unknown_keys(self, node: _Node, known: frozenset[str], what: str) -> tuple[str, ...]:
        return tuple(f"{what} {node.name}: keyword {k!r} (line {f.line}) is not modelled"
                     for k, f in node.fields.items() if k not in known)

    def address_entry(self, node: _Node, family: int) -> _Set:
        kind = (node.get("type") or ["ipmask" if family == 4 else "ipprefix"])[0].lower()
        name = node.name
        try:
            result = self.address_values(node, family, kind)
        except ValueError as exc:
            raise self.err(f"address {name}: {exc}", node.line) from None
        extra = self.unknown_keys(node, _ADDRESS_KNOWN, "address")
        if extra:
            return _Set(IntervalSet(), result.upper, result.reasons + extra)
        return result

    def address_values(self, node: _Node, family: int, kind: str) -> _Set:
        name = node.name
        if family == 4 and kind == "ipmask":
            return _Set.exact(_v4_network(node.get("subnet") or ["0.0.0.0", "0.0.0.0"]))
        if family == 6 and kind == "ipprefix":
            values = node.get("ip6") or ["::/0"]
            if len(values) != 1:
                raise ValueError("ip6 takes one prefix")
            return _Set.exact(_v6_network(values[0]))
        if kind == "iprange":
            start = (node.get("start-ip") or ["0.0.0.0" if family == 4 else "::"])[0]
            end = (node.get("end-ip") or ["0.0.0.0" if family == 4 else "::"])[0]
            if family == 4:
                lo, hi = _v4(start), _v4(end)
            else:
                lo = V6_BASE + int(ipaddress.IPv6Address(start))
                hi = V6_BASE + int(ipaddress.IPv6Address(end))
            if lo > hi:
                raise ValueError(f"start-ip {start} is above end-ip {end}")
            return _Set.exact(IntervalSet([(lo, hi)]))
        if family == 4 and kind == "wildcard":
            values = node.get("wildcard") or ["0.0.0.0", "0.0.0.0"]
            if len(values) != 2:
                raise ValueError("wildcard takes an address and a mask")
            addr, mask = _v4(values[0]), _v4(values[1])
            exact = _wildcard(addr, mask)
            if exact is not None:
                return _Set.exact(exact)
            free = ~mask & 0xFFFFFFFF
            span = IntervalSet([(addr & mask, (addr & mask) | free)])
            return _Set(IntervalSet(), span, (f"wildcard address {name} ({values[0]} {values[1]}) has more than "
                                              f"{MAX_WILDCARD_INTERVALS} intervals: taken as its span",))
        if kind == "interface-subnet":
            iface = (node.get("interface") or [""])[0]
            sys_if = self.table("system interface")
            entry = sys_if.lookup(iface) if sys_if is not None and iface else None
            ip = entry.get("ip") if entry is not None else None
            if ip and family == 4:
                try:
                    return _Set.exact(_v4_network(ip))
                except ValueError:
                    pass
            if node.get("subnet") and family == 4:
                return _Set.exact(_v4_network(node.get("subnet")))  # type: ignore[arg-type]
            return _Set.unknown(family, f"address {name} is the subnet of interface {iface or '?'}, "
                                        "whose address is not in the file")
        detail = {
            "fqdn": lambda: f"the FQDN {(node.get('fqdn') or ['?'])[0]} resolves at run time",
            "wildcard-fqdn": lambda: f"the FQDN {(node.get('wildcard-fqdn') or ['?'])[0]} resolves at run time",
            "geography": lambda: f"the country {(node.get('country') or ['?'])[0]}'s addresses are not in the file",
            "dynamic": lambda: "dynamic (SDN/FSSO/EMS) addresses are not in the file",
            "mac": lambda: "MAC addresses are not modelled",
        }.get(kind, lambda: f"address type {kind!r} is not modelled")()
        return _Set.unknown(family, f"address {name}: {detail}: taken as any IPv{family} address in an "
                                    "accept, none in a deny")

    def addresses(self, names: list[str], family: int, line: int) -> _Set:
        if not names:
            return _Set.exact(IntervalSet())
        return _union([self.address(n, family, line) for n in names])

    # -- VIPs --

    def vip_tables(self, family: int) -> tuple[str, str]:
        return ("firewall vip", "firewall vipgrp") if family == 4 else ("firewall vip6", "firewall vipgrp6")

    def vips(self, name: str, family: int, line: int, depth: int = 0,
             seen: frozenset[str] = frozenset()) -> list[_Vip] | None:
        """The VIPs a destination name stands for, or None when it is no VIP."""
        key = (family, name)
        if key in self.vip_memo:
            return self.vip_memo[key]
        if name in seen:
            raise self.err(f"VIP group loop through {name!r}", line)
        if depth > MAX_GROUP_DEPTH:
            raise self.err(f"VIP groups nested more than {MAX_GROUP_DEPTH} deep", line)
        vip_path, grp_path = self.vip_tables(family)
        vip_table, grp_table = self.table(vip_path), self.table(grp_path)
        node = vip_table.lookup(name) if vip_table is not None else None
        if node is not None:
            result = [self.vip(node, family)]
        else:
            grp = grp_table.lookup(name) if grp_table is not None else None
            if grp is None:
                return None
            result = []
            for m in grp.get("member") or []:
                sub = self.vips(m, family, grp.line_of("member"), depth + 1, seen | {name})
                if sub is None:
                    raise self.err(f"VIP group {name}: member {m!r} is no VIP", grp.line_of("member"))
                result.extend(sub)
        self.vip_memo[key] = result
        return result

    def vip(self, node: _Node, family: int) -> _Vip:
        name = node.name
        reasons = [f"VIP {name}: destination NAT is not followed; the external and the mapped addresses are "
                   "both taken as reachable, ahead of every deny"]
        whole = FAMILY_ALL[family]
        kind = (node.get("type") or ["static-nat"])[0].lower()
        try:
            ext = self.ranges(node.get("extip") or [], family)
            mapped = self.ranges(node.get("mappedip") or [], family)
            if kind in ("load-balance", "server-load-balance"):
                servers = node.blocks.get("realservers")
                mapped = IntervalSet([iv for e in (servers.ordered() if servers else [])
                                      for iv in self.ranges(e.get("ip") or [], family)])
            portforward = (node.get("portforward") or ["disable"])[0].lower() == "enable"
            protos = extport = mappedport = None
            if portforward:
                proto = (node.get("protocol") or ["tcp"])[0].lower()
                number = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "sctp": PROTO_SCTP,
                          "icmp": PROTO_ICMP if family == 4 else PROTO_ICMPV6}.get(proto)
                if number is None:
                    raise ValueError(f"unknown VIP protocol {proto!r}")
                protos = IntervalSet.of(number)
                if number != PROTO_ICMP and number != PROTO_ICMPV6:
                    extport = IntervalSet([_port_range(p) for p in node.get("extport") or ["0-65535"]])
                    mappedport = IntervalSet([_port_range(p) for p in node.get("mappedport") or []]) or extport
        except ValueError as exc:
            raise self.err(f"VIP {name}: {exc}", node.line) from None
        if kind not in ("static-nat", "load-balance", "server-load-balance") or not ext or not mapped or any(
                (node.get(k) or ["disable"])[0].lower() == "enable" for k in ("nat46", "nat64")) or node.get(
                "ipv6-mappedip"):
            reasons.append(f"VIP {name} ({kind}): its translation is not in the file; any destination taken")
            return _Vip(name, ext or whole, ALL_ADDRESSES, None, None, None, tuple(reasons))
        if kind != "static-nat":
            mappedport = None  # real servers may listen on their own ports
        return _Vip(name, ext, mapped, protos, extport, mappedport, tuple(reasons))

    def ranges(self, values: list[str], family: int) -> IntervalSet:
        out: list[tuple[int, int]] = []
        for v in values:
            if v in ("0.0.0.0", "::"):
                continue
            lo_s, dash, hi_s = v.partition("-")
            if "/" in v and not dash:
                s = _v4_network([v]) if family == 4 else _v6_network(v)
                out.extend(s)
                continue
            if family == 4:
                lo, hi = _v4(lo_s), _v4(hi_s) if dash else _v4(lo_s)
            else:
                lo = V6_BASE + int(ipaddress.IPv6Address(lo_s))
                hi = V6_BASE + int(ipaddress.IPv6Address(hi_s)) if dash else lo
            if lo > hi:
                raise ValueError(f"invalid address range {v!r}")
            out.append((lo, hi))
        return IntervalSet(out)

    def destinations(self, names: list[str], family: int, line: int) -> tuple[_Set, list[_Vip]]:
        plain: list[_Set] = []
        vips: list[_Vip] = []
        for n in names:
            hit = self.vips(n, family, line) if self.find(self.addr_tables(family), n) is None else None
            if hit is not None:
                vips.extend(hit)
            else:
                plain.append(self.address(n, family, line))
        return (_union(plain) if plain else _Set.exact(IntervalSet())), vips

    # -- services --

    def service(self, name: str, line: int, depth: int = 0, seen: frozenset[str] = frozenset()) -> _Svc:
        hit = self.svc_memo.get(name)
        if hit is not None:
            return hit
        if name in seen:
            raise self.err(f"service group loop through {name!r}", line)
        if depth > MAX_GROUP_DEPTH:
            raise self.err(f"service groups nested more than {MAX_GROUP_DEPTH} deep", line)
        found = self.find(("firewall service custom", "firewall service group"), name)
        if found is None:
            result = _Svc.unknown(f"service {name!r} is defined neither in the file nor by FortiOS: taken as any "
                                  "service in an accept, none in a deny")
        elif found[0] == "firewall service group":
            node = found[1]
            parts = [self.service(m, node.line_of("member"), depth + 1, seen | {name})
                     for m in node.get("member") or []]
            extra = self.unknown_keys(node, _GROUP_KNOWN, "service group")
            lower = tuple(dict.fromkeys(a for p in parts for a in p.lower)) if not extra else ()
            upper = tuple(dict.fromkeys(a for p in parts for a in p.upper))
            result = _Svc(lower, upper, _reasons([r for p in parts for r in p.reasons] + list(extra)))
        else:
            try:
                result = self.custom_service(found[1])
            except ValueError as exc:
                raise self.err(f"service {name}: {exc}", found[1].line) from None
        self.svc_memo[name] = result
        return result

    def custom_service(self, node: _Node) -> _Svc:
        name = node.name
        protocol = _service_protocol(node)
        reasons: list[str] = list(self.unknown_keys(node, _SERVICE_KNOWN, "service"))
        if (node.get("proxy") or ["disable"])[0].lower() == "enable" or protocol in (
                "ALL", "CONNECT", "FTP", "HTTP", "SOCKS-TCP", "SOCKS-UDP"):
            return _Svc((), (_Atom(IntervalSet.of(PROTO_TCP, PROTO_UDP)),),
                        (f"service {name} is an explicit-proxy service: taken as any TCP/UDP in an accept",))
        app = (node.get("app-service-type") or ["disable"])[0].lower()
        if app != "disable":
            reasons.append(f"service {name} matches applications ({app}), decided after the first packets")
        dst: IntervalSet | None = None
        iprange = node.get("iprange")
        if iprange and iprange != ["0.0.0.0"]:
            dst = self.ranges(iprange, 4) or None
        fqdn = node.get("fqdn")
        if fqdn and fqdn[0]:
            reasons.append(f"service {name} is limited to the FQDN {fqdn[0]}, resolved at run time")
        atoms: list[_Atom] = []
        if protocol in ("TCP/UDP/SCTP", "TCP/UDP/UDP-LITE/SCTP"):
            for key, proto in (("tcp-portrange", PROTO_TCP), ("udp-portrange", PROTO_UDP),
                               ("sctp-portrange", PROTO_SCTP), ("udplite-portrange", PROTO_UDPLITE)):
                for item in node.get(key) or []:
                    d, colon, s = item.partition(":")
                    dports = IntervalSet([_port_range(d)])
                    sports = IntervalSet([_port_range(s)]) if colon else DEFAULT_SOURCE_PORTS
                    atoms.append(_Atom(IntervalSet.of(proto), sports, dports, dst=dst))
        elif protocol in ("ICMP", "ICMP6"):
            itype = node.get("icmptype")
            icode = node.get("icmpcode")
            t = IntervalSet.of(_uint(itype[0], 255, "ICMP type")) if itype else None
            c = IntervalSet.of(_uint(icode[0], 255, "ICMP code")) if icode and itype else None
            proto = PROTO_ICMP if protocol == "ICMP" else PROTO_ICMPV6
            atoms.append(_Atom(IntervalSet.of(proto), itype=t, icode=c, dst=dst))
        elif protocol == "IP":
            number = _uint((node.get("protocol-number") or ["0"])[0], 255, "protocol number")
            atoms.append(_Atom(IntervalSet.of(number) if number else None, dst=dst))
        else:
            raise ValueError(f"unknown protocol {protocol!r}")
        exact = tuple(dict.fromkeys(atoms))
        widened = bool(reasons) and any("FQDN" in r or "applications" in r for r in reasons)
        lower = () if reasons else exact  # matches at least this much only when nothing else is unknown
        if dst is not None:
            reasons.append(f"service {name} names the destinations {' '.join(iprange or [])}: FortiOS documents "
                           "them for proxy services; taken as limiting a deny, not an accept")
            widened = True
        if not reasons:
            return _Svc(exact, exact)
        upper = tuple(dict.fromkeys(_Atom(a.proto, a.sport, a.dport, a.itype, a.icode, None) for a in exact)
                      ) if widened else exact
        return _Svc(lower, upper, tuple(reasons))

    def services(self, names: list[str], line: int) -> _Svc:
        parts = [self.service(n, line) for n in names]
        return _Svc(tuple(dict.fromkeys(a for p in parts for a in p.lower)),
                    tuple(dict.fromkeys(a for p in parts for a in p.upper)),
                    _reasons(r for p in parts for r in p.reasons))

    # -- schedules --

    def schedule(self, name: str) -> tuple[str, ...]:
        """Reasons the schedule limits matching by time (empty: always)."""
        if name in self.sched_memo:
            return self.sched_memo[name]
        found = self.find(("firewall schedule recurring",), name)
        result: tuple[str, ...] = (f"schedule {name!r} depends on the time of day or date",)
        if found is not None:
            node = found[1]
            days = {d.lower() for d in node.get("day") or []}
            start = (node.get("start") or ["00:00"])[0]
            end = (node.get("end") or ["00:00"])[0]
            week = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
            if days >= week and start == end:
                result = ()
        self.sched_memo[name] = result
        return result

    # -- policies --

    def rules(self) -> tuple[list[Rule], list[Rule]]:
        """(rules that go ahead of every other rule of the firewall, this VDOM's ordered rules)."""
        hoisted: list[Rule] = []
        body: list[Rule] = []
        for path, note in _FIREWALL_NOTES.items():
            t = self.scope.blocks.get(path)
            if t is not None and t.entries:
                self.imp.notes.append(f"config {path} (line {t.line}): {note}")
        for key, t in self.scope.blocks.items():
            if key.startswith("firewall ") and key not in _FIREWALL_READ and key not in _FIREWALL_NOTES and (
                    key.endswith("policy") or key.endswith("policy6")):
                self.imp.notes.append(f"config {key} (line {t.line}) is not read")
        security = self.scope.blocks.get("firewall security-policy")
        self.ngfw = (f"NGFW policy-based mode: the security policies (config firewall security-policy, line "
                     f"{security.line}) may deny more; not read") if security is not None and security.entries else None
        for path, prefix in (("firewall policy46", "policy46:"), ("firewall policy64", "policy64:"),
                             ("firewall multicast-policy", "multicast-policy:"),
                             ("firewall multicast-policy6", "multicast-policy6:")):
            table = self.scope.blocks.get(path)
            for entry in table.ordered() if table is not None else []:
                hoisted.extend(self.translation_policy(entry, prefix, path))
        for path, prefix, family in (("firewall acl", "acl:", 4), ("firewall acl6", "acl6:", 6)):
            table = self.scope.blocks.get(path)
            for entry in table.ordered() if table is not None else []:
                body.extend(self.acl(entry, prefix, family))
        for path, prefix in (("firewall policy", ""), ("firewall consolidated policy", "consolidated:"),
                             ("firewall policy6", "policy6:")):
            table = self.scope.blocks.get(path)
            for entry in table.ordered() if table is not None else []:
                first, rest = self.policy(entry, prefix, six_only=path == "firewall policy6")
                hoisted.extend(first)
                body.extend(rest)
        body.extend(self.intrazone())
        return hoisted, body

    def enabled(self, entry: _Node) -> bool:
        status = (entry.get("status") or ["enable"])[0].lower()
        if status not in ("enable", "disable"):
            raise self.err(f"policy {entry.name}: status must be enable or disable, not {status!r}",
                           entry.line_of("status"))
        return status == "enable"

    def flag(self, entry: _Node, key: str) -> bool:
        values = entry.get(key)
        if not values:
            return False
        v = values[0].lower()
        if v not in ("enable", "disable") or len(values) != 1:
            raise self.err(f"policy {entry.name}: {key} must be enable or disable", entry.line_of(key))
        return v == "enable"

    def limits(self, entry: _Node) -> list[str]:
        """Reasons for conditions of the policy that the file does not decide."""
        reasons: list[str] = []
        for key, f in entry.fields.items():
            if key in _POLICY_NEUTRAL or key.startswith(_ISDB_PREFIXES):
                continue
            if key in _POLICY_LIST_LIMITS:
                if f.values and f.values != ["0"]:
                    reasons.append(f"{key} {' '.join(f.values)}: {_POLICY_LIST_LIMITS[key]}")
            elif key in _POLICY_ENABLE_LIMITS:
                if f.values[:1] == ["enable"]:
                    reasons.append(f"{key} enable: {_POLICY_ENABLE_LIMITS[key]}")
            elif key == "tos-mask":
                if f.values and f.values[0].lower() not in ("0x00", "0", "0x0"):
                    reasons.append("tos-mask: TOS values are not modelled")
            elif key == "reputation-minimum":
                if f.values and f.values[0] != "0":
                    reasons.append("reputation-minimum: Internet Service reputations are not in the file")
            else:
                reasons.append(f"keyword {key!r} (line {f.line}) is not modelled")
        schedule = (entry.get("schedule") or ["always"])[0]
        reasons.extend(self.schedule(schedule))
        return reasons

    def policy(self, entry: _Node, prefix: str, six_only: bool) -> tuple[list[Rule], list[Rule]]:
        if not self.enabled(entry):
            return [], []
        pid = self.rule_id(prefix + entry.name)
        action_v = entry.get("action") or ["deny"]
        action_name = action_v[0].lower()
        if action_name not in ("accept", "deny", "ipsec") or len(action_v) != 1:
            raise self.err(f"policy {entry.name}: unknown action {' '.join(action_v)!r}", entry.line_of("action"))
        allow = action_name != "deny"
        for key in ("srcintf", "dstintf"):
            if not entry.get(key):
                raise self.err(f"policy {entry.name} has no {key}", entry.line)
        src_if = self.ifaces(entry.get("srcintf") or [])
        dst_if = self.ifaces(entry.get("dstintf") or [])
        reasons: list[str] = list(src_if.reasons + dst_if.reasons)
        limits = self.limits(entry)
        reasons.extend(limits)
        if allow and self.ngfw:
            reasons.append(self.ngfw)
        isdb_dst = {4: self.flag(entry, "internet-service"), 6: self.flag(entry, "internet-service6")}
        isdb_src = {4: self.flag(entry, "internet-service-src"), 6: self.flag(entry, "internet-service6-src")}
        if not entry.get("service") and not any(isdb_dst.values()):
            raise self.err(f"policy {entry.name} has no service", entry.line)
        svc = self.services(entry.get("service") or [], entry.line_of("service"))
        svc_negate = self.flag(entry, "service-negate")
        svc_lo, svc_up = _atoms_expr(svc.lower), _atoms_expr(svc.upper)
        if svc_negate:
            svc_lo, svc_up = not_of(svc_up), not_of(svc_lo)
        reasons.extend(svc.reasons)
        lows: list[Expr] = []
        ups: list[Expr] = []
        vip_exprs: list[Expr] = []
        vip_reasons: list[str] = []
        families = [(6, "srcaddr" if six_only else "srcaddr6", "dstaddr" if six_only else "dstaddr6")]
        if not six_only:
            families.insert(0, (4, "srcaddr", "dstaddr"))
        any_family = False
        for fam, skey, dkey in families:
            snames = entry.get(skey) or (entry.get("srcaddr4") if fam == 4 and not six_only else None) or []
            dnames = entry.get(dkey) or (entry.get("dstaddr4") if fam == 4 and not six_only else None) or []
            if isdb_src[fam]:
                src = _Set.unknown(fam, "Internet Service Database sources are not in the file")
            elif snames:
                src = self.addresses(snames, fam, entry.line_of(skey))
            else:
                continue
            if isdb_dst[fam]:
                dst, vips = _Set.unknown(fam, "Internet Service Database destinations are not in the file"), []
                f_svc_lo, f_svc_up = FALSE, TRUE
            elif dnames:
                dst, vips = self.destinations(dnames, fam, entry.line_of(dkey))
                f_svc_lo, f_svc_up = svc_lo, svc_up
            else:
                continue
            any_family = True
            sneg = self.negation(entry, fam, "srcaddr", six_only)
            dneg = self.negation(entry, fam, "dstaddr", six_only)
            src = self.negated(src, fam, sneg)
            if vips and dneg != (False,):
                reasons.append("dstaddr-negate with VIPs: taken as any destination in an accept, none in a deny")
                dst = _Set.unknown(fam, "negated VIP destinations")
                vips = []
            dst = self.negated(dst, fam, dneg)
            reasons.extend(src.reasons + dst.reasons)
            lows.append(_and(_nonempty("src", src.lower), _nonempty("dst", dst.lower), f_svc_lo))
            ups.append(_and(_nonempty("src", src.upper), _nonempty("dst", dst.upper), f_svc_up))
            if vips and allow:
                vip_reasons.extend(r for v in vips for r in v.reasons)
                vip_exprs.append(_and(_nonempty("src", src.upper), any_of(*(v.expr(f_svc_up) for v in vips))))
            elif vips:
                reasons.extend(f"VIP {v.name}: destination NAT is not followed; a deny is taken as not matching "
                               "its traffic" for v in vips)
        if not any_family:
            raise self.err(f"policy {entry.name} has no source and destination addresses", entry.line)
        lower = FALSE if limits else any_of(*lows)
        upper = any_of(*ups)
        approx = _approximation(reasons)
        source = SourceRef(self.path, entry.line)
        names = entry.get("name") or entry.get("comments") or entry.get("comment")
        label = names[0] if names else None
        if allow:
            hoisted = []
            if vip_exprs:
                hoisted.append(Rule(pid, "allow", any_of(*vip_exprs), self.iface_set(src_if.upper),
                                    self.iface_set(dst_if.upper), source, label,
                                    _approximation(vip_reasons + reasons)))
                if upper == FALSE:  # only VIPs: the rule ahead says it all
                    return hoisted, []
            return hoisted, [Rule(pid, "allow", upper, self.iface_set(src_if.upper), self.iface_set(dst_if.upper),
                                  source, label, approx)]
        return [], [Rule(pid, "deny", lower, self.iface_set(src_if.exact), self.iface_set(dst_if.exact), source,
                         label, approx)]

    def negation(self, entry: _Node, family: int, base: str, six_only: bool) -> tuple[bool, ...]:
        """The readings of ``*-negate`` for one family: one, or two when the release decides."""
        if family == 4 or six_only:
            return (self.flag(entry, f"{base}-negate"),)
        if entry.get(f"{base}6-negate"):
            return (self.flag(entry, f"{base}6-negate"),)
        if self.flag(entry, f"{base}-negate"):
            return (False, True)  # 6.4 negated both families with one flag; 7.x has its own for IPv6
        return (False,)

    def negated(self, s: _Set, family: int, readings: tuple[bool, ...]) -> _Set:
        if readings == (False,):
            return s
        if readings == (True,):
            return _negate(s, family)
        n = _negate(s, family)
        return _Set(s.lower & n.lower, s.upper | n.upper, s.reasons + (
            "srcaddr-negate/dstaddr-negate with IPv6 addresses: whether it negates them depends on the FortiOS "
            "release; both readings taken",))

    def acl(self, entry: _Node, prefix: str, family: int) -> list[Rule]:
        """``config firewall acl``: a drop on the ingress interface ahead of the policies."""
        if not self.enabled(entry):
            return []
        iface = entry.get("interface")
        if not iface:
            raise self.err(f"ACL {entry.name} has no interface", entry.line)
        ins = self.ifaces(iface)
        reasons: list[str] = list(ins.reasons)
        src = self.addresses(entry.get("srcaddr") or [], family, entry.line_of("srcaddr"))
        dst = self.addresses(entry.get("dstaddr") or [], family, entry.line_of("dstaddr"))
        svc = self.services(entry.get("service") or [], entry.line_of("service"))
        extra = [f"keyword {k!r} (line {f.line}) is not modelled" for k, f in entry.fields.items()
                 if k not in ("status", "interface", "srcaddr", "dstaddr", "service", "uuid", "comments", "name")]
        reasons.extend(src.reasons + dst.reasons + svc.reasons + tuple(extra))
        match = FALSE if extra else _and(_nonempty("src", src.lower), _nonempty("dst", dst.lower),
                                        _atoms_expr(svc.lower))
        return [Rule(self.rule_id(prefix + entry.name), "deny", match, self.iface_set(ins.exact), None,
                     SourceRef(self.path, entry.line), (entry.get("comments") or [None])[0], _approximation(reasons))]

    def translation_policy(self, entry: _Node, prefix: str, path: str) -> list[Rule]:
        """NAT46/NAT64 and multicast policies: an accept allows everything between its interfaces."""
        if not self.enabled(entry):
            return []
        action = (entry.get("action") or ["accept"])[0].lower()  # (an unset action is taken as accepting)
        if action == "deny":
            return []
        src_if = self.ifaces(entry.get("srcintf") or ["any"])
        dst_if = self.ifaces(entry.get("dstintf") or ["any"])
        multicast = "multicast" in path
        what = "multicast policies" if multicast else "NAT46/NAT64 policies translate between families and"
        reason = (f"{what} are not modelled: taken as allowing every {'multicast ' if multicast else ''}packet "
                  "between its interfaces")
        return [Rule(self.rule_id(prefix + entry.name), "allow", FieldIn("dst", MULTICAST) if multicast else TRUE,
                     self.iface_set(src_if.upper), self.iface_set(dst_if.upper), SourceRef(self.path, entry.line),
                     (entry.get("name") or entry.get("comments") or [None])[0],
                     _approximation(list(src_if.reasons + dst_if.reasons) + [reason]))]

    def intrazone(self) -> list[Rule]:
        out: list[Rule] = []
        table = self.scope.blocks.get("system zone")
        for zone in self.zones.values():
            if zone.intrazone != "allow":
                continue
            names = frozenset(n for n in [zone.name, *zone.members] if n in self.owned)
            if not names:
                continue
            approx = None
            if len(zone.members) == 1 and (self.imp.version is None or self.imp.version < (7, 4, 4)):
                approx = (f"zone {zone.name} has one member: FortiOS before 7.4.4 does not apply intrazone allow "
                          "to it; taken as allowing")
            entry = table.lookup(zone.name) if table is not None else None
            line = entry.line_of("intrazone") if entry is not None else zone.line
            out.append(Rule(self.rule_id(f"intrazone:{zone.name}"), "allow", TRUE, names, names,
                            SourceRef(self.path, line), zone.description, approx))
        return out


def _approximation(reasons: Sequence[str]) -> str | None:
    text = "; ".join(dict.fromkeys(r for r in reasons if r))
    if not text:
        return None
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def load(path: str, interfaces: Sequence[str]) -> RuleSet:
    """The forward-policy decision of a FortiOS configuration backup as a first-match RuleSet."""
    try:
        return _Importer(path, interfaces).run()
    except RecursionError:
        raise InputError(path, "the configuration nests too deeply") from None
