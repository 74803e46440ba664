.PHONY: run test build validate bench
run:
	cargo run --release
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
