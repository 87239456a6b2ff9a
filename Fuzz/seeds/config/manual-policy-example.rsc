# Manual, "Policy Settings" example, as printed (console prompts and \... continuations included).
[admin@MikroTik] ip ipsec policy> add sa-src-address=10.0.0.147 \
\... sa-dst-address=10.0.0.148 action=encrypt
[admin@MikroTik] ip ipsec policy> print
[admin@MikroTik] ip ipsec policy> print stats
