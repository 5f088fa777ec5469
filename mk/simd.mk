# simd: distance kernels. Every path runs the same tests: on amd64 avx512 (where the CPU has it),
# avx2 and generic natively,
# on arm64 neon and generic under qemu-user (cross-compiled test binary, run explicitly so
# binfmt registration is not needed). A short fuzz run per target follows.

SIMD_QEMU    ?= qemu-aarch64-static
# An execution count, not a duration: a duration-limited fuzz run can fail with a spurious
# "context deadline exceeded" on a loaded machine (go.dev/issue/75804, unfixed in Go 1.26).
SIMD_FUZZ    ?= 100000x
SIMD_ARM64   := $(BUILD)/simd-arm64.test

TEST_TARGETS += test-simd-paths test-simd-arm64 test-simd-fuzz test-simd-generate

.PHONY: test-simd-paths test-simd-arm64 test-simd-fuzz test-simd-generate bench-simd simd-generate

test-simd-paths:
	BOREALIS_SIMD=generic $(GO) test -count=1 ./simd/...
	@if [ "$$($(GO) env GOARCH)" = amd64 ]; then \
		echo "BOREALIS_SIMD=avx2 $(GO) test -count=1 ./simd/..."; \
		BOREALIS_SIMD=avx2 $(GO) test -count=1 ./simd/...; fi
	@if [ "$$($(GO) env GOARCH)" = amd64 ] && grep -qw avx512f /proc/cpuinfo; then \
		echo "BOREALIS_SIMD=avx512 $(GO) test -count=1 ./simd/..."; \
		BOREALIS_SIMD=avx512 $(GO) test -count=1 ./simd/...; fi

test-simd-arm64:
	@mkdir -p $(BUILD)
	GOARCH=arm64 $(GO) vet ./simd/...
	GOARCH=arm64 $(GO) test -c -o $(SIMD_ARM64) ./simd/
	cd simd && BOREALIS_SIMD=neon $(SIMD_QEMU) $(SIMD_ARM64) -test.count=1
	cd simd && BOREALIS_SIMD=generic $(SIMD_QEMU) $(SIMD_ARM64) -test.count=1

test-simd-fuzz:
	for f in FuzzBatchKernels FuzzQuantizers FuzzInt8Kernels FuzzTypeKernels; do \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(SIMD_FUZZ) ./simd/ || exit 1; done

# The committed assembly must be what the avo generator writes (the first line of each
# names the output paths, so it is skipped).
test-simd-generate:
	@tmp=$$(mktemp -d) && cd simd && \
	$(GO) run ./internal/asmgen -out $$tmp/k.s -stubs $$tmp/k.go -pkg simd && \
	diff <(tail -n +2 $$tmp/k.s) <(tail -n +2 kernels_amd64.s) && \
	diff <(tail -n +2 $$tmp/k.go) <(tail -n +2 kernels_amd64_stubs.go) && \
	echo "kernels_amd64.s matches its avo generator"; \
	rc=$$?; rm -rf $$tmp; exit $$rc

simd-generate:
	$(GO) generate ./simd/

# One table per run: every path as a ratio to the generic Go loop and to vek.
bench-simd:
	$(GO) run ./bench/simd
