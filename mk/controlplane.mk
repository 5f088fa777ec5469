# controlplane: the control plane (controlplane/), its CLI commands (serve, cluster, events, up)
# and the router benchmark. Its Go tests run under the race detector in test-controlplane-race
# (and not again in test-go); this adds short fuzz runs of the router's parsers and framing
# and of the API's JSON decoding, and of the router's SCRAM parsing and exchange.

# An execution count, not a duration: a duration-limited fuzz run can fail with a spurious
# "context deadline exceeded" on a loaded machine (go.dev/issue/75804, unfixed in Go 1.26).
CP_FUZZ ?= 20000x
# The relay target moves bytes through in-memory connections: fewer, slower executions.
CP_FUZZ_RELAY ?= 5000x

TEST_TARGETS += test-controlplane-race test-controlplane-fuzz
RACE_ONLY_PKGS += /controlplane(/|$$)|/cmd/borealis$$
CP_RACE_PKGS := ./controlplane/... ./cmd/borealis/

.PHONY: test-controlplane-race test-controlplane-fuzz bench-router

# The control plane is concurrent throughout (routers, supervisors, API): its tests always run
# with -race. The cluster package starts many real clusters; under -race on a loaded 2-core
# machine it needs more than go test's default 10 minutes: 273-492 s in fresh-clone CI runs, but
# over 30 min twice at load 22-40 (stop 16, no test hung), hence 60m.
test-controlplane-race:
	$(GO) test -count=1 -race -timeout 60m -skip '$(SLOW_ALONE_TESTS)' $(CP_RACE_PKGS)

test-controlplane-fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzReadStartup$$' -fuzztime=$(CP_FUZZ) ./controlplane/router/
	$(GO) test -run='^$$' -fuzz='^FuzzRelayFraming$$' -fuzztime=$(CP_FUZZ_RELAY) ./controlplane/router/
	$(GO) test -run='^$$' -fuzz='^FuzzSCRAMParsing$$' -fuzztime=$(CP_FUZZ) ./controlplane/router/
	$(GO) test -run='^$$' -fuzz='^FuzzSCRAMExchange$$' -fuzztime=$(CP_FUZZ_RELAY) ./controlplane/router/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(CP_FUZZ) ./controlplane/api/

# pgbench -S with 8 clients through the router vs direct, alternating rounds; writes
# bench/results/router.md. Override with e.g. `make bench-router ROUTER_BENCH_FLAGS='-rounds 3'`.
ROUTER_BENCH_FLAGS ?=
bench-router:
	$(GO) run ./bench/router $(ROUTER_BENCH_FLAGS)

# The same with PgBouncer (Debian's package, session mode) as the peer in every round; writes
# bench/results/router-pgbouncer.md.
.PHONY: bench-router-pgbouncer bench-resume
bench-router-pgbouncer:
	$(GO) run ./bench/router -pgbouncer $$(command -v pgbouncer || echo /usr/sbin/pgbouncer) -out bench/results/router-pgbouncer.md $(ROUTER_BENCH_FLAGS)

# Resume on connect: connect to a paused cluster to a borealis_hnsw top-10 result on 100k x 128,
# 20 cycles; writes bench/results/resume.md and resume.png.
bench-resume:
	$(GO) run ./bench/resume $(RESUME_BENCH_FLAGS)
