/*
 * hnswbuild.c — CREATE INDEX: C scans the heap, has the Go engine validate the vectors in
 * batches and spills them to a temporary file; it then creates the index's shared graph file
 * (hnswcache.c) and hands the vectors back in chunks to Go, which inserts them straight into
 * the mapped file with borealis.build_threads goroutines while C sleeps on its latch, polling
 * them every 10 ms, reporting progress and running CHECK_FOR_INTERRUPTS (a cancel frees the
 * graph, which tells the goroutines to stop and does not wait for them; the engine unmaps the
 * file after them). C then writes the pages from the graph and WAL-logs them (past shared
 * buffers where it can: write_pages), records each element's location in the file and moves
 * the file into place: the first query maps it as it is. The graph never lives in the
 * backend's heap, so maintenance_work_mem does not bound it: the kernel pages the file, and a
 * build larger than memory slows down instead of failing.
 */
#include "hnsw.h"

#include "access/tableam.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "common/pg_prng.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buffile.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "storage/smgr.h"
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

/*
 * Where write_pages puts the index's pages.
 *
 * Direct (every element's code fits its tuple): each page is built in local memory, WAL-logged
 * with log_newpages 32 at a time and written with smgrextend, as nbtree's build writes its
 * pages. Through shared buffers, each page cost a write of 8 kB of zeros to extend the file,
 * a buffer to claim (and on a fresh server to fault in) and a second write of the dirty buffer
 * later: 13% of the building backend's CPU at 50,000 x 1,536. A checkpoint knows nothing of
 * pages written past the buffers, so the last page of each file segment (and the final one)
 * is written with an fsync request for the checkpointer, and when a checkpoint started while
 * the pages were written (its redo pointer moved, so recovery might not replay them) the
 * index is fsynced before the build returns: PostgreSQL 17's bulk writer does the same.
 *
 * Through buffers (codes larger than a page, hnswlarge.c): its chunk pages take buffers of
 * their own, so the whole index does, WAL-logged with log_newpage_range at the end.
 */
#define SINK_BATCH XLR_MAX_BLOCK_ID

typedef struct PageSink
{
	Relation	index;
	bool		direct;
	Buffer		metabuf;		/* through buffers: the meta page's, held to the end */
	Buffer		buf;			/* through buffers: the current page's */
	Page		meta;			/* the meta page (block 0) */
	Page		page;			/* the current page */
	BlockNumber blkno;			/* its number */
	/* direct */
	char	   *batch;			/* SINK_BATCH pages: those not yet written, the current one last */
	int			npending;		/* pages in batch */
	BlockNumber first;			/* number of batch's first page */
	XLogRecPtr	redo;			/* the redo pointer before the first page was written */
} PageSink;

/* Logs (when the index needs WAL) and writes the direct sink's pending pages. */
static void
sink_flush(PageSink *ps, bool last)
{
	BlockNumber blknos[SINK_BATCH];
	Page		pages[SINK_BATCH];
	int			i;

	if (ps->npending == 0)
		return;
	for (i = 0; i < ps->npending; i++)
	{
		blknos[i] = ps->first + i;
		pages[i] = (Page) (ps->batch + (Size) i * BLCKSZ);
	}
	if (RelationNeedsWAL(ps->index))
		log_newpages(&ps->index->rd_node, MAIN_FORKNUM, ps->npending, blknos, pages, true);
	for (i = 0; i < ps->npending; i++)
	{
		bool		register_sync = (last && i == ps->npending - 1) || (blknos[i] + 1) % RELSEG_SIZE == 0;

		PageSetChecksumInplace(pages[i], blknos[i]);
		smgrextend(RelationGetSmgr(ps->index), MAIN_FORKNUM, blknos[i], (char *) pages[i], !register_sync);
	}
	ps->first += ps->npending;
	ps->npending = 0;
}

/* Starts the sink with the meta page (block 0) and an empty first page (block 1). */
static void
sink_begin(PageSink *ps, Relation index, bool direct)
{
	memset(ps, 0, sizeof(*ps));
	ps->index = index;
	ps->direct = direct;
	if (!direct)
	{
		ps->metabuf = new_page(index, MAIN_FORKNUM);
		Assert(BufferGetBlockNumber(ps->metabuf) == BHNSW_METAPAGE_BLKNO);
		ps->meta = BufferGetPage(ps->metabuf);
		ps->buf = new_page(index, MAIN_FORKNUM);
		ps->page = BufferGetPage(ps->buf);
		ps->blkno = BufferGetBlockNumber(ps->buf);
		return;
	}
	ps->redo = GetRedoRecPtr();
	ps->meta = palloc0(BLCKSZ);
	ps->batch = palloc0(SINK_BATCH * (Size) BLCKSZ);
	/* Block 0 stays zero (a valid new page) until the meta page is complete, at the end. */
	smgrextend(RelationGetSmgr(index), MAIN_FORKNUM, BHNSW_METAPAGE_BLKNO, ps->batch, true);
	bhnsw_init_page(ps->meta);
	ps->first = BHNSW_METAPAGE_BLKNO + 1;
	ps->npending = 1;
	ps->page = (Page) ps->batch;
	ps->blkno = ps->first;
	bhnsw_init_page(ps->page);
}

/* The current page is full: starts the next one. */
static void
sink_next(PageSink *ps)
{
	if (!ps->direct)
	{
		MarkBufferDirty(ps->buf);
		UnlockReleaseBuffer(ps->buf);
		ps->buf = new_page(ps->index, MAIN_FORKNUM);
		ps->page = BufferGetPage(ps->buf);
		ps->blkno = BufferGetBlockNumber(ps->buf);
		return;
	}
	if (ps->npending == SINK_BATCH)
		sink_flush(ps, false);
	ps->page = (Page) (ps->batch + (Size) ps->npending * BLCKSZ);
	ps->blkno = ps->first + ps->npending;
	ps->npending++;
	bhnsw_init_page(ps->page);
}

/* Lets a cancel in: CHECK_FOR_INTERRUPTS does nothing while a content lock is held. */
static void
sink_check_interrupts(PageSink *ps)
{
	if (!INTERRUPTS_PENDING_CONDITION())
		return;
	if (ps->direct)
	{
		CHECK_FOR_INTERRUPTS();
		return;
	}

	/*
	 * Nobody else can see the index before the build commits, so the pages do not need their
	 * locks meanwhile.
	 */
	LockBuffer(ps->buf, BUFFER_LOCK_UNLOCK);
	LockBuffer(ps->metabuf, BUFFER_LOCK_UNLOCK);
	CHECK_FOR_INTERRUPTS();
	LockBuffer(ps->metabuf, BUFFER_LOCK_EXCLUSIVE);
	LockBuffer(ps->buf, BUFFER_LOCK_EXCLUSIVE);
}

/* Writes the last page and the meta page; the index is complete and crash-safe. */
static void
sink_end(PageSink *ps)
{
	if (!ps->direct)
	{
		MarkBufferDirty(ps->buf);
		UnlockReleaseBuffer(ps->buf);
		MarkBufferDirty(ps->metabuf);
		UnlockReleaseBuffer(ps->metabuf);
		if (RelationNeedsWAL(ps->index))
			log_newpage_range(ps->index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(ps->index), true);
		return;
	}
	sink_flush(ps, true);
	if (RelationNeedsWAL(ps->index))
		log_newpage(&ps->index->rd_node, MAIN_FORKNUM, BHNSW_METAPAGE_BLKNO, ps->meta, true);
	PageSetChecksumInplace(ps->meta, BHNSW_METAPAGE_BLKNO);
	smgrwrite(RelationGetSmgr(ps->index), MAIN_FORKNUM, BHNSW_METAPAGE_BLKNO, (char *) ps->meta, false);
	/* Every segment has an fsync request queued; a checkpoint that began since may miss it. */
	if (RelationNeedsWAL(ps->index) && GetRedoRecPtr() != ps->redo)
		smgrimmedsync(RelationGetSmgr(ps->index), MAIN_FORKNUM);
	pfree(ps->batch);
	pfree(ps->meta);
}

static void
write_pages(BuildState *bs)
{
	Relation	index = bs->index;
	PageSink	sink;
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
	sink_begin(&sink, index, bhnsw_code_inline(bs->dims));
	init_meta_page(sink.meta, bs);
	meta = BhnswPageGetMeta(sink.meta);

	for (id = 0; id < bs->ntuples; id++)
	{
		int			level;
		int			k = id % EXPORT_BATCH;
		Size		nsize;
		OffsetNumber eoff;
		BhnswLocation *loc = &bs->cache->loc[id];

		if (k == 0)
		{
			sink_check_interrupts(&sink);
			bhnsw_engine_check(bs->eng->index_export(bs->graph, id, (int) Min(EXPORT_BATCH, bs->ntuples - id),
													 levels, vecs, slots, maxslots),
							   "reading the graph");
		}
		/* A slow disk, for tests (through buffers the sleep holds the content locks, as a slow write would). */
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
		if (!sink.direct)
		{
			sink.buf = bhnsw_build_externalize(index, sink.buf, et, bs->dims, &esize);
			sink.page = BufferGetPage(sink.buf);
			sink.blkno = BufferGetBlockNumber(sink.buf);
		}
		nt->type = BHNSW_NEIGHBOR_TUPLE;
		nt->level = level;
		nt->nslots = BHNSW_NSLOTS(bs->m, level);
		nt->id = id;
		memcpy(nt->slots, slots + (Size) k * maxslots, sizeof(uint32) * nt->nslots);

		if (PageGetFreeSpace(sink.page) < esize + sizeof(ItemIdData))
			sink_next(&sink);
		page = sink.page;
		/* The neighbour tuple goes right after the element, or first on the next page. */
		if (PageGetFreeSpace(page) >= esize + nsize + 2 * sizeof(ItemIdData))
			ItemPointerSet(&et->neighbortid, sink.blkno, PageGetMaxOffsetNumber(page) + 2);
		else
			ItemPointerSet(&et->neighbortid, sink.blkno + 1, FirstOffsetNumber);
		eoff = PageAddItem(page, (Item) et, esize, InvalidOffsetNumber, false, false);
		if (eoff == InvalidOffsetNumber)
			elog(ERROR, "borealis_hnsw: failed to add element %lld to \"%s\"", (long long) id, RelationGetRelationName(index));
		/* Where the element lives, for scans of the graph file (hnswcache.c). */
		loc->heaptid = et->heaptid;
		ItemPointerSet(&loc->elemtid, sink.blkno, eoff);
		loc->nbrtid = et->neighbortid;
		loc->level = level;
		loc->deleted = false;
		loc->present = true;
		if (ItemPointerGetBlockNumber(&et->neighbortid) != sink.blkno)
			sink_next(&sink);
		if (PageAddItem(sink.page, (Item) nt, nsize, InvalidOffsetNumber, false, false) != ItemPointerGetOffsetNumber(&et->neighbortid) ||
			sink.blkno != ItemPointerGetBlockNumber(&et->neighbortid))
			elog(ERROR, "borealis_hnsw: neighbour tuple of element %lld misplaced in \"%s\"", (long long) id, RelationGetRelationName(index));
		if ((id & 1023) == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, id);
	}
	bhnsw_engine_check(bs->eng->index_entry(bs->graph, &entry_id, &entry_level), "reading the entry point");
	meta->entry_id = entry_id;
	meta->entry_level = entry_level;
	meta->element_count = bs->ntuples;
	meta->insert_page = sink.blkno;
	sink_end(&sink);
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
