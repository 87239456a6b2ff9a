# Manual: transport mode, ESP, automatic keying and automatic policy generation, Router1.
[admin@Router1] > ip ipsec peer add address=1.0.0.0/24 \
\... secret="gvejimezyfopmekun" generate-policy=yes
