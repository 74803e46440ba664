#!/usr/bin/env bash
# The one test command (`make test`, run by .ci/run): installs the tools, checks the
# template, starts the AWS emulator, and runs every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .test-run
infra/check.sh
infra/setup.sh
export PATH="$root/.venv/bin:$PATH"

echo "== sam validate --lint"
AWS_DEFAULT_REGION=us-east-1 sam validate --lint --template template.yaml

echo "== template.yaml's rules (JWT authorizer on every route, identity wiring, indexes, grants)"
python -m pytest -q -p no:cacheprovider tests/test_template.py

echo "== AWS emulator (moto) with template.yaml's resources"
trap 'infra/sam-local.sh down; infra/emulator.sh stop' EXIT
eval "$(infra/emulator.sh start)"

echo "== cargo test against the emulator (tests/aws: DynamoDB, S3, SQS end to end)"
cargo test --locked --test aws -- --ignored

echo "== The API from openapi.json, property-based (schemathesis against the local stack)"
infra/schemathesis.sh 50

echo "== Typed clients generated from openapi.json (Python and TypeScript) through the whole flow"
infra/clients.sh

echo "== Web page in a real browser (Chromium + Playwright)"
infra/setup-browser.sh
(cd tests/browser && node --test)

echo "== Lambda binaries through the Runtime API (cargo lambda watch/invoke)"
python -m pytest -q -p no:cacheprovider tests/test_lambda_runtime.py

echo "== SAM's local tools in Docker (sam build, sam local invoke, sam local start-api)"
eval "$(infra/sam-local.sh up)"
python -m pytest -q -p no:cacheprovider tests/test_sam_local.py
