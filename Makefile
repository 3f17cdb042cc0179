# appwrite-sync — `make help` lists the targets.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go

.PHONY: help build run validate status test lint fmt bench bench-ingest bench-express-setup fuzz demo clean
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-12s %s\n",$$1,$$2}'

BIN ?= bin/appwrite-sync
# build is static and without local paths, as the image is. STATIC=0 builds with go's defaults
# instead, the build `go vet` and `go build` share: the tests build so, since CI runs
# `go vet ./...` first, which leaves only the link (docs/development.md).
STATIC ?= 1
ifeq ($(STATIC),1)
BUILD_ENV := CGO_ENABLED=0
BUILD_FLAGS := -trimpath
endif
CONFIG ?= config.yaml
# The development defaults `make run` and `make validate` export for variables that are unset.
DEV_ENV = export APPWRITE_SYNC_ADMIN_TOKEN="$${APPWRITE_SYNC_ADMIN_TOKEN:-local-dev-admin-token-change-me}" && \
	export APPWRITE_WEBHOOK_SECRET="$${APPWRITE_WEBHOOK_SECRET:-local-dev-webhook-secret}"

build: ## build ./bin/appwrite-sync (static; STATIC=0: go's default build)
	$(BUILD_ENV) $(GO) build $(BUILD_FLAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/appwrite-sync

run: ## run the service on a local default: Postgres (and Meilisearch, when found) in ./.data, config.yaml
	@scripts/local-meilisearch.sh start
	@url=$$(scripts/local-postgres.sh start) && \
	export DATABASE_URL="$${DATABASE_URL:-$$url}" && \
	$(DEV_ENV) && \
	echo "state store: $$DATABASE_URL (stop it with: scripts/local-postgres.sh stop)" && \
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/appwrite-sync serve --config config.yaml

validate: build ## check config.yaml (or CONFIG=file) with the development defaults of `make run`, print the plan; needs no database
	@export DATABASE_URL="$${DATABASE_URL:-$$(scripts/local-postgres.sh url)}" && $(DEV_ENV) && \
	$(BIN) validate --config $(CONFIG)

status: build ## status of the service `make run` runs (sinks, pending, lag, dead letters, quarantine, backfills)
	@export DATABASE_URL="$${DATABASE_URL:-$$(scripts/local-postgres.sh url)}" && $(DEV_ENV) && \
	$(BIN) status --config $(CONFIG)

test: ## run every test with the race detector, printing each finished test (starts a throwaway Postgres when TEST_DATABASE_URL is unset)
	@# testprogress prints tests as they finish and ends with go test's per-package lines.
	@set -o pipefail; $(GO) test -race -count=1 -timeout 30m -json ./... | $(GO) run ./internal/testprogress

lint: ## gofmt + go vet + staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	GOFLAGS= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fmt: ## gofmt -w
	gofmt -w $$(git ls-files '*.go')

# Benchmark clusters run with PostgreSQL's production durability (fsync, full_page_writes and
# synchronous_commit on; internal/pgtest Options); BENCH_FSYNC=off runs one without, and
# BENCH_FLUSH_DELAY=1.5ms one whose every commit flush takes 1.5 ms longer (a slow disk).
# Every table in the report names the settings it ran with.
bench-express-setup: ## install the ingest benchmark's Express baseline (scripts/bench/express, pinned by its package-lock.json; needs node and npm)
	cd scripts/bench/express && npm ci --no-audit --no-fund

bench: ## run every benchmark (Go micro-benchmarks + the ingest/freshness load generator) into BENCHMARKS.md
	@{ echo "# Benchmarks"; echo; echo "Machine: $$(nproc) cores, $$(free -g | awk '/Mem:/{print $$2}') GiB, $$(go version | cut -d' ' -f3-), $$(date -u +%Y-%m-%d). Load average at the start: $$(cut -d' ' -f1-3 /proc/loadavg)."; \
	   echo "Command: \`make bench\`"; echo; } > BENCHMARKS.md
	rm -f /tmp/appwrite-sync-bench-report.md
	-@command -v npm >/dev/null && $(MAKE) --no-print-directory bench-express-setup || echo "no npm: the ingest benchmark skips its Express baseline"
	@# Ingest first, on a quiet machine: after the 1M-row benchmarks Postgres and the disk keep
	@# flushing and vacuuming for a while, which showed up as ingest tail latency. Durable (the ingest
	@# benchmark and its side-by-side variants: row history, audit log), then
	@# the labelled comparisons: no flush at all, and a slow disk.
	APPWRITE_SYNC_BENCH=1 BENCH_REPORT=/tmp/appwrite-sync-bench-report.md $(GO) test -count=1 -run "TestBenchIngest" -timeout 60m ./cmd/appwrite-sync/
	APPWRITE_SYNC_BENCH=1 BENCH_FSYNC=off BENCH_REPORT=/tmp/appwrite-sync-bench-report.md $(GO) test -count=1 -run "TestBenchIngest$$" -timeout 60m ./cmd/appwrite-sync/
	APPWRITE_SYNC_BENCH=1 BENCH_FLUSH_DELAY=1.5ms BENCH_REPORT=/tmp/appwrite-sync-bench-report.md $(GO) test -count=1 -run "TestBenchIngest$$" -timeout 60m ./cmd/appwrite-sync/
	sync; sleep 20
	APPWRITE_SYNC_BENCH=1 BENCH_REPORT=/tmp/appwrite-sync-bench-report.md $(GO) test -count=1 -run "TestBench(Backfill|Backlog|Meili|Relationships)" -timeout 60m ./cmd/appwrite-sync/
	@# The backfill again against an Appwrite double that answers like a remote server (fixed
	@# latency per request): the template's 100-row pages are then bound by round trips. The
	@# pause lets the previous run's throwaway cluster finish flushing and deleting its files.
	for lat in 100ms 250ms; do sync; sleep 20; APPWRITE_SYNC_BENCH=1 BENCH_ROWS=100000 BENCH_APPWRITE_LATENCY=$$lat BENCH_REPORT=/tmp/appwrite-sync-bench-report.md \
	  $(GO) test -count=1 -run "TestBenchBackfill$$" -timeout 60m ./cmd/appwrite-sync/ || exit 1; done
	cat /tmp/appwrite-sync-bench-report.md >> BENCHMARKS.md
	{ echo '```'; $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./connector/ ./connector/webhook/ ./mapping/ | grep -E '^(Benchmark|ok|goos|cpu)'; \
	  echo "connector/ledger, state store durable (fsync, full_page_writes, synchronous_commit on):"; \
	  APPWRITE_SYNC_BENCH=1 $(GO) test -run '^$$' -bench 'ReadSettle|RecordBatch' -benchtime 10x ./connector/ledger/ | grep -E '^(Benchmark|ok)'; echo '```'; } >> BENCHMARKS.md
	cat BENCHMARKS.md

BENCH_INGEST_REPORT ?= /tmp/appwrite-sync-bench-ingest.md
bench-ingest: ## the ingest benchmark alone, twice in each durability (fsync on, off, slow disk), alternating, into $(BENCH_INGEST_REPORT)
	-@command -v npm >/dev/null && $(MAKE) --no-print-directory bench-express-setup || echo "no npm: the ingest benchmark skips its Express baseline"
	@{ echo "Ingest, $$(date -u +%FT%TZ), code $$(git describe --always --dirty), load average at the start $$(cut -d' ' -f1-3 /proc/loadavg)."; echo; } > $(BENCH_INGEST_REPORT)
	for round in 1 2; do for env in "" "BENCH_FSYNC=off" "BENCH_FLUSH_DELAY=1.5ms"; do \
	  env $$env APPWRITE_SYNC_BENCH=1 BENCH_REPORT=$(BENCH_INGEST_REPORT) $(GO) test -count=1 -run 'TestBenchIngest$$' -timeout 30m ./cmd/appwrite-sync/ || exit 1; \
	done; done
	cat $(BENCH_INGEST_REPORT)

demo: build ## local demo without Docker: throwaway Postgres, Meilisearch and Appwrite stand-ins, signed webhooks, a backfill
	$(GO) run ./cmd/appwrite-sync-demo -bin bin/appwrite-sync

fuzz: ## run each fuzz target for 30s
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./connector/webhook/
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime 30s ./connector/webhook/
	$(GO) test -run '^$$' -fuzz FuzzProject -fuzztime 30s ./mapping/
	@# The hand-written JSON code, held to encoding/json.
	$(GO) test -run '^$$' -fuzz FuzzContentHash -fuzztime 30s ./connector/
	$(GO) test -run '^$$' -fuzz FuzzObject -fuzztime 30s ./internal/canonjson/
	$(GO) test -run '^$$' -fuzz FuzzEachMember -fuzztime 30s ./internal/rawjson/
	$(GO) test -run '^$$' -fuzz FuzzDecodeRow -fuzztime 30s ./mapping/
	$(GO) test -run '^$$' -fuzz FuzzAppendJSON -fuzztime 30s ./mapping/
	$(GO) test -run '^$$' -fuzz FuzzAppendDocument -fuzztime 30s ./mapping/

clean: ## remove build output and the local Postgres data
	-scripts/local-postgres.sh stop 2>/dev/null
	-scripts/local-meilisearch.sh stop
	rm -rf bin .data
