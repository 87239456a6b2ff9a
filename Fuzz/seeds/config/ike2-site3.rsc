# Not in the v2 manual: the other end of ike2-site1.rsc; it accepts only site 1's fqdn identity.
/ip ipsec proposal add name=gcm enc-algorithms=aes-128-gcm pfs-group=curve25519
/ip ipsec peer add address=198.51.100.1/32 exchange-mode=ike2 secret="another-long-secret-for-site3" \
    enc-algorithm=aes-256-gcm hash-algorithm=sha256 dh-group=curve25519 remote-id=fqdn:site1.example
/ip ipsec policy add src-address=10.3.0.0/24 dst-address=10.1.0.0/24 tunnel=yes proposal=gcm \
    sa-src-address=198.51.100.2 sa-dst-address=198.51.100.1
