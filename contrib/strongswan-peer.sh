#!/usr/bin/env bash
# Runs strongSwan (charon with kernel-libipsec) as an IKEv1 or IKEv2 peer inside a network namespace.
#   contrib/strongswan-peer.sh start NS DIR    DIR holds swanctl.conf (connections and secrets);
#                                              charon's config, log (DIR/charon.log) and sockets go there too
#   contrib/strongswan-peer.sh swanctl DIR ARGS...   runs swanctl against that charon
#   contrib/strongswan-peer.sh stop DIR
# CHARON_EXTRA: more charon settings, one per line (e.g. "cookie_threshold = 1", "fragment_size = 600").
# charon gets a private /run (its pid file path is compiled in) and its own vici socket, so
# several can run side by side. Needs strongswan-charon, strongswan-swanctl, libcharon-extra-plugins.
set -euo pipefail
cmd=$1 ; shift
case "$cmd" in
start)
  ns=$1 dir=$2
  mkdir -p "$dir/run"
  cat >"$dir/strongswan.conf" <<CONF
charon {
  load_modular = no
  # kernel-libipsec first: the first IPsec backend wins, and these kernels have no XFRM ESP.
  # kdf: Debian's 5.9.8 derives IKEv2 keys (prf+) only through it.
  load = random nonce openssl pem pkcs1 x509 pubkey aes sha1 sha2 md5 hmac gmp gcm kdf kernel-libipsec kernel-netlink socket-default vici updown
  i_dont_care_about_security_and_use_aggressive_mode_psk = yes
  retransmit_tries = 3
  ${CHARON_EXTRA:-}
  filelog {
    log { path = $dir/charon.log
          time_format = %T
          flush_line = yes
          default = 1
          ike = 2
          knl = 1 }
  }
  plugins {
    vici { socket = unix://$dir/charon.vici }
  }
}
CONF
  ip netns exec "$ns" unshare --mount --propagation private bash -c "
    mount --bind '$dir/run' /run
    STRONGSWAN_CONF='$dir/strongswan.conf' exec /usr/lib/ipsec/charon" >"$dir/charon.out" 2>&1 &
  echo $! >"$dir/charon.pid"
  for _ in $(seq 100); do [ -S "$dir/charon.vici" ] && break; sleep 0.1; done
  [ -S "$dir/charon.vici" ] || { echo "charon did not start; see $dir/charon.out" >&2; exit 1; }
  "$0" swanctl "$dir" --load-all --file "$dir/swanctl.conf" >"$dir/load.out" 2>&1 || { cat "$dir/load.out" >&2; exit 1; }
  ;;
swanctl)
  dir=$1; shift
  sub=$1; shift
  # swanctl wants its command first, then --uri.
  exec swanctl "$sub" --uri "unix://$dir/charon.vici" "$@"
  ;;
stop)
  dir=$1
  if [ -f "$dir/charon.pid" ]; then
    pid=$(cat "$dir/charon.pid")
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/charon.pid"
  fi
  ;;
*) echo "usage: $0 start NS DIR | swanctl DIR ARGS... | stop DIR" >&2; exit 2 ;;
esac
