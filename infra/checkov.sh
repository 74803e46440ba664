#!/usr/bin/env bash
# checkov on template.yaml and on the template as SAM expands it (the roles, the API's stage,
# the functions as CloudFormation creates them): no failed check. Every check skipped is
# skipped in the template's Metadata with its reason (tests/test_template.py holds that).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv-checkov"
. infra/venv.sh
venv_for "$root/infra/checkov-requirements.txt" "$venv"
mkdir -p .test-run
AWS_DEFAULT_REGION=us-east-1 .venv/bin/python infra/sam_expand.py template.yaml .test-run/template-expanded.json
for t in template.yaml .test-run/template-expanded.json; do
  echo "-- checkov $t"
  "$venv/bin/checkov" -f "$t" --framework cloudformation --compact --quiet --skip-download
done
