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
. infra/local-stack.sh
start_local_stack schemathesis
token=$(dev_token schemathesis)
"$root/.venv/bin/schemathesis" --config-file tests/schemathesis.toml run openapi.json \
  --url "$api" -H "Authorization: Bearer $token" --max-examples "$examples" --checks all
