# Holdfast — the two commands that matter on a fresh machine:
#   make demo   start everything, run a short real workload through the HTTP APIs, then a
#               short measured load run with a fault and the correctness audit
#   make test   start the local stack and run the whole test suite
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
# Two cores are shared with Kafka, PostgreSQL, Redis and the registry: keep test threads sane.
TEST_THREADS ?= 2
STACK := infra/local/stack
SERVICES := infra/local/services
# Command-service instances 'make up' and 'make services' run (one consumer group): instance 1
# on 8080, instance 2 on 8090, instance k > 2 on 8088+k.
COMMAND_INSTANCES ?= 1

.PHONY: help up down demo test bench bench-commands stack stack-down build services services-down status logs toolchain fmt lint deny deny-advisories validate-infra

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

toolchain: ## check that a Rust toolchain is available
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

stack: ## install (first time) and start Kafka, the schema registry, PostgreSQL and Redis
	@$(STACK) up

stack-down: ## stop what 'make stack' started
	@$(STACK) down

build: toolchain ## release build of the services
	$(CARGO) build --release --locked --bins

services: ## start the three services in the background, COMMAND_INSTANCES (1) command instances (needs 'make build')
	@$(SERVICES) up --command-instances $(COMMAND_INSTANCES)

services-down: ## stop the services (every command instance that runs)
	@$(SERVICES) down

up: stack build services ## stack + release build + services (COMMAND_INSTANCES=N for more command instances); returns when every /readyz is green
	@echo
	@echo "Holdfast is up:"
	@echo "  command API      http://127.0.0.1:8080"
	@n=$(COMMAND_INSTANCES); if [ "$$n" -gt 2 ]; then echo "                   instances 2-$$n on ports 8090-$$((8088 + n))"; \
	 elif [ "$$n" -eq 2 ]; then echo "                   instance 2 on http://127.0.0.1:8090"; fi
	@echo "  query API        http://127.0.0.1:8081"
	@echo "  projections      http://127.0.0.1:8082/metrics"
	@echo "  schema registry  http://127.0.0.1:8085/apis/ccompat/v7"
	@echo "  kafka            127.0.0.1:9092    postgres 127.0.0.1:5432    redis 127.0.0.1:6379"
	@echo "Logs: .stack/logs/ ('make logs'); stop everything with 'make down'."

down: ## stop the services and the stack (only what we started)
	@$(SERVICES) down
	@$(STACK) down

demo: up ## the main job: everything up, a short real workload, then a short audited load run
	@infra/local/demo
	@infra/local/bench --short

bench: toolchain stack build ## the benchmark suite (reference, two-instances, saturation, hot, idle, faults, handover), audited, into results/
	@infra/local/bench

test: toolchain stack ## start the stack and run every test (schemathesis bounded), a bounded fuzz run, then lint (rustfmt, clippy -D warnings), cargo-deny and validate the infrastructure
	@infra/fuzz/install-schemathesis
	$(CARGO) test --workspace --locked --lib --bins --tests --no-fail-fast -- --test-threads=$(TEST_THREADS)
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory deny
	@$(MAKE) --no-print-directory validate-infra

bench-commands: toolchain stack ## the command path's benchmarks (reference, 10x, saturation, hot resource, restore) into results/
	$(CARGO) build --release --locked -p holdfast-command-service -p holdfast-load-tests
	@infra/local/bench-commands

validate-infra: ## validate Docker, Kubernetes, Istio, monitoring, Terraform and workflows offline (pinned tools)
	@nice -n 19 infra/validate/install-tools
	@nice -n 19 infra/validate/run

status: ## what is running; per command instance the partitions it owns and stands by for
	@$(STACK) status
	@$(SERVICES) status

logs: ## where the logs are, and their last lines
	@$(STACK) logs

fmt: ## format the code
	$(CARGO) fmt --all

DENY_VERSION = 0.20.2
DENY_ROOT ?= $(HOME)/.cache/holdfast/tools/cargo
deny: ## cargo-deny offline checks: licenses, bans, sources (advisories need a network: make deny-advisories)
	@$(CARGO) install --quiet --locked cargo-deny@$(DENY_VERSION) --root $(DENY_ROOT)
	@# The checks read every package's manifest, other platforms' too (windows-sys for a Linux
	@# build): fetch them into cargo's cache first (the only network use; a no-op once cached).
	@$(CARGO) fetch --locked --quiet
	$(DENY_ROOT)/bin/cargo-deny --offline --log-level error check licenses bans sources

deny-advisories: ## the RustSec advisories check (needs the network to fetch the database)
	@$(CARGO) install --quiet --locked cargo-deny@$(DENY_VERSION) --root $(DENY_ROOT)
	$(DENY_ROOT)/bin/cargo-deny check advisories

.PHONY: fuzz fuzz-smoke
# Coverage-guided fuzz targets in fuzz/ (AFL++ through cargo-afl, stable Rust): infra/fuzz/afl
# installs the pinned tools, builds the targets and prints executions, crashes and hangs.
FUZZ_SMOKE_SECONDS ?= 25
FUZZ_EXECS ?= 10000000
fuzz-smoke: ## fuzz each target (event decoder, request bodies, value parsers) for FUZZ_SMOKE_SECONDS (25) s
	@infra/fuzz/afl --seconds $(FUZZ_SMOKE_SECONDS)

fuzz: fuzz-api ## schemathesis at length (fuzz-api), then each fuzz target to FUZZ_EXECS (10 million) executions; about an hour on two shared cores
	@infra/fuzz/afl --execs $(FUZZ_EXECS)

.PHONY: fuzz-api
FUZZ_EXAMPLES ?= 200
fuzz-api: toolchain stack ## schemathesis against both services' OpenAPI documents, longer run (FUZZ_EXAMPLES per operation, default 200)
	@infra/fuzz/install-schemathesis
	HOLDFAST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(CARGO) test --locked -p holdfast-command-service -p holdfast-query-service --test api schemathesis -- --test-threads=1 --nocapture

lint: ## formatting and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
