#!/usr/bin/env bash
# N replicas of the playground behind nginx, on one machine, without containers:
#
#   deploy/replicas.sh start [--replicas 3] [--port 8080] [--dir DIR] [--wait-s 180]
#   deploy/replicas.sh status [--dir DIR]
#   deploy/replicas.sh stop [--dir DIR]
#   deploy/replicas.sh start-replica I [--dir DIR]   # again, on its old port (after a crash)
#   deploy/replicas.sh kill-replica I [--dir DIR]    # SIGKILL it and its zygote tree (a crash)
#
# Each replica is its own uvicorn process (app.main:app) with its own zygote and worker pool,
# on a free loopback port. nginx (Debian's binary, run as whoever runs this, with its prefix,
# config, pid, logs and temp files all under DIR, never the system's) balances round robin with
# no affinity; deploy/healthcheck.py polls each replica's /api/health every second and takes
# failing ones out of nginx's upstream list (and back in). TP_* variables in the environment
# reach every replica (README "Settings"). Port 0 picks a free port; DIR defaults to
# ${TMPDIR:-/tmp}/tensor-playground-lb.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
py="$root/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
nginx_bin="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"

cmd="${1:-}"
[ $# -gt 0 ] && shift
index=""
case "$cmd" in start-replica | kill-replica) index="${1:?which replica (0, 1, ...)}"; shift ;; esac
replicas=3 port=8080 dir="${TMPDIR:-/tmp}/tensor-playground-lb" wait_s=180
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) replicas="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --wait-s) wait_s="$2"; shift 2 ;;
    *) echo "replicas.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Running, and not a zombie: a killed replica's pid lingers until init reaps it.
alive() {
  local state
  [ -s "$1" ] && state="$(ps -o stat= -p "$(cat "$1")" 2>/dev/null)" && [[ "$state" != Z* ]]
}
replica_port() { cat "$dir/replica-$1.port"; }
replica_count() { find "$dir" -maxdepth 1 -name 'replica-*.port' | wc -l; }

# The pid and every descendant (the zygote, its spare and running workers), parents first.
tree() {
  local pid="$1" child
  echo "$pid"
  for child in $(pgrep -P "$pid" || true); do tree "$child"; done
}

start_replica() {
  local i="$1" p
  p="$(replica_port "$i")"
  if alive "$dir/replica-$i.pid"; then echo "replica $i already runs"; return; fi
  # setsid: a Ctrl-C in the shell that started the stack does not reach the replicas.
  cd "$root"
  setsid "$py" -m uvicorn app.main:app --host 127.0.0.1 --port "$p" \
    >>"$dir/replica-$i.log" 2>&1 </dev/null &
  echo $! >"$dir/replica-$i.pid"
  cd - >/dev/null
  echo "replica $i: pid $(cat "$dir/replica-$i.pid"), http://127.0.0.1:$p"
}

kill_replica() {
  local pids
  alive "$dir/replica-$1.pid" || { echo "replica $1 is not running"; return; }
  # Gather the whole tree first: once uvicorn is gone its zygote is re-parented and lost.
  pids="$(tree "$(cat "$dir/replica-$1.pid")")"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  echo "replica $1: killed $(echo $pids | wc -w) processes"
}

render_config() {
  TP_LB_PORT="$1" TP_LB_STATE="$dir" "$py" -c '
import os, string, sys
text = string.Template(open(sys.argv[1]).read())
# safe_substitute: only our two names; nginx variables ($upstream_addr, ...) stay as written.
print(text.safe_substitute(TP_LB_PORT=os.environ["TP_LB_PORT"], TP_LB_STATE=os.environ["TP_LB_STATE"]), end="")
' "$root/deploy/nginx.conf.template" >"$dir/nginx.conf"
}

start_checker() {
  local args=() i
  for ((i = 0; i < replicas; i++)); do args+=(--replica "127.0.0.1:$(replica_port "$i")"); done
  "$py" "$root/deploy/healthcheck.py" --state "$dir" "${args[@]}" >>"$dir/healthcheck.log" 2>&1 </dev/null &
  echo $! >"$dir/healthcheck.pid"
  while [ ! -s "$dir/upstream.conf" ]; do sleep 0.1; done  # nginx includes it
}

healthy_count() {
  "$py" -c 'import json, sys; print(sum(r["up"] for r in json.load(open(sys.argv[1]))["replicas"]))' \
    "$dir/healthcheck.json" 2>/dev/null || echo 0
}

# A start that cannot finish takes down what it started (the logs stay in $dir).
fail() {
  echo "$1" >&2
  stop >/dev/null
  exit 1
}

start() {
  if alive "$dir/nginx.pid"; then echo "replicas.sh: already running in $dir (stop first)" >&2; exit 1; fi
  rm -f "$dir"/replica-*.port "$dir"/upstream.conf "$dir"/healthcheck.json
  [ "$port" = 0 ] && port="$(free_port)"
  local i waited=0
  for ((i = 0; i < replicas; i++)); do free_port >"$dir/replica-$i.port"; start_replica "$i"; done
  start_checker
  render_config "$port"
  echo "$port" >"$dir/nginx.port"
  "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
  echo "nginx: http://127.0.0.1:$port (logs in $dir)"
  while [ "$(healthy_count)" -lt "$replicas" ]; do
    [ "$waited" -ge $((wait_s * 10)) ] && fail "replicas.sh: not all healthy after ${wait_s}s"
    for ((i = 0; i < replicas; i++)); do
      alive "$dir/replica-$i.pid" && continue
      tail -n 20 "$dir/replica-$i.log" >&2
      fail "replicas.sh: replica $i exited (above: the end of $dir/replica-$i.log)"
    done
    sleep 0.1; waited=$((waited + 1))
  done
  echo "all $replicas replicas healthy"
}

stop() {
  local i pid n
  alive "$dir/nginx.pid" && kill -QUIT "$(cat "$dir/nginx.pid")"  # graceful: finish answers
  alive "$dir/healthcheck.pid" && kill "$(cat "$dir/healthcheck.pid")"
  n="$(replica_count)"
  for ((i = 0; i < n; i++)); do
    alive "$dir/replica-$i.pid" && kill -TERM "$(cat "$dir/replica-$i.pid")"  # pool shuts down
  done
  for ((i = 0; i < n; i++)); do
    pid="$(cat "$dir/replica-$i.pid" 2>/dev/null || echo)"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill_replica "$i" >/dev/null
  done
  while alive "$dir/nginx.pid"; do sleep 0.1; done
  echo "stopped"
}

status() {
  local i n
  n="$(replica_count)"
  if alive "$dir/nginx.pid"; then echo "nginx: pid $(cat "$dir/nginx.pid"), http://127.0.0.1:$(cat "$dir/nginx.port")"; else echo "nginx: not running"; fi
  for ((i = 0; i < n; i++)); do
    if alive "$dir/replica-$i.pid"; then state="pid $(cat "$dir/replica-$i.pid")"; else state="not running"; fi
    echo "replica $i: 127.0.0.1:$(replica_port "$i"), $state"
  done
  [ -s "$dir/healthcheck.json" ] && "$py" -c '
import json, sys
for r in json.load(open(sys.argv[1]))["replicas"]:
    print("  health %s: %s (%s)" % (r["addr"], "up" if r["up"] else "down", r["detail"]))
' "$dir/healthcheck.json"
  alive "$dir/nginx.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  start-replica) start_replica "$index" ;;
  kill-replica) kill_replica "$index" ;;
  *) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac
