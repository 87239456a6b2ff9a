/ip ipsec policy print where action=encrypt and !disabled or tunnel=yes
/ip ipsec peer set [find address=1.2.3.4] secret="a\"b\41"
