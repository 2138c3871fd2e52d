"""Input digests computed ahead (a background thread, a cluster's workers) are the report's digests."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from pathlib import Path

import pytest

from segverify.analysis.findings import Result, hash_in_background


def test_background_digests_are_sha256(tmp_path: Path) -> None:
    files = []
    for i, size in enumerate((0, 1, 1 << 20, 3 << 20)):
        f = tmp_path / f"cap{i}.pcap"
        f.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        files.append(str(f))
    futures = hash_in_background(files)
    result = Result("replay", [], files, digests=dict(futures))
    assert result.input_hashes() == [(f, hashlib.sha256(Path(f).read_bytes()).hexdigest()) for f in files]


def test_a_failed_digest_is_computed_again_and_its_error_raised(tmp_path: Path) -> None:
    good = tmp_path / "good.pcap"
    good.write_bytes(b"abc")
    failed: Future[str] = Future()
    failed.set_exception(OSError("lost"))
    # computed again where it failed elsewhere: the file is fine here
    assert Result("replay", [], [str(good)], digests={str(good): failed}).input_hashes() == [
        (str(good), hashlib.sha256(b"abc").hexdigest())]
    # a file that cannot be read: the report's own error, naming it (the command makes it exit 2)
    gone = str(tmp_path / "gone.pcap")
    with pytest.raises(FileNotFoundError) as err:
        Result("replay", [], [gone], digests=dict(hash_in_background([gone]))).input_hashes()
    assert err.value.filename == gone


@pytest.mark.parametrize("no_side", [False, True])
def test_digests_from_mapped_windows_and_from_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       no_side: bool) -> None:
    """Files hashed window by window (a window of 4 KiB here: every edge case of the cut) or by the thread."""
    from segverify.analysis import findings

    monkeypatch.setattr(findings, "HASH_WINDOW", 4096)
    if no_side:
        monkeypatch.setenv("SEGVERIFY_NO_SIDECAR", "1")
    files = []
    for i, size in enumerate((0, 1, 4095, 4096, 4097, 3 * 4096 + 5)):
        f = tmp_path / f"cap{i}.pcap"
        f.write_bytes(bytes((k * 7 + i) % 256 for k in range(size)))
        files.append(str(f))
    futures = hash_in_background(files)
    # the futures themselves (input_hashes would hash a file again where one failed)
    assert [futures[f].result(timeout=30) for f in files] == [hashlib.sha256(Path(f).read_bytes()).hexdigest()
                                                               for f in files]


def test_digests_never_asked_for_leave_no_process_or_pipe(tmp_path: Path) -> None:
    """A run that fails before its report drops the digests: the hashing process is stopped and reaped."""
    import gc
    import os
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the hashing process is Linux's")
    big = tmp_path / "big.pcap"
    big.write_bytes(bytes(64 << 20))
    gc.collect()  # what earlier tests left for the collector (a replay's harvest holds a spill file) goes first
    fds = len(os.listdir("/proc/self/fd"))
    futures = hash_in_background([str(big)])
    pipe = next(iter(futures.values()))._pipe  # type: ignore[attr-defined]
    pid = pipe._pid
    del futures, pipe
    gc.collect()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped already: no such child
    assert len(os.listdir("/proc/self/fd")) == fds


def test_the_hashing_process_yields_to_the_main_one(tmp_path: Path) -> None:
    """The hashing beside a replay runs at a lower priority than the process that reads (BESIDE_NICENESS)."""
    import os
    import sys
    import time

    from segverify.analysis.findings import BESIDE_NICENESS

    if not sys.platform.startswith("linux"):
        pytest.skip("the hashing process is Linux's")
    big = tmp_path / "big.pcap"
    big.write_bytes(bytes(256 << 20))
    futures = hash_in_background([str(big)])
    pid = next(iter(futures.values()))._pipe._pid  # type: ignore[attr-defined]
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    want = min(19, mine + BESIDE_NICENESS)
    seen = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            seen = os.getpriority(os.PRIO_PROCESS, pid)
        except OSError:
            break  # done already
        if seen == want:
            break
        time.sleep(0.001)
    assert seen == want
    assert next(iter(futures.values())).result() == hashlib.sha256(big.read_bytes()).hexdigest()
