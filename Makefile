# The two commands of the README, plus the pieces they are made of.
#   make demo   train PPO on the default scenario's tasks (batch-scheduler decisions), evaluate it against the heuristics
#   make test   formatting, lints and the whole test suite (what CI runs)
# Both bootstrap libtorch and the Python tools on first use (scripts/bootstrap.sh).

CARGO ?= cargo
DEMO_RUN ?= demo
DEMO_STEPS ?= 1228800

.PHONY: demo test bootstrap check-libtorch build bench bench-throughput bench-deeprm-curves fuzz docs-eval python python-test bench-python

bootstrap:
	@./scripts/bootstrap.sh

check-libtorch: bootstrap
	@./scripts/check-libtorch.sh

test: check-libtorch
	@echo "==> lepton-env must not depend on libtorch"
	@! $(CARGO) tree -q -p lepton-env -e normal,build | grep -E ' (tch|torch-sys) v' || \
		{ echo "error: lepton-env depends on tch/torch-sys (see ARCHITECTURE.md invariants)"; exit 1; }
	@echo "==> no import cycle between the modules of a crate"
	@python3 scripts/check-module-cycles.py
	@echo "==> cargo fmt --check"
	@$(CARGO) fmt --all --check
	@echo "==> cargo clippy --workspace --all-targets -- -D warnings"
	@$(CARGO) clippy --workspace --all-targets -- -D warnings
	@echo "==> cargo test --workspace"
	@$(CARGO) test --workspace
	@$(MAKE) --no-print-directory python-test PY_PROFILE=dev

# The `lepton` Python package (python/: Gymnasium envs, the native vector env, the heuristics),
# built by maturin and installed into the project's virtualenv (.venv). PY_PROFILE=dev builds
# faster and steps slower (`make test` uses it; benchmarks want release).
PY_PROFILE ?= release
python: bootstrap
	@echo "==> maturin develop --profile $(PY_PROFILE) (the lepton Python package into .venv)"
	@VIRTUAL_ENV="$(CURDIR)/.venv" .venv/bin/maturin develop --quiet --profile $(PY_PROFILE) \
		-m python/Cargo.toml

# pytest over python/tests: the bindings, and lepton on Ray (docs/ray.md: RLlib's PPO with
# action masking and Tune searches of lepton-train's debug build on a local 2-CPU Ray
# cluster). Installs Ray into the project's virtualenv on first use (scripts/bootstrap-ray.sh).
python-test: python
	@./scripts/bootstrap-ray.sh
	@$(CARGO) build -q -p lepton-train --bin lepton-train
	@$(CARGO) build -q -p lepton-env --example trajectory
	@echo "==> pytest python/tests"
	@PY_PROFILE=$(PY_PROFILE) LEPTON_TRAIN="$(CURDIR)/target/debug/lepton-train" \
		.venv/bin/python -m pytest -q python/tests

# Env steps/s from Python: the `lepton` package (release build) against Gymnasium, EnvPool (its
# own pinned virtualenv in the per-user cache, ~1 GB; BENCH_NO_ENVPOOL=1 skips it) and DeepRM's
# own env from a checkout named by DEEPRM_SRC (skipped without one); ~5 min. Writes
# bench/python_results.json and the "From Python" table in BENCHMARKS.md.
DEEPRM_SRC ?=
bench-python:
	@$(MAKE) --no-print-directory python PY_PROFILE=release
	@DEEPRM_SRC="$(DEEPRM_SRC)" ./scripts/bench_python.sh

build: check-libtorch
	@$(CARGO) build --release -p lepton-train -p lepton-eval

demo: build
	@./scripts/demo.sh "$(DEMO_RUN)" "$(DEMO_STEPS)"

# lepton vs Gymnasium and Stable-Baselines3 on this machine (see BENCHMARKS.md).
# Full run ~30-40 min; bench-quick (or BENCH_QUICK=1 make bench) a few minutes.
.PHONY: bench-quick
bench: check-libtorch
	@./scripts/bench.sh
	@$(MAKE) --no-print-directory bench-throughput

# Training throughput: PPO on CartPole (CleanRL's settings, the large-batch preset, SB3, and
# CleanRL's ppo.py on EnvPool when CLEANRL_SRC names a checkout of it) and deeprm, and the
# CartPole vector envs (scripts/bench_throughput.sh; about 10 minutes, 20 with CleanRL).
bench-throughput: check-libtorch
	@./scripts/bench_throughput.sh

bench-quick: check-libtorch
	@BENCH_QUICK=1 ./scripts/bench.sh

# PPO on deeprm: greedy learning curves per env step and env steps/s of the shipped config and
# its faster variants, 3 seeds each (bench/deeprm_curves.py; about 8 minutes).
bench-deeprm-curves: build
	@.venv/bin/python bench/deeprm_curves.py

# The long fuzzing campaign of lepton's loaders (fuzz/; `make test` runs a short one).
# FUZZ_INPUTS mutants from FUZZ_SEED, each bounded to 30 s and 2 GiB of Rust heap growth, the
# campaign (through ulimit -v) to 8 GiB of address space: exit 1 on a panic, 3 on a hang, 4 on
# an input past the memory bound, 134 on an allocation the address-space cap refused.
# Built in the `fuzz` profile: release speed with overflow checks and debug assertions.
FUZZ_INPUTS ?= 1000000
FUZZ_SEED ?= 0
fuzz: check-libtorch
	@$(CARGO) build --profile fuzz -q -p lepton-fuzz
	@ulimit -v 8388608 && ./target/fuzz/lepton-fuzz --inputs $(FUZZ_INPUTS) --seed $(FUZZ_SEED)

# The README's example report (docs/eval/): regenerate after any change to what reports show;
# a test (eval/tests/cli.rs, docs_eval_report_is_fresh) fails while it is stale.
DOCS_EVAL_ARGS = --suite configs/eval/smoke.toml --schedulers random,fcfs,sjf,packer,tetris,easy
docs-eval: build
	@./target/release/lepton-eval $(DOCS_EVAL_ARGS) --out docs/eval
