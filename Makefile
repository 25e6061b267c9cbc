# The habits a newcomer needs. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test test-fast lint typecheck bench fmt demo

install:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'

test:
	./scripts/test.sh

# no npm CLIs, no PostgreSQL: the quick loop while developing
test-fast:
	CORRAL_SKIP_REALCLI=1 CORRAL_SKIP_PG=1 ./scripts/test.sh -m "not realcli and not postgres"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: install
	$(PY) benchmarks/run_all.py

demo: install
	$(VENV)/bin/corral run examples/hello.yaml
