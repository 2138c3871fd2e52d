"""The compiled CUDD loops (:file:`_cuddops.c`): whether they can be used, and moving nodes to and from ``dd``.

The C module calls CUDD directly on the managers ``dd`` created, so its results are ordinary ``dd``
Functions. It depends on how ``dd`` lays out its objects and CUDD its nodes; :func:`ops` checks both on
live objects before it hands the module out, and answers None (the callers then use ``dd``'s own calls:
same results, slower) when they differ, when the module was not built, or when ``SEGVERIFY_NO_NATIVE=1``.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from ..compiled import enabled
from ._dd import cudd

Function = Any  # dd.cudd.Function


@functools.cache
def _module() -> ModuleType | None:
    try:
        from . import _cuddops  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        _cuddops.bind(cudd.__file__)
        probe = cudd.BDD(memory_estimate=64 << 20, initial_cache_size=1 << 10)  # small: set up in 0.1 ms
        probe.declare("a", "b")
        manager = _cuddops.manager(probe)
        one = node(probe.true)
        for name in ("a", "b"):
            index, then_child, else_child = _cuddops.node(node(probe.var(name)))
            if (index, then_child, else_child) != (probe._index_of_var[name], one, one | 1):
                return None
        # A cube built here must be the one dd builds.
        built = _cuddops.cube(manager, {"a": True, "b": False}, probe._index_of_var, probe._add_int)
        if built != probe.cube({"a": True, "b": False}):
            return None
    except (ImportError, TypeError, ValueError, KeyError):
        return None
    return _cuddops


def ops(bdd: Any = None) -> ModuleType | None:
    """The C module, if it is there, checked and enabled (and, given ``bdd``, usable on that manager:
    no variable moved since it was declared)."""
    module = _module() if enabled() else None
    if module is None or bdd is None:
        return module
    if bdd.configure()["reordering"] or not module.levels_match(module.manager(bdd)):
        return None
    return module


def node(u: Function) -> int:
    """The CUDD node pointer of a ``dd`` Function (``dd``'s documented inverse of ``BDD._add_int``)."""
    return int(u) - 2


def pointers(functions: Iterable[Function]) -> array:
    return array("Q", [int(u) - 2 for u in functions])


def wrap(module: ModuleType, bdd: Any, manager: int, nodes: Sequence[int]) -> list[Function]:
    """``dd`` Functions for nodes the C module returned referenced; their references pass to the Functions."""
    out = [bdd._add_int(p + 2) for p in nodes]
    module.deref(manager, nodes if isinstance(nodes, array) else array("Q", nodes))
    return out
