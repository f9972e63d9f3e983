# Kilometers: common tasks. `make demo` and `make test` are the two commands
# the README promises work on a fresh Debian machine with Go.

SHELL := /bin/bash
GO ?= go
BIN := bin/kilometers
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The version variables live in cli/internal/app, shared by ./cli and ./cli/kilometers.
STAMP := github.com/kilometers-ai/kilometers/cli/internal/app
LDFLAGS := -s -w -X $(STAMP).version=$(VERSION) -X $(STAMP).commit=$(shell git rev-parse --short HEAD 2>/dev/null || echo none) -X $(STAMP).date=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
WITH_PG := infra/local/with-postgres.sh
FUNCTIONS := ingest activity stats admin migrate ui maintenance alerts

.PHONY: all build demo deps test test-go test-deploy vet lint bench fuzz lambdas clean

all: build

## build: the kilometers binary in bin/
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cli

## demo: build, then watch a real MCP session through the monitor
demo: build
	$(GO) build -trimpath -o bin/kilometers-demo ./cli/demo
	./bin/kilometers-demo --kilometers $(BIN)

## deps: what a fresh machine lacks (Go modules, npm MCP servers for tests, release tools)
deps:
	$(GO) mod download
	cd infra/testservers && npm ci --no-audit --no-fund
	@command -v goreleaser >/dev/null || $(GO) install github.com/goreleaser/goreleaser/v2@v2.16.0

## test: every test (Go unit + integration against real PostgreSQL and npm servers, deploy checks)
test: vet test-go test-deploy

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(WITH_PG) $(GO) test -count=1 -timeout 20m ./...

test-deploy:
	@if [ -x infra/checks/run.sh ]; then infra/checks/run.sh; else echo "test-deploy: infra/checks/run.sh not present"; exit 1; fi

## bench: side-by-side benchmarks (monitor vs bare copy; ingest vs COPY; stats at 1M/10M);
## BENCH_QUICK=1 for a smoke run, BENCH_ONLY=monitor|postgres|dashboard|kernels|store for one part (docs/performance.md)
bench: build
	$(WITH_PG) infra/local/bench.sh

## fuzz: run each fuzz target for a while (the seeds also run in `make test`)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run=NONE -fuzz="^$$f$$" -fuzztime=30s $$pkg || exit 1; \
	  done; done

## lambdas: bootstrap binaries as Lambda runs them (provided.al2023, arm64)
lambdas:
	@for fn in $(FUNCTIONS); do \
	  mkdir -p dist/lambda/$$fn && \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags '-s -w' -o dist/lambda/$$fn/bootstrap ./functions/$$fn || exit 1; \
	done

clean:
	rm -rf bin dist
