#!/usr/bin/env bash
# Creates the unprivileged user the sandboxed children run as (and its primary group keyway),
# plus the group keyway-read for operators who may only look. Idempotent.
set -euo pipefail
if ! getent group keyway >/dev/null; then groupadd --system keyway; fi
if ! getent passwd keyway >/dev/null; then
  useradd --system --gid keyway --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment "Keyway IPsec sandboxed processes" keyway
fi
if ! getent group keyway-read >/dev/null; then groupadd --system keyway-read; fi
echo "user keyway: $(id keyway)"
