"""The reader's compiled loops (:file:`_cloops.c`): whether they are there, and whether to use them.

The C module is built when the package is installed, if a compiler is present (``setup.py`` marks it
optional). It walks pcap records and decodes their headers in one pass, about 5x faster than the numpy
passes on a large capture; it loads in a millisecond, so every capture uses it. Both paths give identical
results (the tests compare them), so the choice is only about speed. ``SEGVERIFY_NO_NATIVE=1`` turns the
compiled loops off.

Before first use the module's record layout is checked against :data:`decode.BATCH_DTYPE`: a stale build
of an older layout is ignored rather than trusted.
"""

from __future__ import annotations

import functools
from types import ModuleType

from ..compiled import enabled

__all__ = ["enabled", "loops"]  # ``enabled``: the reader asks here (one switch for every C extension)


@functools.cache
def loops() -> ModuleType | None:
    """The compiled loops, or None when they were not built or do not match this version's record layout."""
    try:
        from . import _cloops  # type: ignore[attr-defined]
    except ImportError:
        return None
    from .decode import BATCH_DTYPE

    expected = tuple((name, BATCH_DTYPE.fields[name][1], BATCH_DTYPE.fields[name][0].itemsize)
                     for name in BATCH_DTYPE.names)  # fmt: skip
    return _cloops if _cloops.layout() == expected else None
