/*
 * hnswbuild.c — CREATE INDEX: C scans the heap, has the Go engine validate the vectors in
 * batches and spills them to a temporary file; it then creates the index's shared graph file
 * (hnswcache.c) and hands the vectors back in chunks to Go, which inserts them straight into
 * the mapped file with borealis.build_threads goroutines while C sleeps on its latch, polling
 * them every 10 ms, reporting progress and running CHECK_FOR_INTERRUPTS (a cancel frees the
 * graph, which tells the goroutines to stop and does not wait for them; the engine unmaps the
 * file after them). C then writes the pages from the graph, WAL-logs them
 * with log_newpage_range, records each element's location in the file and moves the file
 * into place: the first query maps it as it is. The graph never lives in the backend's heap,
 * so maintenance_work_mem does not bound it: the kernel pages the file, and a build larger
 * than memory slows down instead of failing.
 */
#include "hnsw.h"

#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "common/pg_prng.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buffile.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"

#define BUILD_BATCH 1024
#define BUILD_CHUNK_BYTES (4 << 20)	/* vectors handed to Go at once in the graph phase */
#define BUILD_POLL_MS 10L			/* how often C looks at the graph phase's goroutines */
#define EXPORT_BATCH 64				/* elements exported from Go at once in the page phase */
/* Ids are below hnsw.MaxID, and the file has room for twice the rows. */
#define BHNSW_MAX_ELEMENTS ((int64) 1 << 30)

typedef struct BuildState
{
	Relation	heap;
	Relation	index;
	const BorealisEngine *eng;
	BhnswCache *cache;			/* the graph file being built (NULL before the scan ends) */
	long long	graph;			/* its Go handle */
	BufFile    *spill;			/* the scanned element codes, in id order */
	uint32		build_id;
	int			dims;			/* words of an element code */
	int			metric;			/* kind (hnswtypes.h) */
	BhnswElemType type;
	int			m;
	int			ef_construction;
	int64		ntuples;
	int64		code_words;		/* words the rows' codes take compact (sparsevec: 1 + 2n each) */
	ItemPointerData *tids;		/* heap TID of element id i */
	int64		tids_capacity;
	float	   *batch;
	ItemPointerData *batch_tids;
	int			nbatch;
	MemoryContext tmpctx;
} BuildState;

static void
flush_batch(BuildState *bs)
{
	int			bad = -1;
	int			rc;

	if (bs->nbatch == 0)
		return;
	rc = bs->eng->index_check_vectors(bs->metric, bs->dims, bs->nbatch, bs->batch, &bad);
	if (rc == ENGINE_ERROR && bad >= 0)
	{
		char		msg[256];

		bs->eng->last_error(msg, sizeof(msg));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot index row %s of \"%s\": %s",
						bhnsw_tid_string(&bs->batch_tids[bad]), RelationGetRelationName(bs->heap), msg),
				 BHNSW_KIND_METRIC(bs->metric) == BHNSW_METRIC_COSINE ?
				 errhint("Cosine distance needs a non-zero vector: fix or delete the row, or index it with %s.",
						 bhnsw_opclass_name(BHNSW_KIND_TYPE(bs->metric), BHNSW_METRIC_L2)) :
				 errhint("Fix or delete the row.")));
	}
	bhnsw_engine_check(rc, "checking vectors for the build");
	if (bs->ntuples + bs->nbatch > BHNSW_MAX_ELEMENTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("borealis_hnsw index \"%s\" cannot hold more than %u rows",
						RelationGetRelationName(bs->index), (unsigned) BHNSW_MAX_ELEMENTS)));
	BufFileWrite(bs->spill, bs->batch, sizeof(float) * bs->dims * bs->nbatch);

	if (bs->ntuples + bs->nbatch > bs->tids_capacity)
	{
		bs->tids_capacity = Max(bs->tids_capacity * 2, bs->ntuples + bs->nbatch);
		bs->tids = repalloc_huge(bs->tids, sizeof(ItemPointerData) * bs->tids_capacity);
	}
	memcpy(bs->tids + bs->ntuples, bs->batch_tids, sizeof(ItemPointerData) * bs->nbatch);
	bs->ntuples += bs->nbatch;
	bs->nbatch = 0;
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, bs->ntuples);
}

static void
build_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool tupleIsAlive, void *state)
{
	BuildState *bs = state;
	MemoryContext old;
	int			dims;
	bool		zero;

	if (isnull[0])
		return;					/* NULLs are not indexed, as in pgvector */

	old = MemoryContextSwitchTo(bs->tmpctx);
	dims = bhnsw_encode(&bs->type, values[0], bs->batch + (int64) bs->nbatch * bs->dims, &zero);
	if (dims != bs->type.dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot index row %s of \"%s\": the vector has %d dimensions, the index has %d",
						bhnsw_tid_string(tid), RelationGetRelationName(bs->heap), dims, bs->type.dims),
				 errhint("Every vector in an indexed column must have the column's dimensions.")));
	if (BHNSW_KIND_TYPE(bs->metric) == BHNSW_TYPE_SPARSEVEC)
	{
		uint32		n;

		memcpy(&n, bs->batch + (int64) bs->nbatch * bs->dims, sizeof(n));
		bs->code_words += 1 + 2 * (int64) Min(n, (uint32) ((bs->dims - 1) / 2));
	}
	bs->batch_tids[bs->nbatch++] = *tid;
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpctx);

	if (bs->nbatch == BUILD_BATCH)
		flush_batch(bs);
	if (borealis_debug_build_delay_us > 0)
		pg_usleep(borealis_debug_build_delay_us);
}

/*
 * Reads the spilled vectors back in chunks and has Go insert each into the mapped graph,
 * waiting in 100 ms slices while reporting progress; a cancel or error frees the graph first,
 * which stops the goroutines before PostgreSQL unwinds.
 */
static void
build_graph(BuildState *bs)
{
	int			chunk = Max(1, BUILD_CHUNK_BYTES / (int) (sizeof(float) * bs->dims));
	float	   *buf = palloc(sizeof(float) * bs->dims * (Size) chunk);
	long long	done = 0;
	int64		first;
	int			rc;

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, BHNSW_PHASE_GRAPH);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, bs->ntuples);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
	if (BufFileSeek(bs->spill, 0, 0, SEEK_SET) != 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not rewind the build's temporary file: %m")));
	for (first = 0; first < bs->ntuples; first += chunk)
	{
		int			n = (int) Min((int64) chunk, bs->ntuples - first);

		if (BufFileRead(bs->spill, buf, sizeof(float) * bs->dims * (Size) n) != sizeof(float) * bs->dims * (Size) n)
			ereport(ERROR, (errcode_for_file_access(), errmsg("could not read the build's temporary file: %m")));
		CHECK_FOR_INTERRUPTS();
		bhnsw_engine_check(bs->eng->index_build_insert(bs->graph, first, n, buf, borealis_build_threads),
						   "starting the build");
		PG_TRY();
		{
			for (;;)
			{
				/*
				 * The backend sleeps here, on its latch, not inside Go: a cancel's signal sets
				 * the latch and this thread raises it itself. A wait inside Go needed a Go
				 * timer, a P and other threads to run first, seconds when the backend is
				 * starved of CPU by a higher-priority load (hard rule 4).
				 */
				rc = bs->eng->index_build_wait(bs->graph, 0, &done);
				pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, done);
				if (rc == ENGINE_OK)
					break;
				if (rc == ENGINE_ERROR)
					borealis_engine_raise("building the graph");
				CHECK_FOR_INTERRUPTS();
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 BUILD_POLL_MS, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
		}
		PG_CATCH();
		{
			/*
			 * Tells the goroutines to stop, without waiting for them: they read the engine's
			 * copy of buf, and the mapping goes through index_unmap, after them.
			 */
			bs->eng->index_free(bs->graph);
			bs->graph = 0;
			bs->cache->graph = 0;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	pfree(buf);
}

static void
init_meta_page(Page page, BuildState *bs)
{
	BhnswMetaPage meta;

	bhnsw_init_page(page);
	meta = BhnswPageGetMeta(page);
	memset(meta, 0, sizeof(*meta));
	meta->magic = BHNSW_MAGIC;
	meta->version = BHNSW_LAYOUT_VERSION;
	meta->dims = bs->dims;
	meta->metric = bs->metric;
	meta->m = bs->m;
	meta->ef_construction = bs->ef_construction;
	meta->entry_level = -1;
	meta->counter = 1;
	meta->log_complete_from = 2;
	meta->build_id = bs->build_id;
	((PageHeader) page)->pd_lower = ((char *) meta + sizeof(BhnswMetaPageData)) - (char *) page;
}

static Buffer
new_page(Relation index, ForkNumber fork)
{
	Buffer		buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	bhnsw_init_page(BufferGetPage(buf));
	return buf;
}

static void
write_pages(BuildState *bs)
{
	Relation	index = bs->index;
	Buffer		metabuf,
				buf;
	Page		page;
	BhnswMetaPage meta;
	Size		esize = BHNSW_ELEMENT_SIZE(bs->dims);
	int			maxslots = BHNSW_NSLOTS(bs->m, BHNSW_MAX_LEVEL);
	BhnswElementTuple et = palloc0(esize);
	BhnswNeighborTuple nt = palloc0(BHNSW_NEIGHBOR_SIZE(bs->m, BHNSW_MAX_LEVEL));
	int		   *levels = palloc(sizeof(int) * EXPORT_BATCH);
	float	   *vecs = palloc(sizeof(float) * bs->dims * EXPORT_BATCH);
	uint32	   *slots = palloc(sizeof(uint32) * maxslots * EXPORT_BATCH);
	uint32		entry_id = 0;
	int			entry_level = -1;
	int64		id;

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, BHNSW_PHASE_WRITE);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
	metabuf = new_page(index, MAIN_FORKNUM);
	Assert(BufferGetBlockNumber(metabuf) == BHNSW_METAPAGE_BLKNO);
	init_meta_page(BufferGetPage(metabuf), bs);
	meta = BhnswPageGetMeta(BufferGetPage(metabuf));

	buf = new_page(index, MAIN_FORKNUM);
	for (id = 0; id < bs->ntuples; id++)
	{
		int			level;
		int			k = id % EXPORT_BATCH;
		Size		nsize;
		OffsetNumber eoff;
		BhnswLocation *loc = &bs->cache->loc[id];

		if (k == 0)
		{
			/*
			 * CHECK_FOR_INTERRUPTS does nothing while a content lock is held (interrupts are
			 * held off), and this loop holds two: let go of them to take a cancel. Nobody
			 * else can see the index before the build commits, so the pages do not need them
			 * meanwhile.
			 */
			if (INTERRUPTS_PENDING_CONDITION())
			{
				LockBuffer(buf, BUFFER_LOCK_UNLOCK);
				LockBuffer(metabuf, BUFFER_LOCK_UNLOCK);
				CHECK_FOR_INTERRUPTS();
				LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
				LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			}
			bhnsw_engine_check(bs->eng->index_export(bs->graph, id, (int) Min(EXPORT_BATCH, bs->ntuples - id),
													 levels, vecs, slots, maxslots),
							   "reading the graph");
		}
		/* A slow disk, for tests: the sleep holds the content locks, as a slow write would. */
		if (borealis_debug_build_delay_us > 0)
			pg_usleep(borealis_debug_build_delay_us);
		level = levels[k];
		nsize = BHNSW_NEIGHBOR_SIZE(bs->m, level);
		et->type = BHNSW_ELEMENT_TUPLE;
		et->level = level;
		et->deleted = 0;
		et->id = id;
		et->heaptid = bs->tids[id];
		memset(et->vec, 0, sizeof(float) * bs->dims);
		et->dims = bhnsw_tuple_code(bs->metric, vecs + (Size) k * bs->dims, bs->dims, et->vec);
		esize = BHNSW_ELEMENT_SIZE(et->dims);
		buf = bhnsw_build_externalize(index, buf, et, bs->dims, &esize);
		nt->type = BHNSW_NEIGHBOR_TUPLE;
		nt->level = level;
		nt->nslots = BHNSW_NSLOTS(bs->m, level);
		nt->id = id;
		memcpy(nt->slots, slots + (Size) k * maxslots, sizeof(uint32) * nt->nslots);

		page = BufferGetPage(buf);
		if (PageGetFreeSpace(page) < esize + sizeof(ItemIdData))
		{
			MarkBufferDirty(buf);
			UnlockReleaseBuffer(buf);
			buf = new_page(index, MAIN_FORKNUM);
			page = BufferGetPage(buf);
		}
		/* The neighbour tuple goes right after the element, or first on the next page. */
		if (PageGetFreeSpace(page) >= esize + nsize + 2 * sizeof(ItemIdData))
			ItemPointerSet(&et->neighbortid, BufferGetBlockNumber(buf), PageGetMaxOffsetNumber(page) + 2);
		else
			ItemPointerSet(&et->neighbortid, BufferGetBlockNumber(buf) + 1, FirstOffsetNumber);
		eoff = PageAddItem(page, (Item) et, esize, InvalidOffsetNumber, false, false);
		if (eoff == InvalidOffsetNumber)
			elog(ERROR, "borealis_hnsw: failed to add element %lld to \"%s\"", (long long) id, RelationGetRelationName(index));
		/* Where the element lives, for scans of the graph file (hnswcache.c). */
		loc->heaptid = et->heaptid;
		ItemPointerSet(&loc->elemtid, BufferGetBlockNumber(buf), eoff);
		loc->nbrtid = et->neighbortid;
		loc->level = level;
		loc->deleted = false;
		loc->present = true;
		if (ItemPointerGetBlockNumber(&et->neighbortid) != BufferGetBlockNumber(buf))
		{
			MarkBufferDirty(buf);
			UnlockReleaseBuffer(buf);
			buf = new_page(index, MAIN_FORKNUM);
			page = BufferGetPage(buf);
		}
		if (PageAddItem(page, (Item) nt, nsize, InvalidOffsetNumber, false, false) != ItemPointerGetOffsetNumber(&et->neighbortid) ||
			BufferGetBlockNumber(buf) != ItemPointerGetBlockNumber(&et->neighbortid))
			elog(ERROR, "borealis_hnsw: neighbour tuple of element %lld misplaced in \"%s\"", (long long) id, RelationGetRelationName(index));
		if ((id & 1023) == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, id);
	}
	bhnsw_engine_check(bs->eng->index_entry(bs->graph, &entry_id, &entry_level), "reading the entry point");
	meta->entry_id = entry_id;
	meta->entry_level = entry_level;
	meta->element_count = bs->ntuples;
	meta->insert_page = BufferGetBlockNumber(buf);
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
	MarkBufferDirty(metabuf);
	UnlockReleaseBuffer(metabuf);

	if (RelationNeedsWAL(index))
		log_newpage_range(index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(index), true);
	pfree(et);
	pfree(nt);
	pfree(levels);
	pfree(vecs);
	pfree(slots);
}

/*
 * The graph file for the rows scanned: room for twice them, as a file built from the pages
 * (inserts fill the rest). A private mapping (no file could be made) is anonymous memory the
 * kernel cannot page out without swap, so it must fit in maintenance_work_mem.
 */
static void
create_graph(BuildState *bs)
{
	BhnswMetaPageData meta;
	uint32		capacity = (uint32) Min((int64) bs->ntuples * 2 + 1024, (int64) BHNSW_MAX_ELEMENTS);

	memset(&meta, 0, sizeof(meta));
	meta.dims = bs->dims;
	meta.metric = bs->metric;
	meta.m = bs->m;
	meta.ef_construction = bs->ef_construction;
	meta.build_id = bs->build_id;
	bs->cache = bhnsw_cache_build_begin(bs->index, &meta, capacity,
										bhnsw_arena_words(bs->metric, bs->dims, capacity, bs->ntuples, bs->code_words));
	bs->graph = bs->cache->graph;
	if (!bs->cache->shared && bs->cache->size > (Size) maintenance_work_mem * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("borealis_hnsw graph for index \"%s\" does not fit in maintenance_work_mem",
						RelationGetRelationName(bs->index)),
				 errdetail("No graph file could be created, and a private graph of %lld rows of %d dimensions needs %lld MB; maintenance_work_mem is %d MB.",
						   (long long) bs->ntuples, bs->type.dims, (long long) (bs->cache->size >> 20) + 1,
						   maintenance_work_mem >> 10),
				 errhint("Make borealis.graph_directory writable (the build then pages a file), or raise maintenance_work_mem to at least %lld MB.",
						 (long long) (bs->cache->size >> 20) + 1)));
}

IndexBuildResult *
bhnsw_build(Relation heap, Relation index, IndexInfo *info)
{
	IndexBuildResult *result;
	BuildState	bs;
	double		reltuples;

	MemSet(&bs, 0, sizeof(bs));
	bs.heap = heap;
	bs.index = index;
	bhnsw_elemtype_of(index, &bs.type);
	bs.dims = bs.type.words;
	bs.metric = bs.type.kind;
	bhnsw_reloptions_of(index, &bs.m, &bs.ef_construction);
	bhnsw_check_quantization(index, bs.type.kind);
	if (bs.ef_construction < 2 * bs.m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction must be greater than or equal to 2 * m"),
				 errdetail("m is %d and ef_construction is %d.", bs.m, bs.ef_construction),
				 errhint("Raise ef_construction to at least %d or lower m.", 2 * bs.m)));
	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	bs.eng = borealis_engine();
	bs.build_id = pg_prng_uint32(&pg_global_prng_state);
	bs.tids_capacity = 1024;
	bs.tids = palloc_extended(sizeof(ItemPointerData) * bs.tids_capacity, MCXT_ALLOC_HUGE);
	bs.batch = palloc(sizeof(float) * bs.dims * BUILD_BATCH);
	bs.batch_tids = palloc(sizeof(ItemPointerData) * BUILD_BATCH);
	bs.tmpctx = AllocSetContextCreate(CurrentMemoryContext, "borealis_hnsw build tuple", ALLOCSET_DEFAULT_SIZES);
	/* The vectors wait here (the kernel's page cache, temp_tablespaces) until the graph file exists. */
	bs.spill = BufFileCreateTemp(false);

	PG_TRY();
	{
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, BHNSW_PHASE_LOAD);
		reltuples = table_index_build_scan(heap, index, info, true, true, build_callback, &bs, NULL);
		flush_batch(&bs);
		create_graph(&bs);
		build_graph(&bs);
		BufFileClose(bs.spill);
		bs.spill = NULL;
		{
			uint32	   *changed = palloc(sizeof(uint32) * Max(bs.ntuples, 1));

			bhnsw_connect_all(bs.cache, changed, Max(bs.ntuples, 1));
			pfree(changed);
		}
		write_pages(&bs);
	}
	PG_CATCH();
	{
		if (bs.cache != NULL)
		{
			/* Stops the goroutines; the mapping goes through the engine, after them. */
			if (bs.cache->graph != 0)
				bs.eng->index_free(bs.cache->graph);
			bs.cache->graph = 0;
			bhnsw_cache_build_abort(bs.cache);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	/* The graph file is complete: the first query maps it as it is. */
	bhnsw_cache_build_finish(bs.cache, 1, (uint32) bs.ntuples);
	MemoryContextDelete(bs.tmpctx);
	pfree(bs.tids);
	/* REINDEX and TRUNCATE: the graph file of the old relfilenode is of no use any more. */
	bhnsw_cache_forget_index(MyDatabaseId, RelationGetRelid(index), index->rd_node.relNode);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs.ntuples;
	return result;
}

/* The init fork of an unlogged index: an empty meta page. */
void
bhnsw_buildempty(Relation index)
{
	BuildState	bs;
	Buffer		buf;

	MemSet(&bs, 0, sizeof(bs));
	bs.dims = bhnsw_dims_of(index);
	bs.metric = bhnsw_metric_of(index);
	bhnsw_reloptions_of(index, &bs.m, &bs.ef_construction);
	buf = ReadBufferExtended(index, INIT_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	START_CRIT_SECTION();
	init_meta_page(BufferGetPage(buf), &bs);
	MarkBufferDirty(buf);
	log_newpage_buffer(buf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buf);
}

char *
bhnsw_buildphasename(int64 phase)
{
	switch (phase)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case BHNSW_PHASE_LOAD:
			return "loading tuples";
		case BHNSW_PHASE_GRAPH:
			return "building graph";
		case BHNSW_PHASE_WRITE:
			return "writing pages";
		default:
			return NULL;
	}
}
