# hnsw: HNSW graph (hnsw/) and its peer benchmark (bench/hnsw/).
.PHONY: test-hnsw test-hnsw-race test-hnsw-fuzz bench-hnsw

TEST_TARGETS += test-hnsw-race test-hnsw-fuzz

test-hnsw:
	$(GO) test -count=1 ./hnsw/...

# Concurrency tests and small-graph tests under the race detector (sizes shrink under -race).
test-hnsw-race:
	$(GO) test -count=1 -race -short -run 'Concurrent|Tiny|Iterator|DeleteEdge|DeletedEntry|Restore|Tracked' ./hnsw/

test-hnsw-fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s ./hnsw/
	$(GO) test -run '^$$' -fuzz '^FuzzTinyGraphSearch$$' -fuzztime 10s ./hnsw/

# Borealis hnsw vs github.com/coder/hnsw on synthetic and MNIST data; writes bench/results/hnsw.md.
bench-hnsw:
	$(GO) run ./bench/hnsw -out bench/results/hnsw.md
