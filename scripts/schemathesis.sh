#!/usr/bin/env bash
# Property-based API test: runs schemathesis against a live `jobq serve` on a
# free port, with an admin token (also used as the cron secret), over the
# OpenAPI document the server publishes. Any failure fails the script.
#
#   scripts/schemathesis.sh            # 100 examples per operation
#   scripts/schemathesis.sh 20         # a short run (CI)
#   scripts/schemathesis.sh --setup    # only install schemathesis (CI does
#                                      # this while cargo builds)
#
# Installs schemathesis with pip into target/schemathesis-venv when it is not
# on PATH. Needs python3 (3.9 or later).
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-100}"

st="$(command -v schemathesis || true)"
if [ -z "$st" ]; then
    venv="$PWD/target/schemathesis-venv"
    if [ ! -x "$venv/bin/schemathesis" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet schemathesis
    fi
    st="$venv/bin/schemathesis"
fi
if [ "$examples" = "--setup" ]; then
    exit 0
fi

cargo build --release --quiet
jobq="$PWD/target/release/jobq"
work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/jobq.toml" <<'TOML'
[handlers.echo]
command = ["cat"]
timeout = "10s"
TOML
export JOBQ_DB="$work/jobq.db" JOBQ_CONFIG="$work/jobq.toml"
token="$("$jobq" token create --user schemathesis --admin)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

JOBQ_CRON_SECRET="$token" "$jobq" serve --addr "127.0.0.1:$port" 2> "$work/serve.log" &
server=$!
for _ in $(seq 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$base/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

start=$(date +%s)
status=0
# Run from the temp dir: schemathesis keeps a cache in its working directory.
# use_after_free is skipped: DELETE on a job cancels it, and a cancelled job
# stays readable (status "cancelled") until pruned, as README documents.
(cd "$work" && "$st" --no-color run "$base/api/v1/openapi.json" --url "$base" \
    --header "Authorization: Bearer $token" \
    --checks all --exclude-checks use_after_free --max-examples "$examples") || status=$?
echo "schemathesis: ${examples} examples per operation in $(( $(date +%s) - start )) s"
if [ "$status" -ne 0 ]; then
    echo "--- jobq serve log (last 50 lines) ---"
    tail -n 50 "$work/serve.log"
fi
exit "$status"
