/*
 * hnsw.c — the borealis_hnsw access method: handler, reloptions, operator classes, costs.
 */
#include "hnsw.h"

#include <float.h>
#include <math.h>

#include "access/reloptions.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "optimizer/optimizer.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"

static relopt_kind bhnsw_relopt_kind;

static relopt_enum_elt_def quantization_values[] = {
	{"auto", BHNSW_QUANT_AUTO},
	{"none", BHNSW_QUANT_NONE},
	{"int8", BHNSW_QUANT_INT8},
	{"binary", BHNSW_QUANT_BINARY},
	{NULL}
};
static bool bhnsw_initialised = false;

/*
 * Registers the reloptions, once per process. PostgreSQL calls the handler before it parses an
 * index's options, so doing it here (rather than in _PG_init) covers a server that does not
 * preload the module too.
 */
void
bhnsw_init(void)
{
	if (bhnsw_initialised)
		return;
	bhnsw_initialised = true;
	bhnsw_relopt_kind = add_reloption_kind();
	add_int_reloption(bhnsw_relopt_kind, "m", "Maximum number of connections per node (layer 0 keeps 2*m)",
					  BHNSW_DEFAULT_M, BHNSW_MIN_M, BHNSW_MAX_M, AccessExclusiveLock);
	add_int_reloption(bhnsw_relopt_kind, "ef_construction", "Size of the dynamic candidate list while building",
					  BHNSW_DEFAULT_EF_CONSTRUCTION, BHNSW_MIN_EF_CONSTRUCTION, BHNSW_MAX_EF_CONSTRUCTION,
					  AccessExclusiveLock);
	add_enum_reloption(bhnsw_relopt_kind, "quantization",
					   "Codes scans traverse the graph with: auto (int8 from 768 dimensions), none, int8 or binary",
					   quantization_values, BHNSW_QUANT_AUTO,
					   "Valid values are \"auto\", \"none\", \"int8\" and \"binary\".",
					   AccessExclusiveLock);
}

static bytea *
bhnsw_options(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"m", RELOPT_TYPE_INT, offsetof(BhnswOptions, m)},
		{"ef_construction", RELOPT_TYPE_INT, offsetof(BhnswOptions, ef_construction)},
		{"quantization", RELOPT_TYPE_ENUM, offsetof(BhnswOptions, quantization)},
	};

	return (bytea *) build_reloptions(reloptions, validate, bhnsw_relopt_kind,
									  sizeof(BhnswOptions), tab, lengthof(tab));
}

void
bhnsw_reloptions_of(Relation index, int *m, int *ef_construction)
{
	BhnswOptions *opts = (BhnswOptions *) index->rd_options;

	*m = opts ? opts->m : BHNSW_DEFAULT_M;
	*ef_construction = opts ? opts->ef_construction : BHNSW_DEFAULT_EF_CONSTRUCTION;
}

/*
 * The quantization reloption. Scans read it when they map the graph: it shapes only the
 * derived graph file, never the pages, so changing it (ALTER INDEX ... SET) needs no REINDEX.
 */
int
bhnsw_quantization_of(Relation index)
{
	BhnswOptions *opts = (BhnswOptions *) index->rd_options;

	return opts ? opts->quantization : BHNSW_QUANT_AUTO;
}

/*
 * int8 and binary codes are taken from vector or halfvec elements under l2, cosine or inner
 * product; CREATE INDEX refuses them elsewhere (a later ALTER INDEX is refused by the first
 * scan).
 */
void
bhnsw_check_quantization(Relation index, int kind)
{
	int			q = bhnsw_quantization_of(index);

	if ((q == BHNSW_QUANT_INT8 || q == BHNSW_QUANT_BINARY) &&
		(((kind >> 8) != BHNSW_TYPE_VECTOR && (kind >> 8) != BHNSW_TYPE_HALFVEC) ||
		 (kind & 0xFF) == BHNSW_METRIC_L1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantization = %s is not available for index \"%s\"",
						q == BHNSW_QUANT_INT8 ? "int8" : "binary", RelationGetRelationName(index)),
				 errdetail("int8 and binary codes need a vector or halfvec column under the l2, cosine or ip operator class."),
				 errhint("Use quantization = auto or none, or index binary_quantize(...) with bit_hamming_ops.")));
}

/*
 * Costs. The index is only useful for ORDER BY <distance> (LIMIT n): for anything else it is
 * made infinitely expensive so the planner never picks it. An ordered scan searches the
 * backend's in-memory graph: about ef_search * 2m * (levels) distance computations, with no
 * page reads once the cache is warm, so its cost is that many operator evaluations.
 */
static void
bhnsw_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				   Cost *indexStartupCost, Cost *indexTotalCost,
				   Selectivity *indexSelectivity, double *indexCorrelation,
				   double *indexPages)
{
	GenericCosts costs;
	int			m,
				efc;
	double		tuples,
				visited;
	Relation	index;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	MemSet(&costs, 0, sizeof(costs));
	genericcostestimate(root, path, loop_count, &costs);

	index = index_open(path->indexinfo->indexoid, NoLock);
	bhnsw_reloptions_of(index, &m, &efc);
	index_close(index, NoLock);

	tuples = Max(path->indexinfo->tuples, 1);
	visited = Min(tuples, (double) borealis_ef_search * 2 * m * Max(1.0, log(tuples) / log(Max(m, 2))));

	*indexStartupCost = visited * cpu_operator_cost * 10;
	*indexTotalCost = *indexStartupCost + costs.numIndexTuples * cpu_index_tuple_cost;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = costs.numIndexPages;
}

static bool
bhnsw_validate(Oid opclassoid)
{
	return true;
}

PG_FUNCTION_INFO_V1(borealis_hnsw_handler);

Datum
borealis_hnsw_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *am = makeNode(IndexAmRoutine);

	bhnsw_init();

	am->amstrategies = 0;
	am->amsupport = 1;
	am->amoptsprocnum = 0;
	am->amcanorder = false;
	am->amcanorderbyop = true;
	am->amcanbackward = false;
	am->amcanunique = false;
	am->amcanmulticol = false;
	am->amoptionalkey = true;
	am->amsearcharray = false;
	am->amsearchnulls = false;
	am->amstorage = false;
	am->amclusterable = false;
	am->ampredlocks = false;
	am->amcanparallel = false;
	am->amcaninclude = false;
	am->amusemaintenanceworkmem = false;
	am->amparallelvacuumoptions = VACUUM_OPTION_NO_PARALLEL;
	am->amkeytype = InvalidOid;

	am->ambuild = bhnsw_build;
	am->ambuildempty = bhnsw_buildempty;
	am->aminsert = bhnsw_insert;
	am->ambulkdelete = bhnsw_bulkdelete;
	am->amvacuumcleanup = bhnsw_vacuumcleanup;
	am->amcanreturn = NULL;
	am->amcostestimate = bhnsw_costestimate;
	am->amoptions = bhnsw_options;
	am->amproperty = NULL;
	am->ambuildphasename = bhnsw_buildphasename;
	am->amvalidate = bhnsw_validate;
	am->amadjustmembers = NULL;
	am->ambeginscan = bhnsw_beginscan;
	am->amrescan = bhnsw_rescan;
	am->amgettuple = bhnsw_gettuple;
	am->amgetbitmap = NULL;
	am->amendscan = bhnsw_endscan;
	am->ammarkpos = NULL;
	am->amrestrpos = NULL;
	am->amestimateparallelscan = NULL;
	am->aminitparallelscan = NULL;
	am->amparallelrescan = NULL;

	PG_RETURN_POINTER(am);
}
