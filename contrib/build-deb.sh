#!/usr/bin/env bash
# Builds keyway_VERSION_amd64.deb into OUTDIR (default: the current directory): keywayd in
# /usr/sbin, keyway in /usr/bin, the children in /usr/libexec/keyway (root's, 0755), the systemd
# unit, sysusers.d and tmpfiles.d entries, man pages, bash completion, and /etc/keyway/keyway.rsc
# as a conffile. The Swift runtime is linked in (--static-swift-stdlib), so the package needs
# only Debian's libraries. Environment: CONFIGURATION (release; the tests use debug, faster to
# build), VERSION (default 0.13.N, N the number of commits).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath "${1:-.}")
CONFIGURATION=${CONFIGURATION:-release}
VERSION=${VERSION:-0.13.$(git rev-list --count HEAD 2>/dev/null || echo 0)}
SCRATCH=.build-deb
CHILDREN="keyway-ike keyway-datapath keyway-monitor"

for p in keywayd keyway $CHILDREN; do
  swift build -c "$CONFIGURATION" --static-swift-stdlib --disable-local-rpath --scratch-path "$SCRATCH" \
    --product "$p" 2>&1 | grep -E "error|warning: |Compiling|Build" | grep -v "^\[" | tail -3
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "build-deb: building $p failed" >&2; exit 1; }
done
BINDIR=$(swift build -c "$CONFIGURATION" --scratch-path "$SCRATCH" --show-bin-path)

STAGE=$(mktemp -d /tmp/keyway-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/keyway
install -d -m 0755 "$ROOT/DEBIAN" "$ROOT/usr/sbin" "$ROOT/usr/bin" "$ROOT/usr/libexec/keyway" \
  "$ROOT/lib/systemd/system" "$ROOT/usr/lib/sysusers.d" "$ROOT/usr/lib/tmpfiles.d" "$ROOT/etc/keyway" \
  "$ROOT/usr/share/man/man8" "$ROOT/usr/share/man/man5" "$ROOT/usr/share/bash-completion/completions" \
  "$ROOT/usr/share/doc/keyway"
install -m 0755 "$BINDIR/keywayd" "$ROOT/usr/sbin/keywayd"
install -m 0755 "$BINDIR/keyway" "$ROOT/usr/bin/keyway"
for c in $CHILDREN; do install -m 0755 "$BINDIR/$c" "$ROOT/usr/libexec/keyway/$c"; done
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT/usr/sbin/keywayd" \
  "$ROOT/usr/bin/keyway" "$ROOT"/usr/libexec/keyway/*
install -m 0644 contrib/keywayd.service "$ROOT/lib/systemd/system/keywayd.service"
install -m 0644 contrib/sysusers.d/keyway.conf "$ROOT/usr/lib/sysusers.d/keyway.conf"
install -m 0644 contrib/tmpfiles.d/keyway.conf "$ROOT/usr/lib/tmpfiles.d/keyway.conf"
install -m 0644 contrib/bash-completion/keyway "$ROOT/usr/share/bash-completion/completions/keyway"
install -m 0644 contrib/rsyslog/keyway-rfc5424.conf "$ROOT/usr/share/doc/keyway/rsyslog-keyway-rfc5424.conf"
gzip -9n <contrib/man/keywayd.8 >"$ROOT/usr/share/man/man8/keywayd.8.gz"
gzip -9n <contrib/man/keyway.8 >"$ROOT/usr/share/man/man8/keyway.8.gz"
gzip -9n <contrib/man/keyway.rsc.5 >"$ROOT/usr/share/man/man5/keyway.rsc.5.gz"
cat >"$ROOT/etc/keyway/keyway.rsc" <<'RSC'
# Keyway's seed configuration (RouterOS /ip ipsec syntax, keyway.rsc(5)). keywayd runs it once,
# into an empty configuration store (/var/lib/keyway); after that the store wins, and changes are
# made with the keyway console. Example:
#
# /ip ipsec peer
# add address=192.0.2.2/32 secret="a long random secret" enc-algorithm=aes-128 \
#     hash-algorithm=sha256 dh-group=modp2048
# /ip ipsec policy
# add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes \
#     sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2
RSC
chmod 0644 "$ROOT/etc/keyway/keyway.rsc"
echo /etc/keyway/keyway.rsc >"$ROOT/DEBIAN/conffiles"

cat >"$ROOT/usr/share/doc/keyway/copyright" <<'TXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: keyway
Source: the Keyway repository

Files: *
Copyright: 2026 the Keyway authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
TXT
{
  echo "keyway ($VERSION) unstable; urgency=medium"
  echo
  echo "  * Built from the Keyway repository by contrib/build-deb.sh."
  echo
  echo " -- Keyway maintainers <keyway@keyway.invalid>  $(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$ROOT/usr/share/doc/keyway/changelog.gz"

# Dependencies from the binaries themselves (dpkg-shlibdeps wants a debian/control beside it).
mkdir -p "$STAGE/debian"
printf 'Source: keyway\n\nPackage: keyway\nArchitecture: amd64\n' >"$STAGE/debian/control"
depends=$(cd "$STAGE" && dpkg-shlibdeps -O -e keyway/usr/sbin/keywayd -e keyway/usr/bin/keyway \
  $(for c in $CHILDREN; do echo -e "keyway/usr/libexec/keyway/$c"; done) 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<CTL
Package: keyway
Version: $VERSION
Architecture: amd64
Maintainer: Keyway maintainers <keyway@keyway.invalid>
Installed-Size: $size
Depends: $depends, systemd
Suggests: rsyslog
Section: net
Priority: optional
Homepage: https://keyway.invalid/
Description: privilege-separated userspace IPsec appliance, configured like RouterOS
 Keyway carries ESP and AH itself over a TUN device and keys them with IKEv1.
 It is configured like MikroTik RouterOS's /ip ipsec menu, through the keyway
 console. keywayd, the privileged parent, starts three children (IKE, the
 datapath, the configuration monitor), each as a user of its own, chrooted,
 without capabilities and under its own seccomp filter.
CTL

cat >"$ROOT/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    # One user per child, and the operator groups keyway and keyway-read.
    systemd-sysusers keyway.conf
    systemd-tmpfiles --create keyway.conf
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
fi
SH
cat >"$ROOT/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ] && command -v deb-systemd-invoke >/dev/null; then
    deb-systemd-invoke stop keywayd.service >/dev/null 2>&1 || true
fi
SH
cat >"$ROOT/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    # The configuration store and runtime files; the users stay (Debian does not remove them).
    rm -rf /var/lib/keyway /run/keyway
    rmdir /etc/keyway 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
SH
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) \
  >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/md5sums" "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/conffiles"

DEB=$OUT/keyway_${VERSION}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
