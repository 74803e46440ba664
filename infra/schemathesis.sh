#!/usr/bin/env bash
# Property-based API tests: schemathesis generates requests from openapi.json (coverage,
# fuzzing, and stateful sequences through its links: upload → get → parts → list → delete)
# against the local stack, signed in through its dev issuer, and checks every answer: no 5xx,
# bodies and statuses as documented, the error shape on every 4xx. Settings: tests/schemathesis.toml.
#   infra/schemathesis.sh [EXAMPLES]   (default 50 per operation; needs target/debug/picasso)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
examples=${1:-50}
data=$(mktemp -d)
log="$root/.test-run/schemathesis-stack.log"
mkdir -p "$root/.test-run"
target/debug/picasso --port 0 --s3-port 0 --data-dir "$data" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
api=""
for _ in $(seq 1 300); do
  api=$(sed -n 's/^API: //p' "$log" | head -1)
  [ -n "$api" ] && break
  kill -0 $pid 2>/dev/null || { echo "schemathesis: the local stack exited; see $log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$api" ] || { echo "schemathesis: no API line from the local stack; see $log" >&2; exit 1; }
token=$(curl -fsS -X POST "$api/auth/dev-token" -H 'content-type: application/json' -d '{"sub": "schemathesis"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
"$root/.venv/bin/schemathesis" --config-file tests/schemathesis.toml run openapi.json \
  --url "$api" -H "Authorization: Bearer $token" --max-examples "$examples" --checks all
