/*
 * hnswtypes.h — the one source of the element type and metric codes of borealis_hnsw, shared by
 * the C module and the Go engine (engine/ includes it through cgo; nothing else spells these
 * numbers). Plain C, no PostgreSQL header, so cgo can read it.
 *
 * A "kind" is metric | element type << 8. It travels wherever a metric did before element
 * types existed — the meta page's metric field, the shared graph file's header, every engine
 * call that takes a metric — so indexes built before (type 0, vector) keep their meaning and
 * no engine signature changed.
 *
 * Every element reaches the graph as a fixed number of 32-bit words, its *code*
 * (bhnsw_code_words): the page's element tuple stores those words, the graph file keeps them
 * in its vector slab, and the engine reads them by element type:
 *   vector     dims float32 components;
 *   halfvec    dims IEEE binary16 components, two per word (a trailing zero pads an odd count);
 *   bit        the bit string's bytes in 64-bit words (two 32-bit words each), zero-padded;
 *   sparsevec  word 0 the number of non-zeros n, then BHNSW_SPARSE_NNZ(dims) int32 indices
 *              (0-based, ascending, the first n used), then as many float32 values.
 * Zero padding leaves every distance unchanged.
 */
#ifndef BOREALIS_HNSWTYPES_H
#define BOREALIS_HNSWTYPES_H

/* Metrics, with pgvector's meaning. L2, COSINE and IP keep the values of the first release. */
#define BHNSW_METRIC_L2			1	/* <->  sqrt of the sum of squared differences */
#define BHNSW_METRIC_COSINE		2	/* <=>  1 - cos */
#define BHNSW_METRIC_IP			3	/* <#>  negative inner product */
#define BHNSW_METRIC_L1			4	/* <+>  sum of absolute differences */
#define BHNSW_METRIC_HAMMING	5	/* <~>  differing bits */
#define BHNSW_METRIC_JACCARD	6	/* <%>  1 - |a & b| / |a | b| */
#define BHNSW_METRIC_MAX		6

/* Element types: what the indexed column (or expression) is. */
#define BHNSW_TYPE_VECTOR		0
#define BHNSW_TYPE_HALFVEC		1
#define BHNSW_TYPE_BIT			2
#define BHNSW_TYPE_SPARSEVEC	3
#define BHNSW_TYPE_MAX			3

#define BHNSW_KIND(type, metric)	((metric) | ((type) << 8))
#define BHNSW_KIND_METRIC(kind)		((kind) & 0xFF)
#define BHNSW_KIND_TYPE(kind)		(((kind) >> 8) & 0xFF)

/*
 * Dimension limits, per type: pgvector's type limits (sparsevec counts non-zeros, as pgvector's
 * HNSW, and takes any dimensions its type allows). Codes past one page's worth are kept in
 * chunks (hnswpage.h).
 */
#define BHNSW_MAX_VECTOR_DIMS		16000
#define BHNSW_MAX_HALFVEC_DIMS		16000
#define BHNSW_MAX_BIT_DIMS			64000
#define BHNSW_MAX_SPARSEVEC_NNZ		1000
#define BHNSW_MAX_CODE_WORDS		16000	/* the largest code of any type within its limit */

/* Non-zeros a sparsevec code has room for: the limit, or fewer when the dimensions are fewer. */
static inline int
BHNSW_SPARSE_NNZ(int dims)
{
	return dims < BHNSW_MAX_SPARSEVEC_NNZ ? dims : BHNSW_MAX_SPARSEVEC_NNZ;
}

/* 32-bit words of an element's code; -1 for an unknown type. */
static inline int
bhnsw_code_words(int type, int dims)
{
	switch (type)
	{
		case BHNSW_TYPE_VECTOR:
			return dims;
		case BHNSW_TYPE_HALFVEC:
			return (dims + 1) / 2;
		case BHNSW_TYPE_BIT:
			return 2 * ((dims + 63) / 64);
		case BHNSW_TYPE_SPARSEVEC:
			return 1 + 2 * BHNSW_SPARSE_NNZ(dims);
	}
	return -1;
}

/*
 * Names, the one place they are spelt: a type's SQL name, and a metric's part of pgvector's
 * operator class names, <type>_<metric>_ops (vector_l2_ops, halfvec_cosine_ops,
 * sparsevec_l2_ops, bit_hamming_ops, ...). NULL for an unknown code.
 */
static inline const char *
bhnsw_type_name(int type)
{
	switch (type)
	{
		case BHNSW_TYPE_VECTOR:
			return "vector";
		case BHNSW_TYPE_HALFVEC:
			return "halfvec";
		case BHNSW_TYPE_BIT:
			return "bit";
		case BHNSW_TYPE_SPARSEVEC:
			return "sparsevec";
	}
	return 0;
}

static inline const char *
bhnsw_metric_name(int metric)
{
	switch (metric)
	{
		case BHNSW_METRIC_L2:
			return "l2";
		case BHNSW_METRIC_COSINE:
			return "cosine";
		case BHNSW_METRIC_IP:
			return "ip";
		case BHNSW_METRIC_L1:
			return "l1";
		case BHNSW_METRIC_HAMMING:
			return "hamming";
		case BHNSW_METRIC_JACCARD:
			return "jaccard";
	}
	return 0;
}

/* Whether metric is one pgvector's HNSW offers for type. */
static inline int
bhnsw_kind_valid(int kind)
{
	int			metric = BHNSW_KIND_METRIC(kind);

	if (kind < 0 || kind > 0xFFFF)
		return 0;
	switch (BHNSW_KIND_TYPE(kind))
	{
		case BHNSW_TYPE_VECTOR:
		case BHNSW_TYPE_HALFVEC:
		case BHNSW_TYPE_SPARSEVEC:
			return metric >= BHNSW_METRIC_L2 && metric <= BHNSW_METRIC_L1;
		case BHNSW_TYPE_BIT:
			return metric == BHNSW_METRIC_HAMMING || metric == BHNSW_METRIC_JACCARD;
	}
	return 0;
}

#endif							/* BOREALIS_HNSWTYPES_H */
