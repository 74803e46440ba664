#!/usr/bin/env bash
# Installs what the tests need and nothing by hand: Python tools into .venv
# (moto, cargo-lambda + zig, SAM CLI, pytest). Idempotent and quick once done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.installed-$(sha256sum "$root/infra/requirements.txt" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python tools into .venv (infra/requirements.txt)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/infra/requirements.txt" \
    || { echo "setup: pip install failed; PyPI must be reachable" >&2; exit 1; }
  touch "$stamp"
fi
