# Not in the v2 manual: an IKEv2 tunnel (RouterOS v6+ exchange-mode=ike2), site 1 of contrib/demo.sh's
# third site: AES-GCM and curve25519 for the IKE SA (extensions), an identity of its own, an AES-GCM child.
/ip ipsec proposal add name=gcm enc-algorithms=aes-128-gcm pfs-group=curve25519
/ip ipsec peer add address=198.51.100.2/32 exchange-mode=ike2 secret="another-long-secret-for-site3" \
    enc-algorithm=aes-256-gcm hash-algorithm=sha256 dh-group=curve25519 my-id=fqdn:site1.example
/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.3.0.0/24 tunnel=yes proposal=gcm \
    sa-src-address=198.51.100.1 sa-dst-address=198.51.100.2
