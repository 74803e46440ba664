#!/usr/bin/env bash
# Installs what the tests need and nothing by hand: Python tools into .venv
# (moto, cargo-lambda + zig, SAM CLI, pytest, schemathesis, the client generators), a link to
# an environment in the user's cache (infra/venv.sh). Idempotent and quick once done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/infra/venv.sh"
venv_for "$root/infra/requirements.txt" "$root/.venv"
