# The two set-up commands of README: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv when missing and installs medhub with constraints.txt; a second run reuses it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.medhub-installed

.PHONY: demo test lint install bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt torch
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[spaces,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 $(VENV)/bin/medhub demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests tools benchmarks spaces

test: lint
	HF_HUB_DISABLE_TELEMETRY=1 $(PY) -m pytest -q

# e.g. make bench BENCH_ARGS="--rows 7,10 --isa avx2 --out /tmp/avx2.md" (kernels capped to AVX2)
BENCH_ARGS ?= --compile

bench: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[bench]'
	HF_HUB_DISABLE_TELEMETRY=1 $(PY) benchmarks/run.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
