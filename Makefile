# NLR: the national borrower register. `make run` and `make test` do all the setup.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEV := .nlr-dev
STAMP := $(VENV)/.installed-stamp
PKI := $(DEV)/pki
BUF := $(VENV)/bin/buf
PROTO_RELEASES := proto/releases
# The API as last released, which the protos must stay compatible with: the newest snapshot
PROTO_BASELINE = $(lastword $(shell ls $(PROTO_RELEASES)/v*.binpb 2>/dev/null | sort -V))

.PHONY: venv proto proto-release run admin idporten-token test lint bench clients clean

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

## proto-release: snapshot the API as released (VERSION=x.y.z), the baseline `make lint` checks against
proto-release: $(STAMP)
	@echo "$(VERSION)" | grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+' || { echo "usage: make proto-release VERSION=x.y.z"; exit 1; }
	@test ! -e $(PROTO_RELEASES)/v$(VERSION).binpb || { echo "$(PROTO_RELEASES)/v$(VERSION).binpb exists: a release snapshot is never rewritten"; exit 1; }
	$(BUF) lint proto
	$(BUF) build proto -o $(PROTO_RELEASES)/v$(VERSION).binpb

## run: dev PKI, keyring, SQLite database and demo data under .nlr-dev/, then serve on :50051
run: $(STAMP)
	$(VENV)/bin/nlr-admin dev-setup --directory $(DEV)
	NLR_LISTEN_ADDRESS=127.0.0.1:50051 \
	NLR_DATABASE_URL=sqlite:///$(DEV)/nlr.db \
	NLR_TLS_CERT=$(PKI)/server.pem NLR_TLS_KEY=$(PKI)/server.key NLR_TLS_CLIENT_CA=$(PKI)/ca.pem \
	NLR_KEYRING=$(DEV)/keyring.json NLR_ALLOW_SYNTHETIC_IDS=true \
	NLR_IDPORTEN_ISSUER=https://idporten.dev.nlr.invalid NLR_IDPORTEN_AUDIENCE=nlr-dev-portal \
	NLR_IDPORTEN_JWKS=$(DEV)/idporten-dev-jwks.json \
	$(VENV)/bin/nlr-server

## idporten-token: an ID token of the dev ID-porten for demo borrower Kari (CARD=N000000002 for Ola)
idporten-token: $(STAMP)
	@test -f $(DEV)/idporten-dev.key || { echo "no dev setup in $(DEV): run make run first" >&2; exit 2; }
	@NLR_ALLOW_SYNTHETIC_IDS=true $(VENV)/bin/nlr-admin dev-idporten-token --directory $(DEV) --card $(or $(CARD),N000000001)

## admin: nlr-admin on make run's database and keyring, e.g. make admin ARGS="libraries list"
admin: $(STAMP)
	@test -f $(DEV)/nlr.db || { echo "no dev database at $(DEV)/nlr.db: run make run first" >&2; exit 2; }
	@NLR_DATABASE_URL=sqlite:///$(DEV)/nlr.db NLR_KEYRING=$(DEV)/keyring.json \
	NLR_ALLOW_SYNTHETIC_IDS=true \
	$(VENV)/bin/nlr-admin $(ARGS)

## test: the whole suite on SQLite, and on PostgreSQL too when NLR_TEST_POSTGRES_URL is set
test: $(STAMP)
	$(PY) -m pytest

## lint: ruff, mypy, buf lint, and buf breaking against the newest release snapshot in proto/releases
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy server tests proto bench examples \
		clients/nlr-auth-client/src/nlr/auth clients/nlr-client/src/nlr/registry
	$(BUF) lint proto
	@test -n "$(PROTO_BASELINE)" || { echo "no release snapshot in $(PROTO_RELEASES)/: make proto-release VERSION=x.y.z"; exit 1; }
	$(BUF) breaking proto --against $(PROTO_BASELINE)

## bench: the performance targets (DESIGN.md §9) as ratios against ceilings measured in the same run
bench: $(STAMP)
	$(PY) bench/run.py

## clients: the two client packages' wheels and sdists, into dist/
clients: $(STAMP)
	rm -f dist/nlr_auth_client-* dist/nlr_client-*
	$(PY) -m build --outdir dist clients/nlr-auth-client
	$(PY) -m build --outdir dist clients/nlr-client

clean:
	rm -rf $(VENV) build dist clients/*/build .pytest_cache .mypy_cache .ruff_cache
