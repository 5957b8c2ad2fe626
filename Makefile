# reconf — make test runs every test against real servers (installed on demand); make bench
# prints the benchmark figures (LATENCY_FLAGS=-quick, or RECONF_BENCH_QUICK=1, keeps the
# end-to-end harness under about five minutes; FLEET_FLAGS="-n 50,100" a smaller fleet benchmark).
GO ?= go
PKGS := ./...
STATICCHECK_VERSION := v0.8.2

.PHONY: all build test unit lint fuzz deps consul bench deb clean run

all: build

build:
	$(GO) build -ldflags "-X main.version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev) -X main.commit=$$(git rev-parse HEAD 2>/dev/null)" -o bin/reconf ./cmd/reconf

run: build
	./examples/run-default.sh

deps:
	./scripts/install-deps.sh

consul:
	./scripts/build-consul.sh >/dev/null

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

unit:
	$(GO) test -count=1 -short $(PKGS)

# fuzz runs each fuzz target for FUZZTIME (no panic, no hang, errors name the file).
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./resource
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./backends/file
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./template

test: deps lint fuzz
	# One package at a time (-p 1): the end-to-end packages (clusters of nine servers, a Docker
	# engine, proxies under load) time real events and starved each other on two cores.
	# scripts/test.sh runs a package that failed once more, loudly (see there).
	RECONF_CONSUL=$$(./scripts/build-consul.sh) RECONF_VAULT=$$(./scripts/build-vault.sh) RECONF_CONSUL_TEMPLATE=$$(./scripts/build-consul-template.sh) GO=$(GO) ./scripts/test.sh $(PKGS)

bench: deps
	RECONF_CONSUL=$$(./scripts/build-consul.sh) RECONF_VAULT=$$(./scripts/build-vault.sh) RECONF_CONSUL_TEMPLATE=$$(./scripts/build-consul-template.sh) $(GO) test -run '^$$' -bench . -benchmem -timeout 30m $(PKGS)
	RECONF_CONSUL=$$(./scripts/build-consul.sh) $(GO) run ./internal/latency $(LATENCY_FLAGS)
	RECONF_CONSUL=$$(./scripts/build-consul.sh) $(GO) run ./internal/fleet $(FLEET_FLAGS)

deb:
	./packaging/build-deb.sh

clean:
	rm -rf bin dist
