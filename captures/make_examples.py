"""Write the bundled example captures of みどり市 (topologies/alpha-city.yaml), deterministically.

    python captures/make_examples.py

- ``alpha-city-day.pcap``: an ordinary day at the boundary. Staff reach the virtual browser by RDP,
  the mail sanitizer delivers a text-only message to the LG mail server, the My Number side talks to
  the 中間サーバー through its exception, LG terminals use LGWAN-ASP, the Internet side browses through
  the security cloud. ``segverify replay`` finds it compliant.
- ``alpha-city-incidents.pcap``: the same boundary on a bad day. An SMB session from an LG terminal
  to the Internet side, a My Number terminal reaching an LG PC, a mail delivered with an Excel
  attachment, and an SSH tunnel on the virtual browser's RDP port.
"""

from __future__ import annotations

from pathlib import Path

from scapy.all import IP, TCP, UDP, Ether, IPv6, wrpcap

HERE = Path(__file__).resolve().parent
T0 = 1_795_000_000.0  # a fixed time, so the files are the same on every run

RDP_REQUEST = bytes.fromhex("030000130ee000000000000100080003000000")
RDP_CONFIRM = bytes.fromhex("030000130ed000001234000200080002000000")  # selects HYBRID: TLS follows


def _record(kind: int, body: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(body).to_bytes(2, "big") + body


def _handshake(kind: int, body: bytes) -> bytes:
    return _record(0x16, bytes([kind]) + len(body).to_bytes(3, "big") + body)


TLS_CLIENT_HELLO = _handshake(1, b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x00\x2f" + b"\x01\x00")
TLS_SERVER_HELLO = _handshake(2, b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x2f" + b"\x00")


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def tick(self, step: float = 0.003) -> float:
        self.t += step
        return self.t


def tcp(clock: Clock, src: str, dst: str, sport: int, dport: int, turns: list[tuple[str, bytes]]) -> list:
    """A whole TCP connection: handshake, ``turns`` of ("c"|"s", bytes), FIN both ways."""
    ip = IPv6 if ":" in src else IP
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

    def seg(frm_client: bool, flags: str, seq: int, ack: int, data: bytes = b"") -> object:
        a, b, pa, pb = (src, dst, sport, dport) if frm_client else (dst, src, dport, sport)
        p = e / ip(src=a, dst=b) / TCP(sport=pa, dport=pb, flags=flags, seq=seq, ack=ack)
        if data:
            p = p / data
        p.time = clock.tick()
        return p

    c, s = 1000 + sport, 50_000 + dport
    pkts = [seg(True, "S", c, 0), seg(False, "SA", s, c + 1), seg(True, "A", c + 1, s + 1)]
    c, s = c + 1, s + 1
    for who, data in turns:
        for i in range(0, len(data), 1400):
            chunk = data[i : i + 1400]
            if who == "c":
                pkts.append(seg(True, "PA", c, s, chunk))
                c += len(chunk)
            else:
                pkts.append(seg(False, "PA", s, c, chunk))
                s += len(chunk)
    pkts += [seg(True, "FA", c, s), seg(False, "FA", s, c + 1), seg(True, "A", c + 1, s + 1)]
    return pkts


def udp(clock: Clock, src: str, dst: str, sport: int, dport: int, query: bytes, answer: bytes) -> list:
    e = Ether()
    q = e / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / query
    q.time = clock.tick()
    a = e / IP(src=dst, dst=src) / UDP(sport=dport, dport=sport) / answer
    a.time = clock.tick()
    return [q, a]


def smtp(message: bytes) -> list[tuple[str, bytes]]:
    return [("s", b"220 lg-mail ESMTP\r\n"), ("c", b"EHLO mail-san\r\n"), ("s", b"250 lg-mail\r\n"),
            ("c", b"MAIL FROM:<info@example.co.jp>\r\n"), ("s", b"250 ok\r\n"),
            ("c", b"RCPT TO:<kikaku@city.midori.lg.jp>\r\n"), ("s", b"250 ok\r\n"), ("c", b"DATA\r\n"),
            ("s", b"354 go ahead\r\n"), ("c", message + b"\r\n.\r\n"), ("s", b"250 queued\r\n"),
            ("c", b"QUIT\r\n"), ("s", b"221 bye\r\n")]


TEXT_MAIL = (
    b"From: info@example.co.jp\r\nTo: kikaku@city.midori.lg.jp\r\nSubject: =?UTF-8?B?5qGI5YaF?=\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + "説明会のご案内です。（無害化済み：本文のみ）\r\n".encode()
)
ATTACHED_MAIL = (
    b"From: info@example.co.jp\r\nTo: kikaku@city.midori.lg.jp\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
    b"see attached\r\n--b1\r\nContent-Type: application/vnd.ms-excel\r\n"
    b"Content-Disposition: attachment; filename=\"seikyu.xls\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"0M8R4KGxGuE=\r\n--b1--\r\n"
)


def rdp(clock: Clock, client: str, sport: int) -> list:
    return tcp(clock, client, "10.30.0.10", sport, 3389,
               [("c", RDP_REQUEST), ("s", RDP_CONFIRM), ("c", TLS_CLIENT_HELLO), ("s", TLS_SERVER_HELLO),
                ("c", _record(0x17, bytes(600))), ("s", _record(0x17, bytes(1200)))])


def day() -> list:
    clock = Clock()
    pkts: list = []
    pkts += rdp(clock, "10.20.10.11", 50101)  # 職員端末 → 仮想ブラウザ
    pkts += rdp(clock, "10.20.10.12", 50102)
    pkts += tcp(clock, "10.20.1.30", "10.20.1.25", 40001, 25, smtp(TEXT_MAIL))  # メール無害化 → 庁内メール
    pkts += tcp(clock, "10.30.1.25", "10.30.1.30", 40002, 25, smtp(TEXT_MAIL))  # 受信 → 無害化装置
    pkts += tcp(clock, "10.10.0.5", "172.20.1.10", 40003, 443, [("c", bytes(300)), ("s", bytes(900))])  # 中間サーバー
    pkts += tcp(clock, "10.20.10.12", "172.16.8.20", 40004, 443, [("c", bytes(500)), ("s", bytes(3000))])  # ASP
    pkts += udp(clock, "10.20.10.11", "172.16.0.53", 53000, 53, b"\x12\x34" + bytes(30), b"\x12\x34" + bytes(46))
    pkts += tcp(clock, "10.30.0.10", "100.64.1.10", 40005, 8080,  # 仮想ブラウザ → セキュリティクラウド
                [("c", b"GET http://www.example.jp/ HTTP/1.1\r\nHost: www.example.jp\r\n\r\n"),
                 ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")])
    return pkts


def incidents() -> list:
    clock = Clock()
    pkts: list = []
    pkts += rdp(clock, "10.20.10.11", 50201)
    pkts += tcp(clock, "10.20.10.12", "10.30.5.5", 40101, 445, [("c", bytes(200)), ("s", bytes(200))])  # SMB
    pkts += tcp(clock, "10.10.20.11", "10.20.10.11", 40102, 3389, [("c", RDP_REQUEST)])  # MN端末 → LG端末
    pkts += tcp(clock, "10.20.1.30", "10.20.1.25", 40103, 25, smtp(ATTACHED_MAIL))  # 添付付きのまま配送
    pkts += tcp(clock, "10.20.10.12", "10.30.0.10", 50202, 3389,  # RDP ポートの SSH トンネル
                [("s", b"SSH-2.0-OpenSSH_9.6\r\n"), ("c", b"SSH-2.0-PuTTY_0.80\r\n")])
    return pkts


def main() -> None:
    wrpcap(str(HERE / "alpha-city-day.pcap"), day())
    wrpcap(str(HERE / "alpha-city-incidents.pcap"), incidents())


if __name__ == "__main__":
    main()
