# Manual: MikroTik router and Linux FreeS/WAN, the MikroTik side.
[admin@MikroTik] > /ip ipsec peer add address=192.168.0.108 \
\... secret="gvejimezyfopmekun" hash-algorithm=md5  enc-algorithm=3des \
\... dh-group=modp1024 lifetime=28800s
# The manual prints "/ip ipsec proposal auth-algorithms=md5 ..." with no command; Keyway
# refuses that line and says to type this instead:
[admin@MikroTik] > /ip ipsec proposal set default auth-algorithms=md5 \
\... enc-algorithms=3des pfs-group=none
[admin@MikroTik] > /ip ipsec policy add sa-src-address=192.168.0.155 \
\... sa-dst-address=192.168.0.108 src-address=10.0.0.0/24 \
\... dst-address=192.168.87.0/24 tunnel=yes
