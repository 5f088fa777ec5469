# capacity: settings per ACU, cgroup enforcement and the scaling decision (controlplane/capacity,
# controlplane/cgroup, controlplane/scaling; their tests run in test-go and, for the cluster
# package, in test-controlplane-race). This adds the capacity benchmark.

.PHONY: bench-capacity

# A stepped pgbench load (idle, 8 clients, 85 clients, idle) against a 1-4 ACU cluster, sampled
# each second; writes bench/results/capacity.{md,png,json}. Needs root (cgroups).
CAPACITY_BENCH_FLAGS ?=
bench-capacity:
	$(GO) run ./bench/capacity $(CAPACITY_BENCH_FLAGS)
