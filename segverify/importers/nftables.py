"""``nft list ruleset`` importer (and, with :mod:`.nftables_json`, ``nft -j list ruleset``).

The output is a flat, ordered, first-match RuleSet: what a packet that *initiates* a connection
experiences on its way through the box (``iifname`` its ingress, ``oifname`` its egress interface).
Both formats are read into one syntax tree (the classes below) and judged by the same code.

What is read
  * ``table FAMILY NAME { … }`` blocks with their chains, sets and maps; flowtables and stateful
    objects (counters, quotas, limits, ct helpers …) decide nothing for a first packet and are skipped.
    ``define``/``$VAR``, ``flush ruleset``, ``# handle N`` comments (``nft -a``). A table or chain
    declared twice is one, as ``nft -f`` has it (Aerleon's output declares a chain twice); several
    chain comments are kept (nft itself would refuse the second). Every rule is read and checked, also
    in chains no transit packet reaches: a file nft would refuse is an input error here.
  * Rule ids are ``FAMILY TABLE/CHAIN#n`` (the n-th rule of the chain, from 1) followed by
    `` (handle N)`` where the file gives handles; the name is the rule's comment, else the chain's.
    The source is the file and line (JSON has no lines: the position is in the id).

Which chains decide
  A routed packet crosses the hooks prerouting, forward and postrouting, and netdev ingress/egress of
  its devices. At each hook every base chain runs, in priority order, and the packet must be accepted
  by each: ``accept`` ends only that base chain, ``drop``/``reject`` end everything. Hence:
    * per family one forward filter chain is the *main* chain (the one with the most accepting rules):
      its rules become the first-match list as written, and its policy the default;
    * every other base chain on the path contributes its drops, each guarded by "not accepted earlier
      in that chain", and its ``policy drop`` as a deny rule; they all come before the main chain's
      rules (the order among deny rules cannot change a verdict);
    * tables of family ip see only IPv4, ip6 only IPv6, inet and netdev both: their rules are
      restricted to their family; if the two families have different main chains, the list holds
      one part per family, the first closed by a rule with its policy.
  Chains on the hooks input and output never see transit packets, nor do arp tables or dormant
  tables. Bridge-family chains filter bridged frames (and routed packets that enter or leave by a
  bridge port): not modelled; each one that may drop is reported by a never-matching deny rule that
  carries the approximation.

Semantics of an initiating packet
  * conntrack as in the iptables importer: state ``new``, unless a ``notrack`` in a prerouting chain
    before conntrack (priority below -200) applies (``untracked``) or it is an ICMP message that cannot
    open a connection (``invalid``; ICMPv6 neighbour discovery and MLD are ``untracked``);
    ``established`` and ``related`` never hold. Chains before conntrack, and netdev ingress chains, see
    every packet as ``invalid``. ``ct`` keys other than ``state`` need a connection: they never match an
    untracked or invalid packet; ``ct direction original`` holds; ``ct status dnat`` may hold (an
    approximation) only if the file rewrites destinations somewhere.
  * nat chains see only packets of new connections; a ``dnat``/``redirect`` (or a rewrite of an
    address or port with ``… set``) becomes an approximated allow rule on top, restricted to its own
    match: the rewritten destination is not followed. ``snat``/``masquerade`` end the nat chain.
  * ``jump`` returns (``return`` or the end of the chain), ``goto`` does not; a verdict map branches
    on each key (its keys cannot overlap); ``continue`` goes on. Loops and jumps deeper than the
    kernel's 16 levels are input errors.
  * ``iifname``/``oifname`` (``*`` wildcard, sets, ``!=``), ``iif``/``oif``: matched against the
    topology's interface names. Before routing there is no output interface (``oifname`` is ""); in
    postrouting a routed packet still has its input interface (``ip_output`` hands it to the hook), and
    only netdev egress chains have none, as in the kernel.

Approximations (never optimistic; each marked on the rule with ``approximation``)
  * Matches the file does not determine (``limit``, ``quota``, marks, ``fib``, raw payload, TCP options,
    sets filled at run time or listed without elements, …): in an allow rule taken as matching, in a
    deny rule as not matching, and the other way round under the guards of return and goto.
  * Verdicts that do not decide here (``queue``, ``fwd``, ``tproxy``, ``synproxy``, ``xt target``):
    taken as accepting (in a chain other than the main one: as not dropping).
  * ``iif``/``oif`` given as an index, a chain at conntrack's own priority (-200: before or after it is
    not fixed) and a netdev chain whose device is not given (nft 1.0.6's JSON leaves it out).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..model.addresses import ALL_V4, ALL_V6, V6_BASE, IntervalSet
from ..model.rules import (
    FALSE,
    PROTO_ICMP,
    PROTO_ICMPV6,
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
)

# The iptables importer's expression machinery (unknown conditions resolved by polarity, interface
# atoms split into interface classes, conntrack states, RETURN guards) is the same for nftables.
from .netfilter import (
    ICMP_NEW_TYPES,
    ICMPV6_NEW_TYPES,
    ICMPV6_UNTRACKED_TYPES,
    PROTOCOLS,
    SERVICES,
    Guards,
    IExpr,
    Iface,
    Resolver,
    State,
    Unknown,
    all_of_i,
    and_i,
    any_of_i,
    collect_ifaces,
    interface_classes,
    not_i,
    raw_states,
    subst_ifaces,
    subst_states,
)

MAX_FILE_BYTES = 32 << 20
MAX_TOKENS = 2_000_000
MAX_FLAT_RULES = 200_000
MAX_JUMP_DEPTH = 16  # NFT_JUMP_STACK_SIZE: the kernel refuses deeper jump chains
MAX_NEST = 32
MAX_REASON = 300

# --- the syntax tree (shared with nftables_json) -------------------------------------------------


@dataclass(frozen=True)
class VWord:
    """A word, number or string as written (``10.0.0.0/8``, ``1024-65535``, ``"eth*"``, ``22``)."""

    text: str
    quoted: bool = False


@dataclass(frozen=True)
class VRange:
    lo: Value
    hi: Value


@dataclass(frozen=True)
class VPrefix:
    addr: Value
    length: int


@dataclass(frozen=True)
class VSet:
    """An anonymous set ``{ a, b }`` (or the elements of a named one)."""

    items: tuple[Value, ...]


@dataclass(frozen=True)
class VRef:
    """``@name``: a named set or map of the table."""

    name: str


@dataclass(frozen=True)
class VConcat:
    """``a . b``: one element of a concatenation."""

    parts: tuple[Value, ...]


@dataclass(frozen=True)
class VList:
    """``a,b``: a list of flags (their bitwise or)."""

    items: tuple[Value, ...]


@dataclass(frozen=True)
class VOr:
    """``a | b``: bitwise or of flags."""

    items: tuple[Value, ...]


Value = VWord | VRange | VPrefix | VSet | VRef | VConcat | VList | VOr


@dataclass(frozen=True)
class Verdict:
    kind: str  # accept drop reject continue return jump goto queue
    target: str | None = None


@dataclass(frozen=True)
class Match:
    """``LEFT [binops] [op] RIGHT``; ``left`` holds several selectors for a concatenation."""

    left: tuple[str, ...]
    binops: tuple[tuple[str, Value], ...]
    op: str  # implicit == != < > <= >= in
    right: Value
    text: str


@dataclass(frozen=True)
class VMap:
    """``LEFT vmap { key : verdict, … }`` or ``LEFT vmap @map``."""

    left: tuple[str, ...]
    binops: tuple[tuple[str, Value], ...]
    data: tuple[tuple[Value, Verdict], ...] | VRef
    text: str


def reject_dependency(kind: object) -> Match | None:
    """The match nft puts in front of ``reject with KIND …`` (and leaves out of ``nft list``, text and
    JSON alike): ``with tcp reset`` rejects only TCP, ``with icmp …`` only IPv4, ``with icmpv6 …`` only
    IPv6; any other packet goes on to the next rule. (Found by the kernel oracle test: a rule
    ``ip saddr != 70.0.0.0/8 reject with tcp reset`` was taken as rejecting UDP the kernel forwards.)"""
    if kind == "tcp" or kind == "tcp reset":
        return Match(("meta l4proto",), (), "implicit", VWord("tcp"), "meta l4proto tcp (implied by the reject)")
    if kind in ("icmp", "icmpv6"):
        fam = "ipv4" if kind == "icmp" else "ipv6"
        return Match(("meta nfproto",), (), "implicit", VWord(fam), f"meta nfproto {fam} (implied by the reject)")
    return None


@dataclass(frozen=True)
class Stmt:
    """A statement other than a match or a verdict.

    kind: ``nop`` (counter, log, marks …), ``unknown-match`` (limit, quota, meter …: a condition the
    file does not determine), ``notrack``, ``dnat`` (dnat, redirect, rewriting an address or port),
    ``snat`` (snat, masquerade: ends a nat chain), ``unknown-verdict`` (queue, fwd, tproxy …),
    ``set-update`` (``add``/``update``/``delete @set``: the set is filled at run time). ``target`` is
    the set of a set-update, the family (ip, ip6) of a dnat or snat that names one.
    """

    kind: str
    text: str
    target: str | None = None


Item = Match | Verdict | VMap | Stmt


@dataclass
class NRule:
    items: list[Item]
    line: int | None
    handle: int | None = None
    comment: str | None = None
    number: int = 0
    where: str | None = None  # JSON: "nftables[17]", for messages


@dataclass
class BaseSpec:
    type: str
    hook: str
    priority: int
    policy: str
    devices: tuple[str, ...] | None
    line: int | None


@dataclass
class NChain:
    name: str
    line: int | None
    base: BaseSpec | None = None
    rules: list[NRule] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


@dataclass
class NSet:
    name: str
    line: int | None
    is_map: bool = False
    verdict_map: bool = False
    elements: list[Value] | None = None  # None: no elements in the file
    map_data: list[tuple[Value, Verdict]] | None = None
    dynamic: bool = False


@dataclass
class NTable:
    family: str
    name: str
    line: int | None
    chains: dict[str, NChain] = field(default_factory=dict)
    sets: dict[str, NSet] = field(default_factory=dict)
    dormant: bool = False

    @property
    def label(self) -> str:
        return f"{self.family} {self.name}"


@dataclass
class NRuleset:
    tables: dict[tuple[str, str], NTable] = field(default_factory=dict)


FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
HOOKS = {
    "ip": ("prerouting", "input", "forward", "output", "postrouting"),
    "ip6": ("prerouting", "input", "forward", "output", "postrouting"),
    "inet": ("prerouting", "input", "forward", "output", "postrouting", "ingress"),
    "arp": ("input", "output"),
    "bridge": ("prerouting", "input", "forward", "output", "postrouting"),
    "netdev": ("ingress", "egress"),
}
CHAIN_TYPES = ("filter", "nat", "route")
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
BRIDGE_PRIORITY_NAMES = {"dstnat": -300, "filter": -200, "out": 100, "srcnat": 300}
CONNTRACK_PRIORITY = -200


def priority_value(family: str, text: str) -> int:
    """``filter``, ``-300``, ``mangle - 5``: the number, or ValueError."""
    names = BRIDGE_PRIORITY_NAMES if family == "bridge" else PRIORITY_NAMES
    compact = text.replace(" ", "")
    m = re.fullmatch(r"([a-z]+)(?:([+-])(\d{1,10}))?", compact)
    if m and m.group(1) in names:
        base = names[m.group(1)]
        if m.group(2):
            base += int(m.group(3)) if m.group(2) == "+" else -int(m.group(3))
        return base
    if re.fullmatch(r"-?\d{1,10}", compact):
        return int(compact)
    raise ValueError(f"cannot read chain priority {text!r}")


# --- vocabulary ----------------------------------------------------------------------------------

# /etc/protocols names as nft prints them (``ipip`` is 94 there, IP-in-IP; ``ipencap`` is 4).
NFT_PROTOCOLS: dict[str, int] = dict(PROTOCOLS)

ICMP_TYPE_NAMES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5, "echo-request": 8,
    "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11, "parameter-problem": 12,
    "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
    "address-mask-request": 17, "address-mask-reply": 18,
}
ICMPV6_TYPE_NAMES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
    "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
    "mld-listener-done": 132, "mld-listener-reduction": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
    "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137, "router-renumbering": 138,
    "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142, "mld2-listener-report": 143,
}
ICMP_CODE_NAMES = {
    "net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2, "port-unreachable": 3, "frag-needed": 4,
    "net-prohibited": 9, "host-prohibited": 10, "admin-prohibited": 13,
}
ICMPV6_CODE_NAMES = {
    "no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3, "port-unreachable": 4, "policy-fail": 5,
    "reject-route": 6,
}
CT_STATE_BITS = {"invalid": 0x01, "established": 0x02, "related": 0x04, "new": 0x08, "untracked": 0x40}
CT_STATUS_BITS = {"expected": 0x01, "seen-reply": 0x02, "assured": 0x04, "confirmed": 0x08, "snat": 0x10,
                  "dnat": 0x20, "dying": 0x200}
TCP_FLAG_BITS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20, "ecn": 0x40,
                 "cwr": 0x80}
CT_DIRECTIONS = {"original": 0, "reply": 1}
NFPROTO_VALUES = {"ipv4": 2, "ipv6": 10}
ETHERTYPE_VALUES = {"ip": 0x0800, "arp": 0x0806, "ip6": 0x86DD, "8021q": 0x8100, "8021ad": 0x88A8, "vlan": 0x8100}

# An initiating TCP packet: a SYN, possibly with ECE and CWR (ECN negotiation).
INITIAL_TCP_FLAGS = (0x02, 0x02 | 0x40 | 0x80)

PAYLOAD_FIELDS: dict[str, frozenset[str]] = {
    "ip": frozenset({"version", "hdrlength", "dscp", "ecn", "length", "id", "frag-off", "ttl", "protocol",
                     "checksum", "saddr", "daddr"}),
    "ip6": frozenset({"version", "dscp", "ecn", "flowlabel", "length", "nexthdr", "hoplimit", "saddr", "daddr"}),
    "tcp": frozenset({"sport", "dport", "sequence", "ackseq", "doff", "reserved", "flags", "window", "checksum",
                      "urgptr"}),
    "udp": frozenset({"sport", "dport", "length", "checksum"}),
    "udplite": frozenset({"sport", "dport", "csumcov", "checksum"}),
    "sctp": frozenset({"sport", "dport", "vtag", "checksum"}),
    "dccp": frozenset({"sport", "dport", "type"}),
    "th": frozenset({"sport", "dport"}),
    "icmp": frozenset({"type", "code", "checksum", "id", "sequence", "gateway", "mtu"}),
    "icmpv6": frozenset({"type", "code", "checksum", "parameter-problem", "packet-too-big", "id", "sequence",
                         "max-delay", "taddr", "daddr"}),
    "igmp": frozenset({"type", "mrt", "checksum", "group"}),
    "ah": frozenset({"nexthdr", "hdrlength", "reserved", "spi", "sequence"}),
    "esp": frozenset({"spi", "sequence"}),
    "comp": frozenset({"nexthdr", "flags", "cpi"}),
    "ether": frozenset({"saddr", "daddr", "type"}),
    "vlan": frozenset({"id", "dei", "cfi", "pcp", "type"}),
    "arp": frozenset({"htype", "ptype", "hlen", "plen", "operation", "saddr", "daddr"}),
}
META_KEYS = frozenset({
    "length", "nfproto", "l4proto", "protocol", "priority", "mark", "iif", "iifname", "iiftype", "oif", "oifname",
    "oiftype", "skuid", "skgid", "nftrace", "rtclassid", "ibrname", "obrname", "ibriport", "obriport", "ibrpvid",
    "ibrvproto", "pkttype", "cpu", "iifgroup", "oifgroup", "cgroup", "random", "ipsec", "secpath", "iifkind",
    "oifkind", "time", "day", "hour", "secmark", "sdif", "sdifname", "broute",
})
BARE_META_KEYS = frozenset({
    "iif", "iifname", "iiftype", "oif", "oifname", "oiftype", "skuid", "skgid", "nftrace", "rtclassid",
    "ibrname", "obrname", "ibriport", "obriport", "pkttype", "cpu", "iifgroup", "oifgroup", "cgroup", "mark",
    "priority", "random", "ipsec", "iifkind", "oifkind",
})
CT_KEYS = frozenset({
    "state", "direction", "status", "mark", "expiration", "helper", "l3proto", "protocol", "saddr", "daddr",
    "proto-src", "proto-dst", "label", "bytes", "packets", "avgpkt", "zone", "event", "id", "secmark",
    "timeout", "expectation",
})
EXTHDR_FIELDS = {
    "hbh": frozenset({"nexthdr", "hdrlength"}), "dst": frozenset({"nexthdr", "hdrlength"}),
    "rt": frozenset({"nexthdr", "hdrlength", "type", "seg-left"}),
    "rt0": frozenset({"addr", "reserved"}), "rt2": frozenset({"addr", "reserved"}),
    "srh": frozenset({"last-entry", "flags", "tag", "sid"}),
    "frag": frozenset({"nexthdr", "reserved", "frag-off", "reserved2", "more-fragments", "id"}),
    "mh": frozenset({"nexthdr", "hdrlength", "type", "reserved", "checksum"}),
}
TCP_OPTION_FIELDS = frozenset({"kind", "length", "size", "count", "tsval", "tsecr", "left", "right", "subtype",
                               "value"})
ROUTE_KEYS = frozenset({"classid", "nexthop", "mtu", "ipsec"})

VERDICT_WORDS = frozenset({"accept", "drop", "continue", "return"})
RELOPS = {"==": "==", "eq": "==", "!=": "!=", "ne": "!=", "<": "<", "lt": "<", ">": ">", "gt": ">",
          "<=": "<=", "le": "<=", ">=": ">=", "ge": ">="}
BINOPS = {"&": "&", "and": "&", "|": "|", "or": "|", "^": "^", "xor": "^", "<<": "<<", "lshift": "<<",
          ">>": ">>", "rshift": ">>"}
# Fields whose rewriting (``ip daddr set …``) changes what later matches see: a NAT of its own.
REWRITTEN_FIELDS = frozenset({"ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr", "tcp sport", "tcp dport",
                              "udp sport", "udp dport", "sctp sport", "sctp dport", "th sport", "th dport"})

UNMODELLED = {
    "meta mark": "packet marks are set elsewhere",
    "ct mark": "connection marks are set elsewhere",
    "fib": "routing lookups depend on the routing table",
    "rt": "routing data is not modelled",
    "socket": "sockets are not modelled",
    "osf": "OS fingerprints are not modelled",
    "ipsec": "IPsec state is not modelled",
    "meta pkttype": "link-layer packet types are not modelled",
    "meta skuid": "socket owners are not modelled",
    "meta skgid": "socket owners are not modelled",
    "meta time": "time of day is not modelled",
    "meta day": "time of day is not modelled",
    "meta hour": "time of day is not modelled",
    "meta cpu": "CPU numbers are not modelled",
    "meta length": "packet lengths are not modelled",
    "ether": "link-layer addresses are not modelled",
    "vlan": "VLAN headers are not modelled",
    "arp": "ARP headers are not modelled",
    "numgen": "number generators give arbitrary values",
    "jhash": "hashes give arbitrary values",
    "symhash": "hashes give arbitrary values",
    "raw": "raw packet bytes are not modelled",
}


# --- the text form: tokens -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # w (word) s (string) nl ; { } , ( ) | & ^ h (a "# handle N" comment)
    text: str
    line: int


_TOKEN_RE = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\r\f\v]+)|(?P<cont>\\[ \t]*\r?\n)"
    r"|(?P<hc>#[ \t]*handle[ \t]+(?P<hn>\d{1,12})[^\n]*)|(?P<cm>#[^\n]*)"
    r'|(?P<s>"(?:[^"\\\n]|\\.)*")|(?P<p>[{};,()|&^])|(?P<w>[^\s{};,()|&^"#]+)|(?P<bad>.)'
)


def tokenize(path: str, text: str) -> list[Tok]:
    toks: list[Tok] = []
    line = 1
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "nl":
            toks.append(Tok("nl", "\n", line))
            line += 1
        elif kind == "cont":
            line += 1
        elif kind == "hc":
            toks.append(Tok("h", m.group("hn"), line))
        elif kind in ("ws", "cm"):
            pass
        elif kind == "s":
            raw = m.group("s")[1:-1]
            toks.append(Tok("s", re.sub(r"\\(.)", lambda x: x.group(1) if x.group(1) != "*" else "\\*", raw), line))
        elif kind == "p":
            toks.append(Tok(m.group("p"), m.group("p"), line))
        elif kind == "w":
            toks.append(Tok("w", m.group("w"), line))
        else:
            ch = m.group("bad")
            what = "an unterminated string" if ch == '"' else f"unexpected character {ch!r}"
            raise InputError(path, what, line)
        if len(toks) > MAX_TOKENS:
            raise InputError(path, f"more than {MAX_TOKENS} words: not an nftables listing", line)
    return toks


def expand_defines(path: str, toks: list[Tok]) -> list[Tok]:
    """``define NAME = VALUE`` statements removed and every ``$NAME`` replaced by its value."""
    out: list[Tok] = []
    defines: dict[str, list[Tok]] = {}
    i, n = 0, len(toks)
    at_start = True
    while i < n:
        t = toks[i]
        if at_start and t.kind == "w" and t.text in ("define", "redefine", "undefine"):
            if i + 1 >= n or toks[i + 1].kind not in ("w", "s"):
                raise InputError(path, f"{t.text} needs a name", t.line)
            name = toks[i + 1].text
            if t.text == "undefine":
                defines.pop(name, None)
                i += 2
                continue
            if i + 2 >= n or toks[i + 2].text != "=":
                raise InputError(path, f"{t.text} {name}: expected '=' and a value", t.line)
            j, depth, value = i + 3, 0, []
            while j < n and (depth > 0 or toks[j].kind not in ("nl", ";")):
                tj = toks[j]
                depth += 1 if tj.kind == "{" else -1 if tj.kind == "}" else 0
                if depth < 0:
                    raise InputError(path, f"define {name}: unbalanced '}}'", tj.line)
                if tj.kind not in ("nl", "h"):
                    value.extend(_substitute(path, tj, defines, len(out) + len(value)))
                j += 1
            if not value:
                raise InputError(path, f"define {name}: empty value", t.line)
            defines[name] = value
            i = j
            continue
        if t.kind == "w" and t.text.startswith("$"):
            out.extend(_substitute(path, t, defines, len(out)))
        else:
            out.append(t)
        at_start = t.kind in ("nl", ";", "{", "}", "h")
        i += 1
    return out


def _substitute(path: str, t: Tok, defines: dict[str, list[Tok]], have: int) -> list[Tok]:
    if t.kind != "w" or not t.text.startswith("$"):
        return [t]
    name = t.text[1:]
    if name not in defines:
        raise InputError(path, f"undefined variable ${name}", t.line)
    value = defines[name]
    if have + len(value) > MAX_TOKENS:
        raise InputError(path, "variables expand to too many words", t.line)
    return [Tok(v.kind, v.text, t.line) for v in value]


# --- the text form: blocks -----------------------------------------------------------------------

_COMMANDS = frozenset({"add", "create", "insert", "delete", "destroy", "replace", "list", "reset", "rename",
                       "monitor", "describe", "export", "import"})
_OBJECT_BLOCKS = frozenset({"flowtable", "counter", "quota", "limit", "secmark", "synproxy"})
_TABLE_FLAGS = frozenset({"dormant", "owner", "persist"})
_SET_FLAGS = frozenset({"constant", "interval", "timeout", "dynamic"})


class TextParser:
    """Reads ``nft list ruleset`` text (or an ``nft -f`` file of table blocks) into an NRuleset."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.toks = expand_defines(path, tokenize(path, text))
        self.i = 0

    def err(self, message: str, line: int | None = None) -> InputError:
        if line is None:
            line = self.toks[min(self.i, len(self.toks) - 1)].line if self.toks else None
        return InputError(self.path, message, line)

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise self.err("unexpected end of file (a block is not closed)")
        self.i += 1
        return t

    def skip_seps(self) -> None:
        while self.i < len(self.toks) and self.toks[self.i].kind in ("nl", ";", "h"):
            self.i += 1

    def name(self, what: str) -> Tok:
        t = self.take()
        if t.kind not in ("w", "s"):
            raise self.err(f"{what} needs a name", t.line)
        return t

    def expect(self, kind: str, what: str) -> Tok:
        t = self.take()
        if t.kind != kind:
            raise self.err(f"expected '{kind}' {what}, found {t.text!r}", t.line)
        return t

    def statement(self) -> tuple[list[Tok], int | None]:
        """The tokens of one statement: up to a newline or ';' outside braces, or the closing '}'."""
        out: list[Tok] = []
        handle: int | None = None
        depth = 0
        while self.i < len(self.toks):
            t = self.toks[self.i]
            if t.kind == "h":
                handle = int(t.text)
                self.i += 1
                continue
            if depth == 0 and t.kind in ("nl", ";"):
                break
            if t.kind == "}" and depth == 0:
                break
            if t.kind == "{":
                depth += 1
                if depth > MAX_NEST:
                    raise self.err("braces nested too deeply", t.line)
            elif t.kind == "}":
                depth -= 1
            self.i += 1
            if t.kind != "nl":
                out.append(t)
        if depth > 0:
            raise self.err("a '{' is not closed", out[0].line if out else None)
        return out, handle

    def skip_block(self, start: Tok) -> None:
        depth = 1
        while depth:
            t = self.peek()
            if t is None:
                raise self.err("a block is not closed", start.line)
            self.i += 1
            depth += 1 if t.kind == "{" else -1 if t.kind == "}" else 0

    # -- top level --

    def parse(self) -> NRuleset:
        rs = NRuleset()
        while True:
            self.skip_seps()
            t = self.peek()
            if t is None:
                break
            self.i += 1
            if t.kind == "w" and t.text == "table":
                self.table(rs, t)
            elif t.kind == "w" and t.text == "flush":
                words, _ = self.statement()
                if [w.text for w in words] != ["ruleset"]:
                    raise self.err("only 'flush ruleset' is understood at the top level", t.line)
                rs.tables.clear()
            elif t.kind == "w" and t.text == "include":
                raise self.err("include is not supported: give the output of 'nft list ruleset'", t.line)
            elif t.kind == "w" and t.text in _COMMANDS:
                raise self.err(f"the command form ('{t.text} …') is not supported: give the output of "
                               f"'nft list ruleset'", t.line)
            else:
                raise self.err(f"unexpected {t.text!r} at the top level (expected 'table')", t.line)
        return rs

    def table(self, rs: NRuleset, start: Tok) -> None:
        words: list[Tok] = []
        while True:
            t = self.take()
            if t.kind == "{":
                break
            if t.kind not in ("w", "s") or len(words) >= 2:
                raise self.err("expected 'table [FAMILY] NAME {'", t.line)
            words.append(t)
        if not words:
            raise self.err("a table needs a name", start.line)
        if len(words) == 2:
            family, name = words[0].text, words[1].text
            if family not in FAMILIES:
                raise self.err(f"unknown table family {family!r} (expected one of {', '.join(FAMILIES)})",
                               start.line)
        else:
            family, name = "ip", words[0].text
        table = rs.tables.get((family, name))
        if table is None:
            table = rs.tables[(family, name)] = NTable(family, name, start.line)
        while True:
            self.skip_seps()
            if self.peek() is None:
                raise self.err(f"table {table.label} is not closed", start.line)
            t = self.take()
            if t.kind == "}":
                return
            if t.kind != "w":
                raise self.err(f"unexpected {t.text!r} in table {table.label}", t.line)
            kw = t.text
            if kw == "chain":
                name_tok = self.name("a chain")
                self.expect("{", "after the chain's name")
                chain = table.chains.get(name_tok.text)
                if chain is None:
                    chain = table.chains[name_tok.text] = NChain(name_tok.text, name_tok.line)
                self.chain_body(table, chain)
            elif kw in ("set", "map"):
                name_tok = self.name(f"a {kw}")
                self.expect("{", f"after the {kw}'s name")
                if name_tok.text in table.sets:
                    raise self.err(f"{kw} {name_tok.text!r} declared twice in table {table.label}", t.line)
                nset = table.sets[name_tok.text] = NSet(name_tok.text, t.line, is_map=kw == "map")
                self.set_body(table, nset)
            elif kw in _OBJECT_BLOCKS or kw == "ct":
                if kw == "ct":
                    sub = self.take()
                    if sub.text not in ("helper", "timeout", "expectation"):
                        raise self.err(f"unexpected 'ct {sub.text}' in table {table.label}", t.line)
                self.name(f"a {kw}")
                self.skip_block(self.expect("{", f"after the {kw}'s name"))
            elif kw == "flags":
                words_, _ = self.statement()
                flags = [w.text for w in words_ if w.kind == "w"]
                bad = [f for f in flags if f not in _TABLE_FLAGS]
                if bad or not flags:
                    raise self.err(f"unknown table flag {(bad or ['(none)'])[0]!r}", t.line)
                table.dormant = table.dormant or "dormant" in flags
            elif kw == "comment":
                self.statement()
            else:
                raise self.err(f"unexpected {kw!r} in table {table.label} (expected chain, set, map …)", t.line)

    def chain_body(self, table: NTable, chain: NChain) -> None:
        while True:
            self.skip_seps()
            t = self.peek()
            if t is None:
                raise self.err(f"chain {chain.name!r} is not closed", chain.line)
            if t.kind == "}":
                self.i += 1
                return
            words, handle = self.statement()
            if not words:
                continue
            first = words[0].text if words[0].kind == "w" else ""
            if first == "type":
                self.base_spec(table, chain, words)
            elif first == "policy":
                if len(words) != 2 or words[1].text not in ("accept", "drop"):
                    raise self.err("policy takes accept or drop", words[0].line)
                if chain.base is None:
                    raise self.err("a policy needs a base chain ('type … hook …' first)", words[0].line)
                chain.base.policy = words[1].text
                chain.base.line = words[0].line
            elif first == "comment" and len(words) == 2 and words[1].kind == "s":
                chain.comments.append(words[1].text)
            elif first == "devices" and chain.base is not None:
                chain.base.devices = tuple(self.device_list(words[1:]))
            elif first == "flags" and all(w.text in ("offload", ",") for w in words[1:]):
                pass  # hardware offload of the chain: no change in what it decides
            else:
                items, comment = RuleParser(self.path, words).parse()
                chain.rules.append(NRule(items, words[0].line, handle, comment, len(chain.rules) + 1))

    def device_list(self, words: list[Tok]) -> list[str]:
        texts = [w for w in words if w.kind in ("w", "s") and w.text != "="]
        return [w.text for w in texts]

    def base_spec(self, table: NTable, chain: NChain, words: list[Tok]) -> None:
        line = words[0].line
        texts = [w.text for w in words]
        if len(texts) < 6 or texts[2] != "hook" or "priority" not in texts:
            raise self.err("expected 'type TYPE hook HOOK [device DEV] priority PRIORITY'", line)
        ctype, hook = texts[1], texts[3]
        if ctype not in CHAIN_TYPES:
            raise self.err(f"unknown chain type {ctype!r} (expected filter, nat or route)", line)
        if hook not in HOOKS[table.family]:
            raise self.err(f"hook {hook!r} does not exist in family {table.family}", line)
        p = texts.index("priority")
        devices: list[str] | None = None
        if p > 4:
            if texts[4] not in ("device", "devices"):
                raise self.err(f"unexpected {texts[4]!r} in the chain's hook", line)
            devices = self.device_list(words[5:p])
        try:
            prio = priority_value(table.family, " ".join(texts[p + 1:]))
        except ValueError as exc:
            raise self.err(str(exc), line) from None
        old = chain.base
        if old is not None and (old.type, old.hook) != (ctype, hook):
            raise self.err(f"chain {chain.name!r} declared again with another hook", line)
        chain.base = BaseSpec(ctype, hook, prio, old.policy if old else "accept",
                              tuple(devices) if devices is not None else None, line)

    def set_body(self, table: NTable, nset: NSet) -> None:
        while True:
            self.skip_seps()
            t = self.peek()
            if t is None:
                raise self.err(f"set {nset.name!r} is not closed", nset.line)
            if t.kind == "}":
                self.i += 1
                return
            words, _ = self.statement()
            if not words:
                continue
            kw = words[0].text
            if kw in ("type", "typeof"):
                texts = [w.text for w in words[1:]]
                if nset.is_map:
                    if ":" not in texts:
                        raise self.err("a map's type needs ': DATA TYPE'", words[0].line)
                    nset.verdict_map = texts[texts.index(":") + 1:] == ["verdict"]
            elif kw == "flags":
                flags = [w.text for w in words[1:] if w.kind == "w"]
                bad = [f for f in flags if f not in _SET_FLAGS]
                if bad:
                    raise self.err(f"unknown set flag {bad[0]!r}", words[0].line)
                nset.dynamic = nset.dynamic or "dynamic" in flags
            elif kw in ("timeout", "gc-interval", "size", "policy", "auto-merge", "counter", "comment", "quota",
                        "limit", "last"):
                pass
            elif kw == "elements":
                if len(words) < 3 or words[1].text != "=" or words[2].kind != "{":
                    raise self.err("expected 'elements = { … }'", words[0].line)
                parser = RuleParser(self.path, words[2:])
                if nset.is_map:
                    pairs = parser.map_elements()
                    elements = [k for k, _ in pairs]
                    nset.map_data = (nset.map_data or []) + [(k, v) for k, v in pairs if isinstance(v, Verdict)]
                else:
                    elements = parser.set_elements()
                nset.elements = (nset.elements or []) + elements
            else:
                raise self.err(f"unexpected {kw!r} in set {nset.name!r}", words[0].line)


# --- the text form: rules ------------------------------------------------------------------------


class RuleParser:
    """Reads the words of one rule (or of a set's elements) into syntax-tree items."""

    def __init__(self, path: str, toks: list[Tok]) -> None:
        self.path = path
        self.toks = toks
        self.i = 0

    def err(self, message: str) -> InputError:
        t = self.toks[min(self.i, len(self.toks) - 1)] if self.toks else None
        return InputError(self.path, message, t.line if t else None)

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def word(self, k: int = 0) -> str | None:
        t = self.peek(k)
        return t.text if t is not None and t.kind == "w" else None

    def take(self, what: str = "a value") -> Tok:
        t = self.peek()
        if t is None:
            raise self.err(f"the rule ends where {what} was expected")
        self.i += 1
        return t

    def take_word(self, allowed: Iterable[str] | None = None, what: str = "a word") -> str:
        t = self.take(what)
        if t.kind not in ("w", "s") or (allowed is not None and t.text not in allowed):
            raise self.err(f"expected {what}, found {t.text!r}")
        return t.text

    def text_since(self, start: int) -> str:
        parts: list[str] = []
        for t in self.toks[start:self.i]:
            parts.append(f'"{t.text}"' if t.kind == "s" else t.text)
        return " ".join(parts).replace(" ,", ",").replace("{ ", "{ ")

    # -- the rule --

    def parse(self) -> tuple[list[Item], str | None]:
        items: list[Item] = []
        comment: str | None = None
        terminal: Item | None = None
        while self.i < len(self.toks):
            if self.word() == "comment":
                self.i += 1
                comment = self.take_word(what="a comment")
                continue
            if terminal is not None:
                raise self.err(f"{self.peek().text!r} after the verdict: only a comment may follow it")  # type: ignore[union-attr]
            dep = reject_dependency(self.word(2)) if self.word() == "reject" and self.word(1) == "with" else None
            item = self.statement()
            if dep is not None:
                items.append(dep)
            items.append(item)
            if isinstance(item, Verdict) or (isinstance(item, Stmt) and item.kind in ("dnat", "snat",
                                                                                     "unknown-verdict")):
                terminal = item
        if not items:
            raise self.err("a rule with nothing but a comment")
        return items, comment

    def rest_text(self, start: int) -> str:
        """Consume the rest of the rule but a trailing comment (arguments of a NAT or queue statement)."""
        while self.i < len(self.toks) and not (self.word() == "comment" and self.i + 2 >= len(self.toks)):
            self.i += 1
        return self.text_since(start)

    def statement(self) -> Item:
        start = self.i
        t = self.take("a statement")
        w = t.text if t.kind == "w" else None
        if w is None:
            raise self.err(f"unexpected {t.text!r} where a statement was expected")
        if w in VERDICT_WORDS:
            return Verdict(w)
        if w in ("jump", "goto"):
            return Verdict(w, self.take_word(what=f"a chain after {w}"))
        if w == "reject":
            if self.word() == "with":
                self.i += 1
                kind = self.take_word(("tcp", "icmp", "icmpv6", "icmpx"), "tcp, icmp, icmpv6 or icmpx after 'with'")
                if kind == "tcp":
                    self.take_word(("reset",), "'reset'")
                else:
                    if self.word() == "type":
                        self.i += 1
                    self.take_word(what="an ICMP code")
            return Verdict("reject")
        if w == "counter":
            if self.word() == "name":
                self.i += 2
            elif self.word() == "packets":
                self.i += 4
            return Stmt("nop", self.text_since(start))
        if w == "log":
            self.log_options()
            return Stmt("nop", self.text_since(start))
        if w in ("limit", "quota"):
            self.rate_options(w)
            what = "rate limits" if w == "limit" else "quotas"
            return Stmt("unknown-match", f"{self.text_since(start)}: {what} depend on traffic")
        if w == "notrack":
            return Stmt("notrack", "notrack")
        if w in ("dnat", "redirect", "snat", "masquerade"):
            # "dnat ip to …" in an inet table rewrites IPv4 packets only; IPv6 ones go on
            family = self.word() if w in ("dnat", "snat") and self.word() in ("ip", "ip6") else None
            return Stmt("dnat" if w in ("dnat", "redirect") else "snat", self.rest_text(start), family)
        if w in ("queue", "fwd", "synproxy", "tproxy"):
            text = self.rest_text(start)
            return Stmt("unknown-verdict", f"{text}: the verdict is given elsewhere; taken as accepting")
        if w == "dup":
            self.take_word(("to",), "'to'")
            self.value(allow_list=False)
            if self.word() == "device":
                self.i += 1
                self.value(allow_list=False)
            return Stmt("nop", self.text_since(start))
        if w in ("add", "update", "delete") and (self.word() or "").startswith("@"):
            name = self.take_word()[1:]
            if self.peek() is not None and self.peek().kind == "{":  # type: ignore[union-attr]
                self.skip_braces()
            return Stmt("set-update", self.text_since(start), name)
        if w == "meter":
            while self.peek() is not None and self.peek().kind != "{":  # type: ignore[union-attr]
                self.i += 1
            self.skip_braces()
            return Stmt("unknown-match", f"{self.text_since(start)}: meters depend on traffic")
        if w == "flow":
            self.take_word(("add", "offload"), "add or offload")
            self.take_word(what="a flowtable")
            return Stmt("nop", self.text_since(start))
        if w == "xt":
            kind = self.take_word(("match", "target", "watcher"), "match, target or watcher")
            self.take_word(what="an extension name")
            text = self.text_since(start)
            if kind == "match":
                return Stmt("unknown-match", f"{text}: iptables-nft extension not translated to nftables")
            if kind == "target":
                return Stmt("unknown-verdict", f"{text}: iptables-nft extension target; taken as accepting")
            return Stmt("nop", text)
        if w == "last":
            if self.word() == "used":
                self.i += 1
                self.take_word(what="a time")
            return Stmt("nop", self.text_since(start))
        if w == "ct" and self.word() == "count":
            self.i += 1
            if self.word() == "over":
                self.i += 1
            self.take_word(what="a count")
            return Stmt("unknown-match", f"{self.text_since(start)}: connection counts depend on traffic")
        self.i = start
        return self.match()

    def skip_braces(self) -> None:
        t = self.take("'{'")
        if t.kind != "{":
            raise self.err("expected '{'")
        depth = 1
        while depth:
            t = self.take("'}'")
            depth += 1 if t.kind == "{" else -1 if t.kind == "}" else 0

    def log_options(self) -> None:
        while True:
            w = self.word()
            if w in ("prefix", "level", "group", "snaplen", "queue-threshold"):
                self.i += 1
                self.take_word(what=f"a value after {w}")
            elif w == "flags":
                self.i += 1
                if self.word() in ("tcp", "ip"):
                    self.i += 1
                self.take_word(what="log flags")
                while self.peek() is not None and self.peek().kind == ",":  # type: ignore[union-attr]
                    self.i += 1
                    self.take_word(what="log flags")
            else:
                return

    def rate_options(self, what: str) -> None:
        if self.word() == "name":
            self.i += 1
            self.take_word(what=f"a named {what}")
            return
        if what == "limit":
            self.take_word(("rate",), "'rate'")
        if self.word() in ("over", "until"):
            self.i += 1
        amount = self.take_word(what="an amount")
        if not re.match(r"\d", amount):
            raise self.err(f"cannot read {what} amount {amount!r}")
        if "/" not in amount and self.word() is not None and re.fullmatch(r"[a-z]+(/[a-z]+)?", self.word() or ""):
            self.i += 1
        if what == "quota" and self.word() == "used":
            self.i += 2
            if self.word() is not None and re.fullmatch(r"[a-z]+", self.word() or ""):
                self.i += 1
        if what == "limit" and self.word() == "burst":
            self.i += 2
            if self.word() in ("packets", "bytes", "kbytes", "mbytes", "gbytes"):
                self.i += 1

    # -- selectors --

    def selector(self) -> str | None:
        """Consume one selector (``ip saddr``, ``ct original ip daddr``, ``fib daddr type`` …), or None."""
        w = self.word()
        if w is None:
            return None
        nxt = self.word(1)
        if w in PAYLOAD_FIELDS:
            if nxt in PAYLOAD_FIELDS[w]:
                self.i += 2
                if w == "arp" and nxt in ("saddr", "daddr") and self.word() in ("ip", "ether"):
                    self.i += 1
                    return f"arp {nxt} {self.toks[self.i - 1].text}"
                return f"{w} {nxt}"
            if w == "tcp" and nxt == "option":
                self.i += 2
                name = self.take_word(what="a TCP option")
                if self.word() in TCP_OPTION_FIELDS:
                    name += " " + self.take_word()
                return f"tcp option {name}"
            if w == "ip" and nxt == "option":
                self.i += 2
                name = self.take_word(what="an IP option")
                if self.word() in ("type", "length", "value", "ptr", "addr"):
                    name += " " + self.take_word()
                return f"ip option {name}"
            if w == "sctp" and nxt == "chunk":
                self.i += 2
                name = self.take_word(what="an SCTP chunk")
                if self.word() is not None and self.word() not in RELOPS and re.fullmatch(r"[a-z][a-z-]*",
                                                                                          self.word() or ""):
                    nxt2 = self.word() or ""
                    if nxt2 not in ("exists", "missing", "accept", "drop", "vmap", "set"):
                        name += " " + self.take_word()
                return f"sctp chunk {name}"
            return None
        if w == "meta" and nxt in META_KEYS:
            self.i += 2
            return f"meta {nxt}"
        if w in BARE_META_KEYS:
            self.i += 1
            return f"meta {w}"
        if w == "ct":
            self.i += 1
            parts = ["ct"]
            if self.word() in ("original", "reply"):
                parts.append(self.take_word())
            if self.word() in ("ip", "ip6") and self.word(1) in ("saddr", "daddr"):
                parts.append(self.take_word())
            key = self.take_word(what="a conntrack key")
            if key not in CT_KEYS:
                raise self.err(f"unknown conntrack key 'ct {key}'")
            parts.append(key)
            return " ".join(parts)
        if w == "fib":
            self.i += 1
            flags = [self.take_word(("saddr", "daddr", "mark", "iif", "oif"), "a fib key")]
            while self.word() == ".":
                self.i += 1
                flags.append(self.take_word(("saddr", "daddr", "mark", "iif", "oif"), "a fib key"))
            result = self.take_word(("oif", "oifname", "type"), "oif, oifname or type")
            return f"fib {'.'.join(flags)} {result}"
        if w == "rt":
            if nxt in ("ip", "ip6") and self.word(2) in ROUTE_KEYS:
                self.i += 3
                return f"rt {self.toks[self.i - 1].text}"
            if nxt in ROUTE_KEYS:
                self.i += 2
                return f"rt {nxt}"
            if nxt in EXTHDR_FIELDS["rt"]:
                self.i += 2
                return f"exthdr rt {nxt}"
            return None
        if w in EXTHDR_FIELDS and w != "rt" and nxt in EXTHDR_FIELDS[w]:
            self.i += 2
            return f"exthdr {w} {nxt}"
        if w == "exthdr":
            self.i += 1
            name = self.take_word(what="an extension header")
            if self.word() in EXTHDR_FIELDS.get(name, ()):
                name += " " + self.take_word()
            return f"exthdr {name}"
        if w == "socket":
            self.i += 1
            key = self.take_word(("transparent", "mark", "wildcard", "cgroupv2"), "a socket key")
            if key == "cgroupv2":
                self.take_word(("level",), "'level'")
                self.take_word(what="a level")
            return f"socket {key}"
        if w == "osf":
            self.i += 1
            if self.word() == "ttl":
                self.i += 2
            return f"osf {self.take_word(('name', 'version'), 'name or version')}"
        if w == "ipsec":
            self.i += 1
            self.take_word(("in", "out"), "in or out")
            if self.word() == "spnum":
                self.i += 2
            key = self.take_word(what="an ipsec key")
            if key in ("ip", "ip6"):
                key += " " + self.take_word(("saddr", "daddr"), "saddr or daddr")
            return f"ipsec {key}"
        if w in ("numgen", "jhash", "symhash"):
            self.i += 1
            if w == "numgen":
                self.take_word(("inc", "random"), "inc or random")
            elif w == "jhash":
                self.lhs()
            self.take_word(("mod",), "'mod'")
            self.take_word(what="a modulus")
            while self.word() in ("seed", "offset"):
                self.i += 2
            return w
        if w.startswith("@") and re.fullmatch(r"@(ll|nh|th|ih),\d+,\d+", w):
            self.i += 1
            return f"raw {w}"
        return None

    def lhs(self) -> tuple[str, ...]:
        first = self.selector()
        if first is None:
            t = self.peek()
            raise self.err(f"unknown statement or expression {t.text if t else ''!r}")
        sels = [first]
        while self.word() == "." and self.i + 1 < len(self.toks):
            save = self.i
            self.i += 1
            nxt = self.selector()
            if nxt is None:
                self.i = save
                break
            sels.append(nxt)
        return tuple(sels)

    def binops(self) -> list[tuple[str, Value]]:
        out: list[tuple[str, Value]] = []
        while True:
            t = self.peek()
            if t is None:
                return out
            op = BINOPS.get(t.text) if t.kind in ("w", "&", "|", "^") else None
            if op is None:
                return out
            self.i += 1
            out.append((op, self.value(allow_list=False)))

    def match(self) -> Item:
        start = self.i
        left = self.lhs()
        ops = self.binops()
        if self.word() == "set":
            self.i += 1
            self.value_expression()
            text = self.text_since(start)
            if len(left) == 1 and left[0] in REWRITTEN_FIELDS:
                return Stmt("dnat", f"{text}: the packet's header is rewritten")
            return Stmt("nop", text)
        if self.word() == "vmap":
            self.i += 1
            t = self.peek()
            if t is not None and t.kind == "w" and t.text.startswith("@"):
                self.i += 1
                return VMap(left, tuple(ops), VRef(t.text[1:]), self.text_since(start))
            pairs = self.map_elements()
            data: list[tuple[Value, Verdict]] = []
            for key, verdict in pairs:
                if not isinstance(verdict, Verdict):
                    raise self.err("a verdict map's values must be verdicts")
                data.append((key, verdict))
            return VMap(left, tuple(ops), tuple(data), self.text_since(start))
        op = "implicit"
        if self.word() in RELOPS:
            op = RELOPS[self.take_word()]
        if self.peek() is None:
            raise self.err(f"{self.text_since(start)!r}: a value is expected")
        right = self.value(allow_list=True, parts=len(left))
        if isinstance(right, _Masked):
            ops.append(("&", right.mask))
            right = right.value
            if op == "implicit":
                op = "=="
        return Match(left, tuple(ops), op, right, self.text_since(start))

    def value_expression(self) -> None:
        """The value of a ``… set VALUE`` statement: consumed, not interpreted."""
        if self.selector() is None:
            self.value(allow_list=True)
        while self.word() == ".":
            self.i += 1
            if self.selector() is None:
                self.value(allow_list=False)
        self.binops()
        if self.word() == "map":
            self.i += 1
            t = self.peek()
            if t is not None and t.kind == "{":
                self.skip_braces()
            else:
                self.take_word(what="a map")

    # -- values --

    def value(self, allow_list: bool, parts: int = 1) -> Value:
        first = self.single(allow_list)
        if parts == 1 and self.word() != ".":
            return first
        items = [first]
        while self.word() == "." and len(items) < max(parts, 2) + 16:
            self.i += 1
            items.append(self.single(allow_list=False))
        return first if len(items) == 1 else VConcat(tuple(items))

    def single(self, allow_list: bool, depth: int = 0) -> Value:
        """One value: ``a``, ``a-b``, ``a | b``, with ``allow_list`` also ``a,b`` and ``a / mask``."""
        v = self.or_value(depth)
        if allow_list and self.peek() is not None and self.peek().kind == ",":  # type: ignore[union-attr]
            items = [v]
            while self.peek() is not None and self.peek().kind == ",":  # type: ignore[union-attr]
                self.i += 1
                items.append(self.or_value(depth))
            v = VList(tuple(items))
        if allow_list and self.word() == "/":
            self.i += 1
            return _Masked(v, self.single(allow_list=True, depth=depth + 1))  # type: ignore[return-value]
        return v

    def or_value(self, depth: int) -> Value:
        items = [self.atom(depth)]
        while self.peek() is not None and self.peek().kind == "|":  # type: ignore[union-attr]
            self.i += 1
            items.append(self.atom(depth))
        return items[0] if len(items) == 1 else VOr(tuple(items))

    def atom(self, depth: int) -> Value:
        if depth > MAX_NEST:
            raise self.err("values nested too deeply")
        t = self.take()
        if t.kind == "{":
            self.i -= 1
            return VSet(tuple(self.set_elements(depth + 1)))
        if t.kind == "(":
            inner = self.single(allow_list=True, depth=depth + 1)
            if self.take("')'").kind != ")":
                raise self.err("expected ')'")
            return inner
        if t.kind == "w" and t.text.startswith("@"):
            return VRef(t.text[1:])
        if t.kind not in ("w", "s") or (t.kind == "w" and t.text in RELOPS):
            raise self.err(f"unexpected {t.text!r} where a value was expected")
        v: Value = VWord(t.text, t.kind == "s")
        if self.word() == "-" and self.peek(1) is not None and self.peek(1).kind in ("w", "s"):  # type: ignore[union-attr]
            self.i += 1
            v = VRange(v, VWord(self.take().text))
        return v

    def set_elements(self, depth: int = 1) -> list[Value]:
        """``{ a, b . c, 1-5, { d } }`` with element options (timeout, counter, comment …) skipped."""
        if self.take("'{'").kind != "{":
            raise self.err("expected '{'")
        out: list[Value] = []
        while True:
            t = self.peek()
            if t is None:
                raise self.err("a '{' is not closed")
            if t.kind == "}":
                self.i += 1
                return out
            if t.kind == ",":
                self.i += 1
                continue
            v = self.value(allow_list=False, parts=2)
            if isinstance(v, VSet):
                out.extend(v.items)
            else:
                out.append(v)
            self.element_options()

    def element_options(self) -> None:
        while True:
            w = self.word()
            if w in ("timeout", "expires", "comment"):
                self.i += 2
            elif w == "counter":
                self.i += 1
                if self.word() == "packets":
                    self.i += 4
            elif w == "quota":
                self.i += 1
                self.rate_options("quota")
            elif w == "limit":
                self.i += 1
                self.rate_options("limit")
            elif w == "last":
                self.i += 1
                if self.word() == "used":
                    self.i += 2
            else:
                return

    def map_elements(self) -> list[tuple[Value, Verdict | Value]]:
        if self.take("'{'").kind != "{":
            raise self.err("expected '{'")
        out: list[tuple[Value, Verdict | Value]] = []
        while True:
            t = self.peek()
            if t is None:
                raise self.err("a '{' is not closed")
            if t.kind == "}":
                self.i += 1
                return out
            if t.kind == ",":
                self.i += 1
                continue
            key = self.value(allow_list=False, parts=2)
            self.element_options()
            if self.word() != ":":
                raise self.err("expected 'KEY : VALUE' in a map")
            self.i += 1
            w = self.word()
            data: Verdict | Value
            if w in VERDICT_WORDS or w == "drop":
                self.i += 1
                data = Verdict(w)  # type: ignore[arg-type]
            elif w in ("jump", "goto"):
                self.i += 1
                data = Verdict(w, self.take_word(what=f"a chain after {w}"))
            else:
                data = self.value(allow_list=False, parts=2)
            self.element_options()
            out.append((key, data))


@dataclass(frozen=True)
class _Masked:
    """``VALUE / MASK`` (``tcp flags syn / syn,ack``): the selector and-ed with MASK equals VALUE."""

    value: Value
    mask: Value


def parse_text(path: str, text: str) -> NRuleset:
    return TextParser(path, text).parse()


# --- from values to sets ---------------------------------------------------------------------------


class _BadValue(Exception):
    """A value that cannot be read for its field; the caller adds the file and line."""


def _int(text: str) -> int:
    t = text.strip()
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F]{1,16}", t):
            return int(t, 16)
        if re.fullmatch(r"\d{1,20}", t):
            return int(t)
    except ValueError:
        pass
    raise _BadValue(f"cannot read number {text!r}")


def _elements(v: Value) -> list[Value]:
    return list(v.items) if isinstance(v, VSet) else [v]


def _vtext(v: Value) -> str:
    if isinstance(v, VWord):
        return f'"{v.text}"' if v.quoted else v.text
    if isinstance(v, VRange):
        return f"{_vtext(v.lo)}-{_vtext(v.hi)}"
    if isinstance(v, VPrefix):
        return f"{_vtext(v.addr)}/{v.length}"
    if isinstance(v, VSet):
        return "{ " + ", ".join(_vtext(x) for x in v.items) + " }"
    if isinstance(v, VRef):
        return f"@{v.name}"
    if isinstance(v, VConcat):
        return " . ".join(_vtext(x) for x in v.parts)
    if isinstance(v, VList):
        return ",".join(_vtext(x) for x in v.items)
    return " | ".join(_vtext(x) for x in v.items)


def _address_interval(text: str, v6: bool | None) -> tuple[int, int]:
    """One address, ``a/len`` (host bits masked, as nft does) or ``a-b``; ``v6`` None: either family."""
    t = text.strip()
    try:
        if "/" in t:
            net = ipaddress.ip_network(t, strict=False)
            lo_ip, hi_ip = net.network_address, net.broadcast_address
        elif "-" in t:
            a, b = t.split("-", 1)
            lo_ip, hi_ip = ipaddress.ip_address(a), ipaddress.ip_address(b)
            if lo_ip.version != hi_ip.version or int(lo_ip) > int(hi_ip):
                raise _BadValue(f"invalid address range {text!r}")
        else:
            lo_ip = hi_ip = ipaddress.ip_address(t)
    except ValueError:
        raise _BadValue(f"cannot read address {text!r}") from None
    if v6 is not None and (lo_ip.version == 6) != v6:
        raise _BadValue(f"{'IPv6' if lo_ip.version == 6 else 'IPv4'} address {text!r} where an "
                        f"{'IPv6' if v6 else 'IPv4'} one is expected")
    base = V6_BASE if lo_ip.version == 6 else 0
    return base + int(lo_ip), base + int(hi_ip)


def _addresses(v: Value, v6: bool | None) -> IntervalSet:
    out: list[tuple[int, int]] = []
    for e in _elements(v):
        if isinstance(e, VWord):
            out.append(_address_interval(e.text, v6))
        elif isinstance(e, VPrefix):
            if not isinstance(e.addr, VWord):
                raise _BadValue("a prefix needs an address")
            out.append(_address_interval(f"{e.addr.text}/{e.length}", v6))
        elif isinstance(e, VRange) and isinstance(e.lo, VWord) and isinstance(e.hi, VWord):
            lo = _address_interval(e.lo.text, v6)[0]
            hi = _address_interval(e.hi.text, v6)[1]
            if lo > hi or (lo >= V6_BASE) != (hi >= V6_BASE):
                raise _BadValue(f"invalid address range {_vtext(e)!r}")
            out.append((lo, hi))
        else:
            raise _BadValue(f"cannot read address {_vtext(e)!r}")
    return IntervalSet(out)


def _named_number(text: str, names: dict[str, int], limit: int, what: str) -> int:
    low = text.lower()
    if low in names:
        return names[low]
    num = _int(text) if re.fullmatch(r"\d+|0[xX][0-9a-fA-F]+", text) else None
    if num is None:
        raise _BadValue(f"unknown {what} {text!r}")
    if num > limit:
        raise _BadValue(f"{what} {text!r} out of range")
    return num


def _numbers(v: Value, names: dict[str, int] | Callable[[str], int], limit: int, what: str) -> IntervalSet:
    """Numbers, names, ranges ``a-b`` (a name may hold a dash: ``echo-request``, ``ftp-data``) and sets."""

    def one(text: str) -> int:
        if callable(names):
            return names(text)
        return _named_number(text, names, limit, what)

    out: list[tuple[int, int]] = []
    for e in _elements(v):
        if isinstance(e, VWord):
            try:
                n = one(e.text)
                out.append((n, n))
                continue
            except _BadValue:
                if "-" not in e.text:
                    raise
            a, b = e.text.split("-", 1)
            lo, hi = one(a), one(b)
            if lo > hi:
                raise _BadValue(f"invalid range {e.text!r}")
            out.append((lo, hi))
        elif isinstance(e, VRange) and isinstance(e.lo, VWord) and isinstance(e.hi, VWord):
            lo, hi = one(e.lo.text), one(e.hi.text)
            if lo > hi:
                raise _BadValue(f"invalid range {_vtext(e)!r}")
            out.append((lo, hi))
        else:
            raise _BadValue(f"cannot read {what} {_vtext(e)!r}")
    return IntervalSet(out)


def _port(text: str) -> int:
    low = text.lower()
    if re.fullmatch(r"\d+", low):
        num = _int(low)
    elif low in SERVICES:
        num = SERVICES[low]
    else:
        try:
            num = socket.getservbyname(low)
        except (OSError, UnicodeError):
            raise _BadValue(f"cannot read port {text!r}") from None
    if num > 65535:
        raise _BadValue(f"port {text!r} out of range")
    return num


def _flags_value(v: Value, names: dict[str, int], what: str) -> int:
    """A bitmask value: a name, a number, ``a,b`` or ``a | b``."""
    if isinstance(v, VList | VOr):
        out = 0
        for x in v.items:
            out |= _flags_value(x, names, what)
        return out
    if isinstance(v, VWord):
        return _named_number(v.text, names, (1 << 32) - 1, what)
    raise _BadValue(f"cannot read {what} {_vtext(v)!r}")


# --- from matches to conditions -------------------------------------------------------------------

V4: IExpr = FieldIn("src", ALL_V4)
V6: IExpr = FieldIn("src", ALL_V6)
PORT_PROTOS = IntervalSet.of(PROTO_TCP, PROTO_UDP, PROTO_SCTP)
TRACKED = State(frozenset({"NEW", "ESTABLISHED", "RELATED"}))
STATE_LABELS = {"NEW": 0x08, "INVALID": 0x01, "UNTRACKED": 0x40, "ESTABLISHED": 0x02, "RELATED": 0x04}


def _proto(num: int) -> IExpr:
    return FieldIn("proto", IntervalSet.of(num))


class _Field:
    """One selector, in a context: its dependency (``tcp dport`` needs TCP) and its tests."""

    dep: IExpr = TRUE

    def member(self, v: Value) -> IExpr:
        raise NotImplementedError

    def test(self, op: str, binops: tuple[tuple[str, Value], ...], right: Value, text: str) -> IExpr:
        if binops:
            return Unknown(f"{text}: bit operations on this field are not modelled")
        if op in ("implicit", "==", "in"):
            return any_of_i(self.member(e) for e in _elements(right))
        if op == "!=":
            return not_i(any_of_i(self.member(e) for e in _elements(right)))
        return Unknown(f"{text}: ordering on this field is not modelled")


class _IntervalField(_Field):
    def __init__(self, fld: str, domain: IntervalSet, read: Callable[[Value], IntervalSet], dep: IExpr) -> None:
        self.fld = fld
        self.domain = domain
        self.read = read
        self.dep = dep

    def member(self, v: Value) -> IExpr:
        return FieldIn(self.fld, self.read(v) & self.domain)

    def test(self, op: str, binops: tuple[tuple[str, Value], ...], right: Value, text: str) -> IExpr:
        if binops:
            return Unknown(f"{text}: bit operations on this field are not modelled")
        values = self.read(right) & self.domain
        if op in ("implicit", "==", "in"):
            return FieldIn(self.fld, values)
        if op == "!=":
            return FieldIn(self.fld, self.domain - values)
        if values.size() != 1:
            raise _BadValue(f"{op} needs a single value")
        v = values.intervals[0][0]
        lo, hi = self.domain.intervals[0][0], self.domain.intervals[-1][1]
        if self.fld in ("src", "dst"):  # order within the value's own family
            fam = ALL_V6 if v >= V6_BASE else ALL_V4
            lo, hi = fam.intervals[0]
        bounds = {"<": (lo, v - 1), "<=": (lo, v), ">": (v + 1, hi), ">=": (v, hi)}[op]
        return FieldIn(self.fld, IntervalSet([bounds]) & self.domain)


class _Numeric(_BadValue):
    """An interface given by index (``iif 3``): not one of the topology's names."""


class _IfaceField(_Field):
    """``iifname``/``oifname`` (wildcards) and ``iif``/``oif`` (exact names), against the topology's names."""

    def __init__(self, direction: str, interfaces: tuple[str, ...], absent: bool, wildcard: bool) -> None:
        self.direction = direction
        self.interfaces = interfaces
        self.absent = absent  # no such interface at this hook: the name is ""
        self.wildcard = wildcard

    def names(self, v: Value) -> tuple[frozenset[str], bool]:
        """The topology names ``v`` matches, and whether it matches the empty name."""
        hit: set[str] = set()
        empty = False
        for e in _elements(v):
            if not isinstance(e, VWord):
                raise _BadValue(f"cannot read interface name {_vtext(e)!r}")
            text = e.text
            if not self.wildcard and not e.quoted and re.fullmatch(r"\d+", text):
                raise _Numeric(f"interface index {text!r}: the topology names its interfaces")
            if self.wildcard and text.endswith("*") and not text.endswith("\\*"):
                stem = text[:-1]
                hit.update(n for n in self.interfaces if n.startswith(stem))
                empty = empty or stem == ""
            else:
                name = text.replace("\\*", "*")
                hit.update(n for n in self.interfaces if n == name)
        return frozenset(hit), empty

    def member(self, v: Value) -> IExpr:
        names, empty = self.names(v)
        if self.absent:
            return TRUE if empty else FALSE
        return self.atom(names)

    def atom(self, names: frozenset[str]) -> IExpr:
        if not names:
            return FALSE
        if names == frozenset(self.interfaces):
            return TRUE
        return Iface(self.direction, names)

    def test(self, op: str, binops: tuple[tuple[str, Value], ...], right: Value, text: str) -> IExpr:
        if binops or op not in ("implicit", "==", "in", "!="):
            return Unknown(f"{text}: this comparison of interface names is not modelled")
        try:
            names, empty = self.names(right)
        except _Numeric:
            return Unknown(f"{text}: interface indexes are not the topology's names")
        if self.absent:
            return TRUE if empty != (op == "!=") else FALSE
        if op == "!=":
            return self.atom(frozenset(self.interfaces) - names)
        return self.atom(names)


class _FiniteField(_Field):
    """A field with few possible values for an initiating packet (conntrack state, TCP flags, family):
    the match is evaluated on each, the way the kernel does (``a,b`` without an operator tests bits)."""

    def __init__(self, candidates: dict[str, int], names: dict[str, int], what: str,
                 result: Callable[[frozenset[str]], IExpr], dep: IExpr, bitmask: bool) -> None:
        self.candidates = candidates
        self.names = names
        self.what = what
        self.result = result
        self.dep = dep
        self.bitmask = bitmask

    def member(self, v: Value) -> IExpr:
        want = _flags_value(v, self.names, self.what)
        return self.result(frozenset(k for k, x in self.candidates.items() if x == want))

    def test(self, op: str, binops: tuple[tuple[str, Value], ...], right: Value, text: str) -> IExpr:
        ops = [(o, _flags_value(val, self.names, self.what)) for o, val in binops]
        is_set = isinstance(right, VSet)
        if is_set:
            wanted = {_flags_value(e, self.names, self.what) for e in right.items}  # type: ignore[union-attr]
        else:
            want = _flags_value(right, self.names, self.what)

        def holds(x: int) -> bool:
            for o, k in ops:
                x = {"&": x & k, "|": x | k, "^": x ^ k, "<<": (x << k) & 0xFFFFFFFF, ">>": x >> k}[o]
            if is_set:
                return (x in wanted) != (op == "!=")
            if op == "in" or (op == "implicit" and self.bitmask and not ops):
                return x & want != 0
            return {"implicit": x == want, "==": x == want, "!=": x != want, "<": x < want, ">": x > want,
                    "<=": x <= want, ">=": x >= want, "in": x & want != 0}[op]

        return self.result(frozenset(k for k, x in self.candidates.items() if holds(x)))


class _UnknownField(_Field):
    def __init__(self, reason: str, dep: IExpr) -> None:
        self.reason = reason
        self.dep = dep

    def member(self, v: Value) -> IExpr:
        return Unknown(self.reason)

    def test(self, op: str, binops: tuple[tuple[str, Value], ...], right: Value, text: str) -> IExpr:
        return Unknown(f"{text}: {self.reason}")


class _PortLikeField(_Field):
    """``th dport`` (and the conntrack ports): the ports of TCP, UDP and SCTP; for any other protocol the
    same bytes mean something else, which is not modelled."""

    def __init__(self, fld: str, dep: IExpr, what: str) -> None:
        self.inner = _IntervalField(fld, IntervalSet([(0, 65535)]), lambda v: _numbers(v, _port, 65535, "port"),
                                    FieldIn("proto", PORT_PROTOS))
        self.dep = dep
        self.what = what

    def other(self) -> IExpr:
        return and_i(not_i(FieldIn("proto", PORT_PROTOS)),
                    Unknown(f"{self.what} of a protocol without ports reads other header bytes"))

    def member(self, v: Value) -> IExpr:
        return any_of_i((and_i(FieldIn("proto", PORT_PROTOS), self.inner.member(v)), self.other()))

    def test(self, op: str, binops: tuple[tuple[str, Value], ...], right: Value, text: str) -> IExpr:
        return any_of_i((and_i(FieldIn("proto", PORT_PROTOS), self.inner.test(op, binops, right, text)), self.other()))


class _CtStatusField(_Field):
    def __init__(self, has_dnat: bool, has_snat: bool) -> None:
        self.dep = TRACKED
        self.bits = {
            "dnat": Unknown("conntrack status dnat: the destination may have been rewritten") if has_dnat else FALSE,
            "snat": Unknown("conntrack status snat: the source may be rewritten") if has_snat else FALSE,
        }

    def member(self, v: Value) -> IExpr:
        return Unknown("conntrack status values are not modelled")

    def test(self, op: str, binops: tuple[tuple[str, Value], ...], right: Value, text: str) -> IExpr:
        if binops or op not in ("implicit", "in") or isinstance(right, VSet):
            return Unknown(f"{text}: conntrack status values are not modelled")
        want = _flags_value(right, CT_STATUS_BITS, "conntrack status")
        # A new connection's first packet: not expected (that would be RELATED), no reply seen, not
        # assured, not confirmed (that happens when it leaves), not dying.
        return any_of_i(self.bits.get(name, FALSE) for name, bit in CT_STATUS_BITS.items() if want & bit)


def _family_of(labels: frozenset[str]) -> IExpr:
    return any_of_i(x for x, lab in ((V4, "V4"), (V6, "V6")) if lab in labels)


_DEPS_BY_WORD: dict[str, IExpr] = {
    "ip": V4, "ip6": V6, "tcp": _proto(PROTO_TCP), "udp": _proto(PROTO_UDP), "udplite": _proto(136),
    "sctp": _proto(PROTO_SCTP), "dccp": _proto(33), "icmp": and_i(V4, _proto(PROTO_ICMP)),
    "icmpv6": and_i(V6, _proto(PROTO_ICMPV6)), "igmp": and_i(V4, _proto(2)), "ah": _proto(51), "esp": _proto(50),
    "comp": _proto(108),
}


@dataclass(frozen=True)
class _Ctx:
    """Where a rule runs: its table, and which interfaces exist at the hook."""

    table: NTable
    no_in: bool
    no_out: bool


class _Compiler:
    """Turns syntax-tree matches into conditions for one context (table and hook)."""

    def __init__(self, path: str, interfaces: tuple[str, ...], has_dnat: bool, has_snat: bool,
                 updated_sets: set[tuple[str, str, str]]) -> None:
        self.path = path
        self.interfaces = interfaces
        self.has_dnat = has_dnat
        self.has_snat = has_snat
        self.updated_sets = updated_sets

    def field(self, sel: str, ctx: _Ctx) -> _Field:
        words = sel.split()
        fam = ctx.table.family
        if fam in ("ip", "ip6") and words[0] in ("ip", "ip6", "icmp", "icmpv6") and words[0] not in (
                (fam, "icmp") if fam == "ip" else (fam, "icmpv6")):
            raise _BadValue(f"{sel!r} cannot match in a table of family {fam}")
        if sel in ("ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr"):
            v6 = words[0] == "ip6"
            return _IntervalField("src" if words[1] == "saddr" else "dst", ALL_V6 if v6 else ALL_V4,
                                  lambda v: _addresses(v, v6), V6 if v6 else V4)
        if sel in ("ip protocol", "ip6 nexthdr", "meta l4proto", "ct protocol", "ct original protocol"):
            dep = {"ip": V4, "ip6": V6, "meta": TRUE}.get(words[0], TRACKED)
            return _IntervalField("proto", IntervalSet([(0, 255)]),
                                  lambda v: _numbers(v, NFT_PROTOCOLS, 255, "protocol"), dep)
        if len(words) == 2 and words[0] in ("tcp", "udp", "sctp") and words[1] in ("sport", "dport"):
            proto = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "sctp": PROTO_SCTP}[words[0]]
            return _IntervalField(words[1], IntervalSet([(0, 65535)]),
                                  lambda v: _numbers(v, _port, 65535, "port"), _proto(proto))
        if sel in ("th sport", "th dport"):
            return _PortLikeField(words[1], TRUE, sel)
        if sel in ("icmp type", "icmp code", "icmpv6 type", "icmpv6 code"):
            v6 = words[0] == "icmpv6"
            names = (ICMPV6_TYPE_NAMES if v6 else ICMP_TYPE_NAMES) if words[1] == "type" else (
                ICMPV6_CODE_NAMES if v6 else ICMP_CODE_NAMES)
            what = f"{words[0]} {words[1]}"
            return _IntervalField(f"icmp_{words[1]}", IntervalSet([(0, 255)]),
                                  lambda v: _numbers(v, names, 255, what), _DEPS_BY_WORD[words[0]])
        if sel in ("meta iifname", "meta oifname", "meta iif", "meta oif"):
            direction = "in" if "iif" in sel else "out"
            absent = ctx.no_in if direction == "in" else ctx.no_out
            return _IfaceField(direction, self.interfaces, absent, wildcard=sel.endswith("name"))
        if sel in ("meta nfproto", "ct l3proto"):
            return _FiniteField({"V4": 2, "V6": 10}, NFPROTO_VALUES, "family", _family_of,
                                TRACKED if words[0] == "ct" else TRUE, bitmask=False)
        if sel == "meta protocol":
            return _FiniteField({"V4": 0x0800, "V6": 0x86DD}, ETHERTYPE_VALUES, "ether type", _family_of, TRUE,
                                bitmask=False)
        if sel == "ct state":
            return _FiniteField(STATE_LABELS, CT_STATE_BITS, "conntrack state",
                                lambda s: State(s) if s else FALSE, TRUE, bitmask=True)
        if sel == "ct direction":
            return _FiniteField({"ORIGINAL": 0}, CT_DIRECTIONS, "conntrack direction",
                                lambda s: TRUE if s else FALSE, TRACKED, bitmask=False)
        if sel == "ct status":
            return _CtStatusField(self.has_dnat, self.has_snat)
        if sel == "tcp flags":
            return _FiniteField({"SYN": INITIAL_TCP_FLAGS[0], "SYN-ECN": INITIAL_TCP_FLAGS[1]}, TCP_FLAG_BITS,
                                "TCP flag", _tcp_flags_result, _proto(PROTO_TCP), bitmask=True)
        if words[0] == "ct" and len(words) >= 3 and words[1] == "original":
            key = words[-1]
            v6 = {"ip": False, "ip6": True}.get(words[2]) if len(words) == 4 else None
            if key in ("saddr", "daddr"):
                # The original tuple is the packet as it arrived: before DNAT, before SNAT.
                domain = ALL_V6 if v6 else ALL_V4 if v6 is False else ALL_V4 | ALL_V6
                dep = and_i(TRACKED, V6 if v6 else V4 if v6 is False else TRUE)
                return _IntervalField("src" if key == "saddr" else "dst", domain, lambda v: _addresses(v, v6), dep)
            if key in ("proto-src", "proto-dst"):
                return _PortLikeField("sport" if key == "proto-src" else "dport", TRACKED, sel)
        dep = TRACKED if words[0] == "ct" else _DEPS_BY_WORD.get(words[0], TRUE)
        why = UNMODELLED.get(" ".join(words[:2])) or UNMODELLED.get(words[0]) or "this match is not modelled"
        return _UnknownField(why, dep)

    def set_value(self, ref: VRef, ctx: _Ctx, text: str) -> Value | IExpr:
        """A named set's elements, or an unknown condition when the file does not list them."""
        nset = ctx.table.sets.get(ref.name)
        if nset is None:
            raise _BadValue(f"no set @{ref.name} in table {ctx.table.label}")
        key = (ctx.table.family, ctx.table.name, ref.name)
        if nset.dynamic or key in self.updated_sets:
            return Unknown(f"{text}: @{ref.name} is filled at run time, its members are not in the file")
        if nset.elements is None:
            return Unknown(f"{text}: the elements of @{ref.name} are not in the file")
        return VSet(tuple(nset.elements))

    def match(self, m: Match, ctx: _Ctx) -> IExpr:
        fields = [self.field(s, ctx) for s in m.left]
        dep = all_of_i(f.dep for f in fields)
        right: Value = m.right
        if isinstance(right, VRef):
            resolved = self.set_value(right, ctx, m.text)
            if not isinstance(resolved, VWord | VRange | VPrefix | VSet | VRef | VConcat | VList | VOr):
                return and_i(dep, resolved)
            right = resolved
        if len(fields) == 1:
            return and_i(dep, fields[0].test(m.op, m.binops, right, m.text))
        if m.binops or m.op not in ("implicit", "==", "!="):
            return and_i(dep, Unknown(f"{m.text}: this operation on a concatenation is not modelled"))
        hit = any_of_i(self.concat_member(fields, e) for e in _elements(right))
        return and_i(dep, not_i(hit) if m.op == "!=" else hit)

    def concat_member(self, fields: list[_Field], e: Value) -> IExpr:
        if not isinstance(e, VConcat) or len(e.parts) != len(fields):
            raise _BadValue(f"{_vtext(e)!r} does not have the {len(fields)} parts of the concatenation")
        return all_of_i(f.member(p) for f, p in zip(fields, e.parts, strict=True))

    def key_member(self, left: tuple[str, ...], binops: tuple[tuple[str, Value], ...], key: Value,
                   ctx: _Ctx, text: str) -> IExpr:
        """A verdict map's key ``key`` against the packet (dependencies included)."""
        fields = [self.field(s, ctx) for s in left]
        dep = all_of_i(f.dep for f in fields)
        if binops:
            return and_i(dep, Unknown(f"{text}: bit operations on a map key are not modelled"))
        if len(fields) == 1:
            return and_i(dep, fields[0].test("==", (), key, text))
        return and_i(dep, self.concat_member(fields, key))


# Header fields that lie next to each other, which nft's payload merging joins into one comparison.
_ADJACENT_FIELDS = frozenset(
    frozenset(pair) for pair in (("tcp sport", "tcp dport"), ("udp sport", "udp dport"), ("ip saddr", "ip daddr"),
                                 ("ip6 saddr", "ip6 daddr"), ("icmp type", "icmp code"),
                                 ("icmpv6 type", "icmpv6 code"))
)


_RANGE_TEXT = re.compile(r"[0-9A-Fa-f.:]+\s*-\s*[0-9A-Fa-f.:]+")  # 1024-65535, 10.0.0.1-10.0.0.9


def _single(v: Value) -> bool:
    """One constant (a prefix or range is masked or ranged, and nft 1.0.6 does not merge those)."""
    return isinstance(v, VWord) and "/" not in v.text and not _RANGE_TEXT.fullmatch(v.text)


def _merged_inequalities(items: list[object]) -> dict[int, str]:
    """Indexes of the second match of each pair ``A != x B != y`` (single values) on adjacent header fields.

    nft 1.0.6 (Debian 12) merges such a pair into ``(A, B) != (x, y)``, "A differs *or* B differs",
    and prints it back as written, so a listing does not say which of the two the kernel runs (found
    by the kernel oracle test). Such a pair is read as written, with the looser reading as an unknown:
    an accept is taken at its widest, a drop at its narrowest, and the rule is reported."""
    out: dict[int, str] = {}
    for i in range(1, len(items)):
        a, b = items[i - 1], items[i]
        if (i - 1 not in out and isinstance(a, Match) and isinstance(b, Match) and a.op == b.op == "!="
                and len(a.left) == len(b.left) == 1 and not a.binops and not b.binops
                and _single(a.right) and _single(b.right)
                and frozenset((a.left[0], b.left[0])) in _ADJACENT_FIELDS and a.left[0] != b.left[0]):
            out[i] = (f"{a.text} {b.text}: nft 1.0.6 loads these as one comparison, "
                      f"({a.left[0]}, {b.left[0]}) != ({_vtext(a.right)}, {_vtext(b.right)}) (either differs)")
    return out


def _tcp_flags_result(labels: frozenset[str]) -> IExpr:
    if len(labels) == 2:
        return TRUE
    if not labels:
        return FALSE
    return Unknown("TCP flags that depend on ECN negotiation")


# --- chains into entries --------------------------------------------------------------------------


@dataclass
class _Action:
    """What one rule does for the packets that reach a point of it."""

    kind: str  # verdict | notrack | dnat | unknown
    cond: IExpr
    verdict: Verdict | None = None
    reason: str | None = None


@dataclass
class _Entry:
    """One inlined action: its origin, what it does, and its whole condition in the base chain."""

    table: NTable
    chain: NChain
    rule: NRule
    kind: str  # accept | drop | unknown | dnat | notrack
    cond: IExpr
    reason: str | None = None


@dataclass
class _Stage:
    """A base chain on the path of a routed packet."""

    table: NTable
    chain: NChain
    base: BaseSpec
    order: tuple[int, int, int]
    family: IExpr  # V4, V6 or TRUE
    states: str  # pre | post | ambiguous (conntrack at the same priority)
    restrict: IExpr  # what every packet this chain sees satisfies (device, nat: new connections)
    ctx: _Ctx
    entries: list[_Entry] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.table.label}/{self.chain.name}"

    def visible(self, fam: IExpr) -> bool:
        return self.family == TRUE or self.family == fam


_HOOK_RANK = {"ingress": 0, "prerouting": 1, "forward": 2, "postrouting": 3, "egress": 4}


class Builder:
    """Judges an NRuleset for a packet initiating a connection through the box."""

    def __init__(self, path: str, interfaces: Sequence[str], rs: NRuleset, json_input: bool = False) -> None:
        self.path = path
        self.interfaces = tuple(dict.fromkeys(interfaces))
        self.rs = rs
        self.json = json_input
        self.notes: list[str] = []
        self.visited = 0
        self.compiled: dict[tuple[int, bool, bool], list[_Action]] = {}
        self._decides: dict[tuple[int, str], bool] = {}
        live = [t for t in rs.tables.values() if not t.dormant]
        stmts = [it for t in live for c in t.chains.values() for r in c.rules for it in r.items
                 if isinstance(it, Stmt)]
        has_dnat = any(s.kind == "dnat" for s in stmts)
        has_snat = any(s.kind == "snat" for s in stmts)
        updated: set[tuple[str, str, str]] = set()
        for t in live:
            for c in t.chains.values():
                for r in c.rules:
                    for it in r.items:
                        if isinstance(it, Stmt) and it.kind == "set-update" and it.target:
                            updated.add((t.family, t.name, it.target))
        self.compiler = _Compiler(path, self.interfaces, has_dnat, has_snat, updated)

    def err(self, message: str, rule: NRule | None = None, chain: NChain | None = None,
            table: NTable | None = None) -> InputError:
        if rule is not None and self.json and chain is not None and table is not None:
            message = f"{self.rule_id(table, chain, rule)} ({rule.where}): {message}"
        return InputError(self.path, message, rule.line if rule is not None else None)

    # -- ids --

    def rule_id(self, table: NTable, chain: NChain, rule: NRule) -> str:
        rid = f"{table.label}/{chain.name}#{rule.number}"
        return f"{rid} (handle {rule.handle})" if rule.handle is not None else rid

    def rule_name(self, chain: NChain, rule: NRule) -> str | None:
        return rule.comment or ("; ".join(chain.comments) if chain.comments else None)

    # -- compiling rules --

    def actions(self, table: NTable, chain: NChain, rule: NRule, ctx: _Ctx) -> list[_Action]:
        key = (id(rule), ctx.no_in, ctx.no_out)
        hit = self.compiled.get(key)
        if hit is None:
            try:
                hit = self.compile_rule(rule, ctx)
            except _BadValue as exc:
                raise self.err(str(exc), rule, chain, table) from None
            self.compiled[key] = hit
        return hit

    def compile_rule(self, rule: NRule, ctx: _Ctx) -> list[_Action]:
        prefix: list[IExpr] = []
        out: list[_Action] = []
        merged = _merged_inequalities(rule.items)
        for i, item in enumerate(rule.items):
            if isinstance(item, Match):
                cond = self.compiler.match(item, ctx)
                if i in merged:  # the second of a pair nft 1.0.6 may have merged with the one before
                    first = prefix.pop()
                    loose = and_i(Unknown(merged[i]), any_of_i((first, cond)))
                    cond = any_of_i((and_i(first, cond), loose))
                prefix.append(cond)
            elif isinstance(item, Verdict):
                out.append(_Action("verdict", all_of_i(prefix), item))
                break
            elif isinstance(item, VMap):
                keys = self.vmap_branches(item, ctx)
                if keys is None:
                    reason = f"{item.text}: the verdict map's elements are not in the file; taken as accepting"
                    out.append(_Action("unknown", all_of_i(prefix), reason=reason))
                    prefix.append(Unknown(reason))
                    continue
                base = all_of_i(prefix)
                continuing: list[IExpr] = []
                for cond, verdict in keys:
                    if verdict.kind == "continue":
                        continuing.append(cond)
                    else:
                        out.append(_Action("verdict", and_i(base, cond), verdict))
                prefix.append(any_of_i(continuing))
            else:
                kind = item.kind
                cond = all_of_i(prefix)
                if kind == "unknown-match":
                    prefix.append(Unknown(item.text))
                elif kind == "notrack":
                    out.append(_Action("notrack", cond))
                elif kind in ("dnat", "snat"):
                    # a NAT statement of the other family does nothing (nft_nat_inet_eval)
                    fam = {"ip": V4, "ip6": V6}.get(item.target or "", TRUE)
                    if kind == "dnat":
                        out.append(_Action("dnat", and_i(cond, fam), reason=item.text))
                    else:
                        out.append(_Action("verdict", and_i(cond, fam), Verdict("accept")))
                    break
                elif kind == "unknown-verdict":
                    out.append(_Action("unknown", cond, reason=item.text))
                    break
        return out

    def vmap_branches(self, vm: VMap, ctx: _Ctx) -> list[tuple[IExpr, Verdict]] | None:
        data = vm.data
        if isinstance(data, VRef):
            nset = ctx.table.sets.get(data.name)
            if nset is None or not nset.is_map:
                raise _BadValue(f"no map @{data.name} in table {ctx.table.label}")
            if not nset.verdict_map:
                raise _BadValue(f"@{data.name} is not a verdict map")
            key = (ctx.table.family, ctx.table.name, data.name)
            if nset.dynamic or key in self.compiler.updated_sets or nset.map_data is None:
                return None
            pairs: Sequence[tuple[Value, Verdict]] = nset.map_data
        else:
            pairs = data
        return [(self.compiler.key_member(vm.left, vm.binops, k, ctx, vm.text), v) for k, v in pairs]

    # -- inlining --

    def walk(self, table: NTable, chain: NChain, conds: tuple[IExpr, ...], ctx: _Ctx, out: list[_Entry],
             stack: tuple[str, ...]) -> None:
        guards: Guards | None = None
        for rule in chain.rules:
            for act in self.actions(table, chain, rule, ctx):
                self.visited += 1
                if self.visited > MAX_FLAT_RULES:
                    raise self.err(f"inlining the chains gives more than {MAX_FLAT_RULES} rules", rule, chain,
                                   table)
                here = all_of_i((*conds, Not(guards), act.cond) if guards else (*conds, act.cond))  # type: ignore[arg-type]
                if act.kind != "verdict":
                    out.append(_Entry(table, chain, rule, act.kind, here, act.reason))
                    continue
                v = act.verdict
                assert v is not None
                if v.kind == "accept":
                    out.append(_Entry(table, chain, rule, "accept", here))
                elif v.kind in ("drop", "reject"):
                    out.append(_Entry(table, chain, rule, "drop", here))
                elif v.kind == "return":
                    guards = Guards(guards, act.cond)
                elif v.kind in ("jump", "goto"):
                    target = table.chains.get(v.target or "")
                    if target is None:
                        raise self.err(f"{v.kind} {v.target}: no such chain in table {table.label}", rule, chain,
                                       table)
                    if target.base is not None:
                        raise self.err(f"{v.kind} {v.target}: cannot jump to a base chain", rule, chain, table)
                    if target.name in stack:
                        raise self.err(f"chain loop: {chain.name} jumps to {target.name}, which leads back to "
                                       f"{chain.name}", rule, chain, table)
                    if len(stack) >= MAX_JUMP_DEPTH:
                        raise self.err(f"jumps nested deeper than {MAX_JUMP_DEPTH} chains", rule, chain, table)
                    if here != FALSE:
                        self.walk(table, target, (here,), ctx, out, (*stack, target.name))
                    if v.kind == "goto" and not self.always_decides(table, target, ctx):
                        guards = Guards(guards, act.cond)
                # continue: nothing

    def always_decides(self, table: NTable, chain: NChain, ctx: _Ctx, depth: int = 0) -> bool:
        """Whether every packet entering ``chain`` is accepted or dropped in it (never comes back)."""
        key = (id(table), chain.name)
        hit = self._decides.get(key)
        if hit is not None:
            return hit
        self._decides[key] = False
        result = False
        for rule in chain.rules:
            acts = self.actions(table, chain, rule, ctx)
            if any(a.verdict is not None and a.verdict.kind == "return" for a in acts):
                break
            stop = False
            for a in acts:
                if a.kind != "verdict" or a.cond != TRUE or a.verdict is None:
                    continue
                v = a.verdict
                target = table.chains.get(v.target or "")
                decides = v.kind in ("accept", "drop", "reject") or (
                    v.kind in ("jump", "goto") and target is not None and depth < MAX_JUMP_DEPTH
                    and self.always_decides(table, target, ctx, depth + 1))
                if decides:
                    result = stop = True
            if stop:
                break
        self._decides[key] = result
        return result

    # -- the stages --

    def stages(self) -> list[_Stage]:
        out: list[_Stage] = []
        ignored: list[str] = []
        seq = 0
        for table in self.rs.tables.values():
            if table.dormant:
                self.notes.append(f"table {table.label} is dormant: not evaluated")
                continue
            for chain in table.chains.values():
                base = chain.base
                if base is None:
                    continue
                seq += 1
                label = f"{table.label}/{chain.name}"
                if table.family == "arp" or base.hook in ("input", "output") or base.type == "route":
                    ignored.append(label)
                    continue
                if table.family == "bridge":
                    continue
                family = V4 if table.family == "ip" else V6 if table.family == "ip6" else TRUE
                hook = base.hook
                if hook in ("ingress", "prerouting") and (table.family == "netdev" or hook == "ingress"
                                                          or base.priority < CONNTRACK_PRIORITY):
                    states = "pre"
                elif hook == "prerouting" and base.priority == CONNTRACK_PRIORITY:
                    states = "ambiguous"
                else:
                    states = "post"
                restrict: IExpr = family
                if hook in ("ingress", "egress"):
                    direction = "in" if hook == "ingress" else "out"
                    if base.devices is None:
                        restrict = and_i(restrict, Unknown(f"{label}: the chain's device is not given"))
                    else:
                        names = frozenset(n for n in self.interfaces if n in base.devices)
                        restrict = and_i(restrict, Iface(direction, names) if names else FALSE)
                if base.type == "nat":
                    restrict = and_i(restrict, State(frozenset({"NEW"})))
                # A routed packet keeps its input interface in postrouting (ip_output and ip6_output pass
                # skb->dev to the hook as the input device; the kernel oracle test drops by iifname there).
                ctx = _Ctx(table, no_in=hook == "egress", no_out=hook in ("prerouting", "ingress"))
                out.append(_Stage(table, chain, base, (_HOOK_RANK[hook], base.priority, seq), family, states,
                                  restrict, ctx))
        if ignored:
            shown = ", ".join(ignored[:8]) + (", …" if len(ignored) > 8 else "")
            self.notes.append(f"chains on hooks that transit packets do not cross (input, output, arp), not "
                              f"evaluated: {shown}")
        out.sort(key=lambda s: s.order)
        for s in out:
            self.walk(s.table, s.chain, (), s.ctx, s.entries, (s.chain.name,))
        return out

    # -- emitting model rules --

    def resolver_for(self, stage: _Stage) -> Resolver:
        if stage.states == "pre":
            return self.pre_resolver
        if stage.states == "ambiguous":
            return self.ambiguous_resolver
        return self.post_resolver

    def make_rules(self, rid: str, action: str, cond: IExpr, source: SourceRef, name: str | None,
                   reason: str | None, resolver: Resolver) -> list[Rule]:
        expr, reasons = resolver.run(cond, maximize=action == "allow")
        if reasons and resolver.run(cond, maximize=action != "allow")[0] == expr:
            reasons = frozenset()  # the unknown parts do not change what the rule matches
        notes = [reason] if reason else []
        notes.extend(sorted(reasons))
        approx = "; ".join(dict.fromkeys(notes)) or None
        if approx and len(approx) > MAX_REASON:
            approx = approx[:MAX_REASON - 1] + "…"
        atoms: dict[Iface, None] = {}
        collect_ifaces(expr, atoms)
        if not atoms:
            return [Rule(rid, action, expr, None, None, source, name, approx)]  # type: ignore[arg-type]
        in_classes = interface_classes(self.interfaces, [a for a in atoms if a.direction == "in"])
        out_classes = interface_classes(self.interfaces, [a for a in atoms if a.direction == "out"])
        results: dict[tuple[Expr, frozenset[str]], list[frozenset[str]]] = {}
        for oc, oc_names in out_classes:
            for ic, ic_names in in_classes:
                def value(a: Iface, ic: dict[Iface, bool] = ic, oc: dict[Iface, bool] = oc) -> bool:
                    return ic[a] if a.direction == "in" else oc[a]

                sub = subst_ifaces(expr, value)
                if sub != FALSE:
                    results.setdefault((sub, oc_names), []).append(ic_names)
        by_in: dict[tuple[Expr, frozenset[str]], set[str]] = {}
        for (sub, oc_names), ics in results.items():
            by_in.setdefault((sub, frozenset().union(*ics)), set()).update(oc_names)
        everything = frozenset(self.interfaces)
        rules = [Rule(rid, action, sub, None if ins == everything else ins,  # type: ignore[arg-type]
                      None if outs == everything else frozenset(outs), source, name, approx)
                 for (sub, ins), outs in by_in.items()]
        return rules or [Rule(rid, action, FALSE, None, None, source, name, approx)]  # type: ignore[arg-type]

    def entry_rules(self, e: _Entry, action: str, cond: IExpr, reason: str | None, resolver: Resolver) -> list[Rule]:
        return self.make_rules(self.rule_id(e.table, e.chain, e.rule), action, cond,
                               SourceRef(self.path, e.rule.line), self.rule_name(e.chain, e.rule), reason, resolver)

    def stage_rules(self, s: _Stage, fam: IExpr) -> list[Rule]:
        """A base chain other than the main one: its drops (and DNAT allows), then its drop policy."""
        resolver = self.resolver_for(s)
        restrict = and_i(s.restrict, fam)
        out: list[Rule] = []
        accepted: Guards | None = None
        for e in s.entries:
            guard: IExpr = Not(accepted) if accepted else TRUE  # type: ignore[arg-type]
            if e.kind == "drop":
                out.extend(self.entry_rules(e, "deny", and_i(e.cond, guard, restrict), None, resolver))
            elif e.kind == "accept":
                accepted = Guards(accepted, e.cond)
            elif e.kind == "unknown":
                accepted = Guards(accepted, and_i(e.cond, Unknown(e.reason or "")))
                out.extend(self.entry_rules(e, "deny", FALSE, f"{e.reason} (in {s.label}: taken as not dropping)",
                                            resolver))
            elif e.kind == "dnat":
                reason = f"{e.reason}: the packets it may rewrite are taken as passing"
                out.extend(self.entry_rules(e, "allow", and_i(e.cond, guard, restrict), reason, resolver))
                accepted = Guards(accepted, e.cond)
        if s.base.policy == "drop":
            guard = Not(accepted) if accepted else TRUE  # type: ignore[arg-type]
            out.extend(self.make_rules(f"{s.label} (policy)", "deny", and_i(guard, restrict),
                                       SourceRef(self.path, s.base.line), self.rule_name(s.chain, NRule([], None)),
                                       None, resolver))
        return out

    def main_rules(self, s: _Stage, fam: IExpr) -> list[Rule]:
        resolver = self.resolver_for(s)
        restrict = and_i(s.restrict, fam)
        out: list[Rule] = []
        for e in s.entries:
            cond = and_i(e.cond, restrict)
            if e.kind == "accept":
                out.extend(self.entry_rules(e, "allow", cond, None, resolver))
            elif e.kind == "drop":
                out.extend(self.entry_rules(e, "deny", cond, None, resolver))
            elif e.kind == "unknown":
                out.extend(self.entry_rules(e, "allow", cond, e.reason, resolver))
            elif e.kind == "dnat":
                out.extend(self.entry_rules(e, "allow", cond, f"{e.reason}: the packets it rewrites are taken as "
                                                              f"passing", resolver))
        return out

    def bridge_markers(self) -> list[Rule]:
        out: list[Rule] = []
        for table in self.rs.tables.values():
            if table.family != "bridge" or table.dormant:
                continue
            for chain in table.chains.values():
                if chain.base is None:
                    continue
                if chain.base.policy != "drop" and not self.may_drop(table, chain, 0):
                    self.notes.append(f"bridge chain {table.label}/{chain.name} never drops: no effect")
                    continue
                reason = (f"bridge chain {table.label}/{chain.name} (hook {chain.base.hook}) filters bridged frames "
                          f"and routed packets entering or leaving by a bridge port, which is not modelled: its "
                          f"drops are taken as not matching")
                out.append(Rule(f"{table.label}/{chain.name}", "deny", FALSE, source=SourceRef(self.path,
                                chain.base.line), name=self.rule_name(chain, NRule([], None)), approximation=reason))
        return out

    def may_drop(self, table: NTable, chain: NChain, depth: int) -> bool:
        if depth > MAX_JUMP_DEPTH:
            return True
        for rule in chain.rules:
            for item in rule.items:
                verdicts: list[Verdict] = []
                if isinstance(item, Verdict):
                    verdicts.append(item)
                elif isinstance(item, VMap):
                    if isinstance(item.data, VRef):
                        return True
                    verdicts.extend(v for _, v in item.data)
                elif isinstance(item, Stmt) and item.kind == "unknown-verdict":
                    return True
                for v in verdicts:
                    if v.kind in ("drop", "reject"):
                        return True
                    target = table.chains.get(v.target or "")
                    if target is not None and target is not chain and self.may_drop(table, target, depth + 1):
                        return True
        return False

    # -- conntrack --

    def setup_states(self, stages: list[_Stage]) -> None:
        self.pre_resolver = Resolver(raw_states)
        ambiguous = Unknown("this chain runs at conntrack's own priority (-200), before or after it")
        self.ambiguous_resolver = Resolver(lambda s: ambiguous)
        memo: dict[int, tuple[object, IExpr]] = {}
        notracks: list[IExpr] = []
        for s in stages:
            if s.states != "pre" or s.base.hook != "prerouting":
                continue
            accepted: Guards | None = None
            for e in s.entries:
                guard: IExpr = Not(accepted) if accepted else TRUE  # type: ignore[arg-type]
                if e.kind == "notrack":
                    notracks.append(subst_states(and_i(e.cond, guard, s.restrict), raw_states, memo))
                elif e.kind in ("accept", "dnat"):
                    accepted = Guards(accepted, e.cond)
                elif e.kind == "unknown":
                    accepted = Guards(accepted, and_i(e.cond, Unknown(e.reason or "")))
        untracked = any_of_i(notracks)
        icmp4 = and_i(V4, _proto(PROTO_ICMP))
        icmp6 = and_i(V6, _proto(PROTO_ICMPV6))
        bad = any_of_i((
            and_i(icmp4, not_i(FieldIn("icmp_type", ICMP_NEW_TYPES))),
            and_i(icmp6, not_i(FieldIn("icmp_type", ICMPV6_NEW_TYPES | ICMPV6_UNTRACKED_TYPES))),
        ))
        is_untracked = any_of_i((untracked, and_i(icmp6, FieldIn("icmp_type", ICMPV6_UNTRACKED_TYPES))))
        state_expr: dict[str, IExpr] = {
            "NEW": and_i(not_i(is_untracked), not_i(bad)),
            "INVALID": and_i(not_i(is_untracked), bad),
            "UNTRACKED": is_untracked,
            "ESTABLISHED": FALSE,
            "RELATED": FALSE,
        }
        cache: dict[frozenset[str], IExpr] = {}

        def states(labels: frozenset[str]) -> IExpr:
            hit = cache.get(labels)
            if hit is None:
                hit = cache[labels] = any_of_i(state_expr[x] for x in sorted(labels))
            return hit

        self.post_resolver = Resolver(states)

    # -- the whole ruleset --

    def validate(self) -> None:
        """Every rule read as nft would (even in chains no transit packet reaches): values, jump targets,
        loops. A file nft refuses is refused here too."""
        for table in self.rs.tables.values():
            edges: dict[str, list[tuple[str, NRule]]] = {}
            for chain in table.chains.values():
                for rule in chain.rules:
                    self.actions(table, chain, rule, _Ctx(table, False, False))
                    for v in self.verdicts_of(table, rule):
                        if v.kind not in ("jump", "goto"):
                            continue
                        target = table.chains.get(v.target or "")
                        if target is None:
                            raise self.err(f"{v.kind} {v.target}: no such chain in table {table.label}", rule, chain,
                                           table)
                        if target.base is not None:
                            raise self.err(f"{v.kind} {v.target}: cannot jump to a base chain", rule, chain, table)
                        edges.setdefault(chain.name, []).append((target.name, rule))
            self.check_loops(table, edges)

    def verdicts_of(self, table: NTable, rule: NRule) -> list[Verdict]:
        out: list[Verdict] = []
        for item in rule.items:
            if isinstance(item, Verdict):
                out.append(item)
            elif isinstance(item, VMap):
                if isinstance(item.data, VRef):
                    nset = table.sets.get(item.data.name)
                    if nset is not None and nset.map_data:
                        out.extend(v for _, v in nset.map_data)
                else:
                    out.extend(v for _, v in item.data)
        return out

    def check_loops(self, table: NTable, edges: dict[str, list[tuple[str, NRule]]]) -> None:
        color: dict[str, int] = {}
        for start in table.chains:
            if color.get(start):
                continue
            color[start] = 1
            stack: list[tuple[str, int]] = [(start, 0)]
            while stack:
                name, k = stack.pop()
                out = edges.get(name, [])
                if k < len(out):
                    stack.append((name, k + 1))
                    target, rule = out[k]
                    if color.get(target) == 1:
                        raise self.err(f"chain loop: {name} jumps to {target}, which leads back to {name}", rule,
                                       table.chains[name], table)
                    if not color.get(target):
                        color[target] = 1
                        stack.append((target, 0))
                else:
                    color[name] = 2

    def run(self) -> RuleSet:
        self.validate()
        stages = self.stages()
        self.setup_states(stages)
        fams = {4: V4, 6: V6}
        main: dict[int, _Stage | None] = {}
        for f, fam in fams.items():
            cands = [s for s in stages if s.base.hook == "forward" and s.base.type == "filter" and s.visible(fam)
                     and s.table.family != "netdev"]
            main[f] = max(cands, key=lambda s: (sum(e.kind == "accept" for e in s.entries),
                                                s.base.policy == "drop", s.order), default=None)
        mains = [m for m in main.values() if m is not None]
        rules: list[Rule] = self.bridge_markers()
        for s in stages:
            if not any(s is m for m in mains):
                rules.extend(self.stage_rules(s, TRUE))
        default = "allow"
        if main[4] is main[6]:
            m = main[4]
            if m is not None:
                rules.extend(self.main_rules(m, TRUE))
                default = m.base.policy
        else:
            order = sorted(fams, key=lambda f: main[f] is None)
            for k, f in enumerate(order):
                fam = fams[f]
                other = main[order[1 - k]]
                if other is not None and other.visible(fam):
                    rules.extend(self.stage_rules(other, fam))
                m = main[f]
                if m is None:
                    continue
                rules.extend(self.main_rules(m, fam))
                if k == 0:
                    action = "allow" if m.base.policy == "accept" else "deny"
                    rules.append(Rule(f"{m.table.label}/{m.chain.name} (policy, IPv{f})", action, fam,  # type: ignore[arg-type]
                                      source=SourceRef(self.path, m.base.line),
                                      name=self.rule_name(m.chain, NRule([], None))))
                else:
                    default = m.base.policy
        for f in fams:
            if main[f] is None:
                self.notes.append(f"no forward filter chain for IPv{f}: routed IPv{f} packets are accepted "
                                  f"unless another chain on their path drops them")
        kept = [r for k, r in enumerate(rules) if k == 0 or r != rules[k - 1]]  # vmap branches that agree
        return RuleSet(tuple(kept), "allow" if default in ("accept", "allow") else "deny", tuple(self.notes))


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read the nftables file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(path, f"larger than {MAX_FILE_BYTES >> 20} MiB: not an nftables listing")
    return data.decode("utf-8", errors="replace")


def load(path: str, interfaces: Sequence[str]) -> RuleSet:
    """The transit decision of an ``nft list ruleset`` file as a first-match RuleSet."""
    rs = parse_text(path, _read(path))
    if not rs.tables:
        raise InputError(path, "no table found: an nftables listing starts with 'table FAMILY NAME {'")
    return Builder(path, interfaces, rs).run()


def load_json(path: str, interfaces: Sequence[str]) -> RuleSet:
    """The transit decision of an ``nft -j list ruleset`` file as a first-match RuleSet."""
    from .nftables_json import load as json_load

    return json_load(path, interfaces)

