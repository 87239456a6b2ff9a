# Manual: IPsec between two masquerading MikroTik routers, Router1.
# Step 1 of the manual (/ip firewall nat ...) is not Keyway's: configure NAT with nftables, e.g.
#   nft insert rule ip nat postrouting ip saddr 10.1.0.0/24 ip daddr 10.2.0.0/24 accept
#   nft add rule ip nat postrouting oifname "public" masquerade
[admin@Router1] > ip ipsec policy add src-address=10.1.0.0/24 \
\... dst-address=10.2.0.0/24 action=encrypt tunnel=yes \
\... sa-src-address=1.0.0.1 sa-dst-address=1.0.0.2
[admin@Router1] > ip ipsec peer add address=1.0.0.2 \
\... exchange-mode=aggressive secret="gvejimezyfopmekun"
