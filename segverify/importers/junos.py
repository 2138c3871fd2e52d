"""Junos (SRX) importer: the security-policy decision for a packet initiating a connection.

The output is a flat, ordered, first-match RuleSet over the topology's interface names, which for
this format are the SRX's **security-zone** names: a policy ``from-zone A to-zone B`` applies to
packets entering by A and leaving by B (``in_ifaces {A}``, ``out_ifaces {B}``).

How the file is read
  * Both forms of a Junos configuration: the curly-brace hierarchy (``show configuration``) and
    ``set`` commands (``| display set``, or a hand-written script). The form is detected from the
    first statement. Both are turned into the same commands on one configuration tree, so a
    configuration gives the same rules whichever form it is written in.
  * ``set`` scripts may also use ``delete``, ``deactivate``/``activate``, ``insert … before|after``
    (policy order), ``rename``, ``copy`` and ``edit``/``up``/``top``/``exit``. ``inactive:``
    statements and ``deactivate``d ones are kept in the tree but never read (they do not match).
  * Several statements may share one line (``match source-address a destination-address b
    application any``; ``term t1 protocol tcp destination-port 80``): the statement vocabulary of
    the hierarchies that matter (security policies, zones, address books, NAT, applications) is
    known here, so each word finds its statement. Everything else (system, interfaces, routing …)
    is skipped without being stored.
  * ``groups`` with ``apply-groups`` (at any level, with ``<*>`` wildcards, ``apply-groups-except``)
    are inherited the Junos way: what is configured locally wins, inherited elements (policies
    included) come after the local ones. A ``groups junos-defaults`` in the file is inherited too and
    its application definitions replace this module's table. Not inherited (noted): groups that
    apply other groups; ``apply-groups ${node}`` of a cluster is read as ``node0``.

Semantics (the SRX flow lookup for the first packet of a session)
  * Zone-pair policies ``from-zone A to-zone B`` in file order, first match; then the ``global``
    policies in order (their ``match from-zone``/``to-zone`` become interface conditions); then
    ``default-policy`` (deny-all unless ``permit-all``). Intra-zone traffic (A to A) needs a policy
    like any other. Rules of different zone pairs never apply to the same packet, so one list in
    file order — every zone-pair rule, then every global rule — decides each packet exactly as the
    SRX does.
  * ``then permit`` (with or without ``application-services``, ``tunnel`` …) allows; ``deny`` and
    ``reject`` deny; ``log``/``count`` change nothing.
  * Addresses: the zone's own address book, address books ``attach``ed to it, then the ``global``
    one (source names in the from-zone, destination names in the to-zone; global policies use the
    global book). Prefixes, ``range-address``, ``wildcard-address``, nested ``address-set``s,
    ``any``/``any-ipv4``/``any-ipv6``, ``source-address-excluded``/``destination-address-excluded``.
  * Applications: ``protocol``, ``destination-port``, ``source-port``, ICMP/ICMPv6 type and code,
    ``term``s (a union), nested ``application-set``s, ``any``, and a table of the predefined
    ``junos-*`` applications (``PREDEFINED_APPS``).
  * Destination and static NAT happen before the policy lookup, on the translated address. Each
    ``security nat destination``/``static`` rule that translates becomes an approximated allow on
    top, restricted to its own match (the rewritten destination is not followed).

Approximations (never optimistic; each marked on the rule with ``approximation``)
  Every condition is read as a pair of sets, the packets that certainly match and those that may.
  An allow uses the second, a deny the first (``source-address-excluded`` swaps them), so the
  allowed set only grows:
  ``dns-name`` addresses (resolved at run time), ``wildcard-address``es of more than
  ``MAX_WILDCARD_INTERVALS`` ranges, ``dynamic-application``, ``url-category``, ``source-identity``
  and ``source-end-user-profile`` (known only at run time), ``scheduler-name`` (time of day),
  MS-RPC and Sun-RPC applications and ``rpc-program-number``/``uuid`` (ports negotiated through a
  port mapper: any port of the protocol for allows), ``ether-type``/``snmp-command``/
  ``ttl-threshold`` and unknown application statements, predefined applications this module does
  not know, names that are not defined in the file, a policy without ``match`` fields or without an
  action (Junos would refuse to commit it: taken as permit), unknown policy statements (the policy
  may then match anything between its zones), ``permit firewall-authentication`` and ``permit
  destination-address drop-untranslated``, and destination/static NAT as above.
  ALGs otherwise change nothing: a data connection an ALG opens (FTP, SIP media …) is taken, like a
  reply, as belonging to the connection the policy allowed.

Notes on the RuleSet: the form read, the default policy, statements skipped with a note, and the
zones of the file that are no interface of the topology (their policies can never apply).

Not read: ``logical-systems`` and ``tenants`` (other firewalls: noted), ``security
forwarding-options`` (IPv6 drop mode only ever denies), screens and IDP (they only drop).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..model.addresses import ALL_ADDRESSES, ALL_V4, ALL_V6, V6_BASE, IntervalSet
from ..model.rules import (
    FALSE,
    PORT_PROTOS,
    PROTO_ICMP,
    PROTO_ICMPV6,
    TRUE,
    Action,
    Expr,
    FieldIn,
    Rule,
    RuleSet,
    SourceRef,
    all_of,
    any_of,
)

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NODES = 2_000_000
MAX_DEPTH = 64
MAX_WILDCARD_INTERVALS = 1024
MAX_REASON = 300

# --- vocabulary --------------------------------------------------------------------------------

PROTOCOLS: dict[str, int] = {
    "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41,
    "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmp6": 58, "icmpv6": 58, "ospf": 89, "pim": 103,
    "vrrp": 112, "sctp": 132,
}

# Junos port names (the text synonyms ``destination-port``/``source-port`` accept).
PORT_NAMES: dict[str, int] = {
    "afs": 1483, "bgp": 179, "biff": 512, "bootpc": 68, "bootps": 67, "cmd": 514, "cvspserver": 2401,
    "dhcp": 67, "domain": 53, "eklogin": 2105, "ekshell": 2106, "exec": 512, "finger": 79, "ftp": 21,
    "ftp-data": 20, "http": 80, "https": 443, "ident": 113, "imap": 143, "kerberos-sec": 88,
    "klogin": 543, "kpasswd": 761, "krb-prop": 754, "krbupdate": 760, "kshell": 544, "ldap": 389,
    "ldp": 646, "login": 513, "mobileip-agent": 434, "mobilip-mn": 435, "msdp": 639,
    "netbios-dgm": 138, "netbios-ns": 137, "netbios-ssn": 139, "nfsd": 2049, "nntp": 119,
    "ntalk": 518, "ntp": 123, "pop3": 110, "pptp": 1723, "printer": 515, "radacct": 1813,
    "radius": 1812, "rip": 520, "rkinit": 2108, "smtp": 25, "snmp": 161, "snmptrap": 162,
    "snpp": 444, "socks": 1080, "ssh": 22, "sunrpc": 111, "syslog": 514, "tacacs": 49,
    "tacacs-ds": 65, "talk": 517, "telnet": 23, "tftp": 69, "timed": 525, "who": 513, "xdmcp": 177,
    "zephyr-clt": 2103, "zephyr-hm": 2104, "zephyr-srv": 2102,
}

ICMP_TYPES: dict[str, int] = {
    "echo-reply": 0, "unreachable": 3, "source-quench": 4, "redirect": 5, "echo-request": 8,
    "router-advertisement": 9, "router-solicit": 10, "time-exceeded": 11, "parameter-problem": 12,
    "timestamp": 13, "timestamp-reply": 14, "info-request": 15, "info-reply": 16, "mask-request": 17,
    "mask-reply": 18,
}
ICMP_CODES: dict[str, int] = {
    "network-unreachable": 0, "host-unreachable": 1, "protocol-unreachable": 2, "port-unreachable": 3,
    "fragmentation-needed": 4, "source-route-failed": 5, "destination-network-unknown": 6,
    "destination-host-unknown": 7, "source-host-isolated": 8, "destination-network-prohibited": 9,
    "destination-host-prohibited": 10, "network-unreachable-for-tos": 11, "host-unreachable-for-tos": 12,
    "communication-prohibited-by-filtering": 13, "host-precedence-violation": 14,
    "precedence-cutoff-in-effect": 15, "redirect-for-network": 0, "redirect-for-host": 1,
    "redirect-for-tos-and-net": 2, "redirect-for-tos-and-host": 3, "ttl-eq-zero-during-transit": 0,
    "ttl-eq-zero-during-reassembly": 1, "ip-header-bad": 0, "required-option-missing": 1,
}
ICMP6_TYPES: dict[str, int] = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
    "echo-request": 128, "echo-reply": 129, "membership-query": 130, "membership-report": 131,
    "membership-termination": 132, "router-solicit": 133, "router-advertisement": 134,
    "neighbor-solicit": 135, "neighbor-advertisement": 136, "redirect": 137, "router-renumbering": 138,
    "node-information-request": 139, "node-information-reply": 140,
}
ICMP6_CODES: dict[str, int] = {
    "no-route-to-destination": 0, "administratively-prohibited": 1, "beyond-scope": 2,
    "address-unreachable": 3, "port-unreachable": 4, "ttl-eq-zero-during-transit": 0,
    "ttl-eq-zero-during-reassembly": 1, "ip6-header-bad": 0, "unrecognized-next-header": 1,
    "unrecognized-option": 2,
}

# --- predefined applications -------------------------------------------------------------------
# The junos-defaults group of an SRX ("show groups junos-defaults"), from Juniper's predefined-
# application pages, a transcription of a device's junos-defaults (DirectFire's Junos parser) and
# Batfish's JunosApplication table, which agree on every entry below. A spec is "tcp/80",
# "udp/6346-6347", "icmp" (every type), "icmp:8" (a type), "icmp6:1:3" (type and code) or "proto:47".

PREDEFINED_APPS: dict[str, tuple[str, ...]] = {
    "junos-aol": ("tcp/5190-5193",), "junos-bgp": ("tcp/179",), "junos-biff": ("udp/512",),
    "junos-bootpc": ("udp/68",), "junos-bootps": ("udp/67",), "junos-chargen": ("udp/19",),
    "junos-cvspserver": ("tcp/2401",), "junos-dhcp-client": ("udp/68",), "junos-dhcp-relay": ("udp/67",),
    "junos-dhcp-server": ("udp/67",), "junos-discard": ("udp/9",), "junos-dns-tcp": ("tcp/53",),
    "junos-dns-udp": ("udp/53",), "junos-echo": ("udp/7",), "junos-finger": ("tcp/79",),
    "junos-ftp": ("tcp/21",), "junos-ftp-data": ("tcp/20",), "junos-gnutella": ("udp/6346-6347",),
    "junos-gopher": ("tcp/70",), "junos-gre": ("proto:47",), "junos-gtp": ("udp/2123",),
    "junos-gprs-gtp-c": ("udp/2123",), "junos-gprs-gtp-u": ("udp/2152",), "junos-gprs-gtp-v0": ("udp/3386",),
    "junos-gprs-sctp": ("proto:132",),
    "junos-h323": ("tcp/1720", "udp/1719", "tcp/1503", "tcp/389", "tcp/522", "tcp/1731"),
    "junos-http": ("tcp/80",), "junos-http-ext": ("tcp/7001",), "junos-https": ("tcp/443",),
    "junos-icmp-all": ("icmp",), "junos-icmp-ping": ("icmp:8",), "junos-ping": ("icmp",),
    "junos-pingv6": ("icmp6",), "junos-icmp6-all": ("icmp6",), "junos-icmp6-echo-request": ("icmp6:128",),
    "junos-icmp6-echo-reply": ("icmp6:129",), "junos-icmp6-dst-unreach-route": ("icmp6:1:0",),
    "junos-icmp6-dst-unreach-admin": ("icmp6:1:1",), "junos-icmp6-dst-unreach-beyond": ("icmp6:1:2",),
    "junos-icmp6-dst-unreach-addr": ("icmp6:1:3",), "junos-icmp6-dst-unreach-port": ("icmp6:1:4",),
    "junos-icmp6-packet-too-big": ("icmp6:2:0",), "junos-icmp6-time-exceed-transit": ("icmp6:3:0",),
    "junos-icmp6-time-exceed-reassembly": ("icmp6:3:1",), "junos-icmp6-param-prob-header": ("icmp6:4:0",),
    "junos-icmp6-param-prob-nexthdr": ("icmp6:4:1",), "junos-icmp6-param-prob-option": ("icmp6:4:2",),
    "junos-ident": ("tcp/113",), "junos-ike": ("udp/500",), "junos-ike-nat": ("udp/4500",),
    "junos-imap": ("tcp/143",), "junos-imaps": ("tcp/993",), "junos-internet-locator-service": ("tcp/389",),
    "junos-irc": ("tcp/6660-6669",), "junos-l2tp": ("udp/1701",), "junos-ldap": ("tcp/389",),
    "junos-ldp-tcp": ("tcp/646",), "junos-ldp-udp": ("udp/646",), "junos-lpr": ("tcp/515",),
    "junos-mail": ("tcp/25",), "junos-mgcp-ca": ("udp/2727",), "junos-mgcp-ua": ("udp/2427",),
    "junos-ms-sql": ("tcp/1433",), "junos-msn": ("tcp/1863",), "junos-nbds": ("udp/138",),
    "junos-nbname": ("udp/137",), "junos-netbios-session": ("tcp/139",), "junos-nfsd-tcp": ("tcp/2049",),
    "junos-nsm": ("udp/69",), "junos-persistent-nat": ("proto:255",), "junos-r2cp": ("udp/28672",),
    "junos-rdp": ("tcp/3389",), "junos-smtps": ("tcp/465", "tcp/587"),
    "junos-stun": ("tcp/3478-3479", "udp/3478-3479"),
    "junos-ymsg": ("tcp/5000-5010", "tcp/5050", "udp/5000-5010", "udp/5050"),
    "junos-nfsd-udp": ("udp/2049",), "junos-nntp": ("tcp/119",), "junos-ns-global": ("tcp/15397",),
    "junos-ns-global-pro": ("tcp/15397",), "junos-ntalk": ("tcp/518", "udp/518"), "junos-ntp": ("udp/123",),
    "junos-ospf": ("proto:89",), "junos-pc-anywhere": ("udp/5632",), "junos-pop3": ("tcp/110",),
    "junos-pptp": ("tcp/1723",), "junos-printer": ("tcp/515",), "junos-radacct": ("udp/1813",),
    "junos-radius": ("udp/1812",), "junos-realaudio": ("tcp/554",), "junos-rip": ("udp/520",),
    "junos-rsh": ("tcp/514",), "junos-rtsp": ("tcp/554",), "junos-sccp": ("tcp/2000",),
    "junos-sctp-any": ("proto:132",), "junos-sip": ("udp/5060", "tcp/5060"),
    "junos-smb": ("tcp/139", "tcp/445"), "junos-smb-session": ("tcp/445",), "junos-smtp": ("tcp/25",),
    "junos-snmp-agentx": ("tcp/705",), "junos-snpp": ("tcp/444",), "junos-sql-monitor": ("udp/1434",),
    "junos-sqlnet-v1": ("tcp/1525",), "junos-sqlnet-v2": ("tcp/1521",), "junos-ssh": ("tcp/22",),
    "junos-syslog": ("udp/514",), "junos-tacacs": ("tcp/49",), "junos-tacacs-ds": ("tcp/65",),
    "junos-talk": ("tcp/517", "udp/517"), "junos-tcp-any": ("tcp/0-65535",), "junos-telnet": ("tcp/23",),
    "junos-tftp": ("udp/69",), "junos-twamp": ("tcp/862",), "junos-udp-any": ("udp/0-65535",),
    "junos-uucp": ("udp/540",), "junos-vdo-live": ("udp/7000-7010",), "junos-vnc": ("tcp/5800", "tcp/5900"),
    "junos-wais": ("tcp/210",), "junos-whois": ("tcp/43",), "junos-who": ("udp/513",),
    "junos-winframe": ("tcp/1494",), "junos-wxcontrol": ("tcp/3578",), "junos-x-windows": ("tcp/6000-6063",),
    "junos-xnm-clear-text": ("tcp/3221",), "junos-xnm-ssl": ("tcp/3220",),
}

# Predefined applications known only in part: (certainly matched, possibly matched, why).
PREDEFINED_APPROX: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "junos-nfs": (("udp/111",), ("udp",), "junos-nfs is an RPC program reached through the port mapper: "
                                          "taken as any udp port for allows"),
}

PREDEFINED_SETS: dict[str, tuple[str, ...]] = {
    "junos-cifs": ("junos-netbios-session", "junos-smb-session"),
    "junos-mgcp": ("junos-mgcp-ua", "junos-mgcp-ca"),
    "junos-routing-inbound": ("junos-bgp", "junos-rip", "junos-ldp-tcp", "junos-ldp-udp"),
    "junos-gprs-gtp": ("junos-gprs-gtp-c", "junos-gprs-gtp-u", "junos-gprs-gtp-v0"),
}

_RPC_REASON = ("{name}: RPC data connections go to ports negotiated through the port mapper; "
               "taken as any {proto} port for allows")


# --- reading the file --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # "word" or one of { } ; [ ]
    value: str
    line: int


_SPACE = re.compile(r"[ \t\r\f\v]+")
_WORD = re.compile(r'[^\s{};\[\]"]+')
# Lines a terminal copy adds: "{master:0}", "[edit security]", "admin@srx> show configuration".
_PROMPT = re.compile(r"^\s*(?:(?:\{[\w:-]+\}\s*)?(?:\[edit(?:\s[^\]]*)?\])|\{[\w:-]+\}|\S+@\S+[>#%].*)\s*$")
_STATEMENT_PREFIXES = {"inactive:": True, "protect:": False, "replace:": False, "active:": False,
                       "unprotect:": False}
_SET_VERBS = frozenset({"set", "delete", "deactivate", "activate", "insert", "rename", "copy", "edit",
                        "top", "up", "exit", "annotate", "protect", "unprotect", "commit", "quit", "show",
                        "run", "status", "load", "wildcard"})
_IGNORED_VERBS = frozenset({"annotate", "protect", "unprotect", "commit", "show", "run", "status"})


def _tokenize(text: str, path: str, first_line: int = 1) -> Iterator[_Tok]:
    """Junos tokens: words, quoted strings (as words), braces, brackets and semicolons.

    ``#`` starts a comment where a token could start; ``/* … */`` annotations are skipped.
    """
    i, n, line = 0, len(text), first_line
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v":
            m = _SPACE.match(text, i)
            i = m.end() if m else i + 1
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise InputError(path, "unterminated /* comment", line)
            line += text.count("\n", i, j)
            i = j + 2
        elif c == '"':
            j, out, start = i + 1, [], line
            while True:
                if j >= n:
                    raise InputError(path, "unterminated quoted string", start)
                d = text[j]
                if d == "\\" and j + 1 < n:
                    out.append(text[j + 1])
                    line += text[j + 1] == "\n"
                    j += 2
                    continue
                if d == '"':
                    break
                line += d == "\n"
                out.append(d)
                j += 1
            yield _Tok("word", "".join(out), start)
            i = j + 1
        elif c in "{};[]":
            yield _Tok(c, c, line)
            i += 1
        else:
            m = _WORD.match(text, i)
            if m is None:  # other Unicode white space
                i += 1
                continue
            yield _Tok("word", m.group(), line)
            i = m.end()


def _detect_set_form(lines: list[str], path: str) -> bool:
    """True for ``set`` commands, False for the curly-brace hierarchy (by the first statement)."""
    for raw in lines:
        text = raw.strip()
        if not text or text.startswith("#") or text.startswith("/*") or _PROMPT.match(text):
            continue
        if text.startswith("<"):
            raise InputError(path, "XML configuration is not supported: export it with "
                                   "'show configuration' or '| display set'", 1)
        if text.startswith("{") and '"' in text[:3]:
            raise InputError(path, "JSON configuration is not supported: export it with "
                                   "'show configuration' or '| display set'", 1)
        word = text.split(None, 1)[0]
        return word in _SET_VERBS and not text.rstrip().endswith(("{", ";", "}"))
    return True


# --- the configuration tree and its vocabulary -------------------------------------------------


@dataclass(eq=False)
class _Spec:
    """How one statement keyword is read.

    kind: ``cont`` (a container, named by ``nargs`` words, e.g. ``policy P``), ``leaf`` (one value,
    replaced when set again), ``list`` (each value its own entry), ``flag`` (no value), ``rest`` (the
    rest of the statement, kept as one opaque entry), ``skip`` (the rest is ignored: not stored).
    ``pattern`` gives the argument words ("*" for any, else a literal, e.g. ``* to-zone *``).
    ``choice`` names a group of mutually exclusive statements (setting one deletes the others).
    """

    kind: str
    nargs: int = 0
    schema: _Schema | None = None
    choice: str | None = None
    pattern: tuple[str, ...] = ()
    implicit: str | None = None  # a default spec: the value is the keyword position's word itself

    def args_pattern(self) -> tuple[str, ...]:
        return self.pattern or ("*",) * self.nargs


@dataclass(eq=False)
class _Schema:
    """The statements a container accepts. ``other``: what an unlisted keyword is (``unknown``:
    kept as an unknown opaque entry; ``skip``: ignored; ``note``: ignored, with a note; ``rest``:
    every statement is one opaque entry)."""

    keywords: dict[str, _Spec] = field(default_factory=dict)
    other: str = "unknown"
    default: _Spec | None = None


def _cont(schema: _Schema, nargs: int = 0, choice: str | None = None, pattern: tuple[str, ...] = ()) -> _Spec:
    return _Spec("cont", nargs, schema, choice, pattern)


def _leaf(nargs: int = 1, choice: str | None = None, pattern: tuple[str, ...] = ()) -> _Spec:
    return _Spec("leaf", nargs, None, choice, pattern)


def _list(nargs: int = 1) -> _Spec:
    return _Spec("list", nargs)


def _flag(choice: str | None = None) -> _Spec:
    return _Spec("flag", 0, None, choice)


SKIP = _Schema(other="skip")
REST = _Schema(other="rest")
_SKIP_SPEC = _Spec("skip")
_UNKNOWN_REST = _Schema(other="rest")
_APPLY = _list(1)

_APP_KEYS = ("protocol", "destination-port", "source-port", "icmp-type", "icmp-code", "icmp6-type",
             "icmp6-code", "application-protocol", "alg", "inactivity-timeout", "rpc-program-number", "uuid",
             "ether-type", "snmp-command", "ttl-threshold", "sip-call-hold-timeout", "description")
TERM = _Schema({**{k: _leaf() for k in _APP_KEYS},
                "learn-sip-register": _flag(), "do-not-translate-A-query-to-AAAA-query": _flag(),
                "do-not-translate-AAAA-query-to-A-query": _flag()})
APPLICATION = _Schema({**TERM.keywords, "term": _cont(TERM, 1)})
APPLICATION_SET = _Schema({"application": _list(), "application-set": _list(), "description": _leaf()})
APPLICATIONS = _Schema({"application": _cont(APPLICATION, 1), "application-set": _cont(APPLICATION_SET, 1)},
                       other="note")

DNS_NAME = _Schema({"ipv4-only": _flag("family"), "ipv6-only": _flag("family")})
ADDRESS = _Schema({"description": _leaf(),
                   "range-address": _leaf(3, "address", ("*", "to", "*")),
                   "dns-name": _cont(DNS_NAME, 1, "address"),
                   "wildcard-address": _leaf(1, "address")},
                  default=_Spec("leaf", 0, None, "address", (), implicit="ip-prefix"))
ADDRESS_SET = _Schema({"address": _list(), "address-set": _list(), "description": _leaf()})
ADDRESS_BOOK = _Schema({"address": _cont(ADDRESS, 1), "address-set": _cont(ADDRESS_SET, 1),
                        "description": _leaf(), "attach": _cont(_Schema({"zone": _list()}, other="skip"))})

MATCH = _Schema({k: _list() for k in ("source-address", "destination-address", "application",
                                      "dynamic-application", "url-category", "source-identity", "from-zone",
                                      "to-zone", "source-l3vpn-vrf-group", "destination-l3vpn-vrf-group",
                                      "source-end-user-profile")}
                | {"source-address-excluded": _flag(), "destination-address-excluded": _flag()})
THEN = _Schema({"permit": _cont(REST, choice="action"), "deny": _cont(REST, choice="action"),
                "reject": _cont(REST, choice="action"), "log": _cont(REST), "count": _cont(REST)})
POLICY = _Schema({"match": _cont(MATCH), "then": _cont(THEN), "description": _leaf(),
                  "scheduler-name": _leaf(), "report-skip": _flag()})
POLICY_LIST = _Schema({"policy": _cont(POLICY, 1)}, other="note")
POLICIES = _Schema({"from-zone": _cont(POLICY_LIST, 3, pattern=("*", "to-zone", "*")),
                    "global": _cont(POLICY_LIST),
                    "default-policy": _cont(_Schema({"permit-all": _flag("default"),
                                                     "deny-all": _flag("default")})),
                    **{k: _SKIP_SPEC for k in ("policy-rematch", "policy-stats", "pre-id-default-policy",
                                               "traceoptions", "unified-policy", "stateful-firewall-rule")}},
                   other="note")
ZONE = _Schema({"address-book": _cont(ADDRESS_BOOK)}, other="skip")
NAT_MATCH = _Schema({k: _list() for k in ("source-address", "source-address-name", "destination-address",
                                          "destination-address-name")}, other="rest")
NAT_RULE = _Schema({"match": _cont(NAT_MATCH),
                    "then": _cont(_Schema({"destination-nat": _cont(_Schema({"off": _flag()}, other="rest")),
                                           "static-nat": _cont(REST)}, other="rest")),
                    "description": _leaf()}, other="rest")
NAT_RULE_SET = _Schema({"from": _cont(_Schema({"zone": _list(), "interface": _list(),
                                               "routing-instance": _list()}, other="rest")),
                        "rule": _cont(NAT_RULE, 1)}, other="skip")
NAT = _Schema({"destination": _cont(_Schema({"rule-set": _cont(NAT_RULE_SET, 1)}, other="skip")),
               "static": _cont(_Schema({"rule-set": _cont(NAT_RULE_SET, 1)}, other="skip"))}, other="skip")
SECURITY = _Schema({"policies": _cont(POLICIES),
                    "zones": _cont(_Schema({"security-zone": _cont(ZONE, 1)}, other="skip")),
                    "address-book": _cont(ADDRESS_BOOK, 1), "nat": _cont(NAT)}, other="skip")
ROOT = _Schema({"security": _cont(SECURITY), "applications": _cont(APPLICATIONS),
                "logical-systems": _Spec("skip"), "tenants": _Spec("skip")}, other="skip")
ROOT.keywords["groups"] = _cont(ROOT, 1)


@dataclass(eq=False)
class _Node:
    key: tuple[str, ...]
    line: int
    spec: _Spec | None
    children: dict[tuple[str, ...], _Node] = field(default_factory=dict)
    value: tuple[str, ...] = ()
    inactive: bool = False
    unknown: bool = False
    group: str | None = None

    def schema(self) -> _Schema | None:
        if self.unknown:
            return _UNKNOWN_REST
        return self.spec.schema if self.spec is not None else ROOT

    def kids(self, keyword: str) -> list[_Node]:
        """Active children of one statement keyword, in order."""
        return [c for c in self.children.values() if c.key[0] == keyword and not c.inactive]

    def kid(self, *key: str) -> _Node | None:
        c = self.children.get(key)
        return None if c is None or c.inactive else c


@dataclass
class _Step:
    parent: _Node | None
    node: _Node | None  # None: skipped
    schema: _Schema | None  # where the next words go (the node's own for containers)
    selector: str | None = None  # words ran out: every entry of this keyword (delete/deactivate)
    pending: tuple[str, ...] = ()  # words ran out in a curly block header: the inner block names it
    pending_inactive: bool = False


class _Tree:
    """The configuration as Junos keeps it: ordered, with ``set`` replacing single values."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.root = _Node((), 0, None)
        self.count = 0
        self.statements = 0
        self.notes: dict[str, None] = {}

    def err(self, message: str, line: int | None) -> InputError:
        return InputError(self.path, message, line)

    def new_node(self, key: tuple[str, ...], line: int, spec: _Spec | None, group: str | None = None) -> _Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.err(f"configuration too large (more than {MAX_NODES} statements)", line)
        return _Node(key, line, spec, group=group)

    def element(self, schema: _Schema, words: Sequence[str], i: int,
                line: int) -> tuple[_Spec, tuple[str, ...], tuple[str, ...], int]:
        """One statement element at ``words[i]``: its spec, key, value and the words it takes.

        A spec of kind ``skip`` takes the rest; an incomplete element has consumed < 0.
        """
        w = words[i]
        spec = schema.keywords.get(w)
        if spec is None and schema.other == "rest":
            return _Spec("rest"), tuple(words[i:]), (), len(words) - i
        if spec is None and w in ("apply-groups", "apply-groups-except"):
            spec = _APPLY
        if spec is None and schema.default is not None:
            d = schema.default
            return d, (d.implicit or w,), (w,), 1
        if spec is None:
            if schema.other in ("skip", "note"):
                if schema.other == "note":
                    self.notes[f"line {line}: statement {w!r} is not read by this importer"] = None
                return _SKIP_SPEC, (), (), len(words) - i
            return _Spec("unknown"), ("?", *words[i:]), (), len(words) - i
        if spec.kind == "skip":
            if w in ("logical-systems", "tenants"):
                self.notes[f"{w}: only the root system's policies are read (line {line})"] = None
            return spec, (), (), len(words) - i
        pattern = spec.args_pattern()
        args = tuple(words[i + 1:i + 1 + len(pattern)])
        if len(args) < len(pattern):
            return spec, (w,), args, -1
        for want, got in zip(pattern, args, strict=True):
            if want != "*" and got != want:
                raise self.err(f"'{w}' expects '{' '.join(pattern)}', not '{' '.join(args)}'", line)
        key = (w, *args) if spec.kind in ("cont", "list") else (w,)
        return spec, key, args, 1 + len(pattern)

    def walk(self, start: _Node | None, schema: _Schema | None, words: Sequence[str], line: int,
             create: bool, group: str | None = None, partial: bool = False) -> list[_Step] | None:
        """Follow (or create) the elements of ``words`` below ``start``; None if not found."""
        steps: list[_Step] = []
        node, i, depth = start, 0, 0
        while i < len(words):
            if node is None or schema is None or schema is SKIP:
                steps.append(_Step(None, None, SKIP))
                return steps
            spec, key, args, used = self.element(schema, words, i, line)
            if spec.kind == "skip":
                steps.append(_Step(node, None, SKIP))
                return steps
            if used < 0:
                if create and partial:  # "range-address A {" "to {" "B;": the inner blocks complete it
                    steps.append(_Step(node, None, schema, pending=tuple(words[i:])))
                    return steps
                if create:
                    raise self.err(f"'{words[i]}' needs a value", line)
                if spec.kind in ("leaf", "list", "flag"):
                    steps.append(_Step(node, None, schema, selector=words[i]))
                    return steps
                return None
            child = node.children.get(key)
            if child is None:
                if not create:
                    return None
                if spec.choice is not None:
                    for k in [k for k, c in node.children.items()
                              if c.spec is not None and c.spec.choice == spec.choice]:
                        del node.children[k]
                child = self.new_node(key, line, spec, group)
                child.unknown = spec.kind == "unknown"
                node.children[key] = child
            if create and spec.kind == "leaf":
                child.value = args
                child.line = line
            if spec.kind == "cont":
                steps.append(_Step(node, child, spec.schema))
                node, schema = child, spec.schema
                depth += 1
                if depth > MAX_DEPTH:
                    raise self.err(f"statement nested more than {MAX_DEPTH} levels deep", line)
            elif spec.kind in ("unknown", "rest"):
                steps.append(_Step(node, child, None))
            else:
                steps.append(_Step(node, child, schema))
            i += used
        return steps

    # -- commands --

    def set(self, ctx: _Step, words: Sequence[str], line: int, inactive: bool = False,
            partial: bool = False) -> list[_Step]:
        self.statements += 1
        words = [*ctx.pending, *words]
        inactive = inactive or ctx.pending_inactive
        steps = self.walk(ctx.node, ctx.schema, words, line, create=True, partial=partial) or []
        if inactive and steps and steps[0].node is not None:
            steps[0].node.inactive = True
        return steps

    def targets(self, ctx: _Step, words: Sequence[str], line: int) -> list[tuple[_Node, _Node]]:
        """(parent, node) pairs a delete/deactivate/activate path names (empty if none)."""
        if not words:
            return [(ctx.parent, ctx.node)] if ctx.parent is not None and ctx.node is not None else []
        steps = self.walk(ctx.node, ctx.schema, words, line, create=False)
        if not steps:
            return []
        last = steps[-1]
        if last.selector is not None and last.parent is not None:
            return [(last.parent, c) for c in last.parent.children.values() if c.key[0] == last.selector]
        if last.node is None or last.parent is None:
            return []
        return [(last.parent, last.node)]


# --- reading both forms into the tree ----------------------------------------------------------


def _read_curly(tree: _Tree, text: str) -> None:
    """The curly-brace hierarchy: each statement is applied below the blocks it is in."""
    root = _Step(None, tree.root, ROOT)
    stack: list[tuple[_Step, int]] = [(root, 0)]
    words: list[str] = []
    line = 0
    inactive = False
    tokens = _tokenize(text, tree.path)
    for tok in tokens:
        if tok.kind == "word":
            if not words and tok.value in _STATEMENT_PREFIXES:
                inactive = inactive or _STATEMENT_PREFIXES[tok.value]
                continue
            if not words:
                line = tok.line
            words.append(tok.value)
        elif tok.kind == ";":
            if words:
                tree.set(stack[-1][0], words, line, inactive)
            words, inactive = [], False
        elif tok.kind == "[":
            if not words:
                raise tree.err("'[' without a statement", tok.line)
            values: list[str] = []
            for t in tokens:
                if t.kind == "]":
                    break
                if t.kind != "word":
                    raise tree.err(f"unexpected '{t.value}' in a [ ] list", t.line)
                values.append(t.value)
            else:
                raise tree.err("unclosed '[' list", tok.line)
            end = next(tokens, None)
            if end is None or end.kind != ";":
                raise tree.err("a [ ] list must end its statement with ';'", tok.line)
            for v in values:
                tree.set(stack[-1][0], [*words, v], line, inactive)
            words, inactive = [], False
        elif tok.kind == "{":
            if not words:
                raise tree.err("'{' without a statement name", tok.line)
            if len(stack) > MAX_DEPTH:
                raise tree.err(f"blocks nested more than {MAX_DEPTH} deep", tok.line)
            ctx = stack[-1][0]
            steps = tree.set(ctx, words, line, inactive, partial=True)
            last = steps[-1] if steps else ctx
            if last.pending:  # "address-book {" … "global {": the inner header names the element
                stack.append((_Step(last.parent, last.parent, last.schema, pending=last.pending,
                                    pending_inactive=inactive or ctx.pending_inactive), line))
                words, inactive = [], False
                continue
            if last.node is not None and last.schema is not None and last is not ctx and \
                    last.node.spec is not None and last.node.spec.kind in ("leaf", "list", "flag"):
                raise tree.err(f"'{words[-1]}' does not take a block", line)
            if last.node is not None and last.schema is None:
                last = _Step(last.parent, last.node, _UNKNOWN_REST)
            stack.append((_Step(last.parent, last.node, last.schema), line))
            words, inactive = [], False
        elif tok.kind == "}":
            if words:
                raise tree.err(f"missing ';' after '{' '.join(words)}'", line)
            if len(stack) == 1:
                raise tree.err("'}' without a matching '{'", tok.line)
            stack.pop()
            inactive = False
        else:
            raise tree.err(f"unexpected '{tok.value}'", tok.line)
    if words:
        raise tree.err(f"missing ';' after '{' '.join(words)}'", line)
    if len(stack) > 1:
        raise tree.err("block not closed by '}'", stack[-1][1])


def _read_set(tree: _Tree, lines: list[str]) -> None:
    """``set`` commands (and the other configuration-mode commands a script may hold)."""
    root = _Step(None, tree.root, ROOT)
    edit: list[_Step] = [root]
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#") or _PROMPT.match(text):
            continue
        toks = list(_tokenize(text, tree.path, number))
        if not toks:
            continue
        if any(t.kind in "{};" for t in toks):
            raise tree.err("a set-form line cannot hold '{', '}' or ';' (mixed forms?)", number)
        if toks[0].kind != "word":
            raise tree.err(f"unexpected '{toks[0].value}'", number)
        verb = toks[0].value
        rest = toks[1:]
        ctx = edit[-1]
        if verb in _IGNORED_VERBS:
            continue
        if verb == "set":
            for words in _expand_brackets(tree, rest, number):
                if not words:
                    raise tree.err("'set' needs a statement", number)
                tree.set(ctx, words, number)
            continue
        words = _plain_words(tree, rest, number)
        if verb in ("deactivate", "activate"):
            for _parent, node in tree.targets(ctx, words, number):
                node.inactive = verb == "deactivate"
        elif verb == "delete":
            if not words and ctx.node is not None:
                ctx.node.children.clear()
                continue
            for parent, node in tree.targets(ctx, words, number):
                parent.children.pop(node.key, None)
        elif verb == "insert":
            _insert(tree, ctx, words, number)
        elif verb in ("rename", "copy"):
            _rename_or_copy(tree, ctx, verb, words, number)
        elif verb == "edit":
            steps = tree.walk(ctx.node, ctx.schema, words, number, create=True) or []
            for step in steps:
                kind = step.node.spec.kind if step.node is not None and step.node.spec is not None else "cont"
                if kind in ("leaf", "list", "flag"):
                    raise tree.err("'edit' needs a container, not a single statement", number)
                edit.append(step if kind == "cont" else _Step(step.parent, step.node, _UNKNOWN_REST))
        elif verb in ("up", "exit"):
            count = int(words[0]) if verb == "up" and words and words[0].isdigit() else 1
            if verb == "exit" and words and words[0] == "configuration-mode":
                continue
            del edit[max(1, len(edit) - count):]
        elif verb == "top":
            del edit[1:]
            if words:
                raise tree.err("'top' with a command is not supported", number)
        elif verb in ("quit", "load", "wildcard"):
            raise tree.err(f"'{verb}' cannot be replayed from a file", number)
        else:
            raise tree.err(f"unknown command {verb!r} (expected set, delete, deactivate …)", number)


def _expand_brackets(tree: _Tree, toks: list[_Tok], line: int) -> list[list[str]]:
    """``set … source-address [ a b ]`` is one statement per value."""
    words: list[str] = []
    for k, t in enumerate(toks):
        if t.kind == "[":
            values = [v.value for v in toks[k + 1:] if v.kind == "word"]
            if not toks[-1].kind == "]" or any(v.kind in "[" for v in toks[k + 1:]):
                raise tree.err("a [ ] list must end the statement", line)
            return [[*words, v] for v in values]
        if t.kind != "word":
            raise tree.err(f"unexpected '{t.value}'", line)
        words.append(t.value)
    return [words]


def _plain_words(tree: _Tree, toks: list[_Tok], line: int) -> list[str]:
    for t in toks:
        if t.kind != "word":
            raise tree.err(f"unexpected '{t.value}'", line)
    return [t.value for t in toks]


def _split_at(tree: _Tree, words: list[str], separators: tuple[str, ...],
              line: int) -> tuple[list[str], str, list[str]]:
    for k in range(len(words) - 1, 0, -1):
        if words[k] in separators:
            return words[:k], words[k], words[k + 1:]
    raise tree.err(f"expected '{' or '.join(separators)}' in the command", line)


def _insert(tree: _Tree, ctx: _Step, words: list[str], line: int) -> None:
    """``insert PATH before|after ELEMENT``: reorder one element among its siblings."""
    what, where, ref = _split_at(tree, words, ("before", "after"), line)
    found = tree.targets(ctx, what, line)
    if len(found) != 1:
        raise tree.err(f"insert: '{' '.join(what)}' is not configured", line)
    parent, node = found[0]
    schema = parent.schema()
    anchor = tree.walk(parent, schema, ref, line, create=False) if schema is not None else None
    if not anchor or anchor[0].node is None or anchor[0].node.key not in parent.children:
        raise tree.err(f"insert: '{' '.join(ref)}' is not configured", line)
    target = anchor[0].node.key
    if target == node.key:
        raise tree.err("insert: an element cannot be placed relative to itself", line)
    items = [(k, v) for k, v in parent.children.items() if k != node.key]
    pos = next(i for i, (k, _) in enumerate(items) if k == target) + (where == "after")
    items.insert(pos, (node.key, node))
    parent.children = dict(items)


def _rename_or_copy(tree: _Tree, ctx: _Step, verb: str, words: list[str], line: int) -> None:
    what, _, new = _split_at(tree, words, ("to",), line)
    found = tree.targets(ctx, what, line)
    if len(found) != 1:
        raise tree.err(f"{verb}: '{' '.join(what)}' is not configured", line)
    parent, node = found[0]
    schema = parent.schema()
    if schema is None or not new:
        raise tree.err(f"{verb}: nothing to {verb} to", line)
    spec, key, _, used = tree.element(schema, new, 0, line)
    if used != len(new) or spec.kind != "cont" or key[0] != node.key[0]:
        raise tree.err(f"{verb}: '{' '.join(new)}' is not a name for '{' '.join(node.key)}'", line)
    if key in parent.children:
        raise tree.err(f"{verb}: '{' '.join(new)}' already exists", line)
    if verb == "copy":
        copy = _clone(tree, node)
        copy.key = key
        parent.children[key] = copy
    else:
        items = [((key if k == node.key else k), v) for k, v in parent.children.items()]
        node.key = key
        parent.children = dict(items)


def _clone(tree: _Tree, node: _Node) -> _Node:
    copy = tree.new_node(node.key, node.line, node.spec, node.group)
    copy.value, copy.inactive, copy.unknown = node.value, node.inactive, node.unknown
    for k, c in node.children.items():
        copy.children[k] = _clone(tree, c)
    return copy


# --- groups ------------------------------------------------------------------------------------


def _key_matches(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if len(pattern) != len(key):
        return False
    for p, k in zip(pattern, key, strict=True):
        if p.startswith("<") and p.endswith(">") and len(p) > 2:
            if not fnmatch.fnmatchcase(k, p[1:-1]):
                return False
        elif p != k:
            return False
    return True


def _is_wild(key: tuple[str, ...]) -> bool:
    return any(p.startswith("<") and p.endswith(">") and len(p) > 2 for p in key)


def _apply_groups(tree: _Tree) -> None:
    """Inherit ``apply-groups`` (local statements win; inherited elements come after local ones).

    A group applied at a level contributes its own statements at that same path (``<…>`` keys
    matching the local elements they name); groups applied above reach every level below unless
    an ``apply-groups-except`` names them. ``junos-defaults`` is applied at the top implicitly.
    """
    groups = {c.key[1]: c for c in tree.root.kids("groups")}
    if not groups:
        return
    for name, group in groups.items():
        stack = [group]
        while stack:
            node = stack.pop()
            nested = node.kids("apply-groups")
            if nested:
                tree.notes[f"line {nested[0].line}: group {name} applies other groups: not inherited"] = None
                break
            stack.extend(c for c in node.children.values() if not c.inactive)

    def resolve(nodes: list[_Node]) -> list[str]:
        out = []
        for c in nodes:
            name = c.key[1]
            if "$" in name:
                pick = "node0" if "node0" in groups else None
                tree.notes[f"line {c.line}: apply-groups {name} is read as {pick or 'nothing'}"] = None
                if pick:
                    out.append(pick)
            elif name in groups:
                out.append(name)
            else:
                tree.notes[f"line {c.line}: apply-groups {name}: no such group"] = None
        return out

    def twin(group: _Node, path: list[tuple[str, ...]]) -> _Node | None:
        cur = group
        for key in path:
            nxt = cur.children.get(key)
            if nxt is None:
                nxt = next((c for k, c in cur.children.items() if _key_matches(k, key)), None)
            if nxt is None or nxt.inactive:
                return None
            cur = nxt
        return cur

    def visit(node: _Node, path: list[tuple[str, ...]], inherited: list[tuple[str, _Node]]) -> None:
        if len(path) > MAX_DEPTH:
            return
        excepted = {c.key[1] for c in node.kids("apply-groups-except")}
        here = [(g, gn) for g, gn in inherited if g not in excepted]
        if not path and "junos-defaults" in groups:
            here.append(("junos-defaults", groups["junos-defaults"]))
        for g in resolve(node.kids("apply-groups")):
            gn = twin(groups[g], path)
            if gn is not None:
                here.append((g, gn))
        for g, gnode in here:  # what the groups add at this level, after the local elements
            for gkey, gchild in gnode.children.items():
                if gchild.inactive or _is_wild(gkey) or gkey in node.children or \
                        gkey[0] in ("groups", "apply-groups", "apply-groups-except"):
                    continue
                choice = gchild.spec.choice if gchild.spec is not None else None
                if choice and any(c.spec is not None and c.spec.choice == choice for c in node.children.values()):
                    continue
                copy = tree.new_node(gkey, gchild.line, gchild.spec, g)
                copy.value, copy.unknown = gchild.value, gchild.unknown
                node.children[gkey] = copy
        for child in list(node.children.values()):
            if child.key[0] == "groups":
                continue
            twins = [(g, gc) for g, gnode in here for gk, gc in gnode.children.items()
                     if not gc.inactive and _key_matches(gk, child.key)]
            if twins or child.children:
                visit(child, [*path, child.key], twins)

    visit(tree.root, [], [])


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Approx:
    """A condition as two sets: what certainly matches (``lo``) and what may match (``hi``)."""

    lo: IntervalSet
    hi: IntervalSet
    reasons: tuple[str, ...] = ()


# An application term: (proto, sport, dport, icmp_type, icmp_code), None = any.
_Term = tuple[IntervalSet | None, IntervalSet | None, IntervalSet | None, IntervalSet | None, IntervalSet | None]
_ANY_TERM: _Term = (None, None, None, None, None)


@dataclass(frozen=True)
class _App:
    lo: frozenset[_Term]
    hi: frozenset[_Term]
    reasons: tuple[str, ...] = ()


_APP_ANY = _App(frozenset({_ANY_TERM}), frozenset({_ANY_TERM}))


def _union_apps(apps: Iterable[_App]) -> _App:
    lo: set[_Term] = set()
    hi: set[_Term] = set()
    reasons: dict[str, None] = {}
    for a in apps:
        lo |= a.lo
        hi |= a.hi
        reasons.update(dict.fromkeys(a.reasons))
    return _App(frozenset(lo), frozenset(hi), tuple(reasons))


def _terms_expr(terms: frozenset[_Term]) -> Expr:
    if _ANY_TERM in terms:
        return TRUE
    merged = _merge_terms(terms)
    parts = []
    for proto, sport, dport, itype, icode in merged:
        conds = [FieldIn(name, values) for name, values in (("proto", proto), ("sport", sport), ("dport", dport),
                                                            ("icmp_type", itype), ("icmp_code", icode))
                 if values is not None]
        parts.append(all_of(*conds))
    return any_of(*parts)


def _term_sort_key(t: _Term) -> tuple:
    return tuple(() if v is None else v.intervals for v in t)


def _merge_terms(terms: Iterable[_Term]) -> list[_Term]:
    """Fewer, equivalent terms: destination ports of otherwise equal terms in one set, then protocols."""

    def merge(groups: dict[tuple, list[IntervalSet | None]]) -> dict[tuple, IntervalSet | None]:
        out: dict[tuple, IntervalSet | None] = {}
        for k, values in groups.items():
            out[k] = None if any(v is None for v in values) else \
                IntervalSet(iv for v in values if v is not None for iv in v.intervals)
        return out

    by_rest: dict[tuple, list[IntervalSet | None]] = {}
    for proto, sport, dport, itype, icode in terms:
        by_rest.setdefault((proto, sport, itype, icode), []).append(dport)
    by_proto: dict[tuple, list[IntervalSet | None]] = {}
    for (proto, sport, itype, icode), dport in merge(by_rest).items():
        by_proto.setdefault((sport, dport, itype, icode), []).append(proto)
    out = [(proto, sport, dport, itype, icode) for (sport, dport, itype, icode), proto in merge(by_proto).items()]
    return sorted(out, key=_term_sort_key)


def _spec_term(spec: str) -> _Term:
    """A predefined-table spec ("tcp/80", "icmp:8", "icmp6:1:3", "proto:47") as a term."""
    if spec.startswith("proto:"):
        return (IntervalSet.of(int(spec[6:])), None, None, None, None)
    if "/" in spec:
        proto, ports = spec.split("/")
        lo, _, hi = ports.partition("-")
        return (IntervalSet.of(PROTOCOLS[proto]), None, IntervalSet([(int(lo), int(hi or lo))]), None, None)
    name, *rest = spec.split(":")
    itype = IntervalSet.of(int(rest[0])) if rest else None
    icode = IntervalSet.of(int(rest[1])) if len(rest) > 1 else None
    return (IntervalSet.of(PROTOCOLS[name]), None, None, itype, icode)


def _predefined(name: str) -> _App | None:
    if name in PREDEFINED_APPS:
        terms = frozenset(_spec_term(s) for s in PREDEFINED_APPS[name])
        return _App(terms, terms)
    if name in PREDEFINED_APPROX:
        lo, hi, why = PREDEFINED_APPROX[name]
        return _App(frozenset(_spec_term(s) for s in lo), frozenset(_spec_term(s) for s in hi), (why,))
    if name in PREDEFINED_SETS:
        return _union_apps(a for a in (_predefined(m) for m in PREDEFINED_SETS[name]) if a is not None)
    for family, port in (("ms-rpc", 135), ("sun-rpc", 111)):
        if name == f"junos-{family}-tcp" or name == f"junos-{family}-udp":
            proto = name.rsplit("-", 1)[1]
            exact = (IntervalSet.of(PROTOCOLS[proto]), None, IntervalSet.of(port), None, None)
            wide = (IntervalSet.of(PROTOCOLS[proto]), None, None, None, None)
            return _App(frozenset({exact}), frozenset({wide}), (_RPC_REASON.format(name=name, proto=proto),))
        if name.startswith(f"junos-{family}"):
            protos = ("udp",) if name.endswith("-udp") else ("tcp",) if name.endswith("-tcp") else ("tcp", "udp")
            wide_terms = frozenset((IntervalSet.of(PROTOCOLS[p]), None, None, None, None) for p in protos)
            return _App(frozenset(), wide_terms, (_RPC_REASON.format(name=name, proto="/".join(protos)),))
    return None


# --- the importer ------------------------------------------------------------------------------


class _Importer:
    def __init__(self, path: str, interfaces: Sequence[str]) -> None:
        self.path = path
        self.interfaces = tuple(interfaces)
        self.tree = _Tree(path)
        self.notes: dict[str, None] = {}
        self._addr_memo: dict[tuple[int, str], _Approx] = {}
        self._app_memo: dict[str, _App] = {}

    def err(self, message: str, line: int | None) -> InputError:
        return InputError(self.path, message, line)

    # -- reading --

    def read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise InputError(self.path, f"cannot read the file: {exc.strerror or exc}") from None
        if len(data) > MAX_FILE_BYTES:
            raise InputError(self.path, f"file larger than {MAX_FILE_BYTES} bytes")
        if b"\x00" in data:
            raise InputError(self.path, "binary file (NUL bytes): not a Junos configuration")
        text = data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if _detect_set_form(lines, self.path):
            self.notes["set-command form"] = None
            _read_set(self.tree, lines)
        else:
            self.notes["curly-brace form"] = None
            # copied from a terminal: prompts, {master:0} and [edit] lines are not configuration
            _read_curly(self.tree, "\n".join("" if _PROMPT.match(x) else x for x in lines))
        _apply_groups(self.tree)
        self.notes.update(self.tree.notes)
        if self.tree.statements == 0:
            raise InputError(self.path, "no configuration statements found")

    # -- names --

    def books_for(self, zone: str | None) -> list[_Node]:
        """Address books searched for a name used with ``zone`` (None: the global book only)."""
        sec = self.tree.root.kid("security")
        books: list[_Node] = []
        if sec is None:
            return books
        if zone is not None:
            zones = sec.kid("zones")
            z = zones.kid("security-zone", zone) if zones is not None else None
            ab = z.kid("address-book") if z is not None else None
            if ab is not None:
                books.append(ab)
            for b in sec.kids("address-book"):
                attach = b.kid("attach")
                if b.key[1] != "global" and attach is not None and attach.kid("zone", zone) is not None:
                    books.append(b)
        glob = sec.kid("address-book", "global")
        if glob is not None:
            books.append(glob)
        return books

    def address(self, name: str, zone: str | None, line: int) -> _Approx:
        if name == "any":
            return _Approx(ALL_ADDRESSES, ALL_ADDRESSES)
        if name == "any-ipv4":
            return _Approx(ALL_V4, ALL_V4)
        if name == "any-ipv6":
            return _Approx(ALL_V6, ALL_V6)
        for book in self.books_for(zone):
            if book.kid("address", name) is not None or book.kid("address-set", name) is not None:
                return self.book_entry(book, name)
        where = f"the address book of zone {zone} or the global one" if zone else "the global address book"
        return _Approx(IntervalSet(), ALL_ADDRESSES, (f"address {name!r} is not defined in {where}",))

    def book_entry(self, book: _Node, name: str) -> _Approx:
        """An address or (nested) address-set of one book, resolved without recursion."""
        key = (id(book), name)
        hit = self._addr_memo.get(key)
        if hit is not None:
            return hit
        on_path: set[str] = set()
        stack: list[tuple[str, bool]] = [(name, False)]
        while stack:
            current, expanded = stack.pop()
            ck = (id(book), current)
            if ck in self._addr_memo and not expanded:
                continue
            addr = book.kid("address", current)
            aset = book.kid("address-set", current)
            if addr is not None and aset is None:
                self._addr_memo[ck] = self.address_value(addr)
                continue
            if aset is None:
                self._addr_memo[ck] = _Approx(IntervalSet(), ALL_ADDRESSES,
                                              (f"address {current!r} is not defined in its address book",))
                continue
            members = [c.key[1] for c in aset.kids("address")] + [c.key[1] for c in aset.kids("address-set")]
            if not expanded:
                if current in on_path:
                    raise self.err(f"address-set {current!r} contains itself", aset.line)
                on_path.add(current)
                stack.append((current, True))
                for m in members:
                    if (id(book), m) not in self._addr_memo:
                        if m in on_path:
                            raise self.err(f"address-set {m!r} contains itself", aset.line)
                        stack.append((m, False))
                continue
            on_path.discard(current)
            lo, hi, reasons = _union_approx(self._addr_memo[(id(book), m)] for m in members)
            unknown = [c for c in aset.children.values() if c.unknown and not c.inactive]
            if unknown:
                hi = ALL_ADDRESSES
                reasons[f"address-set {current!r}: unknown statement '{' '.join(unknown[0].key[1:])}'"] = None
            self._addr_memo[ck] = _Approx(lo, hi, tuple(reasons))
        return self._addr_memo[key]

    def address_value(self, node: _Node) -> _Approx:
        name = node.key[1]
        for c in node.children.values():
            if c.inactive:
                continue
            if c.unknown:
                return _Approx(IntervalSet(), ALL_ADDRESSES,
                               (f"address {name!r}: unknown statement '{' '.join(c.key[1:])}'",))
        prefix = node.kid("ip-prefix")
        if prefix is not None:
            return self.prefix_value(prefix.value[0], prefix.line)
        rng = node.kid("range-address")
        if rng is not None:
            lo, hi = self.ip(rng.value[0], rng.line), self.ip(rng.value[2], rng.line)
            if (lo >= V6_BASE) != (hi >= V6_BASE) or lo > hi:
                raise self.err(f"range-address {rng.value[0]} to {rng.value[2]} is not a range", rng.line)
            s = IntervalSet([(lo, hi)])
            return _Approx(s, s)
        wild = node.kid("wildcard-address")
        if wild is not None:
            return self.wildcard(wild.value[0], wild.line)
        dns = next(iter(node.kids("dns-name")), None)
        if dns is not None:
            family = ALL_V4 if dns.kid("ipv4-only") else ALL_V6 if dns.kid("ipv6-only") else ALL_ADDRESSES
            return _Approx(IntervalSet(), family, (f"address {name!r} is the DNS name {dns.key[1]}, "
                                                   f"resolved at run time",))
        return _Approx(IntervalSet(), ALL_ADDRESSES, (f"address {name!r} has no value",))

    def ip(self, text: str, line: int) -> int:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise self.err(f"cannot read address {text!r}", line) from None
        return int(ip) if ip.version == 4 else V6_BASE + int(ip)

    def prefix_value(self, text: str, line: int) -> _Approx:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise self.err(f"cannot read address {text!r}", line) from None
        base = 0 if net.version == 4 else V6_BASE
        s = IntervalSet([(base + int(net.network_address), base + int(net.broadcast_address))])
        return _Approx(s, s)

    def wildcard(self, text: str, line: int) -> _Approx:
        """``wildcard-address A/M``: the addresses equal to A on the bits set in M."""
        addr_text, _, mask_text = text.partition("/")
        try:
            addr = ipaddress.ip_address(addr_text)
            bits = addr.max_prefixlen
            if mask_text.isdigit():
                if int(mask_text) > bits:
                    raise ValueError(mask_text)
                mask = ((1 << bits) - 1) ^ ((1 << (bits - int(mask_text))) - 1)
            else:
                mask = int(ipaddress.ip_address(mask_text))
                if ipaddress.ip_address(mask_text).version != addr.version:
                    raise ValueError(mask_text)
        except ValueError:
            raise self.err(f"cannot read wildcard address {text!r}", line) from None
        base = 0 if addr.version == 4 else V6_BASE
        value = int(addr) & mask
        free = ((1 << bits) - 1) & ~mask
        run = 0  # the contiguous free low bits form each interval
        while run < bits and (free >> run) & 1:
            run += 1
        high_free = [b for b in range(run, bits) if (free >> b) & 1]
        if 1 << len(high_free) > MAX_WILDCARD_INTERVALS:
            hull = IntervalSet([(base + value, base + (value | free))])
            return _Approx(IntervalSet(), hull, (f"wildcard-address {text} spans too many ranges: taken as its hull",))
        intervals = []
        for k in range(1 << len(high_free)):
            v = value
            for j, b in enumerate(high_free):
                if (k >> j) & 1:
                    v |= 1 << b
            intervals.append((base + v, base + v + (1 << run) - 1))
        s = IntervalSet(intervals)
        return _Approx(s, s)

    def addresses(self, names: list[_Node], zone: str | None, what: str) -> _Approx:
        if not names:
            return _Approx(IntervalSet(), ALL_ADDRESSES,
                           (f"no match {what} (Junos requires one): taken as any",))
        lo, hi, reasons = _union_approx(self.address(n.key[1], zone, n.line) for n in names)
        return _Approx(lo, hi, tuple(reasons))

    # -- applications --

    def application(self, name: str, line: int) -> _App:
        if name == "any":
            return _APP_ANY
        hit = self._app_memo.get(name)
        if hit is not None:
            return hit
        # explicit stack: application-sets nest without bound
        on_path: set[str] = set()
        stack: list[tuple[str, bool]] = [(name, False)]
        while stack:
            current, expanded = stack.pop()
            if current in self._app_memo and not expanded:
                continue
            apps = self.tree.root.kid("applications")
            app = apps.kid("application", current) if apps is not None else None
            aset = apps.kid("application-set", current) if apps is not None else None
            if aset is None:
                self._app_memo[current] = self.application_value(app) if app is not None else \
                    self.predefined(current)
                continue
            members = [c.key[1] for c in aset.kids("application") + aset.kids("application-set")]
            if not expanded:
                if current in on_path:
                    raise self.err(f"application-set {current!r} contains itself", aset.line)
                on_path.add(current)
                stack.append((current, True))
                for m in members:
                    if m in on_path:
                        raise self.err(f"application-set {m!r} contains itself", aset.line)
                    if m not in self._app_memo and m != "any":
                        stack.append((m, False))
                continue
            on_path.discard(current)
            value = _union_apps(_APP_ANY if m == "any" else self._app_memo[m] for m in members)
            unknown = [c for c in aset.children.values() if c.unknown and not c.inactive]
            if unknown:
                value = _App(value.lo, frozenset({_ANY_TERM}),
                             (*value.reasons, f"application-set {current!r}: unknown statement "
                                              f"'{' '.join(unknown[0].key[1:])}'"))
            self._app_memo[current] = value
        return self._app_memo[name]

    def predefined(self, name: str) -> _App:
        value = _predefined(name)
        if value is not None:
            return value
        if name.startswith("junos-"):
            why = f"predefined application {name!r} is not in this importer's table: taken as any for allows"
        else:
            why = f"application {name!r} is not defined in the file: taken as any for allows"
        return _App(frozenset(), frozenset({_ANY_TERM}), (why,))

    def application_value(self, node: _Node) -> _App:
        terms = node.kids("term")
        own = [c for c in node.children.values() if not c.inactive and c.key[0] not in ("term", "description")]
        if terms and any(c.key[0] in ("protocol", "destination-port", "source-port") for c in own):
            raise self.err(f"application {node.key[1]!r} has both terms and its own protocol or ports", node.line)
        if not terms:
            return self.term_value(node, node.key[1])
        return _union_apps(self.term_value(t, f"{node.key[1]} term {t.key[1]}") for t in terms)

    def term_value(self, node: _Node, what: str) -> _App:
        def leaf(kw: str) -> _Node | None:
            return node.kid(kw)

        reasons: list[str] = []
        proto: IntervalSet | None = None
        p = leaf("protocol")
        if p is not None:
            proto = IntervalSet.of(self.protocol(p.value[0], p.line))
        sport = self.ports(leaf("source-port"))
        dport = self.ports(leaf("destination-port"))
        if sport is not None or dport is not None:
            proto = PORT_PROTOS if proto is None else proto & PORT_PROTOS
        itype = icode = None
        for prefix, proto_num, types, codes in (("icmp", PROTO_ICMP, ICMP_TYPES, ICMP_CODES),
                                                ("icmp6", PROTO_ICMPV6, ICMP6_TYPES, ICMP6_CODES)):
            t, c = leaf(f"{prefix}-type"), leaf(f"{prefix}-code")
            if t is None and c is None:
                continue
            only = IntervalSet.of(proto_num)
            proto = only if proto is None else proto & only
            if t is not None:
                itype = IntervalSet.of(self.number(t.value[0], types, 255, f"{prefix}-type", t.line))
            if c is not None:
                icode = IntervalSet.of(self.number(c.value[0], codes, 255, f"{prefix}-code", c.line))
        exact: _Term = (proto, sport, dport, itype, icode)
        wide: _Term | None = exact
        for kw in ("rpc-program-number", "uuid"):
            if leaf(kw) is not None:
                wide = (proto, None, None, None, None)
                reasons.append(f"application {what}: {kw} (an RPC service) is reached on ports negotiated "
                               f"through the port mapper; taken as any port for allows")
        for kw in ("ether-type", "snmp-command", "ttl-threshold"):
            if leaf(kw) is not None:
                reasons.append(f"application {what}: {kw} is not modelled")
        unknown = [c for c in node.children.values() if c.unknown and not c.inactive]
        if unknown:
            reasons.append(f"application {what}: unknown statement '{' '.join(unknown[0].key[1:])}'")
            wide = _ANY_TERM
        if proto is not None and not proto:
            return _App(frozenset(), frozenset(), tuple(reasons))
        lo = frozenset() if reasons else frozenset({exact})
        return _App(lo, frozenset({wide}), tuple(reasons))

    def protocol(self, text: str, line: int) -> int:
        if text in PROTOCOLS:
            return PROTOCOLS[text]
        if text.isdigit() and int(text) <= 255:
            return int(text)
        raise self.err(f"unknown protocol {text!r}", line)

    def number(self, text: str, names: dict[str, int], top: int, what: str, line: int) -> int:
        if text in names:
            return names[text]
        if text.isdigit() and int(text) <= top:
            return int(text)
        raise self.err(f"cannot read {what} {text!r}", line)

    def ports(self, node: _Node | None) -> IntervalSet | None:
        if node is None:
            return None
        text = node.value[0]
        lo_text, dash, hi_text = text.partition("-")
        if text in PORT_NAMES:
            return IntervalSet.of(PORT_NAMES[text])
        lo = self.port(lo_text, node.line)
        hi = self.port(hi_text, node.line) if dash else lo
        if lo > hi:
            raise self.err(f"invalid port range {text!r}", node.line)
        return IntervalSet([(lo, hi)])

    def port(self, text: str, line: int) -> int:
        if text in PORT_NAMES:
            return PORT_NAMES[text]
        if not text.isdigit():
            raise self.err(f"cannot read port {text!r}", line)
        value = int(text)
        if value > 65535:
            raise self.err(f"port {text} out of range", line)
        return value

    def applications(self, names: list[_Node]) -> _App:
        if not names:
            return _App(frozenset(), frozenset({_ANY_TERM}),
                        ("no match application (Junos requires one): taken as any",))
        return _union_apps(self.application(n.key[1], n.line) for n in names)

    # -- policies --

    def policy_rule(self, node: _Node, rid: str, src_zone: str | None, dst_zone: str | None,
                    in_ifaces: frozenset[str] | None, out_ifaces: frozenset[str] | None) -> Rule:
        match = node.kid("match")
        then = node.kid("then")
        name = node.kid("description")
        reasons: dict[str, None] = {}
        lo_parts: list[Expr] = []
        hi_parts: list[Expr] = []

        def add(lo: Expr, hi: Expr, why: Iterable[str]) -> None:
            lo_parts.append(lo)
            hi_parts.append(hi)
            reasons.update(dict.fromkeys(why))

        m = match if match is not None else _Node((), node.line, None)
        for kw, zone, fieldname in (("source-address", src_zone, "src"), ("destination-address", dst_zone, "dst")):
            a = self.addresses(m.kids(kw), zone, kw)
            lo, hi = a.lo, a.hi
            if m.kid(f"{kw}-excluded") is not None:
                lo, hi = ALL_ADDRESSES - a.hi, ALL_ADDRESSES - a.lo
            add(_addr_expr(fieldname, lo), _addr_expr(fieldname, hi), a.reasons)
        app = self.applications(m.kids("application"))
        add(_terms_expr(app.lo), _terms_expr(app.hi), app.reasons)
        for kw, exact in (("dynamic-application", ("any", "none")), ("url-category", ("any", "none")),
                          ("source-identity", ("any",)), ("source-end-user-profile", ()),
                          ("source-l3vpn-vrf-group", ()), ("destination-l3vpn-vrf-group", ())):
            values = [c.key[1] for c in m.kids(kw)]
            if values and not all(v in exact for v in values):
                add(FALSE, TRUE, (f"match {kw} {' '.join(values)} is known only at run time",))
        if src_zone is not None:
            for kw in ("from-zone", "to-zone"):
                if m.kids(kw):
                    add(FALSE, TRUE, (f"match {kw} in a zone-pair policy is not valid Junos",))
        unknown = [c for c in m.children.values() if c.unknown and not c.inactive]
        unknown += [c for c in node.children.values() if c.unknown and not c.inactive]
        if unknown:
            # its words may hide other conditions: the policy may match anything in its zones
            lo_parts, hi_parts = [FALSE], [TRUE]
            reasons[f"unknown statement '{' '.join(unknown[0].key[1:])}'"] = None
        if match is None:
            reasons["the policy has no match (Junos requires one)"] = None
        sched = node.kid("scheduler-name")
        if sched is not None:
            add(FALSE, TRUE, (f"scheduler {sched.value[0]!r}: active only at some times",))
        action: Action = "allow"
        act = None
        if then is not None:
            acts = [c for c in then.children.values() if c.key[0] in ("permit", "deny", "reject") and not c.inactive]
            act = acts[-1] if acts else None
            other = [c for c in then.children.values() if c.unknown and not c.inactive]
            if other:
                reasons[f"unknown action statement '{' '.join(other[0].key[1:])}'"] = None
                if act is not None and act.key[0] != "permit":
                    lo_parts = [FALSE]  # a deny that may not be one: taken as not matching
        if act is None:
            reasons.setdefault("no action (then permit, deny or reject): taken as permit", None)
        elif act.key[0] in ("deny", "reject"):
            action = "deny"
        else:
            for c in act.children.values():
                words = c.key
                if "firewall-authentication" in words:
                    reasons["permit firewall-authentication: allowed only for authenticated users"] = None
                elif "destination-address" in words:
                    reasons[f"permit {' '.join(words)} depends on NAT"] = None
        expr = all_of(*(hi_parts if action == "allow" else lo_parts))
        approx = "; ".join(reasons) or None
        if approx and len(approx) > MAX_REASON:
            approx = approx[:MAX_REASON - 1] + "…"
        return Rule(rid, action, expr, in_ifaces, out_ifaces, SourceRef(self.path, node.line),
                    name.value[0] if name is not None and name.value else None, approx)

    def nat_rules(self, sec: _Node) -> list[Rule]:
        """Destination and static NAT, before the policies: approximated allows on their own match."""
        nat = sec.kid("nat")
        out: list[Rule] = []
        if nat is None:
            return out
        for kind in ("destination", "static"):
            part = nat.kid(kind)
            if part is None:
                continue
            for rs in part.kids("rule-set"):
                frm = rs.kid("from")
                zones = frozenset(c.key[1] for c in frm.kids("zone")) if frm is not None else frozenset()
                other_from = frm is not None and any(c.key[0] != "zone" for c in frm.children.values()
                                                     if not c.inactive)
                in_ifaces = zones if zones and not other_from else None
                for rule in rs.kids("rule"):
                    then = rule.kid("then")
                    trans = then.kid(f"{kind}-nat") if then is not None else None
                    if trans is None or trans.kid("off") is not None:
                        continue
                    match = rule.kid("match") or _Node((), rule.line, None)
                    parts = []
                    for fieldname, kws in (("src", ("source-address", "source-address-name")),
                                           ("dst", ("destination-address", "destination-address-name"))):
                        values = IntervalSet()
                        given = False
                        for kw in kws:
                            for c in match.kids(kw):
                                given = True
                                a = (self.prefix_value(c.key[1], c.line) if not kw.endswith("-name")
                                     else self.address(c.key[1], None, c.line))
                                values = values | a.hi
                        if given:
                            parts.append(_addr_expr(fieldname, values))
                    why = (f"{kind} NAT rule-set {rs.key[1]} rule {rule.key[1]} translates destinations before "
                           f"the policies are checked: the packets it may translate are taken as passing")
                    desc = rule.kid("description")
                    out.append(Rule(f"nat:{kind}:{rs.key[1]}:{rule.key[1]}", "allow", all_of(*parts), in_ifaces,
                                    None, SourceRef(self.path, rule.line), desc.value[0] if desc else None, why))
        return out

    def run(self) -> RuleSet:
        self.read()
        rules: list[Rule] = []
        default: Action = "deny"
        sec = self.tree.root.kid("security")
        pols = sec.kid("policies") if sec is not None else None
        if sec is not None:
            rules.extend(self.nat_rules(sec))
        if pols is not None:
            for pair in pols.kids("from-zone"):
                a, b = pair.key[1], pair.key[3]
                for p in pair.kids("policy"):
                    rules.append(self.policy_rule(p, f"{a}>{b}:{p.key[1]}", a, b, frozenset({a}), frozenset({b})))
            glob = pols.kid("global")
            for p in glob.kids("policy") if glob is not None else []:
                match = p.kid("match")
                ifaces = []
                for kw in ("from-zone", "to-zone"):
                    zones = [c.key[1] for c in match.kids(kw)] if match is not None else []
                    ifaces.append(None if not zones or "any" in zones else frozenset(zones))
                rules.append(self.policy_rule(p, f"global:{p.key[1]}", None, None, ifaces[0], ifaces[1]))
            dp = pols.kid("default-policy")
            if dp is not None and dp.kid("permit-all") is not None:
                default = "allow"
        if not rules and pols is None:
            self.notes["no security policies in the file: every packet meets the default deny-all"] = None
        zones = {z for r in rules for ifs in (r.in_ifaces, r.out_ifaces) if ifs for z in ifs}
        missing = sorted(zones - set(self.interfaces))
        if missing:
            self.notes[f"zones in no topology interface (their policies never apply): {', '.join(missing)}"] = None
        self.notes[f"default-policy {'permit-all' if default == 'allow' else 'deny-all'}"] = None
        return RuleSet(tuple(rules), default, tuple(self.notes))


def _union_approx(parts: Iterable[_Approx]) -> tuple[IntervalSet, IntervalSet, dict[str, None]]:
    """One union of many address sets (building it pairwise would be quadratic)."""
    lo: list[tuple[int, int]] = []
    hi: list[tuple[int, int]] = []
    reasons: dict[str, None] = {}
    for p in parts:
        lo.extend(p.lo.intervals)
        hi.extend(p.hi.intervals)
        reasons.update(dict.fromkeys(p.reasons))
    return IntervalSet(lo), IntervalSet(hi), reasons


def _addr_expr(fieldname: str, values: IntervalSet) -> Expr:
    if values == ALL_ADDRESSES:
        return TRUE
    if not values:
        return FALSE
    return FieldIn(fieldname, values)


def load(path: str, interfaces: Sequence[str]) -> RuleSet:
    """The security-policy decision of a Junos (SRX) configuration, curly-brace or ``set`` form."""
    try:
        return _Importer(path, interfaces).run()
    except RecursionError:
        raise InputError(path, "configuration nested too deeply") from None
