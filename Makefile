# sudo make run   set up what is missing, then start bpftop (ARGS="--tab syscalls -d 2")
# sudo make test  set up what is missing (with test extras), then run the tests
SHELL := /bin/bash
VENV := .venv
ARGS ?=

.PHONY: run test setup setup-test setup-bench bench clean

run: setup
	@$(VENV)/bin/bpftop $(ARGS)

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

# pytest's own exit code goes through untouched: 5 (nothing collected) fails too.
test: setup-test
	@BPFTOP_REQUIRE_BPF=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

setup-bench:
	@bash scripts/setup.sh --bench

# Every benchmark, each printing ratios against the stock tool run side by
# side in the same run (BENCH_ARGS=--quick for shorter runs).
bench: setup-bench
	@for b in syscall_overhead disk_overhead tcp_connect_rate cache_overhead; do \
		echo "== bench/$$b"; $(VENV)/bin/python bench/$$b $(BENCH_ARGS) || exit $$?; done

clean:
	rm -rf $(VENV) build *.egg-info
