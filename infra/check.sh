#!/usr/bin/env bash
# The fast tier (`make check`, and the first step of `make test`): formatting, lints as
# errors, and every Rust test that needs no emulator, Docker or browser.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== import graph: no circle, no arrow up (infra/import_graph.py)"
python3 infra/import_graph.py functions/core/src src

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (no emulator, Docker or browser)"
cargo test --workspace --locked

echo "== make check took $((SECONDS - started)) s"
