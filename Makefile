# Borealis build. `make` builds, `make install` installs the extension, `make test` runs every
# test on a fresh machine (it installs dependencies first), `make up` starts a dev cluster.
# Each area adds its own targets in mk/<area>.mk and appends its test targets to TEST_TARGETS.

SHELL       := /bin/bash
PG_CONFIG   ?= /usr/lib/postgresql/15/bin/pg_config
export PATH := /usr/local/go/bin:/usr/lib/postgresql/15/bin:$(PATH)
GO          ?= go
BUILD       := $(CURDIR)/build
PKGLIBDIR    = $(shell $(PG_CONFIG) --pkglibdir)

TEST_TARGETS :=

SQL_SCRIPT  := $(BUILD)/borealis--0.1.0.sql
SQL_PARTS   := $(sort $(wildcard sql/parts/*.sql))
GO_SOURCES  := $(shell find . -name '*.go' -not -path './.borealis/*' -not -name '*_test.go') go.mod go.sum
PGXS_ARGS   := -C pgext PG_CONFIG=$(PG_CONFIG) SQL_SCRIPT=$(SQL_SCRIPT) with_llvm=no
SHLIBS      := $(BUILD)/borealis_engine.so
# Async preemption signals with SIGURG, PostgreSQL's latch signal: off, as the runtime's built-in
# GODEBUG default, because the environment cannot reach a runtime loaded into PostgreSQL.
ENGINE_LDFLAGS := -X=runtime.godebugDefault=asyncpreemptoff=1

.PHONY: all deps build install test up clean test-go pgext cli
all: build

-include mk/*.mk

build: $(SHLIBS) pgext cli

# The Go engine, loaded by the C module after fork (never preloaded: see docs/architecture.md).
# It is built with a two-edit patch to the runtime's monitor thread (internal/runtimepatch),
# applied through `go build -overlay` to a copy of the toolchain's runtime/proc.go: the tool
# prints "-overlay=FILE -X=main.runtimePatch=NAME", or nothing (and a warning) if the
# toolchain's runtime does not take the edits.
$(BUILD)/borealis_engine.so: $(GO_SOURCES)
	@mkdir -p $(BUILD)
	@rt=$$($(GO) run ./internal/runtimepatch/overlay -goroot "$$($(GO) env GOROOT)" -dir $(BUILD)/_runtime-overlay) || exit 1; \
	set -x; $(GO) build -buildmode=c-shared $${rt% *} -ldflags='$(ENGINE_LDFLAGS) '"$${rt#* }" -o $@ ./engine

$(SQL_SCRIPT): $(SQL_PARTS)
	@mkdir -p $(BUILD)
	cat $(SQL_PARTS) > $@

pgext: $(SQL_SCRIPT)
	$(MAKE) $(PGXS_ARGS)

cli:
	@mkdir -p $(BUILD)
	$(GO) build -o $(BUILD)/borealis ./cmd/borealis

install: build
	$(MAKE) $(PGXS_ARGS) install
	install -m 755 $(SHLIBS) $(PKGLIBDIR)/

deps:
	@bash scripts/deps.sh

# Packages whose tests run only in an area's race target, so they do not run twice: each area
# appends an extended regexp on import paths to RACE_ONLY_PKGS (no spaces inside one).
RACE_ONLY_PKGS ?=
empty :=
space := $(empty) $(empty)
# -timeout: pgext's integration tests take ~11 minutes on a loaded 2-core machine, past go
# test's default 10 minutes per package; the 30-minute budget is for all of make test.
# TestMemoryLimit fills 2.4 GB through a cgroup: it runs alone in test-capacity-memory, so the
# package-wide runs leave it out by name (SLOW_ALONE_TESTS) rather than the test skipping itself.
SLOW_ALONE_TESTS := ^TestMemoryLimit$$
test-go:
	$(GO) test -count=1 -timeout 25m -skip '$(SLOW_ALONE_TESTS)' $$($(GO) list ./... $(if $(strip $(RACE_ONLY_PKGS)),| grep -v -E '$(subst $(space),|,$(strip $(RACE_ONLY_PKGS)))'))

# `make up` starts the dev cluster in the foreground; PORT= picks its port (default 5433).
PORT ?= 5433
up: deps
	$(MAKE) build
	$(MAKE) install
	$(BUILD)/borealis up --port $(PORT)

# The test targets run one after another, as `make test-go $(TEST_TARGETS)` would (the first
# failure stops make test), each followed by how long it took: make test must stay under 30
# minutes on a loaded 2-core machine, and CI's log then shows where the time goes.
test: deps
	$(MAKE) build
	$(MAKE) install
	@set -e; all=$$(date +%s); for t in test-go $(TEST_TARGETS); do \
		s=$$(date +%s); $(MAKE) $$t; echo "make test: $$t passed in $$(( $$(date +%s) - s )) s"; done; \
	echo "make test: every test target passed in $$(( $$(date +%s) - all )) s"

clean:
	$(MAKE) $(PGXS_ARGS) clean
	rm -rf $(BUILD)
