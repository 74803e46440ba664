#!/usr/bin/env bash
# Picasso's benchmarks (`make bench`): by hand only, never in CI or `make test`.
#   bench/run.sh [processing|ingest|listing|coldstart|presign|multipart|events|cost]...   (all by default)
# Builds the release binaries, installs Pillow into .venv if missing, starts moto so the
# Lambda cold-start runs make real calls, and writes the tables to target/bench/results.md.
# Generated data (≈2.5 GiB, plus a 1M-record catalog) stays in target/bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

infra/setup.sh
if ! .venv/bin/python -c 'import PIL' 2>/dev/null; then
  echo "bench: installing infra/bench-requirements.txt into .venv" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check -r infra/bench-requirements.txt
fi

# One invocation: the functions, the local stack and the bench share one dependency build.
cargo build --release -p picasso-local -p upload -p list -p processor -p events -p picasso-bench

work="$root/target/bench"
mkdir -p "$work"
# moto only for the parts that call AWS (all parts when none is named): idle, it still takes
# CPU that the local-stack parts would otherwise have.
if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qxE 'coldstart|cost'; then
  eval "$(infra/emulator.sh start)"
  trap 'infra/emulator.sh stop' EXIT
fi

BENCH_WORK="$work" BENCH_BIN_DIR="$root/target/release" BENCH_PYTHON="$root/.venv/bin/python" \
  target/release/picasso-bench "$@" | tee "$work/results.md"
echo "bench: tables saved in $work/results.md" >&2
