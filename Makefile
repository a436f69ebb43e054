# Steward — `make run` starts the server on embedded defaults, `make test`
# runs every test. Both fetch what they need into .cache/ (git-ignored).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
BIN       := bin/steward
CACHE     := $(CURDIR)/.cache
CHDB_PKG  := @chdb/lib-linux-x64-gnu@26.7.3-stable.1
CHDB_LIB  := $(CACHE)/chdb/libchdb.so
OPA_VER   := v1.22.2
OPA       := $(CACHE)/bin/opa
STRIPE_MOCK_VER := v0.203.0
STRIPE_MOCK     := $(CACHE)/bin/stripe-mock
VERSITYGW_VER   := v1.8.0
VERSITYGW       := $(CACHE)/bin/versitygw
AXE_PKG   := axe-core@4.14.1
AXE_JS    := $(CACHE)/axe/axe.min.js
# TEST_TIMEOUT stops a test binary that hangs. It is no speed target: the
# wired server's package, with its Chromium flows and generated histories
# under -race, took 11 minutes on two cores shared with other work, and a
# test must pass on one (taskset -c 0 make test).
TEST_TIMEOUT ?= 25m

export STEWARD_CHDB_LIB ?= $(CHDB_LIB)
# The browser tests inject axe-core into each page to check accessibility.
export STEWARD_AXE_JS ?= $(AXE_JS)
# Tools fetched into .cache/bin (stripe-mock, versitygw, opa) are found by the tests.
export PATH := $(CACHE)/bin:$(PATH)

.PHONY: all run build test test-privacy fuzz lint bench bench-report bench-soak docs chdb axe deps check-deps opa tools clean

all: build

## build: compile bin/steward
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/steward

## run: fetch the engine if missing, build, migrate and serve on embedded defaults
run: chdb build
	$(BIN) migrate up
	$(BIN) serve

## chdb: fetch libchdb.so (the ClickHouse engine as a library) from npm into .cache/chdb
chdb: $(CHDB_LIB)

$(CHDB_LIB):
	@command -v npm >/dev/null || { echo "npm is needed to fetch $(CHDB_PKG): apt-get install npm" >&2; exit 1; }
	@mkdir -p $(CACHE)/chdb/tmp
	@echo "fetching $(CHDB_PKG) (about 180 MB)..."
	cd $(CACHE)/chdb/tmp && npm pack --silent $(CHDB_PKG) >/dev/null
	tar -xzf $(CACHE)/chdb/tmp/*.tgz -C $(CACHE)/chdb --strip-components=1 package/libchdb.so
	rm -rf $(CACHE)/chdb/tmp
	@test -s $@ && echo "libchdb.so ready at $@"

## axe: fetch axe-core (the accessibility checks the browser tests run in each page) from npm into .cache/axe
axe: $(AXE_JS)

$(AXE_JS):
	@command -v npm >/dev/null || { echo "npm is needed to fetch $(AXE_PKG): apt-get install npm" >&2; exit 1; }
	@mkdir -p $(CACHE)/axe/tmp
	cd $(CACHE)/axe/tmp && npm pack --silent $(AXE_PKG) >/dev/null
	tar -xzf $(CACHE)/axe/tmp/*.tgz -C $(CACHE)/axe --strip-components=1 package/axe.min.js
	rm -rf $(CACHE)/axe/tmp
	@test -s $@ && echo "axe.min.js ready at $@"

## deps: install the system packages the tests use (Debian, as root)
deps:
	scripts/install-deps.sh

## check-deps: fail early, with the fix, when a test dependency is missing
check-deps:
	scripts/install-deps.sh --check

## test: every test, on the real engines (SQLite, PostgreSQL, ClickHouse engine and server, OPA)
test: chdb check-deps tools axe
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## test-privacy: many generated histories (SEEDS=N, default 200, a new random seed each run) against
## the privacy core, on SQLite and PostgreSQL with the ClickHouse engine; a failure prints the shrunk history
SEEDS ?= 200
test-privacy: chdb check-deps tools
	STEWARD_PRIVACY_CHECKS=$(SEEDS) $(GO) test -count=1 -timeout 240m -run '^TestGeneratedHistories$$' -v ./cmd/steward

## lint: vet, gofmt and the Rego checks
lint: opa
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(OPA) fmt --list --fail policies
	$(OPA) check --strict policies

## tools: Go-installed test tools into .cache/bin (stripe-mock, and versitygw: an
## S3-compatible server the shared file store is tested against)
tools: $(STRIPE_MOCK) $(VERSITYGW)

$(STRIPE_MOCK):
	GOBIN=$(CACHE)/bin $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VER)

$(VERSITYGW):
	GOBIN=$(CACHE)/bin $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VER)

opa: $(OPA)

$(OPA):
	GOBIN=$(CACHE)/bin $(GO) install github.com/open-policy-agent/opa@$(OPA_VER)

## bench: run every benchmark BENCH_COUNT times (default 5) into bench.txt, then
## print the median of each figure beside its target and ceiling (bench-report);
## fails when a target is missed or a figure is missing
# The report reads whatever the runs wrote, so it is printed even when a
# benchmark failed, and make fails then too. -v keeps each result on one
# line: without it go test prints a benchmark's name before running it, so
# a benchmark that prints as it runs (the ingest one prints its summary)
# splits its name from its figures. Here (2 cores kept busy by other work)
# it takes about half an hour: 18 minutes for the attribution benchmark (ten
# million events generated once in 3, then each of its 23 cases five times
# over nine reports), 4 for the heavy subject's export and erasure, 2.5 for
# ingest, 2 for the rest, and the build of every package's test binary.
BENCH_COUNT ?= 5
bench: chdb check-deps tools
	status=0; \
	$(GO) test -v -run '^$$' -bench . -benchmem -count=$(BENCH_COUNT) -timeout 60m $$($(GO) list ./... | grep -v /analytics/ingest) | tee bench.txt || status=1; \
	$(GO) test -v -run '^$$' -bench BenchmarkIngestHTTP -benchtime 1000x -count=$(BENCH_COUNT) ./analytics/ingest | tee -a bench.txt || status=1; \
	$(GO) run ./scripts/benchreport bench.txt || status=1; \
	exit $$status

## bench-report: print the report of BENCH_TXT (default bench.txt) again, without running anything
BENCH_TXT ?= bench.txt
bench-report:
	$(GO) run ./scripts/benchreport $(BENCH_TXT)

## fuzz: run each fuzz target for FUZZTIME (default 60s), one after another, with
## FUZZPARALLEL workers (default 1); a failing input is saved under its package's
## testdata/fuzz/, where `make test` replays it with every other corpus entry
FUZZTIME     ?= 60s
FUZZPARALLEL ?= 1
FUZZ_TARGETS := \
	./analytics/ingest:FuzzPostEvents \
	./analytics/ingest:FuzzDecodePlain \
	./consent:FuzzPutConsent \
	./modules/assets:FuzzUploadCheck \
	./modules/billing:FuzzStripeWebhook \
	./modules/billing:FuzzCreemWebhook \
	./modules/accounts:FuzzGoogleTokenString \
	./modules/accounts:FuzzGoogleClaims \
	./internal/config:FuzzLoad
fuzz: chdb
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) $$pkg; \
	done

## bench-soak: a sustained minute of HTTP ingest (about 3.8M events), to see memory stay flat
bench-soak: chdb check-deps
	$(GO) test -run '^$$' -bench BenchmarkIngestHTTP -benchtime 38000x -count=1 -timeout 20m ./analytics/ingest

## docs: regenerate docs/data-map.md from the live data map
docs: chdb
	$(GO) test -count=1 -run '^TestDataMapDocIsCurrent$$' ./cmd/steward -args -update

clean:
	rm -rf bin var bench.txt
