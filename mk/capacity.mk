# capacity: settings per ACU, cgroup enforcement and the scaling decision (controlplane/capacity,
# controlplane/cgroup, controlplane/scaling; their tests run in test-go and, for the cluster
# package, in test-controlplane-race). This adds the capacity benchmark.

TEST_TARGETS += test-capacity-memory
.PHONY: bench-capacity test-capacity-memory

# A node at 1 ACU holding 2.4 GB is OOM-killed in its cgroup and the control plane scales up:
# alone and without -race, since it takes minutes on a busy host (see the test's comment).
test-capacity-memory:
	$(GO) test -count=1 -timeout 15m -run '^TestMemoryLimit$$' ./controlplane/capacitytest/

# A stepped pgbench load (idle, 8 clients, 85 clients, idle) against a 1-4 ACU cluster, sampled
# each second; writes bench/results/capacity.{md,png,json}. Needs root (cgroups).
CAPACITY_BENCH_FLAGS ?=
bench-capacity:
	$(GO) run ./bench/capacity $(CAPACITY_BENCH_FLAGS)
