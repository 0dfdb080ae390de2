# One venv in .venv; every target installs what it needs, so a fresh clone works with
# `make test` alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install proto test lint bench binary release clean

install: $(STAMP) proto

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# gRPC stubs are build output (codetether/a2a/grpc_gen/), generated from proto/*.proto
proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

test: install
	$(BIN)/python -m pytest -q -n 2 tests

lint: install
	$(BIN)/ruff check codetether tests scripts

# every scripts/bench_*.py, collected into bench-results/summary.md and .json
bench: install
	$(BIN)/python scripts/bench_all.py

# one self-extracting file for this platform: dist/codetether-<version>-<os>-<arch>
binary: install
	$(BIN)/python scripts/build_binary.py

# SHA256SUMS (+ Ed25519 signature with SIGNING_KEY=path) next to the artifacts
release: binary
	$(BIN)/python scripts/release.py $(if $(SIGNING_KEY),--signing-key $(SIGNING_KEY))

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
