#!/usr/bin/env bash
# The artifact that ships, executed before it ships (`make test`): `sam build` of template.yaml
# as a deployment runs it (arm64, cargo lambda with zig, release profile), then
# tests/test_arm64.py checks the binaries as ELF files and runs them under QEMU user emulation
# against the AWS emulator (its variables must be in the environment).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
log() { echo "arm64: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  log "adding the Rust standard library for $target"
  rustup target add "$target"
fi

# Debian's user-mode emulator and the arm64 C library it loads binaries against.
sysroot=/usr/aarch64-linux-gnu
if ! command -v qemu-aarch64-static >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  log "installing qemu-user-static and libc6-arm64-cross (Debian)"
  packages=(qemu-user-static libc6-arm64-cross)
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null \
    || { as_root apt-get update -qq \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }
fi

# Exactly what a deployment builds: SAM's rust-cargolambda workflow on the real template
# (`cargo lambda build --release --arm64 --bin NAME` in each function's folder).
build="$root/.test-run/arm64"
started=$SECONDS
AWS_DEFAULT_REGION=us-east-1 sam build --beta-features --template template.yaml --build-dir "$build" \
  >"$root/.test-run/arm64-build.log" 2>&1 \
  || { tail -40 "$root/.test-run/arm64-build.log" >&2; log "sam build failed: see .test-run/arm64-build.log"; exit 1; }
log "sam build (arm64, release) took $((SECONDS - started)) s"

ARM64_BUILD="$build" ARM64_SYSROOT="$sysroot" python -m pytest -q -p no:cacheprovider tests/test_arm64.py
