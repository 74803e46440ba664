#!/usr/bin/env bash
# Fuzzing (`make fuzz`): by hand only, never in CI or `make test`.
#   fuzz/run.sh [inspect|upload_request|list_params|notification]...   (all by default)
# Each target runs FUZZ_SECONDS (default 60) under AddressSanitizer (FUZZ_SANITIZER=none
# where ASan is unavailable). New inputs go to fuzz/target/corpus/<target> (not committed);
# fuzz/corpus/<target> holds the committed seeds and merged inputs. FUZZ_MERGE=1 afterwards
# adds to fuzz/corpus/<target> only the inputs that reach new code (edges). Crashers land in
# fuzz/artifacts/<target>/: keep them (minimized: `cargo fuzz tmin`) once fixed, and
# `cargo test --test processing fuzz_corpus` replays them with the corpus. See docs/fuzzing.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-address}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sanitizer coverage); stable rustc
# accepts them with RUSTC_BOOTSTRAP=1, so no nightly toolchain is needed.
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
# -timeout: an input that takes this long is reported as a hang. -malloc_limit_mb: a single
# allocation larger than twice the inspector's 256 MiB budget escaped the budget.
# FUZZ_FLAGS adds libFuzzer flags (e.g. -detect_leaks=0 while a known leak is unfixed).
# shellcheck disable=SC2206
flags=(-max_total_time="$seconds" -timeout=30 -malloc_limit_mb=512 -print_final_stats=1 ${FUZZ_FLAGS:-})
status=0
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${seconds}s ($sanitizer sanitizer)" >&2
  mkdir -p "target/corpus/$t"
  cargo fuzz run -s "$sanitizer" "$t" "target/corpus/$t" "corpus/$t" -- "${flags[@]}" || status=1
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    # Only inputs that reach code (edges) the committed corpus does not: a few hundred small files.
    cargo fuzz run -s "$sanitizer" "$t" "corpus/$t" "target/corpus/$t" -- -set_cover_merge=1 -use_counters=0 || status=1
  fi
done
if [ "$status" != 0 ]; then
  echo "fuzz: a target failed; its crasher is in fuzz/artifacts/<target>/" >&2
fi
exit "$status"
