# tokenwell: one engine, every runtime.
#
#   make demo    build what is needed, start a real authorization server, run the examples
#   make test    everything CI runs (.ci/run runs exactly this)
#   make bench   every benchmark, each against a baseline measured in the same run,
#                then its charts (docs/charts/*.svg, shown in the README)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export CARGO_TERM_COLOR ?= never
export CARGO_TARGET_DIR ?= $(CURDIR)/target

BINDINGS := $(wildcard bindings/node/Makefile bindings/python/Makefile bindings/component/Makefile bindings/jvm/Makefile)

.PHONY: test test-core test-fuzz test-bindings test-node test-python test-component test-jvm test-e2e demo bench bench-core setup lint doc

test: test-core test-fuzz test-mutants test-bindings test-e2e test-charts

# A short run of every fuzz target (nightly + cargo-fuzz, installed by
# scripts/setup-fuzz.sh) that also replays every reproducer in core/fuzz/regressions/.
test-fuzz: fuzz-smoke

setup:
	@bash scripts/setup-rust.sh

# The engine: formatting, lints with warnings denied, unit + conformance + property
# tests, docs with warnings denied, and the scenario files in sync with their generator.
test-core: setup
	cargo fmt --all --check
	python3 tests/conformance/generate.py --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	cargo test -p tokenwell --all-features
	# Without the `asymmetric` feature (the npm package's default wasm engine): lints, and
	# the test that a private key is a configuration error there (one test file: quick).
	cargo clippy -p tokenwell --no-default-features --lib --test without_asymmetric -- -D warnings
	cargo test -p tokenwell --no-default-features --test without_asymmetric
	RUSTDOCFLAGS="-D warnings" cargo doc -p tokenwell --all-features --no-deps
	cargo run -q -p tokenwell-example-rust-service

test-bindings: $(patsubst bindings/%/Makefile,test-%,$(BINDINGS)) test-cli

# The tokenwell CLI (bindings/cli): its unit tests, then tests/cli/test_cli.py against
# the Rust binary and python -m tokenwell (and npx tokenwell once built), with scripted
# token servers on 127.0.0.1; its Hydra cases run in test-e2e (tests/integration/run.sh cli).
.PHONY: test-cli
test-cli: setup
	cargo test -q -p tokenwell-cli
	cargo build -q -p tokenwell-cli
	$(MAKE) -C bindings/python build
	bindings/python/.venv/bin/python -m pytest -q tests/cli

test-node: setup
	$(MAKE) -C bindings/node test

test-python: setup
	$(MAKE) -C bindings/python test

test-component: setup
	$(MAKE) -C bindings/component test

test-jvm: setup
	$(MAKE) -C bindings/jvm test

test-e2e: setup
	@if [ -x tests/integration/run.sh ]; then bash tests/integration/run.sh; else echo "end-to-end suite: not present yet"; fi

demo: setup
	@if [ -x scripts/demo.sh ]; then bash scripts/demo.sh; else cargo run -q -p tokenwell-example-rust-service; fi

bench: bench-core $(patsubst bindings/%/Makefile,bench-%,$(BINDINGS))
	@$(MAKE) --no-print-directory bench-charts

bench-core: setup
	cargo bench -q -p tokenwell --bench engine

bench-node bench-python bench-component bench-jvm: bench-%:
	$(MAKE) -C bindings/$* bench

# Pictures of the last bench run (scripts/charts/charts.py, standard library only):
# each bench also writes its numbers as JSON into TOKENWELL_BENCH_RESULTS; the
# engine's example records one run with an outage on a virtual clock; both are
# drawn as SVG into docs/charts/, which the README shows. bench-charts runs after
# every bench (a recipe line of bench, not a prerequisite, so -j cannot draw
# before the numbers exist); alone, it redraws the last numbers. BENCH_NOTE adds
# a sentence to the captions, for example "2 shared cores: compare the ratios".
# test-charts draws fixed fixtures and checks the SVGs (part of make test).
export TOKENWELL_BENCH_RESULTS ?= $(CURDIR)/bench-results
BENCH_NOTE ?=
.PHONY: bench-charts test-charts

bench-charts: setup
	mkdir -p "$(TOKENWELL_BENCH_RESULTS)"
	cargo run -q -p tokenwell --example timeline > "$(TOKENWELL_BENCH_RESULTS)/timeline.json"
	python3 scripts/charts/charts.py --results "$(TOKENWELL_BENCH_RESULTS)" --out docs/charts --note "$(BENCH_NOTE)"

test-charts: setup
	python3 scripts/charts/test_charts.py

# Fuzzing on nightly Rust with cargo-fuzz (scripts/setup-fuzz.sh installs both,
# cargo-fuzz into .cache/): every target in core/fuzz/ for FUZZ_SECONDS each, one
# libFuzzer process at a time, printing runs, exec/s, cov/ft and corpus size.
# fuzz-smoke is the short run CI calls.
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
.PHONY: fuzz fuzz-smoke

fuzz:
	@bash scripts/setup-fuzz.sh
	bash core/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke:
	@bash scripts/setup-fuzz.sh
	bash core/fuzz/run.sh $(FUZZ_SMOKE_SECONDS)

# Release artifacts (scripts/dist.sh; nothing is published): every npm package (the main
# package with its wasm engine, @tokenwell/linux-{x64,arm64}-{gnu,musl} cross-built with zig,
# glibc 2.17), the abi3 wheels (manylinux2014 and musllinux_1_2, x86_64 and aarch64) and the
# sdist, into dist/; then npm publish --dry-run, twine check and scripts/verify-dist.py.
# dist-host builds only this machine's (what the install tests of make test use);
# dist-check checks whatever dist/ holds. Tools install on first use (scripts/setup-dist.sh).
.PHONY: dist dist-host dist-check

dist: setup
	bash scripts/dist.sh all

dist-host: setup
	bash scripts/dist.sh host

dist-check:
	python3 scripts/verify-dist.py

# Mutation testing of the engine's decision files (the list, the tests that judge
# them and the excluded equivalent mutants are in .cargo/mutants.toml, each
# exclusion explained in .cargo/equivalent-mutants.md). scripts/setup-mutants.sh
# installs cargo-mutants into .cache/; MUTANTS_SHARDS processes run side by side.
# Prints caught / missed / unviable / timeouts and the score; fails below
# MUTANTS_MIN_SCORE percent.
#
# All of them take longer than CI's budget on 2 cores, so `make test` runs
# test-mutants: one slice of MUTANTS_SLICES (every mutant is in exactly one),
# picked by the commit count, so that consecutive commits rotate through all of
# them under the same gate. `make mutants` runs every slice at once.
MUTANTS_SHARDS ?= 2
MUTANTS_MIN_SCORE ?= 95
MUTANTS_SLICES ?= 8
.PHONY: mutants test-mutants

mutants: setup
	MUTANTS_SHARDS=$(MUTANTS_SHARDS) MUTANTS_MIN_SCORE=$(MUTANTS_MIN_SCORE) bash scripts/mutants.sh

test-mutants: setup
	MUTANTS_SHARDS=$(MUTANTS_SHARDS) MUTANTS_MIN_SCORE=$(MUTANTS_MIN_SCORE) \
	  MUTANTS_SAMPLE=$$(( $$(git rev-list --count HEAD 2>/dev/null || echo 0) % $(MUTANTS_SLICES) ))/$(MUTANTS_SLICES) \
	  bash scripts/mutants.sh
