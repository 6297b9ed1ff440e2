# pgrelay: everything a developer or CI runs. `make test` and `make demo` set up what is missing.
SHELL := /bin/bash
BIN := node_modules/.bin
DENO := $(BIN)/deno
BUN := $(BIN)/bun
PREFIX ?= /usr/local
DESTDIR ?=
ARGS ?=

.PHONY: setup run demo test test-deno test-bun check lint bench build build-bun clean

## setup: install Debian's postgresql (client and server, as the tests need) and the npm packages
setup: node_modules/.installed
	@bash scripts/ensure_postgres.sh

# `npm install`, not `npm ci`: the registry our machines reach does not serve deno's macOS/Windows/arm
# packages, so npm leaves them out of the lockfile and `npm ci` then rejects it. `npm install` follows
# the lockfile for everything it lists (deno, bun, pg, postgres, yaml at pinned versions).
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund
	@touch $@

## run: pgrelay in front of a real server (ARGS="--listen 0.0.0.0:6432 --upstream db:5432" or --config FILE)
run: node_modules/.installed
	$(DENO) run -A mod.ts $(ARGS)

## demo: a throwaway PostgreSQL with pgrelay in front of it; prints the psql command; Ctrl-C stops both
demo: setup
	$(BUN) scripts/demo.ts

## test: the whole suite on Deno, then on Bun, against real PostgreSQL servers the tests start
test: setup check test-deno test-bun

test-deno: node_modules/.installed
	$(DENO) test -A tests/

test-bun: node_modules/.installed
	$(BUN) test --timeout 120000 tests/

## check: type-check everything (the Bun adapter included) and keep Deno/Bun/node APIs out of the core
check: node_modules/.installed
	$(DENO) check mod.ts src/ tests/ scripts/
	@bash scripts/check_core_purity.sh

lint: node_modules/.installed
	$(DENO) lint

## bench: direct vs pgrelay on Deno vs pgrelay on Bun vs haproxy, in one run (not part of the tests)
bench: setup
	@command -v haproxy >/dev/null || apt-get install -y haproxy
	$(BUN) bench/run.ts

clean:
	rm -rf dist
