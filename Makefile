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

.PHONY: all deps build install test up clean test-go
all: build

-include mk/*.mk

deps:
	@bash scripts/deps.sh

test-go:
	$(GO) test -count=1 ./...

test: deps
	$(MAKE) build
	$(MAKE) install
	$(MAKE) test-go $(TEST_TARGETS)

clean:
	rm -rf $(BUILD)
