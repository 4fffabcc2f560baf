#!/usr/bin/env bash
# The first run as a new user meets it: clone the repository (its committed HEAD) into a temporary
# directory, run `make run` there on a free port with the embedded default (no DATABASE_URL, REDIS_URL
# or CELERY_BROKER_URL: SQLite and the filesystem queue), and record the seconds from the start to
#   installed     bin/setup finished (a fresh .venv: pip install from pip's own wheel sources and cache)
#   site up       /healthz answers 200
#   logins        the first "Login:" line
#   live answers  the live study's comparisons are ready (SmolLM2's answers all stored)
#   demo ready    "The demo is ready" (SmolLM2's NQ-open run and fact-check answers done too)
# with `uptime` before and after; then stop it (every process it started) and delete the clone.
#
#   bench/first_run.sh [--keep-log FILE] [--limit SECONDS]
set -euo pipefail
REPO=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
LIMIT=3600
KEEP_LOG=
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-log) KEEP_LOG=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d -t stylegap-first-run-XXXXXX)
run_pid=
finish() {
  if [ -n "$run_pid" ]; then
    kill -INT -- "-$run_pid" 2>/dev/null || true
    for _ in $(seq 60); do [ -z "$(ps -o pid= -s "$run_pid")" ] && break; sleep 1; done
    # Anything of its session still running (a worker in a slow shutdown) goes too, by its id.
    for pid in $(ps -o pid= -s "$run_pid"); do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  if [ -n "$KEEP_LOG" ] && [ -f "$work/run.log" ]; then cp "$work/run.log" "$KEEP_LOG"; fi
  rm -rf "$work"
}
trap finish EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
git clone -q "$REPO" "$work/stylegap"
commit=$(git -C "$work/stylegap" rev-parse --short HEAD)
echo "commit $commit, port $port, clone $work/stylegap"
echo "uptime before: $(uptime)"

start=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$start" "$(date +%s.%N)"; }
(
  cd "$work/stylegap"
  unset DATABASE_URL REDIS_URL CELERY_BROKER_URL STYLEGAP_VAR_DIR
  exec setsid env PORT="$port" make run >"$work/run.log" 2>&1
) &
# The subshell is not a process-group leader, so setsid does not fork: $! is make's pid, and the id of
# the new session and process group that everything `make run` starts belongs to.
run_pid=$!

declare -A seen
mark() {
  if [ -z "${seen[$1]:-}" ]; then
    seen[$1]=$(elapsed)
    printf '%-13s %5s s\n' "$1" "${seen[$1]}"
  fi
}
while true; do
  log="$work/run.log"
  grep -q "^==> Database:" "$log" 2>/dev/null && mark installed
  if [ -z "${seen[site up]:-}" ] && curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$port/healthz" 2>/dev/null; then
    mark "site up"
  fi
  grep -q "^Login: " "$log" 2>/dev/null && mark logins
  grep -q "^Live study: .* ready for raters" "$log" 2>/dev/null && mark "live answers"
  if grep -q "The demo is ready" "$log" 2>/dev/null; then mark "demo ready"; break; fi
  if ! kill -0 "$run_pid" 2>/dev/null; then echo "make run exited early:"; tail -30 "$log"; exit 1; fi
  if [ "$(elapsed)" -gt "$LIMIT" ]; then echo "not ready after $LIMIT s:"; tail -30 "$log"; exit 1; fi
  sleep 1
done
echo "uptime after:  $(uptime)"
grep -E "^Worker: .* ([0-9]+)/\1$|model loaded|Still being generated" "$work/run.log" | head -10 || true
