#!/usr/bin/python3
"""Helpers for path-mtu.sh (independent of Keyway's code).

mtu_tools.py sweep DST FIRST LAST [SRC]  ICMP echoes of every payload size FIRST..LAST (as ping -s),
                                         without DF, from SRC if given; prints
                                         "answered A of N (first try F) missing ..."
mtu_tools.py serve ADDR PORT BYTES FILE SECONDS
                                         accepts one TCP connection, writes "COUNT SHA256" to FILE
mtu_tools.py send SRC DST PORT BYTES [CHUNK PAUSE]
                                         sends BYTES (a fixed pattern) in CHUNK-byte writes, PAUSE
                                         seconds apart; prints "COUNT SHA256" of what it sent
mtu_tools.py forge PCAP SRC DST REPORTER TO MTU EDIT
                                         from the capture's last ESP packet SRC -> DST, sends the ICMP
                                         fragmentation-needed a router REPORTER would send TO, naming MTU;
                                         EDIT: none, spi (another SPI), sequence (one never sent)
mtu_tools.py sequence PCAP SRC DST       prints "SPI SEQ" of the capture's last ESP packet SRC -> DST
"""
import hashlib
import os
import select
import socket
import struct
import sys
import time

IP_MTU_DISCOVER, IP_PMTUDISC_DONT = 10, 0


def pattern(size, seq):
    return bytes((seq * 7 + i * 13) & 0xFF for i in range(size))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def sweep(dst, first, last, src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    if src:
        s.bind((src, 0))
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    ident = os.getpid() & 0xFFFF
    pending = set(range(first, last + 1))
    total, first_try = len(pending), 0
    for attempt in range(3):
        todo, inflight = sorted(pending), {}
        window, deadline = 16, time.time() + 60
        while (todo or inflight) and time.time() < deadline:
            while todo and len(inflight) < window:
                size = todo.pop(0)
                body = pattern(size, size)
                header = struct.pack("!BBHHH", 8, 0, 0, ident, size)
                header = struct.pack("!BBHHH", 8, 0, checksum(header + body), ident, size)
                s.sendto(header + body, (dst, 0))
                inflight[size] = time.time()
            ready, _, _ = select.select([s], [], [], 0.05)
            while ready:
                data = s.recv(65536)
                ihl = (data[0] & 0x0F) * 4
                icmp = data[ihl:]
                if len(icmp) >= 8 and icmp[0] == 0:
                    _, _, _, rid, seq = struct.unpack("!BBHHH", icmp[:8])
                    if rid == ident and seq in inflight and icmp[8:] == pattern(seq, seq):
                        del inflight[seq]
                        pending.discard(seq)
                        if attempt == 0:
                            first_try += 1
                ready, _, _ = select.select([s], [], [], 0)
            now = time.time()
            for size, sent in list(inflight.items()):
                if now - sent > 2:
                    del inflight[size]
        if not pending:
            break
    missing = sorted(pending)
    print("answered %d of %d (first try %d) missing %s" % (total - len(missing), total, first_try, missing[:40]))
    return 0 if not missing else 1


def serve(addr, port, count, out, seconds):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(seconds)
    c, _ = s.accept()
    c.settimeout(seconds)
    h, n = hashlib.sha256(), 0
    try:
        while n < count:
            d = c.recv(65536)
            if not d:
                break
            h.update(d)
            n += len(d)
    except socket.timeout:
        pass
    with open(out, "w") as f:
        f.write("%d %s" % (n, h.hexdigest()))


def send(src, dst, port, count, chunk=None, pause=0.0):
    data = bytes((i * 7 + (i >> 10)) % 251 for i in range(count))
    s = socket.create_connection((dst, port), timeout=30, source_address=(src, 0))
    chunk = chunk or count
    for i in range(0, count, chunk):
        s.sendall(data[i:i + chunk])
        if pause:
            time.sleep(pause)
    s.close()
    print(len(data), hashlib.sha256(data).hexdigest())


def last_esp(pcap, src, dst):
    from scapy.all import IP, rdpcap, raw
    found = None
    for p in rdpcap(pcap):
        ip = p.getlayer(IP)
        if ip is not None and ip.src == src and ip.dst == dst and ip.proto == 50:
            found = bytearray(raw(ip))
    if found is None:
        sys.exit("no ESP packet %s -> %s in %s" % (src, dst, pcap))
    return found


def forge(pcap, src, dst, reporter, to, mtu, edit):
    from scapy.all import ICMP, IP, send as scapy_send
    quote = last_esp(pcap, src, dst)
    ihl = (quote[0] & 0x0F) * 4
    spi, seq = struct.unpack("!II", bytes(quote[ihl:ihl + 8]))
    if edit == "spi":
        struct.pack_into("!I", quote, ihl, spi ^ 0x00FF00FF)
    elif edit == "sequence":
        struct.pack_into("!I", quote, ihl + 4, seq + 1_000_000)
    scapy_send(IP(src=reporter, dst=to) / ICMP(type=3, code=4, nexthopmtu=mtu) / bytes(quote[:548]), verbose=False)


def main(argv):
    cmd = argv[1]
    if cmd == "sweep":
        return sweep(argv[2], int(argv[3]), int(argv[4]), argv[5] if len(argv) > 5 else None)
    if cmd == "serve":
        return serve(argv[2], int(argv[3]), int(argv[4]), argv[5], float(argv[6]))
    if cmd == "send":
        chunk = int(argv[6]) if len(argv) > 6 else None
        pause = float(argv[7]) if len(argv) > 7 else 0.0
        return send(argv[2], argv[3], int(argv[4]), int(argv[5]), chunk, pause)
    if cmd == "forge":
        return forge(argv[2], argv[3], argv[4], argv[5], argv[6], int(argv[7]), argv[8])
    if cmd == "sequence":
        q = last_esp(argv[2], argv[3], argv[4])
        ihl = (q[0] & 0x0F) * 4
        print("%x %d" % struct.unpack("!II", bytes(q[ihl:ihl + 8])))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
