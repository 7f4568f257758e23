#!/usr/bin/env bash
# Measures, in one run, what one client costs Herald and a private Dovecot beside it on this
# machine, each on fresh data, and prints the median and range of every figure:
#
#   bench/targets.sh [RUNS]        # RUNS rounds of each client (default 5)
#
# - APPEND with Python's imaplib and LMTP with smtplib, one connection, 2,000 messages of
#   2 KiB a round (bench/python_clients.py): messages per second and the server's CPU per
#   message;
# - the IMAP mix of 10 users × 10 sessions (`herald bench imap --mix --secs 15`), once as
#   fast as the server answers and once offered 5,000 commands/s (`--rate 5000`), where the
#   two servers' latencies compare at the same load;
# - the same mix with a login every round (`--reconnect`): sessions a second, for clients
#   that connect often (phones).
#
# Both servers run at once, idle while the other is measured, and take turns: each round of
# each client goes to Herald and then to Dovecot, and each mix likewise. A virtual machine's
# speed drifts by half or more within minutes; measured in turns, both servers see the same
# drift, and the Dovecot/Herald ratio of each pair of rounds (printed last) holds where the
# absolute figures do not.
#
# Both servers log as they do by default (Herald at `info`, one line per delivery; Dovecot
# likewise), with their own data under a temporary directory that is removed at the end.
# Herald is target/release/herald (HERALD overrides); build it first with
# `cargo build --release -p herald`. The Dovecot half needs Debian's dovecot-imapd and
# dovecot-lmtpd (bench/dovecot.sh) and is skipped, with a note, without them. Ports:
# HERALD_BENCH_PORT_BASE (default 41000) + 143, 24, 110 and 80 for Herald, Dovecot's from
# bench/dovecot.sh.
set -euo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
herald=$(realpath "${HERALD:-$here/../target/release/herald}")
base=${HERALD_BENCH_PORT_BASE:-41000}
[ -x "$herald" ] || { echo "no Herald at $herald: cargo build --release -p herald" >&2; exit 1; }
work=$(mktemp -d /tmp/herald-targets.XXXXXX)
chmod 755 "$work"
herald_pid=
cleanup() {
  [ -n "$herald_pid" ] && kill "$herald_pid" 2>/dev/null || true
  [ -d "$work/dovecot" ] && "$here/dovecot.sh" stop "$work/dovecot" || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# median (min–max) of the numbers on standard input
summary() {
  sort -g | awk '{v[NR] = $1} END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%g (%g–%g)", m, v[1], v[NR] }'
}

# round NAME IMAP_PORT LMTP_PORT PID KIND: one Python round (append or lmtp) against one
# server, appended to $work/NAME.KIND
round() {
  local name=$1 imap=$2 lmtp=$3 pid=$4 kind=$5
  if [ "$kind" = append ]; then
    python3 "$here/python_clients.py" append --port "$imap" --count 2000 --server-pid "$pid" \
      --user mix10 --password-file "$work/password" >>"$work/$name.$kind"
  else
    python3 "$here/python_clients.py" lmtp --port "$lmtp" --count 2000 --server-pid "$pid" \
      --user mix11 >>"$work/$name.$kind"
  fi
}

# mix NAME IMAP_PORT PID OUT WHAT [ARGS]: one run of the IMAP mix into $work/NAME.OUT; its
# progress and errors go to $work/NAME.OUT.err, shown if it fails
mix() {
  local name=$1 imap=$2 pid=$3 out="$work/$1.$4" what=$5
  shift 5
  echo "$name: $what" >&2
  if ! "$herald" bench imap --mix --secs 15 --port "$imap" --user-format 'mix{u}' \
    --password bench --server-pid "$pid" "$@" >"$out" 2>"$out.err"; then
    echo "$name: $what failed:" >&2
    tail -5 "$out.err" >&2
    exit 1
  fi
}

report() {
  local name=$1 out="$work/$1" kind
  echo "== $name"
  for kind in append lmtp; do
    printf '%-7s %s messages/s, server CPU %s ms per message\n' "$kind" \
      "$(sed -E 's|.* = ([0-9]+)/s.*|\1|' "$out.$kind" | summary)" \
      "$(sed -E 's|.*CPU ([0-9.]+) ms.*|\1|' "$out.$kind" | summary)"
  done
  echo "mix, closed loop:"
  grep -E '^(command|[A-Z])|imap mix:' "$out.mix"
  echo "mix at 5,000 commands/s:"
  grep -E '^(command|[A-Z])|imap mix:' "$out.paced"
  echo "mix with a login every round:"
  grep -E '^(command|[A-Z])|imap mix|round' "$out.logins"
}

# ratio KIND: Dovecot's CPU per message over Herald's, round by round
ratio() {
  paste <(sed -E 's|.*CPU ([0-9.]+) ms.*|\1|' "$work/herald.$1") \
    <(sed -E 's|.*CPU ([0-9.]+) ms.*|\1|' "$work/dovecot.$1") |
    awk '{ printf "%.2f\n", $2 / $1 }' | summary
}

printf bench >"$work/password"
chmod 644 "$work/password"
python3 - "$work/fsync.probe" <<'PY' >"$work/disk"
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
ts = []
for i in range(500):
    t = time.perf_counter()
    os.pwrite(fd, b"x" * 4096, (i % 64) * 4096)
    os.fdatasync(fd)
    ts.append(time.perf_counter() - t)
os.unlink(sys.argv[1])
print("disk: 4 KiB write + fdatasync p50 %.3f ms" % (sorted(ts)[250] * 1e3))
PY

mkdir -p "$work/herald"
cat >"$work/herald/herald.toml" <<TOML
[server]
hostname = "bench.local"
[store]
path = "$work/herald/data"
[imap]
listen = ["127.0.0.1:$((base + 143))"]
[lmtp]
listen = ["127.0.0.1:$((base + 24))"]
[pop3]
listen = ["127.0.0.1:$((base + 110))"]
[http]
listen = ["127.0.0.1:$((base + 80))"]
TOML
# mix0..mix9 for the mix, mix10 and mix11 for the Python clients, on both servers.
for ((u = 0; u < 12; u++)); do
  "$herald" --config "$work/herald/herald.toml" user add "mix$u" \
    --password-file "$work/password" >/dev/null 2>&1
done
"$herald" --config "$work/herald/herald.toml" serve >"$work/herald/serve.out" 2>"$work/herald/serve.log" &
herald_pid=$!
wait_port $((base + 143))
servers=("herald $((base + 143)) $((base + 24)) $herald_pid")

dovecot=no
if command -v dovecot >/dev/null; then
  started=$(HERALD="$herald" "$here/dovecot.sh" start "$work/dovecot" 12)
  port() { echo "$started" | awk -v k="$1" '$1 == k {sub(/.*:/, "", $2); print $2}'; }
  wait_port "$(port imap)"
  servers+=("dovecot $(port imap) $(port lmtp) $(port pid)")
  dovecot=yes
fi

for name in herald dovecot; do : >"$work/$name.append"; : >"$work/$name.lmtp"; done
for ((r = 1; r <= runs; r++)); do
  echo "round $r of $runs" >&2
  for kind in append lmtp; do
    for server in "${servers[@]}"; do
      # shellcheck disable=SC2086 # NAME IMAP LMTP PID, split on purpose
      round $server "$kind"
    done
  done
done
# mix NAME IMAP_PORT PID OUT WHAT [ARGS], each kind on both servers in turn
for args in "mix|the mix, closed loop" "paced|the mix at 5,000 commands/s|--rate 5000" \
  "logins|the mix with a login every round|--reconnect"; do
  IFS='|' read -r out what extra <<<"$args"
  for server in "${servers[@]}"; do
    read -r name imap _ pid <<<"$server"
    # shellcheck disable=SC2086 # --rate 5000 is two words
    mix "$name" "$imap" "$pid" "$out" "$what" $extra
  done
done
kill "$herald_pid"
wait "$herald_pid" 2>/dev/null || true
herald_pid=

echo
cat "$work/disk"
echo "$runs rounds of 2,000 messages each; median (least–most)"
report herald
if [ "$dovecot" = yes ]; then
  report dovecot
  echo "== Dovecot's server CPU per message over Herald's, round by round"
  echo "append  $(ratio append)"
  echo "lmtp    $(ratio lmtp)"
else
  echo "== dovecot: not installed (Debian: dovecot-imapd dovecot-lmtpd), not measured"
fi
