"""The one switch for segverify's optional C extensions: the capture loops (``capture/_cloops.c``), the CUDD
loops (``packetspace/_cuddops.c``) and the flow rows' text (``report/_rowtext.c``). Each gives the same results
as the Python path it replaces; ``SEGVERIFY_NO_NATIVE=1`` turns them all off (to compare, or to rule them out)."""

from __future__ import annotations

import os


def enabled() -> bool:
    """True unless ``SEGVERIFY_NO_NATIVE`` turns the compiled loops off."""
    return os.environ.get("SEGVERIFY_NO_NATIVE", "") in ("", "0")
