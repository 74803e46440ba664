#!/usr/bin/env bash
# Installs what the real-browser test (tests/browser) needs: Debian's Chromium at
# /usr/bin/chromium and playwright-core from tests/browser/package-lock.json.
# Idempotent: does nothing when both are already in place. Never skips silently.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tests/browser"

if [ ! -x /usr/bin/chromium ]; then
  echo "setup-browser: installing Debian's chromium (apt-get)" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-browser: /usr/bin/chromium is missing and this is not root; run: sudo apt-get update && sudo apt-get install -y chromium" >&2
    exit 1
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "setup-browser: 'apt-get install chromium' failed; Debian's package mirror must be reachable (fix apt, then rerun infra/setup-browser.sh)" >&2
    exit 1
  fi
  [ -x /usr/bin/chromium ] || { echo "setup-browser: chromium installed but /usr/bin/chromium is missing" >&2; exit 1; }
fi

command -v npm >/dev/null || { echo "setup-browser: npm not found; install Node.js 20+ with npm (apt-get install -y nodejs npm)" >&2; exit 1; }
if [ ! -d "$dir/node_modules/playwright-core" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
  echo "setup-browser: npm ci in tests/browser" >&2
  (cd "$dir" && npm ci --no-audit --no-fund) \
    || { echo "setup-browser: 'npm ci' in tests/browser failed; the npm registry must be reachable (fix npm, then rerun infra/setup-browser.sh)" >&2; exit 1; }
fi
echo "setup-browser: ok ($(/usr/bin/chromium --version 2>/dev/null), playwright-core $(node -p "require('$dir/node_modules/playwright-core/package.json').version"))" >&2
