/*
 * hnswscan.c — ordered scans: the search runs in Go on the index's shared graph (mapped, not
 * copied), with no buffer access per expanded node, and yields (element id, distance) in
 * increasing distance; C maps ids to heap TIDs through the location records in the same file.
 * Without iterative scan a scan returns at most borealis.ef_search rows, as pgvector; with it,
 * the walk goes on until borealis.max_scan_tuples elements were visited (or the memory bound),
 * then the rows already found are returned.
 */
#include "hnsw.h"

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"

#define SCAN_BATCH 64

typedef struct BhnswScanOpaqueData
{
	MemoryContextCallback cleanup;	/* ends the Go scan if the query ends in ERROR */
	BhnswCache *cache;			/* pinned while the scan runs */
	bool		started;
	bool		exhausted;
	long long	scan;			/* Go iterator, 0 when none */
	int64		returned;
	int64		limit;
	int			n;
	int			pos;
	uint32		ids[SCAN_BATCH];
	float		dists[SCAN_BATCH];
} BhnswScanOpaqueData;

typedef BhnswScanOpaqueData *BhnswScanOpaque;

static void end_go_scan(BhnswScanOpaque so);
static void scan_cleanup(void *arg);

IndexScanDesc
bhnsw_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);

	BhnswScanOpaque so = palloc0(sizeof(BhnswScanOpaqueData));

	/*
	 * The scan's memory lives in the executor's context, which an ERROR or a cancel deletes
	 * without calling amendscan: the callback ends the Go iterator and unpins the graph then.
	 */
	so->cleanup.func = scan_cleanup;
	so->cleanup.arg = so;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &so->cleanup);
	scan->opaque = so;
	scan->xs_orderbyvals = palloc0(sizeof(Datum) * Max(norderbys, 1));
	scan->xs_orderbynulls = palloc(sizeof(bool) * Max(norderbys, 1));
	return scan;
}

static void
end_go_scan(BhnswScanOpaque so)
{
	if (so->scan != 0)
		borealis_engine()->index_scan_end(so->scan);
	so->scan = 0;
	if (so->cache)
		bhnsw_cache_unpin(so->cache);
	so->cache = NULL;
}

static void
scan_cleanup(void *arg)
{
	end_go_scan((BhnswScanOpaque) arg);
}

void
bhnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	BhnswScanOpaque so = (BhnswScanOpaque) scan->opaque;

	end_go_scan(so);
	so->started = false;
	so->exhausted = false;
	so->returned = 0;
	so->n = so->pos = 0;
	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
}

static void
start(IndexScanDesc scan, BhnswScanOpaque so)
{
	const BorealisEngine *eng;
	BhnswCache *cache;
	BhnswElemType type;
	float	   *q;
	int			dims;
	bool		zero;

	so->started = true;
	if (scan->numberOfOrderBys == 0 || (scan->orderByData[0].sk_flags & SK_ISNULL))
	{
		/* No query vector: nothing is ordered by distance; a NULL distance sorts nowhere. */
		so->exhausted = true;
		return;
	}
	eng = borealis_engine();
	cache = so->cache = bhnsw_cache_get(scan->indexRelation, false, false);
	bhnsw_elemtype_of(scan->indexRelation, &type);
	q = palloc(sizeof(float) * type.words);
	dims = bhnsw_encode(&type, scan->orderByData[0].sk_argument, q, &zero);
	if (dims != type.dims || type.words != (int) cache->dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("query vector has %d dimensions, index \"%s\" has %d",
						dims, RelationGetRelationName(scan->indexRelation), type.dims)));
	if (BHNSW_KIND_METRIC(cache->metric) == BHNSW_METRIC_COSINE && zero)
	{
		/* Cosine distance to a zero vector is NaN for every row: there is no order to give. */
		so->exhausted = true;
		return;
	}
	/*
	 * pgvector's iterative scan: relaxed_order returns elements a resumed search finds late,
	 * strict_order skips them; max_scan_tuples counts elements visited (not rows returned) and
	 * with the memory bound ends the graph walk, after which Go returns what it already found.
	 * Without iterative scan a scan is one round: at most ef_search rows.
	 */
	bhnsw_engine_check(eng->index_scan_begin(cache->graph, q, borealis_ef_search,
											 borealis_iterative_scan == BOREALIS_ITERATIVE_SCAN_RELAXED,
											 (long long) borealis_max_scan_tuples,
											 (long long) Min((double) work_mem * 1024.0 * borealis_scan_mem_multiplier,
															 (double) PG_INT64_MAX),
											 &so->scan),
					   "starting a search");
	so->limit = borealis_iterative_scan == BOREALIS_ITERATIVE_SCAN_OFF ? borealis_ef_search : PG_INT64_MAX;
}

static bool
fetch(IndexScanDesc scan, BhnswScanOpaque so)
{
	const BorealisEngine *eng = borealis_engine();
	int			want = (int) Min((int64) SCAN_BATCH, so->limit - so->returned);
	int			rc;

	if (want <= 0)
		return false;
	for (;;)
	{
		rc = eng->index_scan_next(so->scan, want, so->ids, so->dists, &so->n);
		if (rc != ENGINE_INTERRUPTED)
			break;
		/*
		 * Go stopped early for a pending interrupt. The results it wrote are consumed from the
		 * iterator: when CHECK_FOR_INTERRUPTS returns (interrupts held off, or an interrupt that
		 * is no cancel, such as pg_log_backend_memory_contexts), they must be returned, not
		 * overwritten by the next call.
		 */
		CHECK_FOR_INTERRUPTS();
		if (so->n > 0)
		{
			rc = ENGINE_OK;
			break;
		}
	}
	bhnsw_engine_check(rc, "searching");
	so->pos = 0;
	return so->n > 0;
}

bool
bhnsw_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	BhnswScanOpaque so = (BhnswScanOpaque) scan->opaque;
	BhnswCache *cache;

	if (!so->started)
	{
		start(scan, so);
		pgstat_count_index_scan(scan->indexRelation);
	}
	for (;;)
	{
		uint32		id;

		if (so->exhausted)
			return false;
		if (so->pos >= so->n && !fetch(scan, so))
		{
			so->exhausted = true;
			return false;
		}
		id = so->ids[so->pos];
		so->returned++;
		cache = so->cache;
		/* An element another backend is inserting: Go published it, its TID is being set. */
		if (id >= cache->capacity || !cache->loc[id].present)
		{
			so->pos++;
			continue;
		}
		pg_read_barrier();
		scan->xs_heaptid = cache->loc[id].heaptid;
		scan->xs_recheck = false;
		scan->xs_recheckorderby = false;
		scan->xs_orderbyvals[0] = Float8GetDatum((double) so->dists[so->pos]);
		scan->xs_orderbynulls[0] = false;
		so->pos++;
		return true;
	}
}

void
bhnsw_endscan(IndexScanDesc scan)
{
	BhnswScanOpaque so = (BhnswScanOpaque) scan->opaque;

	end_go_scan(so);
	/* so stays: its callback is registered in the context that frees it. */
	scan->opaque = NULL;
}
