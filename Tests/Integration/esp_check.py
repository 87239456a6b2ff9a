#!/usr/bin/python3
"""Independent checks of Keyway's ESP/AH with Debian's scapy (never Keyway's code).

esp_check.py decrypt PCAP SPI ENC ENCKEY AUTH AUTHKEY TUNNEL_SRC TUNNEL_DST
    decrypts every ESP packet with that SPI and prints the inner packets' summaries
esp_check.py verify PCAP SPI ENC ENCKEY AUTH AUTHKEY TUNNEL_SRC TUNNEL_DST MTU
    decrypts every ESP packet with that SPI, raw or in UDP 4500, and checks each inner packet:
    IP and TCP checksums valid and no longer than MTU (segments, never a super-packet)
esp_check.py parse PCAP SPI
    as verify without keys (IKE's keys never leave keyway-datapath): each ESP packet's SPI and
    sequence number, the largest one, and the sequence numbers missing
esp_check.py replay PCAP SPI DST      re-sends the captured ESP packets of SPI to DST
esp_check.py forge SPI SRC DST ENC AUTH SEQ INNER_SRC INNER_DST
    sends one ESP packet encrypted under a random (wrong) key
esp_check.py plain IFACE DSTMAC SRC DST PORT
    sends one plaintext UDP packet straight onto the link (past routing), as a spoofer would
esp_check.py listen ADDR PORT SECONDS  prints "received N" for datagrams that arrive in time
"""
import os
import socket
import sys

from scapy.all import IP, ICMP, TCP, UDP, Ether, rdpcap, raw, sendp
from scapy.layers.ipsec import ESP, SecurityAssociation

ALG = {"aes-128": ("AES-CBC", None), "3des": ("3DES", None), "aes-128-gcm": ("AES-GCM", None), "null": ("NULL", None)}
AUTH = {"sha1": "HMAC-SHA1-96", "md5": "HMAC-MD5-96", "sha256": "SHA2-256-128", "null": None}


def sa(spi, enc, enc_key, auth, auth_key, src, dst):
    return SecurityAssociation(ESP, spi=spi, crypt_algo=ALG[enc][0], crypt_key=bytes.fromhex(enc_key),
                               auth_algo=AUTH[auth], auth_key=bytes.fromhex(auth_key) if auth_key else None,
                               tunnel_header=IP(src=src, dst=dst) if src != "-" else None)


def esp_packets(path, spi):
    for p in rdpcap(path):
        if IP in p and p[IP].proto == 50 and ESP in p and p[ESP].spi == spi:
            yield p[IP]


def send_raw(pkt, dst):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.sendto(raw(pkt), (dst, 0))


def esp_packets_any(path, spi):
    """ESP with that SPI, raw (protocol 50) or in UDP 4500 behind no marker, as IP/ESP. A veth
    carries a UDP GSO datagram whole (a NIC would cut it), so the capture may hold several ESP
    packets in one UDP payload: they are cut where the next sequence number of the SPI starts."""
    tag = spi.to_bytes(4, "big")
    for p in rdpcap(path):
        if IP not in p:
            continue
        ip = p[IP]
        if ip.proto == 50:
            payload = raw(ip.payload)
            if payload[:4] == tag:
                yield IP(src=ip.src, dst=ip.dst, proto=50) / ESP(payload), True
            continue
        if UDP not in p or 4500 not in (p[UDP].sport, p[UDP].dport):
            continue
        payload = raw(p[UDP].payload)
        if len(payload) < 8 or payload[:4] != tag:
            continue
        size = len(payload)
        next_tag = tag + (int.from_bytes(payload[4:8], "big") + 1).to_bytes(4, "big")
        found = payload.find(next_tag, 8)
        if found > 0:
            size = found
        for at in range(0, len(payload), size):
            yield IP(src=ip.src, dst=ip.dst, proto=50) / ESP(payload[at:at + size]), False


def checksums_valid(inner):
    ip = IP(raw(inner))
    again = IP(raw(ip))
    del again.chksum
    if TCP in ip:
        del again[TCP].chksum
    again = IP(raw(again))
    return ip.chksum == again.chksum and (TCP not in ip or ip[TCP].chksum == again[TCP].chksum)


cmd = sys.argv[1]
if cmd == "verify":
    path, spi, enc, enc_key, auth, auth_key, src, dst, mtu = sys.argv[2:11]
    assoc = sa(int(spi, 0), enc, enc_key, auth, auth_key, src, dst)
    total = bad = longer = tcp = in_udp = 0
    sequences = set()
    for p, is_raw in esp_packets_any(path, int(spi, 0)):
        total += 1
        in_udp += 0 if is_raw else 1
        sequences.add(p[ESP].seq)
        try:
            inner = assoc.decrypt(p)
        except Exception:
            bad += 1
            continue
        if len(raw(inner)) > int(mtu):
            longer += 1
        if TCP in inner:
            tcp += 1
        if not checksums_valid(inner):
            bad += 1
    # Sequence numbers the SA used but the capture lacks: packets sent that were not decoded.
    gaps = (max(sequences) - min(sequences) + 1 - len(sequences)) if sequences else 0
    print(f"esp {total} in-udp {in_udp} tcp {tcp} bad {bad} longer-than-mtu {longer} sequence-gaps {gaps}")
elif cmd == "parse":
    path, spi = sys.argv[2:4]
    total = in_udp = largest = 0
    sequences = set()
    for p, is_raw in esp_packets_any(path, int(spi, 0)):
        total += 1
        in_udp += 0 if is_raw else 1
        sequences.add(p[ESP].seq)
        largest = max(largest, len(raw(p[ESP])))
    gaps = (max(sequences) - min(sequences) + 1 - len(sequences)) if sequences else 0
    print(f"esp {total} in-udp {in_udp} largest {largest} sequence-gaps {gaps}")
elif cmd == "decrypt":
    # TUNNEL_SRC and TUNNEL_DST are "-" for transport mode.
    path, spi, enc, enc_key, auth, auth_key, src, dst = sys.argv[2:10]
    assoc = sa(int(spi, 0), enc, enc_key, auth, auth_key, src, dst)
    count = 0
    for p in esp_packets(path, int(spi, 0)):
        inner = assoc.decrypt(IP(raw(p)))
        print(inner.summary())
        count += 1
    print(f"decrypted {count}")
elif cmd == "replay":
    path, spi, dst = sys.argv[2:5]
    n = 0
    for p in esp_packets(path, int(spi, 0)):
        send_raw(p, dst)
        n += 1
    print(f"replayed {n}")
elif cmd == "forge":
    spi, src, dst, enc, auth, seq, isrc, idst = sys.argv[2:10]
    key_len = {"aes-128": 16, "3des": 24, "aes-128-gcm": 20}[enc]
    wrong = sa(int(spi, 0), enc, os.urandom(key_len).hex(), auth, os.urandom(20).hex() if auth != "null" else "", src, dst)
    pkt = wrong.encrypt(IP(src=isrc, dst=idst) / ICMP(), seq_num=int(seq))
    send_raw(pkt, dst)
    print("forged 1")
elif cmd == "plain":
    iface, mac, src, dst, port = sys.argv[2:7]
    count = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    sendp(Ether(dst=mac) / IP(src=src, dst=dst) / UDP(sport=40000, dport=int(port)) / b"keyway-plaintext", iface=iface, verbose=False,
          count=count, inter=0.01)
    print(f"sent {count}")
elif cmd == "listen":
    addr, port, seconds = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(seconds)
    n = 0
    try:
        while True:
            s.recv(2048)
            n += 1
    except socket.timeout:
        pass
    print(f"received {n}")
