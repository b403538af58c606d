# One-command set-up: every target below creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 is a CPU wheel where pip finds one locally (find-links), and PyPI's
# CUDA-enabled wheel on a Linux machine with a GPU. For another CUDA or ROCm build:
#   make install TORCH="torch --index-url <the index URL from pytorch.org's selector>"
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test test-quick format lint type check clean bench bench-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	touch $@

install: $(STAMP)

run: $(STAMP)  ## train: CartPole + DQN by default; pass overrides with ARGS="env=frozenlake"
	$(BIN)/python run.py $(ARGS)

test: $(STAMP)  ## the whole suite, slow learning checks included (what CI runs)
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-quick: $(STAMP)  ## the quick loop: everything but the slow checks
	$(BIN)/pytest -n 2 -m "not slow" $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix --select I .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

type: $(STAMP)
	$(BIN)/mypy run.py custom experiments benchmarks

check: lint type test

BENCH_OUT ?= /tmp/valuerl_bench_quick
QUICK := $(BIN)/python -m benchmarks

bench: $(STAMP)  ## list the benchmarks and their questions
	$(QUICK)

bench-quick: $(STAMP)  ## every benchmark at a size for about 10 minutes (reports in BENCH_OUT)
	$(QUICK).train_step --repeats 3 --output $(BENCH_OUT)/train_step.md
	$(QUICK).atari_env --steps 1000 --repeats 3 --output $(BENCH_OUT)/atari_env.md
	$(QUICK).compiled_update --repeats 3 --threads 1 --updates 10 \
		--output $(BENCH_OUT)/compiled_update.md
	$(QUICK).breakout_throughput --repeats 2 --steps 200 --warmup 5 --learning-starts 300 \
		--buffer-size 2000 --train-freqs 4 --threads 1 --output $(BENCH_OUT)/breakout_throughput.md
	$(QUICK).framework_overhead --envs cartpole --repeats 1 --short 2000 --long 4000 \
		--logger none --output $(BENCH_OUT)/framework_overhead.md
	$(QUICK).replay_buffer --steps 3000 --capacity 100000 --sb3-capacity 10000 --samples 200 \
		--repeats 5 --output $(BENCH_OUT)/replay_buffer.md
	$(QUICK).checkpoint_size --transitions 2000 --output $(BENCH_OUT)/checkpoints.md
	$(QUICK).fast_vs_stock --seeds 0 1 2 --set total_timesteps=2000 \
		--output $(BENCH_OUT)/fast_vs_stock/README.md
	$(QUICK).kill_test --runs 3 --output $(BENCH_OUT)/kill_test.md
	$(QUICK).resume_curve --total 4000 --stop-after 2000 --output $(BENCH_OUT)/resume_curve.md
	$(QUICK).prioritized_replay --quick --repeats 3 --output $(BENCH_OUT)/prioritized_replay.md
	$(QUICK).minatar_throughput --repeats 2 --steps 400 --threads 1 \
		--output $(BENCH_OUT)/minatar_throughput.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
