#!/usr/bin/env bash
# Creates the unprivileged users the sandboxed children run as, one each so that no child can
# signal another (keyway-ike, keyway-datapath, keyway-monitor, each with a group of its own:
# keywayd's default --user keyway), and the operator groups keyway (may change the
# configuration) and keyway-read (may only look). Idempotent.
set -euo pipefail
for g in keyway keyway-read; do
  getent group "$g" >/dev/null || groupadd --system "$g"
done
for role in ike datapath monitor; do
  u=keyway-$role
  if ! getent passwd "$u" >/dev/null; then
    if getent group "$u" >/dev/null; then group=(--gid "$u"); else group=(--user-group); fi
    useradd --system "${group[@]}" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --comment "Keyway IPsec, sandboxed $u" "$u"
  fi
  echo "user $u: $(id "$u")"
done
