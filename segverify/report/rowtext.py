"""Rows of JSON text from columns: a flow table's report rows without an object or a dict per flow.

A row is literal text, numbers and strings in a fixed order (``pieces`` around ``k`` values). Each string is
already JSON text (encoded once per distinct value by the report's encoder), so a row is only put together:
in C when the extension was built (``_rowtext.c``, ~0.2 µs a row), else by the same loop in Python. Both give
the same bytes (tests).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from ..compiled import enabled


@functools.cache
def _compiled() -> ModuleType | None:
    try:
        from . import _rowtext  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _rowtext


def render(pieces: Sequence[bytes], columns: Sequence[np.ndarray], is_text: Sequence[bool],
           strs: Sequence[bytes]) -> list[bytes]:  # fmt: skip
    """Row ``i`` is ``pieces[0] + value(0, i) + pieces[1] + … + pieces[k]``; ``value(j, i)`` is
    ``strs[columns[j][i]]`` where ``is_text[j]``, else the decimal text of ``columns[j][i]``."""
    cols = tuple(np.ascontiguousarray(c, dtype=np.int64) for c in columns)
    flags = bytes(bool(t) for t in is_text)
    mod = _compiled() if enabled() else None
    if mod is not None:
        return mod.render(tuple(pieces), cols, flags, tuple(strs))
    if len(pieces) != len(cols) + 1 or len(flags) != len(cols):
        raise ValueError("render: k columns need k + 1 pieces and k flags")
    if len({len(c) for c in cols}) > 1:
        raise ValueError("render: columns of int64, all of one length")
    head, rest = pieces[0], pieces[1:]
    values = [c.tolist() for c in cols]
    out = []
    for row in zip(*values, strict=True):
        parts = [head]
        for v, t, piece in zip(row, flags, rest, strict=True):
            if t and not 0 <= v < len(strs):
                raise ValueError("render: a text index outside strs")
            parts.append(strs[v] if t else str(v).encode())
            parts.append(piece)
        out.append(b"".join(parts))
    return out
