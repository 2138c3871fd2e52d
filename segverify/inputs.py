"""What the command line names as captures, to files: light (no numpy), so that ``replay`` can start hashing the
captures before the rest of segverify is imported."""

from __future__ import annotations

import glob
import os

from .errors import InputError

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")


def expand_inputs(items: list[str] | tuple[str, ...]) -> list[str]:
    """Glob patterns and directories to capture files, sorted and deterministic; a plain path stays as it
    is (a missing file is reported where it is read). An input that matches nothing is bad input."""
    out: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(os.path.join(d, f) for d, _subdirs, files in os.walk(item) for f in files
                           if f.lower().endswith(CAPTURE_SUFFIXES))  # fmt: skip
            if not found:
                raise InputError(item, "directory holds no capture file (.pcap, .pcapng, .cap, .gz)")
            out += found
        elif glob.has_magic(item):
            found = []
            for m in sorted(glob.glob(item, recursive=True)):
                found += expand_inputs([m]) if os.path.isdir(m) else [m]
            if not found:
                raise InputError(item, "pattern matches no capture file")
            out += found
        else:
            out.append(item)
    return out
