"""What every importer test needs: the shared corpus, concrete packets, and the BDD verdict.

One packet space serves every importer test module: BDD managers are costly to create, and a
packet's set is the same whichever importer's rules it is tested against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from segverify.model.addresses import addr_to_int
from segverify.model.rules import Packet
from segverify.packetspace.space import PacketSpace

CONFIGS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "configs"
SPACE = PacketSpace()
PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "icmp6": 58, "sctp": 132, "gre": 47, "esp": 50,
          "ospf": 89, "p254": 254}


def corpus_files(directory: Path) -> Callable[[str], Path]:
    """``corpus_file(name)`` for one vendor's folder: the path, or a skip saying the corpus is absent."""

    def corpus_file(name: str) -> Path:
        path = directory / name
        if not path.is_file():
            pytest.skip(f"corpus file {path} is not available (the shared corpus is not checked out)")
        return path

    return corpus_file


def packet(proto: str, src: str, dst: str, dport: int = 0, sport: int = 40000,
           icmp: tuple[int, int] = (0, 0)) -> Packet:
    """An initiating packet: ports for port protocols, type/code for ICMP, nothing else otherwise."""
    p = PROTOS[proto]
    if p in (6, 17, 132):
        return Packet(addr_to_int(src), addr_to_int(dst), p, sport, dport)
    if p in (1, 58):
        return Packet(addr_to_int(src), addr_to_int(dst), p, 0, 0, icmp[0], icmp[1])
    return Packet(addr_to_int(src), addr_to_int(dst), p)


def bdd_allows(compiled, p: Packet, i: str, o: str) -> bool:  # type: ignore[no-untyped-def]
    """The engine's verdict for one packet on one interface pair."""
    return (SPACE.packet(p) & compiled.hop(i, o)) != SPACE.false
