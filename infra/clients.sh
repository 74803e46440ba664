#!/usr/bin/env bash
# Typed clients from openapi.json, as integrators make them: the document passes
# openapi-generator's validator and openapi-spec-validator; openapi-python-client generates a
# Python client and openapi-generator a TypeScript one (typescript-fetch, compiled by tsc),
# with no warning from either (but the one below); each runs the whole flow
# (tests/clients/flow.py, flow.ts) against the local stack. Needs target/debug/picasso.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
out="$root/.test-run/clients"
rm -rf "$out"
mkdir -p "$out"

# Any line a generator marks as a warning fails the run, except this one: openapi-generator
# says it of every OpenAPI 3.1 document.
no_warnings() {
  local log=$1
  if grep -E '\] (WARN|ERROR) |[Ww]arning|WARNING' "$log" | grep -v 'OpenAPI 3.1 support is still in beta'; then
    echo "clients: the generator warned (see $log)" >&2
    exit 1
  fi
}

echo "-- validate: openapi-generator, openapi-spec-validator"
openapi-generator-cli validate -i openapi.json
openapi-spec-validator openapi.json

echo "-- Python client (openapi-python-client)"
openapi-python-client generate --path openapi.json --meta none --output-path "$out/python/picasso_client" \
  >"$out/python.log" 2>&1 || { cat "$out/python.log"; exit 1; }
no_warnings "$out/python.log"

echo "-- TypeScript client (openapi-generator typescript-fetch, tsc)"
openapi-generator-cli generate -i openapi.json -g typescript-fetch -o "$out/typescript/generated" \
  >"$out/typescript.log" 2>&1 || { cat "$out/typescript.log"; exit 1; }
no_warnings "$out/typescript.log"
(cd tests/clients && npm ci --silent --no-audit --no-fund)
cp tests/clients/flow.ts "$out/typescript/"
tests/clients/node_modules/.bin/tsc --target ES2022 --module commonjs --lib ES2022,DOM --strict --skipLibCheck \
  --typeRoots tests/clients/node_modules/@types --types node --outDir "$out/typescript/js" "$out/typescript/flow.ts"

# Above 6 MiB in parts of 5 MiB, so the flow's 12 MiB file takes the multipart path.
. infra/local-stack.sh
MULTIPART_THRESHOLD=6291456 MULTIPART_PART_BYTES=5242880 start_local_stack clients
export PICASSO_API="$api"
PICASSO_TOKEN=$(dev_token python-client) python tests/clients/flow.py "$out/python"
PICASSO_TOKEN=$(dev_token typescript-client) node "$out/typescript/js/flow.js"
