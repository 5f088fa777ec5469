# bench: `make bench` runs the standard ANN suite (100,000 × 128 synthetic, MNIST, 50,000 × 1,536
# synthetic cosine) against a throwaway server, borealis_hnsw against pgvector's hnsw (an AM the
# server lacks is skipped with a warning), and writes bench/results/<date>-standard.{md,json,png}.
# Query counts are scaled so the suite finishes within 30 minutes on a 2-core machine.
# Its tests (a tiny end-to-end suite included) run in `go test ./...`, so nothing is added to
# TEST_TARGETS. Override with e.g. `make bench BENCH_FLAGS='--clients 4'`.

BENCH_SUITE   ?= standard
BENCH_QUERIES ?= 1000
BENCH_NOTE    ?= shared 2-core machine, other engineers' builds and tests running alongside
BENCH_FLAGS   ?=

.PHONY: bench
bench: cli
	$(BUILD)/borealis bench ann --suite $(BENCH_SUITE) --queries $(BENCH_QUERIES) \
		--index borealis_hnsw:borealis.ef_search --index hnsw:hnsw.ef_search --skip-missing --min-time 2s \
		--out bench/results --note "$(BENCH_NOTE)" $(BENCH_FLAGS)
