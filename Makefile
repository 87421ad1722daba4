# zsync — see README.md. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/zsync
PKGS      ?= ./...
TEST_FLAGS ?= -race -count=1 -timeout 10m
# golangci-lint, pinned; installed from the module proxy into bin/ on first use.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= bin/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

.PHONY: help build run test test-short lint vet rules fmt bench fuzz clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   ?= -X github.com/zsync/zsync/internal/buildinfo.version=$(VERSION)

build: ## build bin/zsync (VERSION stamped into zsync --version and zsync_build_info)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/zsync

run: ## run everything in one process on embedded defaults (zsync dev; ARGS="--port-base 9080" to move every port)
	$(GO) run ./cmd/zsync dev $(ARGS)

test: vet rules ## vet, the alert rules, then every test with the race detector (needs redis-server on PATH or REDIS_ADDR)
	$(GO) test $(TEST_FLAGS) $(PKGS)

PROMTOOL ?= promtool

rules: ## promtool check + unit tests of deploy/prometheus (Debian package prometheus has promtool)
	@if command -v $(PROMTOOL) >/dev/null 2>&1; then \
	  $(PROMTOOL) check rules deploy/prometheus/rules.yml deploy/prometheus/alerts.yml && \
	  (cd deploy/prometheus && $(PROMTOOL) test rules alerts_test.yml); \
	else \
	  echo "************************************************************************"; \
	  echo "*** SKIPPED: promtool not found, alert rules NOT checked or tested   ***"; \
	  echo "*** install it (apt-get install prometheus) or set PROMTOOL=…        ***"; \
	  echo "************************************************************************"; \
	fi

test-short: ## quick tests without the race detector
	$(GO) test -count=1 -short $(PKGS)

vet: ## go vet + gofmt check + go.mod/go.sum tidy check
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

lint: vet $(GOLANGCI_LINT) ## vet + golangci-lint (.golangci.yml: staticcheck, depguard, …)
	$(GOLANGCI_LINT) run $(PKGS)

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/$(dir $(GOLANGCI_LINT)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

BENCH_BULK_IDS ?= 100000

bench: ## benchmarks, one table README "Performance" explains (BENCH_BULK_IDS=1000000: the million-id bulk run)
	ZSYNC_BENCH_BULK_IDS=$(BENCH_BULK_IDS) $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m $(PKGS)

fuzz: ## run each fuzz target for a bounded time
	@for pkg in $$($(GO) list $(PKGS)); do \
	  list=$$($(GO) test -list '^Fuzz' $$pkg) || exit 1; \
	  for f in $$(echo "$$list" | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$pkg || exit 1; \
	  done; \
	done

clean: ## remove build output
	rm -rf bin
