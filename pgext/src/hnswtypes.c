/*
 * hnswtypes.c — what borealis_hnsw indexes: pgvector's vector, halfvec and sparsevec and
 * PostgreSQL's bit, decoded from their datums into the fixed-width element codes of
 * hnswtypes.h that the pages and the Go graph store. The operator class says the metric (its
 * support function 1 is pgvector's distance function for the operator) and the type.
 */
#include "hnsw.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varbit.h"

/* pgvector's halfvec and sparsevec as stored (vector is BhnswVector in hnsw.h). */
typedef struct BhnswHalfVector
{
	int32		vl_len_;
	int16		dim;
	int16		unused;
	uint16		x[FLEXIBLE_ARRAY_MEMBER];
} BhnswHalfVector;

typedef struct BhnswSparseVector
{
	int32		vl_len_;
	int32		dim;
	int32		nnz;
	int32		unused;
	int32		indices[FLEXIBLE_ARRAY_MEMBER];	/* then nnz float values */
} BhnswSparseVector;

/* pgvector's operator class of type under metric (hnswtypes.h spells the names), palloc'd. */
char *
bhnsw_opclass_name(int type, int metric)
{
	return psprintf("%s_%s_ops", bhnsw_type_name(type), bhnsw_metric_name(metric));
}

/* Every operator class borealis_hnsw offers, comma-separated, palloc'd. */
char *
bhnsw_opclass_list(void)
{
	StringInfoData s;
	int			type,
				metric;

	initStringInfo(&s);
	for (type = 0; type <= BHNSW_TYPE_MAX; type++)
		for (metric = 1; metric <= BHNSW_METRIC_MAX; metric++)
			if (bhnsw_kind_valid(BHNSW_KIND(type, metric)))
				appendStringInfo(&s, "%s%s", s.len > 0 ? ", " : "", bhnsw_opclass_name(type, metric));
	return s.data;
}

static int
type_of(Relation index)
{
	Oid			typid = index->rd_opcintype[0];
	HeapTuple	tup;
	int			type = -1;
	int			i;

	if (typid == BITOID)
		return BHNSW_TYPE_BIT;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (HeapTupleIsValid(tup))
	{
		const char *name = NameStr(((Form_pg_type) GETSTRUCT(tup))->typname);

		for (i = 0; i <= BHNSW_TYPE_MAX; i++)
			if (strcmp(name, bhnsw_type_name(i)) == 0)
				type = i;
		ReleaseSysCache(tup);
	}
	if (type < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("borealis_hnsw cannot index type %s (index \"%s\")",
						format_type_be(typid), RelationGetRelationName(index)),
				 errhint("Index vector, halfvec, sparsevec or bit, with one of pgvector's HNSW operator classes.")));
	return type;
}

/*
 * The index's kind (hnswtypes.h): the type from the operator class's input type, the metric
 * from its support function 1, pgvector's own distance function for the operator.
 */
int
bhnsw_metric_of(Relation index)
{
	static const struct
	{
		const char *name;
		int			metric;
	}			funcs[] = {
		{"l2_distance", BHNSW_METRIC_L2},
		{"cosine_distance", BHNSW_METRIC_COSINE},
		{"vector_negative_inner_product", BHNSW_METRIC_IP},
		{"halfvec_negative_inner_product", BHNSW_METRIC_IP},
		{"sparsevec_negative_inner_product", BHNSW_METRIC_IP},
		{"l1_distance", BHNSW_METRIC_L1},
		{"hamming_distance", BHNSW_METRIC_HAMMING},
		{"jaccard_distance", BHNSW_METRIC_JACCARD},
	};
	Oid			proc = index_getprocid(index, 1, 1);
	char	   *name = OidIsValid(proc) ? get_func_name(proc) : NULL;
	int			type = type_of(index);
	int			i;

	for (i = 0; name != NULL && i < lengthof(funcs); i++)
		if (strcmp(name, funcs[i].name) == 0 && bhnsw_kind_valid(BHNSW_KIND(type, funcs[i].metric)))
			return BHNSW_KIND(type, funcs[i].metric);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("borealis_hnsw does not support the distance function %s for type %s (index \"%s\")",
					name ? name : "(none)", bhnsw_type_name(type), RelationGetRelationName(index)),
			 errhint("Use one of pgvector's HNSW operator classes: %s.", bhnsw_opclass_list())));
	return 0;
}

/*
 * Element tuples keep a sparsevec compact: 1 + 2n words (n, then its n indices, then its n
 * values) for n non-zeros, not the graph's fixed width of 1 + 2 * BHNSW_SPARSE_NNZ(dims), so
 * a page holds what a vector has, not what the type allows (layout version 2). Writes the
 * tuple form of code (words words, the graph's width) into dst and returns its words; every
 * other type's tuple form is its code.
 */
int
bhnsw_tuple_code(int kind, const float *code, int words, float *dst)
{
	uint32		n;
	int			room = (words - 1) / 2;

	if (BHNSW_KIND_TYPE(kind) != BHNSW_TYPE_SPARSEVEC)
	{
		memcpy(dst, code, sizeof(float) * words);
		return words;
	}
	memcpy(&n, code, sizeof(n));
	if (n > (uint32) room)
		n = room;				/* the engine refuses such a code before it is stored */
	dst[0] = code[0];
	memcpy(dst + 1, code + 1, sizeof(float) * n);
	memcpy(dst + 1 + n, code + 1 + room, sizeof(float) * n);
	return 1 + 2 * n;
}

/*
 * Widens a compact sparsevec tuple code (twords words) into dst, words words wide. Returns
 * NULL, or what is wrong with it.
 */
const char *
bhnsw_tuple_expand(const float *tcode, int twords, float *dst, int words)
{
	uint32		n;
	int			room = (words - 1) / 2;

	if (twords < 1 || twords > words)
		return "its code has a wrong size";
	memcpy(&n, tcode, sizeof(n));
	if (n > (uint32) room || twords != 1 + 2 * (int) n)
		return "its sparse code has a wrong size";
	memset(dst, 0, sizeof(float) * words);
	dst[0] = tcode[0];
	memcpy(dst + 1, tcode + 1, sizeof(float) * n);
	memcpy(dst + 1 + room, tcode + 1 + n, sizeof(float) * n);
	return NULL;
}

/* The indexed column's (or expression's) declared dimensions, within the type's limit. */
int
bhnsw_typmod_dims(Relation index)
{
	int			typmod = TupleDescAttr(index->rd_att, 0)->atttypmod;
	int			type = type_of(index);
	int			limit;

	if (typmod < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column does not have dimensions"),
				 errhint("Declare the column as %s(n), for example ALTER TABLE ... ALTER COLUMN ... TYPE %s(%d), or cast an expression to it.",
						 bhnsw_type_name(type), bhnsw_type_name(type), 1536)));
	switch (type)
	{
		case BHNSW_TYPE_VECTOR:
			limit = BHNSW_MAX_VECTOR_DIMS;
			break;
		case BHNSW_TYPE_HALFVEC:
			limit = BHNSW_MAX_HALFVEC_DIMS;
			break;
		case BHNSW_TYPE_BIT:
			limit = BHNSW_MAX_BIT_DIMS;
			break;
		default:
			limit = INT_MAX;	/* sparsevec: the limit is on non-zeros, checked per value */
			break;
	}
	if (typmod > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("column cannot have more than %d dimensions for borealis_hnsw index (it has %d)",
						limit, typmod)));
	return typmod;
}

/* The graph's width: 32-bit words per element code (for vector, its dimensions). */
int
bhnsw_dims_of(Relation index)
{
	int			kind = bhnsw_metric_of(index);

	return bhnsw_code_words(BHNSW_KIND_TYPE(kind), bhnsw_typmod_dims(index));
}

void
bhnsw_elemtype_of(Relation index, BhnswElemType *t)
{
	t->kind = bhnsw_metric_of(index);
	t->dims = bhnsw_typmod_dims(index);
	t->words = bhnsw_code_words(BHNSW_KIND_TYPE(t->kind), t->dims);
}

/*
 * Writes value's element code (t->words words) into dst and returns the value's dimensions,
 * for the caller to compare with t->dims and name the row or query in its error. *zero is set
 * when the value has no cosine distance (all zero). A sparsevec with more non-zeros than
 * BHNSW_MAX_SPARSEVEC_NNZ is refused here.
 */
int
bhnsw_encode(const BhnswElemType *t, Datum value, float *dst, bool *zero)
{
	int			i;

	memset(dst, 0, sizeof(float) * t->words);
	*zero = true;
	switch (BHNSW_KIND_TYPE(t->kind))
	{
		case BHNSW_TYPE_VECTOR:
			{
				BhnswVector *v = (BhnswVector *) PG_DETOAST_DATUM(value);

				if (v->dim != t->dims)
					return v->dim;
				memcpy(dst, v->x, sizeof(float) * v->dim);
				for (i = 0; i < v->dim && *zero; i++)
					*zero = v->x[i] == 0;
				return v->dim;
			}
		case BHNSW_TYPE_HALFVEC:
			{
				BhnswHalfVector *v = (BhnswHalfVector *) PG_DETOAST_DATUM(value);

				if (v->dim != t->dims)
					return v->dim;
				memcpy(dst, v->x, sizeof(uint16) * v->dim);
				for (i = 0; i < v->dim && *zero; i++)
					*zero = (v->x[i] & 0x7FFF) == 0;
				return v->dim;
			}
		case BHNSW_TYPE_BIT:
			{
				VarBit	   *v = DatumGetVarBitP(value);
				int			bytes = VARBITBYTES(v);

				if (VARBITLEN(v) != t->dims)
					return VARBITLEN(v);
				memcpy(dst, VARBITS(v), bytes);
				for (i = 0; i < bytes && *zero; i++)
					*zero = VARBITS(v)[i] == 0;
				return VARBITLEN(v);
			}
		case BHNSW_TYPE_SPARSEVEC:
			{
				BhnswSparseVector *v = (BhnswSparseVector *) PG_DETOAST_DATUM(value);
				int			room = BHNSW_SPARSE_NNZ(t->dims);
				const float *values = (const float *) (v->indices + v->nnz);
				uint32		nnz = 0;

				if (v->dim != t->dims)
					return v->dim;
				if (v->nnz > BHNSW_MAX_SPARSEVEC_NNZ)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("sparsevec cannot have more than %d non-zero elements for borealis_hnsw index (it has %d)",
									BHNSW_MAX_SPARSEVEC_NNZ, v->nnz),
							 errhint("Keep the largest %d elements, or index a dense halfvec or vector instead.",
									 BHNSW_MAX_SPARSEVEC_NNZ)));
				/* pgvector stores no zeros, but a value read from binary input may carry one. */
				for (i = 0; i < v->nnz && nnz < (uint32) room; i++)
				{
					if (values[i] == 0)
						continue;
					((int32 *) dst)[1 + nnz] = v->indices[i];
					dst[1 + room + nnz] = values[i];
					nnz++;
				}
				((uint32 *) dst)[0] = nnz;
				*zero = nnz == 0;
				return v->dim;
			}
	}
	elog(ERROR, "borealis_hnsw: unknown element type of kind %d", t->kind);
	return -1;
}

/*
 * What is wrong with a stored code, for the checker (NULL when nothing): non-finite components
 * of vector, halfvec and sparsevec, sparse indices out of order or range.
 */
const char *
bhnsw_code_problem(int kind, int dims, const float *code, int words)
{
	int			i;

	switch (BHNSW_KIND_TYPE(kind))
	{
		case BHNSW_TYPE_VECTOR:
			for (i = 0; i < words; i++)
				if (isnan(code[i]) || isinf(code[i]))
					return "a NaN or infinite component";
			return NULL;
		case BHNSW_TYPE_HALFVEC:
			for (i = 0; i < 2 * words; i++)
				if ((((const uint16 *) code)[i] & 0x7C00) == 0x7C00)
					return "a NaN or infinite component";
			return NULL;
		case BHNSW_TYPE_BIT:
			return NULL;
		case BHNSW_TYPE_SPARSEVEC:
			{
				int			room = (words - 1) / 2;
				uint32		nnz = ((const uint32 *) code)[0];
				const int32 *idx = (const int32 *) code + 1;

				if (nnz > (uint32) room)
					return "more non-zero elements than its code holds";
				for (i = 0; i < (int) nnz; i++)
				{
					if (idx[i] < 0 || (dims > 0 && idx[i] >= dims) || (i > 0 && idx[i] <= idx[i - 1]))
						return "sparse indices out of order or range";
					if (isnan(code[1 + room + i]) || isinf(code[1 + room + i]))
						return "a NaN or infinite component";
				}
				return NULL;
			}
	}
	return "an unknown element type";
}
