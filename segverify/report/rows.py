"""A replay's flow rows as JSON text: rendered where the flows are judged (a cluster's workers), placed in
order by the client, and written as they are.

A month of captures has hundreds of thousands of flows; turning each into a dict and then into JSON was a
second of the client's serial tail on the cluster bench. The text of a row is final once its flow is judged,
so a worker renders its part's rows and the client only puts them in order.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload


def row_encoder() -> Callable[[Any], str]:
    """``json.dumps(row, ensure_ascii=False)`` for many rows, the same bytes: the C encoder that ``dumps`` builds
    for every call (most of its cost for a flow row: 8 us of 10), built once. Flow rows are plain dicts of
    strings, numbers and lists: no circular check is needed."""
    enc = json.JSONEncoder(ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C speedups in this Python
        return enc.encode
    one = make(None, enc.default, json.encoder.encode_basestring, None, enc.key_separator, enc.item_separator,
               enc.sort_keys, enc.skipkeys, enc.allow_nan)
    return lambda row: "".join(one(row, 0))


def row_bytes() -> Callable[[Any], bytes]:
    """A row's JSON text in UTF-8, as the report file holds it: rows travel and are joined as bytes (a flow's
    notes may hold non-ASCII text, which makes Python join a whole table as 2-byte characters)."""
    enc = row_encoder()
    return lambda row: enc(row).encode("utf-8")


class RenderedRows(Sequence[dict[str, Any]]):
    """Rows already rendered by :func:`row_bytes`, in report order. The JSON report writes ``texts`` as they
    are; every other reader (text table, HTML bundle) sees the same rows as dicts, decoded on access."""

    __slots__ = ("texts",)

    def __init__(self, texts: list[bytes]) -> None:
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [json.loads(t) for t in self.texts[i]]
        return json.loads(self.texts[i])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (json.loads(t) for t in self.texts)


def row_texts(rows: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each row's JSON text in UTF-8: ``RenderedRows`` as they are, any other rows encoded."""
    if isinstance(rows, RenderedRows):
        return rows.texts
    enc = row_bytes()
    return [enc(r) for r in rows]
