# Sourced by the scripts that test against the local stack: `start_local_stack NAME [ARGS…]`
# starts target/debug/picasso on free ports in a temporary data directory (extra ARGS and the
# caller's environment passed on), waits for its API, sets $api, and stops it on exit.
# `dev_token SUB` prints a token from its dev issuer.
start_local_stack() {
  local name=$1
  shift
  stack_data=$(mktemp -d)
  stack_log="$root/.test-run/$name-stack.log"
  mkdir -p "$root/.test-run"
  "$root/target/debug/picasso" --port 0 --s3-port 0 --data-dir "$stack_data" "$@" >"$stack_log" 2>&1 &
  stack_pid=$!
  trap 'kill $stack_pid 2>/dev/null; wait $stack_pid 2>/dev/null; rm -rf "$stack_data"' EXIT
  api=""
  for _ in $(seq 1 300); do
    api=$(sed -n 's/^API: //p' "$stack_log" | head -1)
    [ -n "$api" ] && return 0
    kill -0 $stack_pid 2>/dev/null || { echo "$name: the local stack exited; see $stack_log" >&2; return 1; }
    sleep 0.1
  done
  echo "$name: no API line from the local stack; see $stack_log" >&2
  return 1
}

dev_token() {
  curl -fsS -X POST "$api/auth/dev-token" -H 'content-type: application/json' -d "{\"sub\": \"$1\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
