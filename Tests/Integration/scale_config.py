#!/usr/bin/env python3
"""A configuration at issue 11's scale, as one RouterOS script on stdout.

scale_config.py SIDE POLICIES MANUAL: SIDE 1 or 2 (the two appliances mirror each other).
MANUAL policies are keyed by manual SAs (one manual-sa each: two ESP SAs, in and out, so
2 x MANUAL SAs); the others are keyed by IKE with a peer that never negotiates them (no
traffic goes there). Every policy is a tunnel between 192.0.2.1 and 192.0.2.2 from
10.250.0.0/16 (site 1) to its own /30 in 10.0.0.0/10 (site 2) and back.
"""
import sys

side, total, manual = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
local, remote = ("192.0.2.1", "192.0.2.2") if side == 1 else ("192.0.2.2", "192.0.2.1")


def far(i):
    n = (10 << 24) + 4 * i
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}/30"


out = ["/ip ipsec peer add address=%s/32 secret=\"scale test secret\" hash-algorithm=sha1 "
       "enc-algorithm=aes-128 dh-group=modp2048 dpd-interval=0s" % remote,
       "/ip ipsec manual-sa"]
for i in range(manual):
    a, b = 0x10000 + 2 * i, 0x10001 + 2 * i
    spi = f"0x{a:x}/0x{b:x}" if side == 1 else f"0x{b:x}/0x{a:x}"
    k1, k2 = f"{i:08x}" * 4, f"{i + 1:08x}" * 4
    enc = f"{k1}/{k2}" if side == 1 else f"{k2}/{k1}"
    h1, h2 = f"{i:08x}" * 5, f"{i + 7:08x}" * 5
    auth = f"{h1}/{h2}" if side == 1 else f"{h2}/{h1}"
    out.append(f"add name=m{i} esp-enc-algorithm=aes-128 esp-auth-algorithm=sha1 esp-spi={spi} "
               f"esp-enc-key={enc} esp-auth-key={auth}")
out.append("/ip ipsec policy")
for i in range(total):
    src, dst = ("10.250.0.0/16", far(i)) if side == 1 else (far(i), "10.250.0.0/16")
    keyed = f" manual-sa=m{i}" if i < manual else ""
    out.append(f"add src-address={src} dst-address={dst} tunnel=yes sa-src-address={local} "
               f"sa-dst-address={remote}{keyed}")
sys.stdout.write("\n".join(out) + "\n")
