# hnsw: HNSW graph (hnsw/) and its peer benchmark (bench/hnsw/).
.PHONY: test-hnsw test-hnsw-race test-hnsw-fuzz bench-hnsw

TEST_TARGETS += test-hnsw-race test-hnsw-fuzz

test-hnsw:
	$(GO) test -count=1 ./hnsw/...

# Concurrency tests and small-graph tests under the race detector (sizes shrink under -race).
# -timeout: at load 30-34 on a 2-core machine this run took 361 s, and once past go test's
# default 10 minutes.
test-hnsw-race:
	$(GO) test -count=1 -race -short -timeout 20m -run 'Concurrent|Tiny|Iterator|DeleteEdge|DeletedEntry|Restore|Tracked' ./hnsw/

# Execution counts, not durations: a duration-limited fuzz run can fail with a spurious
# "context deadline exceeded" on a loaded machine (go.dev/issue/75804, unfixed in Go 1.26).
test-hnsw-fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 300000x ./hnsw/
	$(GO) test -run '^$$' -fuzz '^FuzzTinyGraphSearch$$' -fuzztime 100000x ./hnsw/

# Borealis hnsw vs github.com/coder/hnsw on synthetic and MNIST data; writes bench/results/hnsw.md.
bench-hnsw:
	$(GO) run ./bench/hnsw -out bench/results/hnsw.md
