#!/usr/bin/env bash
# SAM's local tools for real (`make sam-local`, and `make test`): a Docker engine, an invoke
# image built here (no registry is reachable), `sam build`, then `sam local invoke` and
# `sam local start-api` against the AWS emulator (tests/test_sam_local.py).
#   eval "$(infra/sam-local.sh up)"    # engine, build, image, relay; exports SAM_TEMPLATE, SAM_IMAGE, SAM_ENV_VARS
#   infra/sam-local.sh down            # stops the engine if `up` started it
#   infra/sam-local.sh check           # `make sam-local`: emulator, up, tests/test_sam_local.py, down
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.test-run"
mkdir -p "$state"
log() { echo "sam-local: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# A Docker engine: Debian's, installed and started if missing; stopped by `down` if started here.
engine() {
  docker info >/dev/null 2>&1 && return 0
  if [ ! -x /usr/sbin/dockerd ]; then
    log "installing docker.io (Debian)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null \
      || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; }
  fi
  log "starting dockerd"
  as_root sh -c "nohup /usr/sbin/dockerd >'$state/dockerd.log' 2>&1 & echo \$! >'$state/dockerd.pid'"
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  log "dockerd did not start: see $state/dockerd.log"; exit 1
}

# The template as it runs here: x86_64 (this machine's; emulating arm64 would make every
# invocation several times slower for nothing the tests look at), and the emulator's
# endpoint declared so --env-vars may set it (SAM only sets variables the template declares).
local_template() {
  python3 - "$root/template.yaml" "$root/.sam-local.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
text = text.replace("Architectures: [arm64]", "Architectures: [x86_64]")
# Each function from its dev binary (see build()), through a makefile build (the events
# binary serves four functions).
for binary in ("upload", "list", "processor", "events"):
    text = text.replace(
        f"      BuildMethod: rust-cargolambda\n      BuildProperties:\n        Binary: {binary}\n",
        "      BuildMethod: makefile\n",
    )
    text = text.replace(f"CodeUri: functions/{binary}", f"CodeUri: .sam-local/functions/{binary}")
assert "rust-cargolambda" not in text, "a function is still built by cargo lambda"
text = text.replace("    Environment:\n      Variables:\n", "    Environment:\n      Variables:\n        AWS_ENDPOINT_URL: \"\"\n", 1)
# SAM runs Lambda authorizers locally but not JWT ones: the JWT authorizer becomes the local
# dev authorizer (infra/sam-authorizer: "Bearer NAME" is NAME), under the same name.
start = text.index("          JwtAuthorizer:\n")
end = text.index("      CorsConfiguration:", start)
text = text[:start] + """          JwtAuthorizer:
            FunctionArn: !GetAtt DevAuthorizerFunction.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity:
              Headers: [Authorization]
""" + text[end:]
text = text.replace("\n  HttpApi:\n", """
  DevAuthorizerFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      CodeUri: infra/sam-authorizer
      Handler: bootstrap
      Runtime: provided.al2023

  HttpApi:
""", 1)
open(sys.argv[2], "w").write(text)
EOF
}

# `sam build` of that template. Each function is built the way its tests ran it: the dev
# profile's binary (`cargo build`, which reuses what the Lambda runtime tests compiled),
# copied in by a makefile build, instead of a release build of every crate again (minutes).
# What runs in the containers is the same code; `make build` is the release arm64 build.
build() {
  local_template
  log "cargo build (dev profile) of upload, list, processor, events"
  # One binary at a time, as `cargo lambda watch` builds them: the same features, so what the
  # Lambda runtime tests built is reused (together, their features unify differently).
  : >"$state/sam-build.log"
  for bin in upload list processor events; do
    (cd "$root" && cargo build --locked --bin "$bin" >>"$state/sam-build.log" 2>&1) \
      || { log "cargo build failed: see $state/sam-build.log"; tail -30 "$state/sam-build.log" >&2; exit 1; }
  done
  local target="${CARGO_TARGET_DIR:-$root/target}" fn
  rm -f "$root"/.sam-local/functions/*/Makefile.new
  for fn in upload:UploadFunction list:ListFunction processor:ProcessorFunction \
    events:EventsFunction events:WebhookFunction events:LiveAuthorizerFunction events:LiveConnectionsFunction; do
    mkdir -p "$root/.sam-local/functions/${fn%%:*}"
    printf 'build-%s:\n\tcp %s/debug/%s $(ARTIFACTS_DIR)/bootstrap\n' "${fn##*:}" "$target" "${fn%%:*}" \
      >>"$root/.sam-local/functions/${fn%%:*}/Makefile.new"
  done
  for dir in "$root"/.sam-local/functions/*/; do
    mv "$dir/Makefile.new" "$dir/Makefile"
  done
  log "sam build (x86_64, the dev binaries)"
  (cd "$root" && sam build --template .sam-local.yaml --build-dir .aws-sam/local/build >>"$state/sam-build.log" 2>&1) \
    || { log "sam build failed: see $state/sam-build.log"; tail -30 "$state/sam-build.log" >&2; exit 1; }
}

# The invoke image: busybox (the shell, mv and chmod SAM's rapid image needs), the C library
# and loader the bootstrap links (from ldd), CA certificates; imported, never pulled. Named
# after its content, so SAM's rapid image (named after it) is rebuilt when it changes.
image() {
  [ -x /bin/busybox ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  local bin="$root/.aws-sam/local/build/UploadFunction/bootstrap" fs
  [ -x "$bin" ] || { log "no $bin: build first"; exit 1; }
  fs=$(mktemp -d)
  mkdir -p "$fs"/{bin,tmp,etc/ssl/certs,var/task,var/runtime,opt}
  chmod 1777 "$fs/tmp"
  cp /bin/busybox "$fs/bin/"
  for app in sh mv chmod cp mkdir rm ls cat ln env sleep true; do ln -s busybox "$fs/bin/$app"; done
  for f in "$root"/.aws-sam/local/build/*/bootstrap; do
    ldd "$f" | awk '/=> \// {print $3} /ld-linux/ && !/=>/ {print $1}'
  done | sort -u | while read -r lib; do cp --parents -L "$lib" "$fs"; done
  # Unwinding a panic (a decoder's, caught and reported) may load libgcc_s at run time.
  for lib in /lib/x86_64-linux-gnu/libgcc_s.so.1; do [ -e "$lib" ] && cp --parents -L "$lib" "$fs"; done
  cp -L /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/"
  tar -C "$fs" --sort=name --mtime=@0 --owner=0 --group=0 -cf "$state/invoke-image.tar" .
  rm -rf "$fs"
  local tag
  tag="picasso-invoke-$(sha256sum "$state/invoke-image.tar" | cut -c1-12)"
  if ! docker image inspect "$tag:latest" >/dev/null 2>&1; then
    log "importing the invoke image $tag"
    docker import "$state/invoke-image.tar" "$tag:latest" >/dev/null
  fi
  echo "$tag:latest"
}

# The emulator as SAM's containers reach it (a relay on the bridge's host address), and every
# function's variables pointed there (SAM resolves !Ref to logical ids otherwise).
relay() {
  for k in AWS_ENDPOINT_URL TABLE_NAME BUCKET_NAME QUEUE_URL; do
    [ -n "${!k:-}" ] || { log "$k is not set: start the emulator first (eval \"\$(infra/emulator.sh start)\")"; exit 1; }
  done
  local gateway hostport port
  gateway=$(docker network inspect bridge --format '{{json .IPAM.Config}}' |
    python3 -c 'import ipaddress, json, sys; c = json.load(sys.stdin)[0]; print(c.get("Gateway") or ipaddress.ip_network(c["Subnet"])[1])')
  hostport=${AWS_ENDPOINT_URL#http://}
  [ -f "$state/relay.pid" ] && kill "$(cat "$state/relay.pid")" 2>/dev/null || true
  python3 "$root/infra/relay.py" "$gateway" "${hostport%:*}" "${hostport##*:}" >"$state/relay.port" 2>"$state/relay.log" &
  echo $! >"$state/relay.pid"
  for _ in $(seq 1 50); do [ -s "$state/relay.port" ] && break; sleep 0.1; done
  port=$(cat "$state/relay.port")
  python3 - "$state/sam-env.json" "http://$gateway:$port" <<'PY'
import json, os, sys
names = {k: os.environ[k] for k in ("TABLE_NAME", "BUCKET_NAME", "QUEUE_URL")}
json.dump({"Parameters": {"AWS_ENDPOINT_URL": sys.argv[2], **names}}, open(sys.argv[1], "w"))
PY
}

case "${1:-}" in
up)
  engine
  build
  img=$(image)
  relay
  echo "export SAM_TEMPLATE='$root/.aws-sam/local/build/template.yaml' SAM_IMAGE='$img' SAM_ENV_VARS='$state/sam-env.json'"
  ;;
check)
  # `make sam-local`: the emulator, then all of the above, then tests/test_sam_local.py.
  export PATH="$root/.venv/bin:$PATH"
  trap '"$root/infra/sam-local.sh" down; "$root/infra/emulator.sh" stop' EXIT
  eval "$("$root/infra/emulator.sh" start)"
  eval "$("$root/infra/sam-local.sh" up)"
  (cd "$root" && python -m pytest -q -p no:cacheprovider tests/test_sam_local.py)
  ;;
down)
  if [ -f "$state/relay.pid" ]; then
    kill "$(cat "$state/relay.pid")" 2>/dev/null || true
    rm -f "$state/relay.pid"
  fi
  if [ -f "$state/dockerd.pid" ]; then
    as_root kill "$(cat "$state/dockerd.pid")" 2>/dev/null || true
    rm -f "$state/dockerd.pid"
  fi
  ;;
*)
  echo "usage: infra/sam-local.sh up|down" >&2
  exit 2
  ;;
esac
