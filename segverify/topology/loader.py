"""Load a topology YAML file (``version: 1``) into the vendor-independent model.

Every problem is an InputError naming the file and line. Names (segments, hosts) resolve to
address sets; a segment name means the addresses that segment owns by longest prefix.
"""

from __future__ import annotations

import os

import yaml

from ..errors import InputError
from ..importers import get_importer
from ..model.addresses import ALL_ADDRESSES, IntervalSet, Prefix, parse_prefix
from ..model.gcpause import paused_gc
from ..model.rules import (
    FALSE,
    ICMP_PROTOS,
    PORT_PROTOS,
    PROTO_NUMBERS,
    TRUE,
    Expr,
    FieldIn,
    Rule,
    RuleSet,
    SourceRef,
    all_of,
)
from ..model.segmap import SegmentMap
from ..model.topology import (
    CHANNEL_KINDS,
    KIND_FAMILY,
    MODELS,
    SCREEN_PROTOCOLS,
    Channel,
    Endpoints,
    ExceptionRule,
    Firewall,
    Host,
    Interface,
    Leg,
    PortSpec,
    Router,
    Segment,
    Topology,
)
from .yamlnodes import NULL, Doc, compose_file, integer, mapping, scalar, sequence, string

RULE_KEYS = ("id", "action", "from", "to", "src", "dst", "proto", "sport", "dport", "icmp-type", "icmp-code",
             "name", "comment", "description")
ACTIONS = {"allow": "allow", "permit": "allow", "accept": "allow", "deny": "deny", "drop": "deny",
           "reject": "deny", "discard": "deny"}


def load_topology(path: str) -> Topology:
    with paused_gc():  # a million long-lived objects and no cycles: see model/gcpause.py
        doc, root = compose_file(path, path)
        topo = _Loader(doc, path).load(root)
        # Free the node tree while the collector still sleeps: its first pass after the pause
        # scans every young object, and the tree is most of them (0.15 s at 10k rules).
        del root
    return topo


class _Loader:
    def __init__(self, doc: Doc, path: str) -> None:
        self.doc = doc
        self.path = path
        self.base = os.path.dirname(path)
        self.segments: dict[str, Segment] = {}
        self.hosts: dict[str, Host] = {}
        self.segmap: SegmentMap | None = None
        self.inputs: list[str] = [path]
        # Per-text results shared between rules (see ``_rule_addresses``).
        self._addresses: dict[tuple[str, str], IntervalSet] = {}
        self._port_sets: dict[tuple[str, str], IntervalSet] = {}
        self._fields: dict[tuple[str, IntervalSet], FieldIn] = {}
        self._iface_sets: dict[frozenset[str], frozenset[str]] = {}

    def ref(self, node: yaml.Node) -> SourceRef:
        return SourceRef(self.path, node.start_mark.line + 1)

    def err(self, node: yaml.Node | None, message: str) -> InputError:
        return self.doc.error(node, message)

    # --- top level -----------------------------------------------------------------------------

    def load(self, root: yaml.Node) -> Topology:
        d = self.doc
        top = mapping(
            d, root, "topology",
            ("version", "name", "model", "description", "segments", "hosts", "firewalls", "routers",
             "channels", "exceptions"),
            required=("version", "segments"),
        )
        version_node = top.get("version")
        assert version_node is not None
        if scalar(d, version_node, "version") != "1":
            raise self.err(version_node, "unsupported topology version (this segverify reads version: 1)")
        name = string(d, top.get("name"), "name") if top.has("name") else os.path.basename(self.path)
        model = "alpha"
        if top.has("model"):
            node = top.get("model")
            model = scalar(d, node, "model")
            if model not in MODELS:
                raise self.err(node, f"model must be one of {', '.join(MODELS)}, not {model!r}")

        for node in sequence(d, top.get("segments"), "segments"):
            self._segment(node)
        if not self.segments:
            raise self.err(top.get("segments"), "segments: at least one segment is needed")
        self.segmap = SegmentMap(self.segments)
        if top.has("hosts"):
            for node in sequence(d, top.get("hosts"), "hosts"):
                self._host(node)

        firewalls: dict[str, Firewall] = {}
        routers: dict[str, Router] = {}
        devices: set[str] = set()
        if top.has("firewalls"):
            for node in sequence(d, top.get("firewalls"), "firewalls"):
                fw = self._firewall(node, devices)
                firewalls[fw.name] = fw
        if top.has("routers"):
            for node in sequence(d, top.get("routers"), "routers"):
                rt = self._router(node, devices)
                routers[rt.name] = rt
        channels = []
        channel_names: set[str] = set()
        if top.has("channels"):
            for node in sequence(d, top.get("channels"), "channels"):
                ch = self._channel(node)
                if ch.name in channel_names:
                    raise self.err(node, f"channel name {ch.name!r} used twice")
                channel_names.add(ch.name)
                channels.append(ch)
        exceptions = []
        exception_names: set[str] = set()
        if top.has("exceptions"):
            for node in sequence(d, top.get("exceptions"), "exceptions"):
                ex = self._exception(node)
                if ex.name in exception_names:
                    raise self.err(node, f"exception name {ex.name!r} used twice")
                exception_names.add(ex.name)
                exceptions.append(ex)
        return Topology(
            path=self.path, name=name, model=model, segments=self.segments, hosts=self.hosts,
            firewalls=firewalls, routers=routers, channels=tuple(channels), exceptions=tuple(exceptions),
            inputs=self.inputs, source=SourceRef(self.path, 1),
        )

    # --- segments and hosts --------------------------------------------------------------------

    def _new_name(self, node: yaml.Node, name: str) -> None:
        if name in self.segments or name in self.hosts:
            raise self.err(node, f"name {name!r} used twice (segment and host names share one namespace)")
        if name == "any":
            raise self.err(node, "'any' is reserved and cannot name a segment or host")

    def _segment(self, node: yaml.Node) -> None:
        d = self.doc
        m = mapping(d, node, "segment", ("name", "kind", "cidrs", "vlans", "description"),
                    required=("name", "kind", "cidrs"))
        name = string(d, m.get("name"), "segment name")
        self._new_name(m.get("name"), name)
        kind_node = m.get("kind")
        kind = scalar(d, kind_node, "segment kind")
        if kind not in KIND_FAMILY:
            raise self.err(kind_node, f"segment kind must be one of {', '.join(KIND_FAMILY)}, not {kind!r}")
        prefixes: list[Prefix] = []
        for cnode in sequence(d, m.get("cidrs"), "cidrs", allow_scalar=True):
            prefix = self._prefix(cnode)
            for other in self.segments.values():
                if prefix in other.prefixes:
                    raise self.err(cnode, f"CIDR {prefix} already belongs to segment {other.name!r}")
            if prefix in prefixes:
                raise self.err(cnode, f"CIDR {prefix} listed twice")
            prefixes.append(prefix)
        if not prefixes:
            raise self.err(m.get("cidrs"), "cidrs: a segment needs at least one CIDR")
        vlans: list[int] = []
        if m.has("vlans"):
            for vnode in sequence(d, m.get("vlans"), "vlans", allow_scalar=True):
                vlans.append(integer(d, vnode, "VLAN id", 0, 4095))
        self.segments[name] = Segment(name, kind, tuple(prefixes), tuple(vlans), self.ref(node))

    def _prefix(self, node: yaml.Node) -> Prefix:
        text = scalar(self.doc, node, "CIDR")
        try:
            return parse_prefix(text)
        except ValueError as exc:
            raise self.err(node, f"bad CIDR: {exc}") from None

    def _host(self, node: yaml.Node) -> None:
        d = self.doc
        m = mapping(d, node, "host", ("name", "addresses", "description"), required=("name", "addresses"))
        name = string(d, m.get("name"), "host name")
        self._new_name(m.get("name"), name)
        addrs: list[int] = []
        for anode in sequence(d, m.get("addresses"), "addresses", allow_scalar=True):
            prefix = self._prefix(anode)
            if not prefix.is_single:
                raise self.err(anode, f"a host address must be a single address, not {prefix}")
            addrs.append(prefix.lo)
        if not addrs:
            raise self.err(m.get("addresses"), "addresses: a host needs at least one address")
        self.hosts[name] = Host(name, tuple(addrs), self.ref(node))

    # --- name resolution -----------------------------------------------------------------------

    def endpoints(self, node: yaml.Node | None, what: str) -> Endpoints:
        """Resolve a name or list of names: segments, hosts, CIDRs, addresses, or ``any``."""
        if node is None:
            return Endpoints(("any",), ALL_ADDRESSES)
        names: list[str] = []
        sets: list[IntervalSet] = []
        whole: list[str] = []
        wide: list[str] = []
        assert self.segmap is not None
        for item in sequence(self.doc, node, what, allow_scalar=True):
            text = scalar(self.doc, item, what).strip()
            names.append(text)
            if text == "any":
                sets.append(ALL_ADDRESSES)
                whole.append(text)
            elif text in self.segments:
                sets.append(self.segmap.owned[text])
                whole.append(text)
            elif text in self.hosts:
                sets.append(IntervalSet.of(*self.hosts[text].addresses))
            else:
                try:
                    prefix = parse_prefix(text)
                except ValueError:
                    raise self.err(
                        item, f"{what}: {text!r} is not a segment, a host, 'any', an address or a CIDR"
                    ) from None
                sets.append(IntervalSet.interval(prefix.lo, prefix.hi))
                if not prefix.is_single:
                    wide.append(text)
        if not names:
            raise self.err(node, f"{what}: the list is empty")
        out = sets[0]
        for s in sets[1:]:
            out = out | s
        return Endpoints(tuple(names), out, tuple(whole), tuple(wide))

    # --- firewalls and routers -----------------------------------------------------------------

    def _device_name(self, node: yaml.Node, name: str, devices: set[str]) -> None:
        if name in devices:
            raise self.err(node, f"device name {name!r} used twice")
        devices.add(name)

    def _firewall(self, node: yaml.Node, devices: set[str]) -> Firewall:
        d = self.doc
        m = mapping(d, node, "firewall", ("name", "interfaces", "default", "rules", "config", "description"),
                    required=("name", "interfaces"))
        name = string(d, m.get("name"), "firewall name")
        self._device_name(m.get("name"), name, devices)
        interfaces: list[Interface] = []
        for inode in sequence(d, m.get("interfaces"), "interfaces"):
            im = mapping(d, inode, "interface", ("name", "segment", "description"), required=("name", "segment"))
            iname = string(d, im.get("name"), "interface name")
            seg = string(d, im.get("segment"), "interface segment")
            if seg not in self.segments:
                raise self.err(im.get("segment"), f"unknown segment {seg!r}")
            if any(i.name == iname for i in interfaces):
                raise self.err(im.get("name"), f"interface {iname!r} listed twice on firewall {name!r}")
            interfaces.append(Interface(iname, seg, self.ref(inode)))
        if not interfaces:
            raise self.err(m.get("interfaces"), "interfaces: a firewall needs at least one interface")
        if len(interfaces) > 64:
            raise self.err(m.get("interfaces"), "a firewall may have at most 64 interfaces in a topology")
        default = "deny"
        if m.has("default"):
            default = self._action(m.get("default"))
        if m.has("rules") and m.has("config"):
            raise self.err(m.get("config"), "give either rules or config, not both")
        iface_names = [i.name for i in interfaces]
        config_path = config_format = None
        if m.has("config"):
            cm = mapping(d, m.get("config"), "config", ("format", "file"), required=("format", "file"))
            config_format = scalar(d, cm.get("format"), "config format")
            file_text = string(d, cm.get("file"), "config file")
            importer = get_importer(config_format)
            if importer is None:
                from ..importers import FORMATS

                raise self.err(cm.get("format"),
                               f"unknown config format {config_format!r} (known: {', '.join(FORMATS)})")
            config_path = os.path.join(self.base, file_text) if not os.path.isabs(file_text) else file_text
            if not os.path.isfile(config_path):
                raise self.err(cm.get("file"), f"config file {config_path!r} not found")
            self.inputs.append(config_path)
            ruleset = importer(config_path, iface_names)
        else:
            rules: list[Rule] = []
            ids: set[str] = set()
            if m.has("rules"):
                for index, rnode in enumerate(sequence(d, m.get("rules"), "rules"), start=1):
                    rule = self._rule(rnode, index, iface_names)
                    if rule.id in ids:
                        raise self.err(rnode, f"rule id {rule.id!r} used twice in firewall {name!r}")
                    ids.add(rule.id)
                    rules.append(rule)
            ruleset = RuleSet(tuple(rules), default)
        return Firewall(name, tuple(interfaces), ruleset, self.ref(node), config_path, config_format)

    def _action(self, node: yaml.Node | None) -> str:
        value = scalar(self.doc, node, "action").lower()
        if value not in ACTIONS:
            raise self.err(node, f"action must be allow or deny, not {value!r}")
        return ACTIONS[value]

    def _rule(self, node: yaml.Node, index: int, ifaces: list[str]) -> Rule:
        d = self.doc
        m = mapping(d, node, "rule", RULE_KEYS, required=("action",))
        get = m.get
        id_node = get("id")
        rid = string(d, id_node, "rule id") if id_node is not None else f"#{index}"
        action = self._action(get("action"))
        from_node, to_node = get("from"), get("to")
        in_ifaces = self._ifaces(from_node, ifaces, "from") if from_node is not None else None
        out_ifaces = self._ifaces(to_node, ifaces, "to") if to_node is not None else None
        parts: list[Expr] = []
        for key in ("src", "dst"):
            ep_node = get(key)
            if ep_node is not None:
                addresses = self._rule_addresses(ep_node, key)
                if addresses is not ALL_ADDRESSES and addresses != ALL_ADDRESSES:
                    parts.append(self._field_in(key, addresses))
        proto_node = get("proto")
        protos = self._protos(proto_node) if proto_node is not None else None
        sport_node, dport_node = get("sport"), get("dport")
        has_ports = sport_node is not None or dport_node is not None
        has_icmp = m.has("icmp-type") or m.has("icmp-code")
        if has_ports and has_icmp:
            raise self.err(node, "a rule cannot match both ports and ICMP type")
        if has_ports:
            if protos is not None and not protos.issubset(PORT_PROTOS):
                raise self.err(proto_node, "ports need proto tcp, udp or sctp")
            protos = protos if protos is not None else PORT_PROTOS
            for key, port_node in (("sport", sport_node), ("dport", dport_node)):
                if port_node is not None:
                    parts.append(self._field_in(key, self._ports(port_node, key)))
        if has_icmp:
            if protos is not None and not protos.issubset(ICMP_PROTOS):
                raise self.err(proto_node, "icmp-type needs proto icmp or icmpv6")
            protos = protos if protos is not None else ICMP_PROTOS
            for key, field in (("icmp-type", "icmp_type"), ("icmp-code", "icmp_code")):
                if m.has(key):
                    values = [integer(d, n, key, 0, 255) for n in sequence(d, m.get(key), key, allow_scalar=True)]
                    parts.append(FieldIn(field, IntervalSet.of(*values)))
        if protos is not None:
            parts.insert(0, self._field_in("proto", protos))
        match = all_of(*parts) if parts else TRUE
        if in_ifaces is not None and not in_ifaces or out_ifaces is not None and not out_ifaces:
            match = FALSE
        name = None
        for key in ("name", "comment", "description"):
            if m.has(key):
                name = scalar(d, m.get(key), key)
                break
        return Rule(rid, action, match, in_ifaces, out_ifaces, self.ref(node), name)

    def _rule_addresses(self, node: yaml.Node, what: str) -> IntervalSet:
        """``endpoints(node, what).addresses``, kept per text for a single name: rule files repeat
        the same networks, and one shared set is hashed once and compared by identity later."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == NULL:
            return self.endpoints(node, what).addresses
        key = (node.value, what)
        hit = self._addresses.get(key)
        if hit is None:
            hit = self._addresses[key] = self.endpoints(node, what).addresses
        else:
            self.doc.visit(node)  # what ``endpoints`` counts: the list and the item
            self.doc.visit(node)
        return hit

    def _field_in(self, field: str, values: IntervalSet) -> FieldIn:
        """One shared FieldIn per (field, values): fewer objects for the collector to walk."""
        key = (field, values)
        hit = self._fields.get(key)
        if hit is None:
            hit = self._fields[key] = FieldIn(field, values)
        return hit

    def _ifaces(self, node: yaml.Node | None, ifaces: list[str], what: str) -> frozenset[str] | None:
        names: set[str] = set()
        for item in sequence(self.doc, node, what, allow_scalar=True):
            text = scalar(self.doc, item, what)
            if text == "any":
                return None
            if text not in ifaces:
                raise self.err(item, f"{what}: {text!r} is not an interface of this firewall "
                                     f"(interfaces: {', '.join(ifaces)})")
            names.add(text)
        frozen = frozenset(names)
        return self._iface_sets.setdefault(frozen, frozen)  # shared: a rule set names few lists

    def _protos(self, node: yaml.Node | None) -> IntervalSet | None:
        values: list[int] = []
        for item in sequence(self.doc, node, "proto", allow_scalar=True):
            text = scalar(self.doc, item, "proto").lower()
            if text in ("any", "ip", "all"):
                return None
            if text in PROTO_NUMBERS:
                values.append(PROTO_NUMBERS[text])
            elif text.isdigit() and int(text) <= 255:
                values.append(int(text))
            else:
                raise self.err(item, f"proto must be tcp, udp, icmp, icmpv6, sctp, any or 0-255, not {text!r}")
        return IntervalSet.of(*values)

    def _ports(self, node: yaml.Node, what: str) -> IntervalSet:
        if isinstance(node, yaml.ScalarNode) and node.tag != NULL:  # one port or range: kept per text
            key = (node.value, what)
            hit = self._port_sets.get(key)
            if hit is None:
                hit = self._port_sets[key] = self._port_list(node, what)
            else:
                self.doc.visit(node)  # what ``_port_list`` counts: the list and the item
                self.doc.visit(node)
            return hit
        return self._port_list(node, what)

    def _port_list(self, node: yaml.Node | None, what: str) -> IntervalSet:
        ranges: list[tuple[int, int]] = []
        for item in sequence(self.doc, node, what, allow_scalar=True):
            ranges.append(self._port_range(item, scalar(self.doc, item, what), what))
        return IntervalSet.interval(*ranges[0]) if len(ranges) == 1 else IntervalSet(ranges)

    def _port_range(self, node: yaml.Node, text: str, what: str) -> tuple[int, int]:
        text = text.strip()
        lo_text, sep, hi_text = text.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        except ValueError:
            raise self.err(node, f"{what}: {text!r} is not a port or a range a-b") from None
        if not (0 <= lo <= hi <= 65535):
            raise self.err(node, f"{what}: {text!r} is not a port range within 0-65535")
        return lo, hi

    def _router(self, node: yaml.Node, devices: set[str]) -> Router:
        d = self.doc
        m = mapping(d, node, "router", ("name", "segments", "description"), required=("name", "segments"))
        name = string(d, m.get("name"), "router name")
        self._device_name(m.get("name"), name, devices)
        segs: list[str] = []
        for snode in sequence(d, m.get("segments"), "segments", allow_scalar=True):
            seg = scalar(d, snode, "segment")
            if seg not in self.segments:
                raise self.err(snode, f"unknown segment {seg!r}")
            segs.append(seg)
        return Router(name, tuple(segs), self.ref(node))

    # --- channels and exceptions ---------------------------------------------------------------

    def port_specs(self, node: yaml.Node | None, what: str) -> tuple[PortSpec, ...]:
        specs: list[PortSpec] = []
        for item in sequence(self.doc, node, what, allow_scalar=True):
            text = scalar(self.doc, item, what).strip().lower()
            proto_text, sep, port_text = text.partition("/")
            if proto_text not in PROTO_NUMBERS and not proto_text.isdigit():
                raise self.err(item, f"{what}: {text!r} must look like tcp/443, udp/53 or tcp/8000-8010")
            proto = PROTO_NUMBERS.get(proto_text) if not proto_text.isdigit() else int(proto_text)
            if proto is None or proto > 255:
                raise self.err(item, f"{what}: bad protocol in {text!r}")
            if proto in PORT_PROTOS:
                if not sep:
                    raise self.err(item, f"{what}: {text!r} needs a port (like tcp/443)")
                lo, hi = self._port_range(item, port_text, what)
                specs.append(PortSpec(proto, IntervalSet([(lo, hi)]), text))
            else:
                if sep:
                    raise self.err(item, f"{what}: {proto_text} has no ports")
                specs.append(PortSpec(proto, None, text))
        return tuple(specs)

    def _channel(self, node: yaml.Node) -> Channel:
        d = self.doc
        m = mapping(
            d, node, "channel",
            ("name", "kind", "protocol", "clients", "servers", "ports", "sanitizer", "inbound", "outbound",
             "description"),
            required=("name", "kind"),
        )
        name = string(d, m.get("name"), "channel name")
        kind = scalar(d, m.get("kind"), "channel kind")
        if kind not in CHANNEL_KINDS:
            raise self.err(m.get("kind"), f"channel kind must be one of {', '.join(CHANNEL_KINDS)}, not {kind!r}")
        ref = self.ref(node)
        if kind in ("screen-transfer", "cloud-direct"):
            for key in ("clients", "servers", "ports"):
                if not m.has(key):
                    raise self.err(node, f"a {kind} channel needs {key}")
            for key in ("sanitizer", "inbound", "outbound"):
                if m.has(key):
                    raise self.err(m.get(key), f"a {kind} channel has no {key}")
            protocol = None
            if kind == "screen-transfer":
                if not m.has("protocol"):
                    raise self.err(node, "a screen-transfer channel needs protocol (rdp, ica, vnc, pcoip, blast)")
                protocol = scalar(d, m.get("protocol"), "protocol").lower()
                if protocol not in SCREEN_PROTOCOLS:
                    raise self.err(m.get("protocol"), f"protocol must be one of {', '.join(SCREEN_PROTOCOLS)}")
            elif m.has("protocol"):
                raise self.err(m.get("protocol"), "a cloud-direct channel has no protocol")
            return Channel(
                name, kind, ref, protocol=protocol,
                clients=self.endpoints(m.get("clients"), "clients"),
                servers=self.endpoints(m.get("servers"), "servers"),
                ports=self.port_specs(m.get("ports"), "ports"),
            )
        for key in ("clients", "servers", "ports", "protocol"):
            if m.has(key):
                raise self.err(m.get(key), f"a {kind} channel has no {key} (use sanitizer, inbound, outbound)")
        for key in ("sanitizer", "inbound", "outbound"):
            if not m.has(key):
                raise self.err(node, f"a {kind} channel needs {key}")
        sanitizer = string(d, m.get("sanitizer"), "sanitizer")
        if sanitizer not in self.hosts:
            raise self.err(m.get("sanitizer"), f"sanitizer {sanitizer!r} is not a declared host")
        legs = []
        for key in ("inbound", "outbound"):
            lm = mapping(d, m.get(key), key, ("peers", "ports"), required=("peers", "ports"))
            legs.append(Leg(self.endpoints(lm.get("peers"), "peers"), self.port_specs(lm.get("ports"), "ports")))
        return Channel(name, kind, ref, sanitizer=sanitizer, inbound=legs[0], outbound=legs[1])

    def _exception(self, node: yaml.Node) -> ExceptionRule:
        d = self.doc
        m = mapping(d, node, "exception", ("name", "from", "to", "ports", "reason", "description"),
                    required=("name", "from", "to"))
        name = string(d, m.get("name"), "exception name")
        ports = self.port_specs(m.get("ports"), "ports") if m.has("ports") else ()
        reason = scalar(d, m.get("reason"), "reason") if m.has("reason") else ""
        return ExceptionRule(name, self.endpoints(m.get("from"), "from"), self.endpoints(m.get("to"), "to"),
                             ports, reason, self.ref(node))

