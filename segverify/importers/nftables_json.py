"""``nft -j list ruleset`` importer: the JSON form, read into the text importer's syntax tree.

It follows the libnftables JSON schema (libnftables-json(5)): ``{"nftables": [{"metainfo": …},
{"table": …}, {"chain": …}, {"set": …}, {"map": …}, {"rule": {…, "expr": [STATEMENTS]}} …]}``. Command
objects of JSON input files (``{"add": {"rule": …}}``, ``{"flush": {"ruleset": null}}``) are read as the
objects they add. Everything after reading (which chains decide, conntrack, approximations) is the text
importer's, so both formats give the same verdicts; see :mod:`.nftables`.

JSON has no lines: a rule's source is the file alone and its id carries its position in the chain
(``inet filter/forward#3 (handle 12)``); error messages name the object's index in the array
(``nftables[17]``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..errors import InputError
from ..model.rules import RuleSet
from .nftables import (
    BINOPS,
    CHAIN_TYPES,
    CT_KEYS,
    EXTHDR_FIELDS,
    FAMILIES,
    HOOKS,
    META_KEYS,
    PAYLOAD_FIELDS,
    REWRITTEN_FIELDS,
    BaseSpec,
    Builder,
    Item,
    Match,
    NChain,
    NRule,
    NRuleset,
    NSet,
    NTable,
    Stmt,
    Value,
    VConcat,
    Verdict,
    VList,
    VMap,
    VOr,
    VPrefix,
    VRange,
    VRef,
    VSet,
    VWord,
    _read,
    _vtext,
    priority_value,
    reject_dependency,
)

MAX_DEPTH = 64
_IGNORED_OBJECTS = frozenset({"metainfo", "flowtable", "counter", "quota", "limit", "ct helper", "ct timeout",
                              "ct expectation", "secmark", "synproxy"})
_RELOPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", "⇐": "<=", ">=": ">=", "in": "in"}


class _JsonError(Exception):
    pass


class JsonReader:
    """Reads the decoded ``nft -j`` document into an NRuleset."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.where = "the file"
        self.rs = NRuleset()

    def err(self, message: str) -> InputError:
        return InputError(self.path, f"{self.where}: {message}")

    def read(self, doc: object) -> NRuleset:
        if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
            raise InputError(self.path, 'not an nft -j listing: expected {"nftables": [ … ]}')
        for idx, obj in enumerate(doc["nftables"]):
            self.where = f"nftables[{idx}]"
            try:
                self.read_object(obj)
            except (TypeError, AttributeError, KeyError, ValueError) as exc:  # a value of the wrong JSON type
                raise self.err(f"malformed object ({exc.__class__.__name__}: {str(exc)[:80]})") from None
        return self.rs

    def read_object(self, obj: object) -> None:
        kind, body = self.single(obj, "an object")
        if kind in ("add", "create"):
            kind, body = self.single(body, f"the object of {kind!r}")
        elif kind == "flush":
            if body != {"ruleset": None}:
                raise self.err("only {\"flush\": {\"ruleset\": null}} is understood")
            self.rs.tables.clear()
            return
        if kind == "table":
            self.table(body)
        elif kind == "chain":
            self.chain(body)
        elif kind == "rule":
            self.rule(body)
        elif kind in ("set", "map"):
            self.set(body, kind == "map")
        elif kind == "element":
            self.element(body)
        elif kind not in _IGNORED_OBJECTS:
            raise self.err(f"unknown object {kind!r}")

    # -- helpers --

    def single(self, obj: object, what: str) -> tuple[str, object]:
        if not isinstance(obj, dict) or len(obj) != 1:
            raise self.err(f"{what} must be a JSON object with one key")
        ((kind, body),) = obj.items()
        return kind, body

    def props(self, body: object, kind: str) -> dict[str, object]:
        if not isinstance(body, dict):
            raise self.err(f"a {kind} must be a JSON object")
        return body

    def string(self, body: dict[str, object], key: str, kind: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise self.err(f"a {kind} needs a {key!r} string")
        return value

    def integer(self, value: object, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.err(f"{what} must be an integer")
        return value

    def owner(self, body: dict[str, object], kind: str) -> NTable:
        family = self.string(body, "family", kind)
        name = self.string(body, "table", kind)
        table = self.rs.tables.get((family, name))
        if table is None:
            raise self.err(f"{kind} of table {family} {name}, which is not declared before it")
        return table

    # -- objects --

    def table(self, body: object) -> None:
        props = self.props(body, "table")
        family = self.string(props, "family", "table")
        name = self.string(props, "name", "table")
        if family not in FAMILIES:
            raise self.err(f"unknown table family {family!r}")
        table = self.rs.tables.get((family, name))
        if table is None:
            table = self.rs.tables[(family, name)] = NTable(family, name, None)
        flags = props.get("flags", [])
        flags = [flags] if isinstance(flags, str) else flags
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise self.err("a table's flags must be strings")
        table.dormant = table.dormant or "dormant" in flags

    def chain(self, body: object) -> None:
        props = self.props(body, "chain")
        table = self.owner(props, "chain")
        name = self.string(props, "name", "chain")
        chain = table.chains.get(name)
        if chain is None:
            chain = table.chains[name] = NChain(name, None)
        comment = props.get("comment")
        if isinstance(comment, str):
            chain.comments.append(comment)
        if "hook" not in props:
            return
        ctype = self.string(props, "type", "base chain")
        hook = self.string(props, "hook", "base chain")
        if ctype not in CHAIN_TYPES:
            raise self.err(f"unknown chain type {ctype!r}")
        if hook not in HOOKS[table.family]:
            raise self.err(f"hook {hook!r} does not exist in family {table.family}")
        prio = props.get("prio", 0)
        if isinstance(prio, str):
            try:
                prio = priority_value(table.family, prio)
            except ValueError as exc:
                raise self.err(str(exc)) from None
        prio = self.integer(prio, "a chain's prio")
        policy = props.get("policy", "accept")
        if policy not in ("accept", "drop"):
            raise self.err(f"unknown chain policy {policy!r}")
        dev = props.get("dev")
        devices: tuple[str, ...] | None = None
        if isinstance(dev, str):
            devices = (dev,)
        elif isinstance(dev, list) and all(isinstance(d, str) for d in dev):
            devices = tuple(dev)  # type: ignore[arg-type]
        elif dev is not None:
            raise self.err("a chain's dev must be a string or a list of strings")
        chain.base = BaseSpec(ctype, hook, prio, policy, devices, None)  # type: ignore[arg-type]

    def rule(self, body: object) -> None:
        props = self.props(body, "rule")
        table = self.owner(props, "rule")
        name = self.string(props, "chain", "rule")
        chain = table.chains.get(name)
        if chain is None:
            raise self.err(f"rule of chain {name!r}, which is not declared in table {table.label}")
        expr = props.get("expr")
        if not isinstance(expr, list) or not expr:
            raise self.err("a rule needs an 'expr' list of statements")
        handle = props.get("handle")
        if handle is not None:
            handle = self.integer(handle, "a rule's handle")
        comment = props.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise self.err("a rule's comment must be a string")
        items: list[Item] = []
        for stmt in expr:
            if items and (isinstance(items[-1], Verdict) or (isinstance(items[-1], Stmt) and items[-1].kind in (
                    "dnat", "snat", "unknown-verdict"))):
                raise self.err("a statement after the verdict")
            if isinstance(stmt, dict) and isinstance(stmt.get("reject"), dict):
                dep = reject_dependency(stmt["reject"].get("type"))
                if dep is not None:
                    items.append(dep)
            items.append(self.statement(stmt))
        chain.rules.append(NRule(items, None, handle, comment, len(chain.rules) + 1, self.where))

    def set(self, body: object, is_map: bool) -> None:
        kind = "map" if is_map else "set"
        props = self.props(body, kind)
        table = self.owner(props, kind)
        name = self.string(props, "name", kind)
        if name in table.sets:
            raise self.err(f"{kind} {name!r} declared twice in table {table.label}")
        nset = table.sets[name] = NSet(name, None, is_map=is_map)
        if is_map:
            data = props.get("map")
            if not isinstance(data, str):
                raise self.err("a map needs a 'map' data type")
            nset.verdict_map = data == "verdict"
        flags = props.get("flags", [])
        flags = [flags] if isinstance(flags, str) else flags
        if not isinstance(flags, list):
            raise self.err("a set's flags must be a list")
        nset.dynamic = "dynamic" in flags
        if "elem" in props:
            self.add_elements(nset, props["elem"])

    def element(self, body: object) -> None:
        props = self.props(body, "element")
        table = self.owner(props, "element")
        name = self.string(props, "name", "element")
        nset = table.sets.get(name)
        if nset is None:
            raise self.err(f"elements of set {name!r}, which is not declared in table {table.label}")
        self.add_elements(nset, props.get("elem"))

    def add_elements(self, nset: NSet, elem: object) -> None:
        items = elem if isinstance(elem, list) else [elem]
        keys: list[Value] = []
        for item in items:
            if nset.is_map:
                if not isinstance(item, list) or len(item) != 2:
                    raise self.err(f"map {nset.name!r}: an element must be [key, value]")
                key = self.value(item[0])
                keys.append(key)
                if nset.verdict_map:
                    nset.map_data = (nset.map_data or []) + [(key, self.verdict(item[1]))]
            else:
                keys.append(self.value(item))
        nset.elements = (nset.elements or []) + keys
        if nset.is_map and nset.verdict_map and nset.map_data is None:
            nset.map_data = []

    # -- statements --

    def verdict(self, obj: object) -> Verdict:
        kind, body = self.single(obj, "a verdict")
        if kind in ("accept", "drop", "continue", "return"):
            return Verdict(kind)
        if kind in ("jump", "goto"):
            target = body.get("target") if isinstance(body, dict) else None
            if not isinstance(target, str) or not target:
                raise self.err(f"{kind} needs a target chain")
            return Verdict(kind, target)
        raise self.err(f"{kind!r} is not a verdict")

    def statement(self, obj: object) -> Item:
        kind, body = self.single(obj, "a statement")
        if kind in ("accept", "drop", "continue", "return", "jump", "goto"):
            return self.verdict(obj)
        if kind == "reject":
            return Verdict("reject")
        if kind == "match":
            props = self.props(body, "match")
            op = props.get("op", "==")
            if not isinstance(op, str) or op not in _RELOPS:
                raise self.err(f"unknown match operator {op!r}")
            left, binops = self.lhs(props.get("left"), 0)
            right = self.value(props.get("right"))
            text = " ".join([" . ".join(left), *(f"{o} {_vtext(v)}" for o, v in binops), str(op), _vtext(right)])
            return Match(left, tuple(binops), _RELOPS[op], right, text)  # type: ignore[index]
        if kind == "vmap":
            props = self.props(body, "vmap")
            left, binops = self.lhs(props.get("key"), 0)
            data = props.get("data")
            text = f"{' . '.join(left)} vmap"
            if isinstance(data, str) and data.startswith("@"):
                return VMap(left, tuple(binops), VRef(data[1:]), f"{text} {data}")
            _, pairs = self.single(data, "a verdict map's data")
            if not isinstance(pairs, list):
                raise self.err("a verdict map's data must be {\"set\": [[key, verdict], …]}")
            out: list[tuple[Value, Verdict]] = []
            for pair in pairs:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise self.err("a verdict map element must be [key, verdict]")
                out.append((self.value(pair[0]), self.verdict(pair[1])))
            return VMap(left, tuple(binops), tuple(out), f"{text} {{ … }}")
        text = kind if body is None else f"{kind} {json.dumps(body, sort_keys=True)[:80]}"
        if kind in ("counter", "log", "ct helper", "ct timeout", "ct expectation", "dup", "flow", "last",
                    "secmark"):
            return Stmt("nop", text)
        if kind == "mangle":
            props = self.props(body, "mangle")
            try:
                key, _ = self.lhs(props.get("key"), 0)
            except InputError:
                return Stmt("nop", text)
            if len(key) == 1 and key[0] in REWRITTEN_FIELDS:
                return Stmt("dnat", f"{key[0]} set …: the packet's header is rewritten")
            return Stmt("nop", text)
        if kind in ("limit", "quota"):
            what = "rate limits" if kind == "limit" else "quotas"
            return Stmt("unknown-match", f"{text}: {what} depend on traffic")
        if kind == "meter":
            return Stmt("unknown-match", f"{text}: meters depend on traffic")
        if kind == "ct count":
            return Stmt("unknown-match", f"{text}: connection counts depend on traffic")
        if kind == "notrack":
            return Stmt("notrack", "notrack")
        if kind in ("dnat", "redirect", "snat", "masquerade"):
            family = body.get("family") if isinstance(body, dict) else None
            return Stmt("dnat" if kind in ("dnat", "redirect") else "snat", text,
                        family if family in ("ip", "ip6") else None)
        if kind in ("queue", "fwd", "tproxy", "synproxy"):
            return Stmt("unknown-verdict", f"{text}: the verdict is given elsewhere; taken as accepting")
        if kind == "set":
            props = self.props(body, "set statement")
            target = props.get("set")
            if not isinstance(target, str) or not target.startswith("@"):
                raise self.err("a set statement needs a '@set'")
            return Stmt("set-update", text, target[1:])
        if kind == "xt":
            props = self.props(body, "xt")
            if props.get("type") == "target":
                return Stmt("unknown-verdict", f"{text}: iptables-nft extension target; taken as accepting")
            if props.get("type") == "match":
                return Stmt("unknown-match", f"{text}: iptables-nft extension not translated to nftables")
            return Stmt("nop", text)
        raise self.err(f"unknown statement {kind!r}")

    # -- expressions --

    def lhs(self, obj: object, depth: int) -> tuple[tuple[str, ...], list[tuple[str, Value]]]:
        """A match's left side: selectors (several for a concatenation) and the bit operations on them."""
        if depth > MAX_DEPTH:
            raise self.err("expressions nested too deeply")
        kind, body = self.single(obj, "an expression")
        if kind in BINOPS and kind in ("&", "|", "^", "<<", ">>"):
            if not isinstance(body, list) or len(body) != 2:
                raise self.err(f"{kind} takes [left, right]")
            left, ops = self.lhs(body[0], depth + 1)
            return left, [*ops, (kind, self.value(body[1]))]
        if kind == "concat":
            if not isinstance(body, list) or not body:
                raise self.err("concat takes a list")
            sels: list[str] = []
            for part in body:
                sub, ops = self.lhs(part, depth + 1)
                if ops:
                    raise self.err("bit operations inside a concatenation are not supported")
                sels.extend(sub)
            return tuple(sels), []
        return (self.selector(kind, body),), []

    def selector(self, kind: str, body: object) -> str:
        props = body if isinstance(body, dict) else {}
        if kind == "payload":
            if "base" in props:
                return f"raw @{props.get('base')},{props.get('offset')},{props.get('len')}"
            proto, fld = props.get("protocol"), props.get("field")
            if not isinstance(proto, str) or not isinstance(fld, str) or fld not in PAYLOAD_FIELDS.get(proto, ()):
                if isinstance(proto, str) and isinstance(fld, str) and proto in ("gre", "vxlan", "geneve",
                                                                                 "gretap"):
                    return f"{proto} {fld}"
                raise self.err(f"unknown payload field {proto} {fld}")
            return f"{proto} {fld}"
        if kind == "meta":
            key = props.get("key")
            if not isinstance(key, str) or key not in META_KEYS:
                raise self.err(f"unknown meta key {key!r}")
            return f"meta {key}"
        if kind == "ct":
            key = props.get("key")
            if not isinstance(key, str) or key.split()[-1] not in CT_KEYS:
                raise self.err(f"unknown conntrack key {key!r}")
            parts = ["ct"]
            if props.get("dir") in ("original", "reply"):
                parts.append(str(props["dir"]))
            if props.get("family") in ("ip", "ip6"):
                parts.append(str(props["family"]))
            parts.append(key)
            return " ".join(parts)
        if kind == "fib":
            flags = props.get("flags", [])
            flags = [flags] if isinstance(flags, str) else flags
            return f"fib {'.'.join(str(f) for f in flags)} {props.get('result')}"
        if kind == "exthdr":
            name = props.get("name")
            if not isinstance(name, str):
                raise self.err("exthdr needs a name")
            if name not in EXTHDR_FIELDS:
                return f"exthdr {name}"
            return f"exthdr {name} {props.get('field', '')}".strip()
        if kind in ("rt", "socket", "osf", "ipsec", "tcp option", "sctp chunk"):
            detail = props.get("key") or props.get("name") or ""
            return f"{kind} {detail}".strip()
        if kind in ("numgen", "jhash", "symhash"):
            return kind
        raise self.err(f"unknown expression {kind!r}")

    def value(self, obj: object, depth: int = 0) -> Value:
        if depth > MAX_DEPTH:
            raise self.err("values nested too deeply")
        if isinstance(obj, bool):
            return VWord("exists" if obj else "missing")
        if isinstance(obj, int):
            return VWord(str(obj))
        if isinstance(obj, str):
            if obj.startswith("@"):
                return VRef(obj[1:])
            return VWord(obj, quoted=True)
        if isinstance(obj, list):
            return VList(tuple(self.value(x, depth + 1) for x in obj))
        kind, body = self.single(obj, "a value")
        if kind == "set":
            items = body if isinstance(body, list) else [body]
            flat: list[Value] = []
            for x in items:
                v = self.value(x, depth + 1)
                flat.extend(v.items if isinstance(v, VSet) else [v])
            return VSet(tuple(flat))
        if kind == "range":
            if not isinstance(body, list) or len(body) != 2:
                raise self.err("range takes [low, high]")
            return VRange(self.value(body[0], depth + 1), self.value(body[1], depth + 1))
        if kind == "prefix":
            props = self.props(body, "prefix")
            return VPrefix(self.value(props.get("addr"), depth + 1), self.integer(props.get("len"), "a prefix length"))
        if kind == "concat":
            if not isinstance(body, list):
                raise self.err("concat takes a list")
            return VConcat(tuple(self.value(x, depth + 1) for x in body))
        if kind == "elem":
            props = self.props(body, "elem")
            return self.value(props.get("val"), depth + 1)
        if kind == "|":
            if not isinstance(body, list) or len(body) != 2:
                raise self.err("| takes [left, right]")
            return VOr(tuple(self.value(x, depth + 1) for x in body))
        raise self.err(f"cannot read value {kind!r}")


def parse_json(path: str, text: str) -> NRuleset:
    try:
        doc = json.loads(text)
    except RecursionError:
        raise InputError(path, "JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not JSON: {exc.msg}", exc.lineno) from None
    except ValueError as exc:
        raise InputError(path, f"not JSON: {exc}") from None
    return JsonReader(path).read(doc)


def load(path: str, interfaces: Sequence[str]) -> RuleSet:
    """The transit decision of an ``nft -j list ruleset`` file as a first-match RuleSet."""
    rs = parse_json(path, _read(path))
    if not rs.tables:
        raise InputError(path, "no table found in the nft -j listing")
    return Builder(path, interfaces, rs, json_input=True).run()
