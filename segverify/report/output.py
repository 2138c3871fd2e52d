"""Writing reports: whole files or nothing, and never over an input.

Shared by ``-o FILE`` of every command and by the audit bundle of ``segverify report``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

from ..errors import InputError


def refuse_inputs(path: str, inputs: Iterable[str]) -> None:
    """Exit-2 error when ``path`` is (or links to) one of ``inputs``: a report must not destroy evidence."""
    target = os.path.realpath(path)
    for item in inputs:
        if os.path.realpath(item) == target or (
            os.path.exists(path) and os.path.exists(item) and os.path.samefile(path, item)
        ):
            raise InputError(path, f"refusing to write the report over an input file ({item})")


def write_atomic(path: str, data: bytes) -> None:
    """Whole file or nothing: a reader never sees half a report."""
    fd, tmp = tempfile.mkstemp(prefix=".segverify-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
