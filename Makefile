# The habits a newcomer needs. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test test-fast lint typecheck bench bench-quick fmt demo \
	release release-container release-verify release-smoke release-lock release-repro

install:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'

test:
	./scripts/test.sh

# no npm CLIs, no PostgreSQL: the quick loop while developing
test-fast:
	CORRAL_SKIP_REALCLI=1 CORRAL_SKIP_PG=1 ./scripts/test.sh -m "not realcli and not postgres and not release"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks release scripts hatch_build.py
	$(VENV)/bin/ruff format --check src tests benchmarks release scripts hatch_build.py

typecheck: install
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format src tests benchmarks release scripts hatch_build.py
	$(VENV)/bin/ruff check --fix src tests benchmarks release scripts hatch_build.py

# every row of the performance targets against its baselines (see benchmarks/README.md);
# BENCH_ARGS passes options on, e.g. make bench BENCH_ARGS="--only exec,flat1k --rounds 3"
bench: install
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# the same at tiny sizes: a smoke run that checks the harness, no figure worth reading
bench-quick: install
	$(PY) benchmarks/run_all.py --quick $(BENCH_ARGS)

demo: install
	$(VENV)/bin/corral run examples/hello.yaml

# The release (docs/release.md). A signing key is given to the build:
# CORRAL_MINISIGN_KEY=path/minisign.key (or CORRAL_GPG_KEY=FINGERPRINT).
DIST ?= dist
RELEASE := python3 release --dist $(DIST) --build build/release

# wheel, sdist, one-file executable, zipapp, their SBOMs, SHA256SUMS and its signature
release:
	$(RELEASE) build

# the container image (root, buildah, debootstrap), added to the sums and re-signed
release-container:
	$(RELEASE) container

release-verify:
	$(RELEASE) verify

# run each artifact from outside the repository (CONTAINER=1: the image too)
release-smoke:
	$(RELEASE) smoke --clis "$$(scripts/install-clis.sh | tail -n 1)" $(if $(CONTAINER),--container)

release-lock:
	$(RELEASE) lock

# two clean clones, two builds, every checksum compared (CONTAINER=1: the image too)
release-repro:
	$(RELEASE) repro $(if $(CONTAINER),--container)
