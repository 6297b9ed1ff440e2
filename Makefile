# pgrelay: everything a developer or CI runs. `make test` and `make demo` set up what is missing.
SHELL := /bin/bash
BIN := node_modules/.bin
DENO := $(BIN)/deno
BUN := $(BIN)/bun
PREFIX ?= /usr/local
DESTDIR ?=
ARGS ?=

.PHONY: setup run demo test test-deno test-bun check lint bench bench-idle bench-failover bench-pooled build build-bun install clean

## setup: install Debian's postgresql (client and server, as the tests need) and the npm packages
setup: node_modules/.installed
	@bash scripts/ensure_test_deps.sh

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
	$(DENO) check mod.ts src/ tests/ scripts/ soak/
	@bash scripts/check_core_purity.sh

lint: node_modules/.installed
	$(DENO) lint

## fuzz: mutation-based fuzzing of the parsers (FUZZ_RUNS per target, default 1000000; FUZZ_SEED; FUZZ_TARGETS;
## FUZZ_RUNTIME=deno); failing inputs go to tests/fuzz/crashes/, which `make test` replays (not part of `make test`)
FUZZ_RUNTIME ?= bun
.PHONY: fuzz
fuzz: node_modules/.installed
	@if [ "$(FUZZ_RUNTIME)" = deno ]; then $(DENO) run -A scripts/fuzz.ts; else $(BUN) scripts/fuzz.ts; fi

## bench: direct vs pgrelay (Deno, Bun) vs bare relays vs haproxy, and TLS rows vs PgBouncer, in one run (not a test);
## then idle sessions, then pooled pgrelay vs PgBouncer 1.25 (bench/pooled.ts)
bench: setup
	@command -v haproxy >/dev/null || apt-get install -y haproxy
	@test -x /usr/sbin/pgbouncer || apt-get install -y pgbouncer
	$(BUN) bench/run.ts
	$(BUN) bench/idle_sessions.ts
	$(BUN) bench/pooled.ts

## bench-idle: RSS per idle session (1,000 logged-in sessions) through pgrelay on Deno and Bun (bench/idle_sessions.ts)
bench-idle: setup
	$(BUN) bench/idle_sessions.ts

## bench-pooled: pooled pgrelay (Bun, Deno) vs PgBouncer 1.25 in the same pool mode: pgbench -C -S, -c 50 on a
## transaction pool of 8 (-M prepared and simple), idle clients on a pool of 5 (bench/pooled.ts)
bench-pooled: setup
	$(BUN) bench/pooled.ts

## bench-failover: primary + streaming standby, 20 busy writers through pgrelay (Deno, then Bun), stop -m immediate
## and promote; time to the first write on the promoted server and the errors each client saw (bench/failover.ts)
bench-failover: setup
	$(BUN) bench/failover.ts

## soak: real and hostile clients through pgrelay on Deno and Bun at once for SOAK_MINUTES (default 30),
## sampling pgrelay's RSS and fds every second; SOAK_RUNTIME=bun|deno|both; not a test (soak/run.ts)
.PHONY: soak
soak: setup
	$(BUN) soak/run.ts

## build-bun: dist/pgrelay-bun, one executable with the Bun runtime inside; offline (scripts/build_bun.sh)
build-bun: node_modules/.installed
	@bash scripts/build_bun.sh dist/pgrelay-bun

## build: dist/pgrelay-deno via deno compile; needs DENORT_BIN=/path/to/denort (Deno 2.9.6) offline, or
## DENO_DOWNLOAD=1 with internet access (scripts/build_deno.sh says what is missing and stops)
build: node_modules/.installed
	@bash scripts/build_deno.sh dist/pgrelay-deno

# install: the binary, the systemd unit, the system user and the example config (kept if present).
# The binary is dist/pgrelay-bun, or dist/pgrelay-deno when only that one was built; choose with
# PGRELAY_BINARY=dist/pgrelay-deno. Units go where systemd looks for them: PREFIX=/usr/local (default)
# -> /usr/local/lib/systemd/system ("installed by the administrator"); PREFIX=/usr (a Debian package
# built with DESTDIR) -> /lib/systemd/system, Debian 12's package location. Without DESTDIR, as root,
# systemd-sysusers creates the pgrelay user and group the unit runs as.
PGRELAY_BINARY ?= $(firstword $(wildcard dist/pgrelay-bun dist/pgrelay-deno))
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib,$(PREFIX)/lib)/systemd/system
SYSUSERSDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib,$(PREFIX)/lib)/sysusers.d
SYSCONFDIR ?= /etc

## install: dist/pgrelay-bun (or -deno) as $(PREFIX)/bin/pgrelay, the systemd unit, /etc/pgrelay/pgrelay.yaml
install:
	@if [ -z "$(PGRELAY_BINARY)" ] || [ ! -x "$(PGRELAY_BINARY)" ]; then \
	  echo "pgrelay: no binary to install$(if $(PGRELAY_BINARY), ($(PGRELAY_BINARY) is missing)): run 'make build-bun' (or 'make build') first" >&2; exit 1; fi
	install -D -m 0755 $(PGRELAY_BINARY) $(DESTDIR)$(PREFIX)/bin/pgrelay
	sed 's|^ExecStart=/usr/local/bin/pgrelay |ExecStart=$(PREFIX)/bin/pgrelay |' deploy/pgrelay.service \
	  | install -D -m 0644 /dev/stdin $(DESTDIR)$(SYSTEMDUNITDIR)/pgrelay.service
	install -D -m 0644 deploy/pgrelay.sysusers $(DESTDIR)$(SYSUSERSDIR)/pgrelay.conf
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/pgrelay/pgrelay.yaml ]; then \
	  echo "pgrelay: keeping $(DESTDIR)$(SYSCONFDIR)/pgrelay/pgrelay.yaml (deploy/pgrelay.yaml is the current example)"; \
	else \
	  echo "install -D -m 0644 deploy/pgrelay.yaml $(DESTDIR)$(SYSCONFDIR)/pgrelay/pgrelay.yaml"; \
	  install -D -m 0644 deploy/pgrelay.yaml $(DESTDIR)$(SYSCONFDIR)/pgrelay/pgrelay.yaml; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers $(SYSUSERSDIR)/pgrelay.conf; fi
	@echo "pgrelay: installed; now: systemctl daemon-reload && systemctl enable --now pgrelay"

## release: VERSION=x.y.z: in $(RELEASE_DIR) (dist/), pgrelay-x.y.z-linux-x64 and -linux-arm64 (bun build --compile,
## arm64 cross-compiled), a tarball and a Debian package of each, and SHA256SUMS (scripts/release.sh). Offline,
## except the first arm64 build, which fetches Bun's arm64 runtime from the npm registry into .cache/ (checked
## against package-lock.json). RELEASE_ARCHES=x64 builds one architecture; DEB_MAINTAINER="Name <mail>".
RELEASE_DIR ?= dist
RELEASE_ARCHES ?= x64 arm64
BUN_ARM64_RUNTIME = .cache/bun-$(shell $(BUN) --version 2>/dev/null)-linux-aarch64/bun
.PHONY: release test-release
release: node_modules/.installed $(if $(filter arm64,$(RELEASE_ARCHES)),$(BUN_ARM64_RUNTIME))
	@if [ -z "$(VERSION)" ]; then echo "pgrelay: usage: make release VERSION=x.y.z" >&2; exit 2; fi
	RELEASE_ARCHES="$(RELEASE_ARCHES)" PGRELAY_BUN_ARM64_RUNTIME="$(BUN_ARM64_RUNTIME)" bash scripts/release.sh "$(VERSION)" "$(RELEASE_DIR)"

.cache/bun-%-linux-aarch64/bun:
	bash scripts/fetch_bun_runtime.sh $@

## test-release: as root on Debian: builds the x64 .deb (make release), installs it with dpkg -i, relays a query
## through the installed /usr/bin/pgrelay, then dpkg -r and dpkg -P (tests/deploy/release.test.ts; .ci/run runs it
## after make test). It refuses to run where a pgrelay it did not install is present, and leaves nothing installed.
test-release: node_modules/.installed
	PGRELAY_TEST_RELEASE=1 $(BUN) test --timeout 300000 tests/deploy/release.test.ts

## docs: regenerate deploy/man/pgrelay.1, deploy/man/pgrelay.yaml.5 and README.md's generated blocks from
## src/cli/options.ts and src/host/config_keys.ts (tests/deploy/docs.test.ts fails when they are stale)
.PHONY: docs
docs: node_modules/.installed
	$(BUN) scripts/gen_man.ts --write

clean:
	rm -rf dist .cache
