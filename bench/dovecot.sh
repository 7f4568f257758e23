#!/usr/bin/env bash
# Starts a private Dovecot 2.3 on loopback beside Herald, for side-by-side measurements with
# `herald bench imap --mix --port` and bench/python_clients.py. It never touches the system
# Dovecot: its configuration, sockets, state, logs and mail all live under DIR.
#
#   bench/dovecot.sh start DIR [USERS]   # accounts mix0..mix{USERS-1}, password "bench"
#   bench/dovecot.sh stop DIR
#
# Prints `imap 127.0.0.1:PORT`, `lmtp 127.0.0.1:PORT` and `pid PID` (the master; its children
# are the IMAP and LMTP processes, which --server-pid counts). Ports: DOVECOT_IMAP_PORT (31143)
# and DOVECOT_LMTP_PORT (31024).
#
# Fair comparison: login processes in Dovecot's high-performance mode, mail in sdbox (Dovecot's fastest single-file-per-message format) with
# Dovecot's default `mail_fsync = optimized` (it fsyncs a saved message before answering);
# passwords hashed with argon2id at Herald's cost (19 MiB, 2 passes, 1 lane: the hashes are made
# by `herald user add`, which HERALD names, default `herald` on PATH) and both servers' login
# caches on for 600 s; at most 1000 connections per user and address on both.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,9p' "$0" >&2; exit 2; }
dir=$(realpath -m "$dir")
conf="$dir/conf/dovecot.conf"

case "$cmd" in
stop)
  [ -f "$dir/run/master.pid" ] && kill "$(cat "$dir/run/master.pid")" 2>/dev/null || true
  exit 0 ;;
start) ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac

command -v dovecot >/dev/null || { echo "dovecot is not installed (Debian: dovecot-imapd dovecot-lmtpd)" >&2; exit 1; }
users=${3:-10}
herald=${HERALD:-herald}
imap_port=${DOVECOT_IMAP_PORT:-31143}
lmtp_port=${DOVECOT_LMTP_PORT:-31024}
mkdir -p "$dir/conf" "$dir/run" "$dir/state" "$dir/home" "$dir/hashes"
chmod 755 "$dir" "$dir/run"
chown dovenull:dovenull "$dir/home"

# Argon2id hashes at Herald's cost, made by Herald itself and read from its database.
"$herald" --data "$dir/hashes" user add mix0 --password bench >/dev/null 2>&1 || true
hash=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select password_hash from accounts where name=?",("mix0",)).fetchone()[0])' "$dir/hashes/herald.db")
: >"$dir/passwd"
for ((u = 0; u < users; u++)); do echo "mix$u:{ARGON2ID}$hash" >>"$dir/passwd"; done
chmod 644 "$dir/passwd"

cat >"$conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
instance_name = herald-bench
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_ttl = 600 s
first_valid_uid = 100
default_login_user = dovenull
default_internal_user = dovecot
mail_location = sdbox:~/sdbox
mail_fsync = optimized
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = username_format=%n $dir/passwd
}
userdb {
  driver = static
  args = uid=dovenull gid=dovenull home=$dir/home/%n
}
service imap-login {
  # Dovecot's high-performance login mode (a login process serves many connections),
  # what its documentation recommends for busy servers.
  service_count = 0
  process_min_avail = 2
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
service anvil {
  chroot =
}
protocol lmtp {
  auth_username_format = %n
}
CONF

dovecot -c "$conf"
for _ in $(seq 50); do [ -f "$dir/run/master.pid" ] && break; sleep 0.1; done
echo "imap 127.0.0.1:$imap_port"
echo "lmtp 127.0.0.1:$lmtp_port"
echo "pid $(cat "$dir/run/master.pid")"
