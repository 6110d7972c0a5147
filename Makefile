# sudo make run   set up what is missing, then start bpftop (ARGS="--tab syscalls -d 2")
# sudo make test  set up what is missing (with test extras), then run the tests
SHELL := /bin/bash
VENV := .venv
ARGS ?=
KERNELS ?= 6.1,6.12
BENCHES := syscall_overhead disk_overhead tcp_connect_rate cache_overhead console_cost bpf_tab_cost procs_overhead

.PHONY: run test test-host test-matrix lint setup setup-test setup-bench bench soak clean

run: setup
	@$(VENV)/bin/bpftop $(ARGS)

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

# Lint and types, the host's tests, then the stock-kernel matrix (Debian's
# 6.1 and 6.12 in guests; KERNELS=6.1 for one). All run even when one fails,
# and any failure fails the target; pytest's exit 5 (nothing collected) too.
test: setup-test
	@rc=0; \
	$(MAKE) --no-print-directory lint-only || rc=$$?; \
	BPFTOP_REQUIRE_BPF=1 $(VENV)/bin/python -m pytest --junitxml=build/test-results/host.xml $(PYTEST_ARGS) || rc=$$?; \
	$(VENV)/bin/python scripts/kernel_matrix.py --kernels $(KERNELS) --host-junit build/test-results/host.xml || rc=$$?; \
	exit $$rc

# The host's tests alone (quick), or the matrix alone.
test-host: setup-test
	@BPFTOP_REQUIRE_BPF=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-matrix: setup-test
	@$(VENV)/bin/python scripts/kernel_matrix.py --kernels $(KERNELS)

# ruff (rules in pyproject.toml) and mypy (strict on bpftop/), zero findings.
lint: setup-test
	@$(MAKE) --no-print-directory lint-only

lint-only:
	@rc=0; \
	echo "== ruff"; $(VENV)/bin/ruff check bpftop tests scripts $(addprefix bench/,$(BENCHES) soak table benchtable.py procmem.py progtime.py) || rc=$$?; \
	echo "== mypy"; $(VENV)/bin/mypy || rc=$$?; \
	exit $$rc

setup-bench:
	@bash scripts/setup.sh --bench

# Every benchmark, each printing its report against the stock tool run side
# by side in the same run, then one table of all their headline figures
# (BENCH_ARGS=--quick for shorter runs).
bench: setup-bench
	@$(VENV)/bin/python bench/table $(BENCHES) -- $(BENCH_ARGS)

# Memory under churn over 15 minutes (BENCH_ARGS="--minutes 60" for an hour):
# apart from make bench, whose table it would hold up.
soak: setup-bench
	@$(VENV)/bin/python bench/soak $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
