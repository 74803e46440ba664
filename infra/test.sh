#!/usr/bin/env bash
# The one test command (`make test`, run by .ci/run): installs the tools, checks the
# template, starts the AWS emulator, and runs every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .test-run
started=$SECONDS
last=$SECONDS
# Each step's heading, and how long the one before it took.
step() {
  echo "   (took $((SECONDS - last)) s)"
  last=$SECONDS
  echo "== $1"
}

echo "== make check"
infra/check.sh
step "Python tools into .venv"
infra/setup.sh
export PATH="$root/.venv/bin:$PATH"

step "sam validate --lint"
AWS_DEFAULT_REGION=us-east-1 sam validate --lint --template template.yaml

step "template.yaml's rules (JWT authorizer on every route, identity wiring, indexes, grants)"
python -m pytest -q -p no:cacheprovider tests/test_template.py

step "checkov on template.yaml, as written and as SAM expands it"
infra/checkov.sh

step "AWS emulator (moto) with template.yaml's resources"
trap 'infra/sam-local.sh down; infra/emulator.sh stop' EXIT
eval "$(infra/emulator.sh start)"

step "cargo test against the emulator (tests/aws: DynamoDB, S3, SQS end to end)"
cargo test --locked --test aws -- --ignored

step "The API from openapi.json, property-based (schemathesis against the local stack)"
infra/schemathesis.sh 50

step "Typed clients generated from openapi.json (Python and TypeScript) through the whole flow"
infra/clients.sh

step "Web page in a real browser (Chromium + Playwright)"
infra/setup-browser.sh
(cd tests/browser && node --test)

step "Lambda binaries through the Runtime API (cargo lambda watch/invoke)"
python -m pytest -q -p no:cacheprovider tests/test_lambda_runtime.py

step "Events on AWS: stream -> events function -> EventBridge rule -> SQS -> webhook function -> a Standard Webhooks receiver"
python -m pytest -q -p no:cacheprovider tests/test_events_aws.py

step "The arm64 artifact as sam build makes it, under QEMU (infra/arm64.sh)"
infra/arm64.sh

step "SAM's local tools in Docker (sam build, sam local invoke, sam local start-api)"
eval "$(infra/sam-local.sh up)"
python -m pytest -q -p no:cacheprovider tests/test_sam_local.py
step "done"
echo "== make test took $((SECONDS - started)) s"
