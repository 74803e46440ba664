.PHONY: run check test build validate bench fuzz sam-local
run:
	cargo run --release
# The fast tier: format, lints, and every test that needs no emulator, Docker or browser.
check:
	infra/check.sh
# Every test: `make check` first, then the emulator, browser, Lambda runtime and SAM tiers.
test:
	infra/test.sh
# The three functions for Lambda (arm64, zig cross-compiling, as `sam build` does).
build:
	infra/setup.sh && PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 -p upload -p list -p processor
validate:
	infra/setup.sh && AWS_DEFAULT_REGION=us-east-1 .venv/bin/sam validate --lint
# Benchmarks, by hand only (never in CI): tables for README.md's Performance section.
bench:
	bench/run.sh
# Fuzzing, by hand only (never in CI): each cargo fuzz target for FUZZ_SECONDS (default 60).
fuzz:
	fuzz/run.sh
# SAM's local tools against the emulator, in Docker: sam build, sam local invoke, start-api.
sam-local:
	infra/setup.sh && infra/sam-local.sh check
