"""Strict, bounded reading of YAML documents that keeps every node's line for error messages.

PyYAML's composer (libyaml where available) gives a node tree with marks; we walk that tree
ourselves rather than ``safe_load`` it, so every error can say FILE:LINE, duplicate keys are
refused (YAML silently keeps the last), and alias expansion is bounded (a "billion laughs"
document is refused instead of eating the machine).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from ..errors import InputError

try:  # libyaml is ten times faster on large rule sets; the pure-Python composer gives the same nodes
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Resolves each distinct plain scalar's tag once: rule files repeat the same few values
    (allow, tcp, interface names) thousands of times, and PyYAML resolves tags in Python."""

    _tags: dict[tuple[object, str, tuple[bool, bool]], str] = {}

    def resolve(self, kind, value, implicit):  # type: ignore[no-untyped-def]
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (kind, value, tuple(implicit))
        tag = self._tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._tags) < 100_000:
                self._tags[key] = tag
        return tag

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_NODE_VISITS = 5_000_000
MAX_DEPTH = 10_000
COMPOSER_STACK = 512 * 1024 * 1024  # libyaml's composer recurses in C once per nesting level

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"


class Doc:
    """One YAML file being read: its display path and the visit budget shared by all its nodes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.visits = 0

    def error(self, node: yaml.Node | None, message: str) -> InputError:
        line = node.start_mark.line + 1 if node is not None else None
        return InputError(self.path, message, line)

    def visit(self, node: yaml.Node) -> None:
        self.visits += 1
        if self.visits > MAX_NODE_VISITS:
            raise self.error(node, "document too large after alias expansion (refused: possible alias bomb)")


def compose_file(path: str, display: str) -> tuple[Doc, yaml.Node]:
    """Read and compose one YAML file, refusing oversized files and turning syntax errors into InputError."""
    doc = Doc(display)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(display, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(display, f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB (refused)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(display, "not valid UTF-8", line) from None
    try:
        node = _compose_with_big_stack(text, display)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "YAML syntax error"
        raise InputError(display, f"YAML syntax error: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise InputError(display, f"YAML error: {exc}") from None
    if node is None:
        raise InputError(display, "the file is empty")
    return doc, node


def _check_depth(text: str, display: str) -> None:
    """Refuse absurd nesting without recursion (the event parser keeps its own stack)."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else None
                raise InputError(display, f"nesting deeper than {MAX_DEPTH} levels (refused)", line)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _compose_with_big_stack(text: str, display: str) -> yaml.Node | None:
    """Compose in a thread with a large stack: deeply nested (hostile) documents would otherwise
    overflow the C stack of libyaml's recursive composer and kill the process. libyaml is also
    quadratic in nesting depth, so a document with enough brackets to nest deeply is first
    checked by an event pass that stops at MAX_DEPTH."""
    result: dict[str, object] = {}

    def work() -> None:
        try:
            if text.count("[") + text.count("{") > 2 * MAX_DEPTH:
                _check_depth(text, display)
            result["node"] = yaml.compose(text, Loader=_Loader)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    old = threading.stack_size(COMPOSER_STACK)
    try:
        worker = threading.Thread(target=work, name="segverify-yaml")
        worker.start()
    finally:
        threading.stack_size(old)
    worker.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result.get("node")  # type: ignore[return-value]


@dataclass
class Mapping:
    """A YAML mapping whose keys were checked: known, unique, and required ones present."""

    doc: Doc
    node: yaml.MappingNode
    items: dict[str, tuple[yaml.Node, yaml.Node]]

    def get(self, key: str) -> yaml.Node | None:
        item = self.items.get(key)
        return item[1] if item else None

    def has(self, key: str) -> bool:
        return key in self.items

    def line(self, key: str | None = None) -> int:
        node = self.items[key][1] if key and key in self.items else self.node
        return node.start_mark.line + 1


def mapping(
    doc: Doc,
    node: yaml.Node,
    what: str,
    allowed: tuple[str, ...],
    required: tuple[str, ...] = (),
) -> Mapping:
    doc.visit(node)
    if not isinstance(node, yaml.MappingNode):
        raise doc.error(node, f"{what} must be a mapping (key: value)")
    items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        doc.visit(key_node)
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == NULL:
            raise doc.error(key_node, f"{what}: keys must be plain names")
        key = str(key_node.value)
        if key in items:
            raise doc.error(key_node, f"{what}: key {key!r} given twice")
        if key not in allowed:
            known = ", ".join(allowed)
            raise doc.error(key_node, f"{what}: unknown key {key!r} (known keys: {known})")
        items[key] = (key_node, value_node)
    for key in required:
        if key not in items:
            raise doc.error(node, f"{what}: missing required key {key!r}")
    return Mapping(doc, node, items)


def sequence(doc: Doc, node: yaml.Node, what: str, allow_scalar: bool = False) -> Iterator[yaml.Node]:
    """Items of a YAML list; with ``allow_scalar`` a single scalar counts as a one-item list."""
    doc.visit(node)
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            doc.visit(item)
            yield item
    elif allow_scalar and isinstance(node, yaml.ScalarNode) and node.tag != NULL:
        yield node
    else:
        raise doc.error(node, f"{what} must be {'a value or ' if allow_scalar else ''}a list")


def scalar(doc: Doc, node: yaml.Node, what: str) -> str:
    """A scalar as text (numbers included: ``443`` and ``"443"`` read alike)."""
    doc.visit(node)
    if not isinstance(node, yaml.ScalarNode) or node.tag == NULL:
        raise doc.error(node, f"{what} must be a single value")
    return str(node.value)


def string(doc: Doc, node: yaml.Node, what: str) -> str:
    value = scalar(doc, node, what)
    if node.tag not in (STR,) and node.tag != INT:
        raise doc.error(node, f"{what} must be a text value, not {value!r}")
    if not value.strip():
        raise doc.error(node, f"{what} must not be empty")
    return value


def integer(doc: Doc, node: yaml.Node, what: str, lo: int, hi: int) -> int:
    value = scalar(doc, node, what)
    try:
        number = int(value, 0) if node.tag == INT else int(value)
    except ValueError:
        raise doc.error(node, f"{what} must be a whole number, not {value!r}") from None
    if not lo <= number <= hi:
        raise doc.error(node, f"{what} must be between {lo} and {hi}, not {number}")
    return number
