// Package simd owns Borealis's distance kernels: float32 dot product, squared L2, L1,
// cosine distance and norm (single pair, batch over a contiguous matrix, and gather over
// row indexes of a slab), int8 dot and squared L2, the half-precision (binary16) kernels
// behind halfvec (conversion both ways, dot, squared L2, L1, cosine), Hamming and Jaccard
// distance over packed bits, the sparse-vector kernels behind sparsevec (dot, squared L2,
// L1, cosine over sorted index lists), and the quantizers that produce int8 codes and
// sign bits. Each distance follows the pgvector operator it stands for: same definition,
// same precision of accumulation, same special cases (see each function).
//
// It is pure compute and the bottom of the dependency chain (simd <- hnsw <- engine <- pgext):
// it imports nothing from the project, uses no cgo, never calls PostgreSQL, and its kernels
// never allocate. It is loaded inside PostgreSQL backends, so nothing here may panic at init;
// kernels panic only on caller bugs (mismatched lengths, out-of-range rows), which callers
// validate first. Values are never validated: NaN and Inf flow through as IEEE says, and
// rejecting them (as pgvector's input functions do) is the caller's job.
//
// The kernel path (generic Go, AVX2+FMA on amd64, NEON on arm64) is chosen once at init
// with cpuid; BOREALIS_SIMD=generic|avx2|neon forces one, and Select switches at run time
// for tests and benchmarks. Info reports the choice.
package simd
