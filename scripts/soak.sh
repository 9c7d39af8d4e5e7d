#!/usr/bin/env bash
# Soak: a steady stream of jobs through `jobq serve` (workers and the HTTP API)
# for a long while, restarting the server every so often (alternately SIGTERM,
# a graceful stop, and SIGKILL, a crash). Prints per interval: jobs completed per
# second, the server's RSS (from /proc), the WAL file's size. Checks at the end:
# every job completed (none left behind), RSS bounded, WAL bounded. Exits
# non-zero when a check fails.
#
#   scripts/soak.sh            # 10 minutes, a restart every minute
#   scripts/soak.sh --short    # about 30 s, a restart every 6 s (CI)
#
# Builds the release binary, works in a temp dir, listens on 127.0.0.1 only,
# stops by itself. Needs python3 (JSON and a free port) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=600 restart_every=60 interval=10 rate=40
if [ "${1:-}" = "--short" ]; then
    duration=30 restart_every=6 interval=3 rate=40
fi
# Bounds checked at the end.
max_rss_kib=$((96 * 1024))    # any sample
max_wal_bytes=$((32 << 20))   # any sample

cargo build --release --quiet
jobq="$PWD/target/release/jobq"
work="$(mktemp -d)"
server="" enqueuer=""
stop() {
    if [ -n "$1" ]; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
cleanup() {
    stop "$enqueuer"
    stop "$server"
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/jobq.toml" <<'TOML'
[workers]
count = 4
lease = "3s"
poll_interval = "200ms"
[handlers.soak]
command = ["sh", "-c", "cat > /dev/null; echo '{\"ok\": true}'"]
timeout = "30s"
backoff = ["100ms"]
max_attempts = 20
TOML
export JOBQ_DB="$work/jobq.db" JOBQ_CONFIG="$work/jobq.toml"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

start_server() {
    "$jobq" serve --addr "127.0.0.1:$port" 2>> "$work/serve.log" &
    server=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "soak: the server did not answer /healthz" >&2
    exit 1
}

# The enqueuer: `rate` jobs every second, one JSONL batch each.
enqueue_loop() {
    local n=0
    while :; do
        for _ in $(seq "$rate"); do
            n=$((n + 1))
            printf '{"job_type":"soak","payload":{"n":%d,"text":"soak ✓"}}\n' "$n"
        done > "$work/batch.jsonl"
        "$jobq" enqueue --jsonl "$work/batch.jsonl" > /dev/null
        sleep 1
    done
}

# Reads the soak type's counts: "completed pending in_progress failed total".
counts() {
    "$jobq" stats --json | python3 -c '
import json, sys
c = json.load(sys.stdin)["by_type"].get("soak", {})
keys = ("completed", "pending", "in_progress", "failed", "cancelled")
print(*(c.get(k, 0) for k in keys), sum(c.get(k, 0) for k in keys))'
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0; }
wal_bytes() { stat -c %s "$work/jobq.db-wal" 2>/dev/null || echo 0; }

start_server
enqueue_loop &
enqueuer=$!

t0=$(date +%s) last_restart=$t0 restarts=0 kills=0
max_rss=0 max_wal=0 first_rss=0 prev_done=0
printf '%6s %10s %8s %10s %10s %9s\n' "t(s)" "completed" "jobs/s" "rss(KiB)" "wal(B)" "restarts"
while :; do
    sleep "$interval"
    now=$(date +%s)
    read -r done pending running failed cancelled total < <(counts)
    rss=$(rss_kib) wal=$(wal_bytes)
    [ "$first_rss" -eq 0 ] && first_rss=$rss
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    [ "$wal" -gt "$max_wal" ] && max_wal=$wal
    printf '%6d %10d %8d %10d %10d %9d\n' $((now - t0)) "$done" $(((done - prev_done) / interval)) \
        "$rss" "$wal" "$restarts"
    prev_done=$done
    [ $((now - t0)) -ge "$duration" ] && break
    if [ $((now - last_restart)) -ge "$restart_every" ]; then
        if [ $((restarts % 2)) -eq 0 ]; then
            stop "$server"                      # SIGTERM: graceful
        else
            kill -KILL "$server"; wait "$server" 2>/dev/null || true
            kills=$((kills + 1))
        fi
        restarts=$((restarts + 1)) last_restart=$now
        start_server
    fi
done

stop "$enqueuer"
enqueuer=""
stop "$server"
server=""
# Finish what is left; leases of a killed server expire after 3 s.
for _ in $(seq 30); do
    "$jobq" work --drain 2>> "$work/serve.log"
    read -r done pending running failed cancelled total < <(counts)
    [ "$done" -eq "$total" ] && break
    sleep 0.5
done

status=0
check() {
    if eval "$2"; then echo "ok:   $1"; else echo "FAIL: $1"; status=1; fi
}
echo "soak: $total jobs enqueued, $done completed, $failed failed, $pending pending," \
    "$running in_progress; $restarts restarts ($kills SIGKILL); RSS first $first_rss KiB," \
    "max $max_rss KiB; WAL max $max_wal B"
check "no job left behind ($done of $total completed)" '[ "$done" -eq "$total" ] && [ "$total" -gt 0 ]'
check "RSS bounded (max $max_rss KiB <= $max_rss_kib KiB, <= 3x the first sample)" \
    '[ "$max_rss" -le "$max_rss_kib" ] && [ "$max_rss" -le $((3 * first_rss)) ]'
check "WAL bounded (max $max_wal B <= $max_wal_bytes B)" '[ "$max_wal" -le "$max_wal_bytes" ]'
if grep -q "panicked" "$work/serve.log"; then
    echo "FAIL: a panic in the server log"; status=1
fi
exit "$status"
