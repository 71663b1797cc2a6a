# NLR: the national borrower register. `make run` and `make test` do all the setup.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEV := .nlr-dev
STAMP := $(VENV)/.installed-stamp
PKI := $(DEV)/pki

.PHONY: venv proto run test lint bench clean

$(STAMP): pyproject.toml clients/nlr-client/pyproject.toml clients/nlr-auth-client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-e clients/nlr-auth-client -e clients/nlr-client -e '.[dev]'
	touch $@

venv: $(STAMP)

## proto: regenerate the Python code in clients/ from proto/
proto: $(STAMP)
	$(PY) proto/generate.py

## run: dev PKI, keyring, SQLite database and demo data under .nlr-dev/, then serve on :50051
run: $(STAMP)
	$(VENV)/bin/nlr-admin dev-setup --directory $(DEV)
	NLR_LISTEN_ADDRESS=127.0.0.1:50051 \
	NLR_DATABASE_URL=sqlite:///$(DEV)/nlr.db \
	NLR_TLS_CERT=$(PKI)/server.pem NLR_TLS_KEY=$(PKI)/server.key NLR_TLS_CLIENT_CA=$(PKI)/ca.pem \
	NLR_KEYRING=$(DEV)/keyring.json NLR_ALLOW_SYNTHETIC_IDS=true \
	$(VENV)/bin/nlr-server

## test: the whole suite on SQLite, and on PostgreSQL too when NLR_TEST_POSTGRES_URL is set
test: $(STAMP)
	$(PY) -m pytest

## lint: ruff and mypy
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy server tests proto bench

## bench: the performance targets (DESIGN.md §9) as ratios against ceilings measured in the same run
bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
