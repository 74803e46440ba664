#!/usr/bin/env bash
# Starts moto on a free loopback port and creates template.yaml's resources in it.
#   eval "$(infra/emulator.sh start)"   # exports AWS_ENDPOINT_URL, TABLE_NAME, BUCKET_NAME, QUEUE_URL…
#   infra/emulator.sh stop
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
state="$root/.test-run"
case "${1:-}" in
start)
  [ -x "$venv/bin/moto_server" ] || { echo "moto is missing: run infra/setup.sh (or make test)" >&2; exit 1; }
  mkdir -p "$state"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # moto with the one fix the Rust SDK needs (infra/moto_server.py).
  "$venv/bin/python" "$root/infra/moto_server.py" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
  echo $! >"$state/moto.pid"
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "moto did not start: see $state/moto.log" >&2; exit 1; }
  # A webhook URL creates the webhook's queue, rule and secret; the tests point the function elsewhere.
  "$venv/bin/python" "$root/infra/bootstrap.py" --endpoint "http://127.0.0.1:$port" --stack picasso-test \
    --parameter WebhookUrl=https://hooks.example.invalid/picasso
  ;;
stop)
  [ -f "$state/moto.pid" ] && kill "$(cat "$state/moto.pid")" 2>/dev/null || true
  rm -f "$state/moto.pid"
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
