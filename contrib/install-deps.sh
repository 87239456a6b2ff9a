#!/usr/bin/env bash
# Installs the Debian packages Keyway builds and tests with, if any is missing.
# The Swift toolchain itself (6.x) must already be on PATH.
set -euo pipefail
packages=(
  libssl-dev libcap-dev libseccomp-dev pkg-config   # libcrypto, libcap, libseccomp (system-library targets)
  libmnl-dev libnftables-dev                         # keywayd: rtnetlink (routes, rule) and the firewall table
  iproute2 procps psmisc python3 strace             # namespace tests: ip netns, pgrep, a syslog listener; syscalls made
  iputils-ping tcpdump python3-scapy                 # datapath tests: ping, captures, an independent ESP reader
  nftables                                           # namespace tests read keywayd's firewall table (nft list)
  openssl                                            # the interop tests make throwaway certificates
  libedit-dev                                        # the keyway console's line editor
  rsyslog                                            # audit tests: a real syslog daemon with its stock imuxsock input
  dpkg-dev lintian man-db groff-base fakeroot        # the Debian package: build, check, man -l
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins libstrongswan-standard-plugins  # the independent IKEv1 peer (interop tests)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null; then
  echo "error: no Swift toolchain on PATH (Swift 6.x is needed: https://www.swift.org/install/linux/)" >&2
  exit 1
fi
