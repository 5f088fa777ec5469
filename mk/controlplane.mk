# controlplane: the control plane (controlplane/), its CLI commands (serve, cluster, events, up)
# and the router benchmark. Its Go tests run in test-go; this adds a short fuzz run of the
# router's start-up parser (the seed corpus also runs in test-go).

# An execution count, not a duration: a duration-limited fuzz run can fail with a spurious
# "context deadline exceeded" on a loaded machine (go.dev/issue/75804, unfixed in Go 1.26).
CP_FUZZ ?= 20000x

TEST_TARGETS += test-controlplane-fuzz

.PHONY: test-controlplane-fuzz bench-router

test-controlplane-fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzReadStartup$$' -fuzztime=$(CP_FUZZ) ./controlplane/router/

# pgbench -S with 8 clients through the router vs direct, alternating rounds; writes
# bench/results/router.md. Override with e.g. `make bench-router ROUTER_BENCH_FLAGS='-rounds 3'`.
ROUTER_BENCH_FLAGS ?=
bench-router:
	$(GO) run ./bench/router $(ROUTER_BENCH_FLAGS)
