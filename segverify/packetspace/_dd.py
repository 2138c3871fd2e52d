"""``dd.cudd``, imported without networkx.

dd imports networkx at start-up only for ``to_nx`` (drawing a BDD as a graph), which segverify never calls, and
networkx is a fifth of a second of imports: a third of ``segverify replay``'s start-up on a capture. networkx is
optional to dd (it catches the ImportError and raises it only from those functions), so while dd is first
imported, networkx is made to look absent; it stays importable for everything else (``check``'s graph analyses
import it when they run). If networkx is already imported, dd simply gets it.
"""

from __future__ import annotations

import sys
import threading

_LOCK = threading.Lock()


def _import_cudd():  # noqa: ANN202 - dd ships no type stubs
    with _LOCK:
        if "dd.cudd" in sys.modules or "networkx" in sys.modules:
            from dd import cudd

            return cudd
        sys.modules["networkx"] = None  # type: ignore[assignment]  # "import networkx" raises ImportError
        try:
            from dd import cudd
        finally:
            if sys.modules.get("networkx", 0) is None:
                del sys.modules["networkx"]
        return cudd


cudd = _import_cudd()
