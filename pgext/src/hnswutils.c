/*
 * hnswutils.c — page and WAL helpers shared by build, insert, vacuum and scans.
 */
#include "hnsw.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"

void
bhnsw_init_page(Page page)
{
	PageInit(page, BLCKSZ, sizeof(BhnswPageOpaqueData));
	BhnswPageGetOpaque(page)->page_id = BHNSW_PAGE_ID;
}

/* Copies the first len bytes of the meta page; fails clearly on a page that is not one. */
static void
read_meta(Relation index, BhnswMetaPageData *meta, Size len)
{
	Buffer		buf = ReadBuffer(index, BHNSW_METAPAGE_BLKNO);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(meta, BhnswPageGetMeta(BufferGetPage(buf)), len);
	UnlockReleaseBuffer(buf);
	if (meta->magic != BHNSW_MAGIC || meta->version < BHNSW_LAYOUT_MIN_VERSION || meta->version > BHNSW_LAYOUT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not a borealis_hnsw index of layout version %d",
						RelationGetRelationName(index), BHNSW_LAYOUT_VERSION),
				 errhint("REINDEX the index.")));
}

/* Copies the meta page. */
void
bhnsw_read_meta(Relation index, BhnswMetaPageData *meta)
{
	read_meta(index, meta, sizeof(*meta));
}

/*
 * Copies the meta page's fields before its change ring (meta->log is left as it was): what a
 * scan checks its graph against. The ring is 7.5 kB, and copying it for every scan touched
 * 240 cache lines (the page's and the copy's) to read 44 bytes.
 */
void
bhnsw_read_meta_head(Relation index, BhnswMetaPageData *meta)
{
	read_meta(index, meta, offsetof(BhnswMetaPageData, log));
}

/*
 * Turns an engine status into PostgreSQL's terms, with no Go frame on the stack: an interrupt
 * runs CHECK_FOR_INTERRUPTS (which raises the cancel or timeout), an error raises ERROR.
 */
void
bhnsw_engine_check(int rc, const char *what)
{
	if (rc == ENGINE_OK || rc == ENGINE_RUNNING)
		return;
	if (rc == ENGINE_INTERRUPTED)
	{
		CHECK_FOR_INTERRUPTS();
		return;
	}
	borealis_engine_raise(what);
}

BhnswVector *
bhnsw_datum_vector(Datum value)
{
	return (BhnswVector *) PG_DETOAST_DATUM(value);
}

char *
bhnsw_tid_string(ItemPointer tid)
{
	return psprintf("(%u,%u)", ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid));
}

static int
compare_by_neighbor_block(const void *a, const void *b, void *arg)
{
	BhnswCache *cache = arg;
	BlockNumber ba = ItemPointerGetBlockNumber(&cache->loc[*(const uint32 *) a].nbrtid);
	BlockNumber bb = ItemPointerGetBlockNumber(&cache->loc[*(const uint32 *) b].nbrtid);

	return ba < bb ? -1 : ba > bb ? 1 : 0;
}

/* Adds blk to the batch's blocks (kept sorted) unless present; false when it has no room. */
static bool
batch_add(BlockNumber *blocks, int *n, BlockNumber blk)
{
	int			i,
				j;

	for (i = 0; i < *n; i++)
		if (blocks[i] == blk)
			return true;
	if (*n == MAX_GENERIC_XLOG_PAGES)
		return false;
	for (i = 0; i < *n && blocks[i] < blk; i++)
		;
	for (j = *n; j > i; j--)
		blocks[j] = blocks[j - 1];
	blocks[i] = blk;
	(*n)++;
	return true;
}

/*
 * Writes the graph's current lists (and deleted flags) of ids onto their pages, a GenericXLog
 * record per four pages. Each list is rewritten whole, so a crash between records leaves every
 * list either old or new, both valid graphs. When dropped is given, it receives the elements
 * that some list held before and no longer does (candidates for having lost their way in).
 *
 * Inserts run concurrently, so a batch's pages are locked in ascending block order (no two
 * writers wait on each other) and the lists are read from the graph only once the pages are
 * locked: whichever writer locks a page last writes the newest lists, never an older copy
 * over a newer one.
 */
void
bhnsw_write_lists(Relation index, BhnswCache *cache, uint32 *ids, int n,
				  uint32 **dropped, int *ndropped)
{
	const BorealisEngine *eng = borealis_engine();
	int			stride = 2 + BHNSW_NSLOTS(cache->m, BHNSW_MAX_LEVEL);
	int			lists_cap = 16 * stride;
	uint32	   *lists = palloc(sizeof(uint32) * lists_cap);
	int			dropped_cap = 0;
	int			first = 0;

	if (dropped)
	{
		*ndropped = 0;
		dropped_cap = 256;
		*dropped = palloc(sizeof(uint32) * dropped_cap);
	}
	qsort_arg(ids, n, sizeof(uint32), compare_by_neighbor_block, cache);
	while (first < n)
	{
		BlockNumber blocks[MAX_GENERIC_XLOG_PAGES];
		Buffer		bufs[MAX_GENERIC_XLOG_PAGES];
		Page		pages[MAX_GENERIC_XLOG_PAGES];
		int			nblocks = 0;
		int			last,
					i,
					j,
					pos;
		GenericXLogState *state;

		/* The batch: ids from first on whose neighbour and element pages fit in four. */
		for (last = first; last < n; last++)
		{
			BhnswLocation *loc = &cache->loc[ids[last]];
			BlockNumber saved[MAX_GENERIC_XLOG_PAGES];
			int			nsaved = nblocks;

			memcpy(saved, blocks, sizeof(BlockNumber) * nblocks);
			if (!batch_add(blocks, &nblocks, ItemPointerGetBlockNumber(&loc->nbrtid)) ||
				!batch_add(blocks, &nblocks, ItemPointerGetBlockNumber(&loc->elemtid)))
			{
				memcpy(blocks, saved, sizeof(BlockNumber) * nsaved);
				nblocks = nsaved;
				break;
			}
		}
		Assert(last > first);

		state = GenericXLogStart(index);
		for (j = 0; j < nblocks; j++)
		{
			bufs[j] = ReadBuffer(index, blocks[j]);
			LockBuffer(bufs[j], BUFFER_LOCK_EXCLUSIVE);
			pages[j] = GenericXLogRegisterBuffer(state, bufs[j], 0);
		}
		/* Every list of the batch in one call into the engine, now that its pages are locked. */
		if ((last - first) * stride > lists_cap)
		{
			lists_cap = (last - first) * stride;
			lists = repalloc(lists, sizeof(uint32) * lists_cap);
		}
		{
			int			used = 0;

			bhnsw_engine_check(eng->index_nodes_lists(cache->graph, ids + first, last - first, lists, lists_cap, &used),
							   "reading the changed lists");
		}
		pos = 0;
		for (i = first; i < last; i++)
		{
			BhnswLocation *loc = &cache->loc[ids[i]];
			BlockNumber blk = ItemPointerGetBlockNumber(&loc->nbrtid);
			BlockNumber eblk = ItemPointerGetBlockNumber(&loc->elemtid);
			Page		page = NULL,
						epage = NULL;
			BhnswNeighborTuple nt;
			BhnswElementTuple et;
			uint32	   *slots;
			int			level,
						deleted,
						nslots;

			for (j = 0; j < nblocks; j++)
			{
				if (blocks[j] == blk)
					page = pages[j];
				if (blocks[j] == eblk)
					epage = pages[j];
			}
			level = (int32) lists[pos];
			deleted = lists[pos + 1];
			if (level < 0)
				elog(ERROR, "borealis_hnsw index \"%s\": element %u is not in the graph",
					 RelationGetRelationName(index), ids[i]);
			nslots = BHNSW_NSLOTS(cache->m, level);
			slots = lists + pos + 2;
			pos += 2 + nslots;

			nt = (BhnswNeighborTuple) PageGetItem(page, PageGetItemId(page, ItemPointerGetOffsetNumber(&loc->nbrtid)));
			if (nt->type != BHNSW_NEIGHBOR_TUPLE || nt->id != ids[i] || nt->nslots != nslots)
				elog(ERROR, "borealis_hnsw index \"%s\": neighbour tuple of element %u is not where its element says",
					 RelationGetRelationName(index), ids[i]);
			if (dropped)
			{
				int			a,
							b;

				for (a = 0; a < nslots; a++)
				{
					bool		kept = false;

					if (nt->slots[a] == BHNSW_NO_NEIGHBOR)
						continue;
					for (b = 0; b < nslots && !kept; b++)
						kept = slots[b] == nt->slots[a];
					if (kept)
						continue;
					if (*ndropped == dropped_cap)
					{
						dropped_cap *= 2;
						*dropped = repalloc(*dropped, sizeof(uint32) * dropped_cap);
					}
					(*dropped)[(*ndropped)++] = nt->slots[a];
				}
			}
			memcpy(nt->slots, slots, sizeof(uint32) * nslots);

			et = (BhnswElementTuple) PageGetItem(epage, PageGetItemId(epage, ItemPointerGetOffsetNumber(&loc->elemtid)));
			et->deleted = deleted ? 1 : 0;
			loc->deleted = deleted != 0;
		}
		GenericXLogFinish(state);
		for (j = 0; j < nblocks; j++)
			UnlockReleaseBuffer(bufs[j]);
		first = last;
	}
	pfree(lists);
}

/*
 * Ends a change: bumps the meta page's counter, stores the entry point and logs the changed
 * ids so other backends' caches can replay them. Returns the new counter.
 */
uint32
bhnsw_commit_meta(Relation index, BhnswCache *cache, uint32 *ids, int n, bool force_full_reload)
{
	const BorealisEngine *eng = borealis_engine();
	GenericXLogState *state;
	Buffer		buf;
	BhnswMetaPage meta;
	uint32		entry_id = 0;
	int			entry_level;
	uint32		counter;
	int			i;

	buf = ReadBuffer(index, BHNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	/* Read under the lock: with concurrent inserts a later commit never stores an older entry. */
	bhnsw_engine_check(eng->index_entry(cache->graph, &entry_id, &entry_level), "reading the entry point");
	state = GenericXLogStart(index);
	meta = BhnswPageGetMeta(GenericXLogRegisterBuffer(state, buf, 0));
	counter = ++meta->counter;
	meta->entry_id = entry_id;
	meta->entry_level = entry_level;
	if (force_full_reload || n > BHNSW_LOG_SIZE)
		meta->log_complete_from = counter + 1;
	else
	{
		for (i = 0; i < n; i++)
		{
			BhnswLogEntry *e = &meta->log[meta->log_head];

			if (e->counter != 0 && e->counter + 1 > meta->log_complete_from)
				meta->log_complete_from = e->counter + 1;
			e->counter = counter;
			e->id = ids[i];
			e->blkno = ItemPointerGetBlockNumber(&cache->loc[ids[i]].elemtid);
			e->offno = ItemPointerGetOffsetNumber(&cache->loc[ids[i]].elemtid);
			meta->log_head = (meta->log_head + 1) % BHNSW_LOG_SIZE;
		}
	}
	GenericXLogFinish(state);
	/* Under the same lock, so a backend that reads this counter finds the file current. */
	bhnsw_cache_committed(cache, counter);
	UnlockReleaseBuffer(buf);
	return counter;
}

/*
 * Links every element the entry point cannot reach (see hnsw/connect.go); returns how
 * many ids it wrote into changed. An interrupted pass keeps what it changed and, when
 * CHECK_FOR_INTERRUPTS does not raise (interrupts held off), carries on.
 */
int
bhnsw_connect_all(BhnswCache *cache, uint32 *changed, int capacity)
{
	int			total = 0;
	int			n;
	int			rc;

	for (;;)
	{
		n = 0;
		rc = borealis_engine()->index_connect_all(cache->graph, changed + total, capacity - total, &n);
		if (rc == ENGINE_ERROR)
			borealis_engine_raise("linking unreachable elements");
		total += n;
		if (rc != ENGINE_INTERRUPTED)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return total;
}
