/*
 * hnswcache.c — each backend's copy of a borealis_hnsw graph, rebuilt from the pages.
 *
 * A cache is keyed by the index's relfilenode and reflects the meta page's change counter.
 * bhnsw_cache_get compares the counter (one shared buffer lock on the meta page) and, when it
 * moved, replays the changes the meta page's ring lists (re-reading those elements' tuples),
 * or reloads every page when the ring no longer covers them. Readers that rebuild take the
 * meta page's heavyweight lock in share mode, writers hold it exclusive, so a rebuild never
 * sees half an insert on the primary; on a standby, a list may name an element not replayed
 * yet, which the graph tolerates until the change that names it is replayed.
 */
#include "hnsw.h"

#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"

#define BHNSW_MAX_CACHES 8

static BhnswCache caches[BHNSW_MAX_CACHES];
static uint64 cache_clock = 0;
static MemoryContext cache_context = NULL;

BhnswCache *
bhnsw_cache_find(Relation index)
{
	int			i;

	for (i = 0; i < BHNSW_MAX_CACHES; i++)
		if (caches[i].in_use && RelFileNodeEquals(caches[i].node, index->rd_node))
			return &caches[i];
	return NULL;
}

static void
cache_release(BhnswCache *cache)
{
	if (cache->graph != 0)
		borealis_engine()->index_free(cache->graph);
	if (cache->loc)
		pfree(cache->loc);
	memset(cache, 0, sizeof(*cache));
}

void
bhnsw_cache_invalidate(BhnswCache *cache)
{
	cache->valid = false;
}

void
bhnsw_cache_reserve(BhnswCache *cache, uint32 n)
{
	uint32		cap = cache->capacity;

	if (n <= cap)
		return;
	cap = Max(n, Max(1024, cap * 2));
	if (cache->loc == NULL)
		cache->loc = MemoryContextAllocExtended(cache_context, sizeof(BhnswLocation) * cap, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	else
	{
		cache->loc = repalloc_huge(cache->loc, sizeof(BhnswLocation) * cap);
		memset(cache->loc + cache->capacity, 0, sizeof(BhnswLocation) * (cap - cache->capacity));
	}
	cache->capacity = cap;
}

/* Reads one block's tuples into the cache; only ids in `only` (when given) are taken. */
static void
load_block(Relation index, BhnswCache *cache, BlockNumber blkno, bool *only)
{
	const BorealisEngine *eng = borealis_engine();
	Buffer		buf = ReadBuffer(index, blkno);
	Page		page;
	OffsetNumber off,
				maxoff;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	maxoff = PageGetMaxOffsetNumber(page);
	for (off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
	{
		char	   *item = PageGetItem(page, PageGetItemId(page, off));

		if (item[0] == BHNSW_ELEMENT_TUPLE)
		{
			BhnswElementTuple et = (BhnswElementTuple) item;
			BhnswLocation *loc;

			if (only && (et->id >= cache->nids || !only[et->id]))
				continue;
			bhnsw_cache_reserve(cache, et->id + 1);
			loc = &cache->loc[et->id];
			loc->heaptid = et->heaptid;
			ItemPointerSet(&loc->elemtid, blkno, off);
			loc->nbrtid = et->neighbortid;
			loc->level = et->level;
			loc->present = true;
			loc->deleted = et->deleted != 0;
			cache->nids = Max(cache->nids, et->id + 1);
			if (eng->index_restore(cache->graph, et->id, et->level, et->deleted, et->vec) != ENGINE_OK)
			{
				UnlockReleaseBuffer(buf);
				borealis_engine_raise("loading an element of a borealis_hnsw index; REINDEX it");
			}
		}
		else if (item[0] == BHNSW_NEIGHBOR_TUPLE)
		{
			BhnswNeighborTuple nt = (BhnswNeighborTuple) item;

			if (nt->id >= cache->nids || !cache->loc[nt->id].present)
				continue;		/* its element is not loaded (a standby mid-replay) */
			if (only && !only[nt->id])
				continue;
			if (eng->index_set_lists(cache->graph, nt->id, nt->slots, nt->nslots) != ENGINE_OK)
			{
				UnlockReleaseBuffer(buf);
				borealis_engine_raise("loading a neighbour list of a borealis_hnsw index; REINDEX it");
			}
		}
	}
	UnlockReleaseBuffer(buf);
}

static void
set_entry(BhnswCache *cache, BhnswMetaPageData *meta)
{
	if (meta->entry_level >= 0 && meta->entry_id < cache->nids && cache->loc[meta->entry_id].present)
		bhnsw_engine_check(borealis_engine()->index_set_entry(cache->graph, meta->entry_id, meta->entry_level),
						   "setting the entry point");
}

static void
load_full(Relation index, BhnswCache *cache, BhnswMetaPageData *meta)
{
	const BorealisEngine *eng = borealis_engine();
	BlockNumber nblocks,
				blkno;

	if (cache->graph != 0)
		eng->index_free(cache->graph);
	cache->graph = 0;
	cache->nids = 0;
	if (cache->loc)
		memset(cache->loc, 0, sizeof(BhnswLocation) * cache->capacity);
	cache->dims = meta->dims;
	cache->metric = meta->metric;
	cache->m = meta->m;
	cache->ef_construction = meta->ef_construction;
	bhnsw_engine_check(eng->index_new(meta->dims, meta->metric, meta->m, meta->ef_construction, 0, &cache->graph),
					   "creating a graph");
	bhnsw_cache_reserve(cache, meta->element_count + 1);

	nblocks = RelationGetNumberOfBlocks(index);
	for (blkno = BHNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		CHECK_FOR_INTERRUPTS();
		load_block(index, cache, blkno, NULL);
	}
	set_entry(cache, meta);
}

/* Re-reads the elements the ring lists as changed after the cache's counter. */
static void
load_changes(Relation index, BhnswCache *cache, BhnswMetaPageData *meta)
{
	bool	   *only;
	BlockNumber *blocks;
	int			nblocks = 0;
	int			i,
				j;
	uint32		maxid = cache->nids;

	for (i = 0; i < BHNSW_LOG_SIZE; i++)
		if (meta->log[i].counter > cache->counter)
			maxid = Max(maxid, meta->log[i].id + 1);
	bhnsw_cache_reserve(cache, maxid);
	only = palloc0(sizeof(bool) * maxid);
	blocks = palloc(sizeof(BlockNumber) * BHNSW_LOG_SIZE * 2);
	for (i = 0; i < BHNSW_LOG_SIZE; i++)
	{
		BhnswLogEntry *e = &meta->log[i];

		if (e->counter <= cache->counter)
			continue;
		only[e->id] = true;
		blocks[nblocks++] = e->blkno;
		/* An element's neighbour tuple is on its page or the next one. */
		blocks[nblocks++] = e->blkno + 1;
	}
	/* Element tuples first, in block order, then lists: sort and dedupe the blocks. */
	for (i = 1; i < nblocks; i++)
		for (j = i; j > 0 && blocks[j - 1] > blocks[j]; j--)
		{
			BlockNumber t = blocks[j];

			blocks[j] = blocks[j - 1];
			blocks[j - 1] = t;
		}
	cache->nids = Max(cache->nids, maxid);
	{
		BlockNumber relblocks = RelationGetNumberOfBlocks(index);

		for (i = 0; i < nblocks; i++)
			if ((i == 0 || blocks[i] != blocks[i - 1]) && blocks[i] < relblocks)
				load_block(index, cache, blocks[i], only);
	}
	set_entry(cache, meta);
	pfree(only);
	pfree(blocks);
}

/*
 * Returns the backend's cache of index, brought up to the meta page's counter. lock_held says
 * the caller holds the meta page's heavyweight lock already (inserts and VACUUM hold it
 * exclusive).
 */
BhnswCache *
bhnsw_cache_get(Relation index, bool lock_held)
{
	BhnswCache *cache = bhnsw_cache_find(index);
	BhnswMetaPageData *meta;
	int			i;

	if (cache_context == NULL)
		cache_context = AllocSetContextCreate(TopMemoryContext, "borealis_hnsw caches", ALLOCSET_DEFAULT_SIZES);

	meta = palloc(sizeof(*meta));
	bhnsw_read_meta(index, meta);
	if (cache && cache->valid && cache->counter == meta->counter && cache->build_id == meta->build_id)
	{
		cache->last_used = ++cache_clock;
		pfree(meta);
		return cache;
	}

	if (cache == NULL)
	{
		BhnswCache *victim = &caches[0];

		for (i = 0; i < BHNSW_MAX_CACHES; i++)
		{
			if (!caches[i].in_use)
			{
				victim = &caches[i];
				break;
			}
			if (caches[i].last_used < victim->last_used)
				victim = &caches[i];
		}
		if (victim->in_use)
			cache_release(victim);
		cache = victim;
		cache->in_use = true;
		cache->node = index->rd_node;
	}
	cache->last_used = ++cache_clock;

	if (!lock_held)
		LockPage(index, BHNSW_METAPAGE_BLKNO, ShareLock);
	/* Re-read under the lock: an insert may have finished while we waited. */
	bhnsw_read_meta(index, meta);
	if (!(cache->valid && cache->counter == meta->counter && cache->build_id == meta->build_id))
	{
		bool		incremental = cache->valid && cache->graph != 0 && cache->build_id == meta->build_id &&
			cache->counter + 1 >= meta->log_complete_from && cache->counter < meta->counter;

		cache->valid = false;
		if (incremental)
			load_changes(index, cache, meta);
		else
			load_full(index, cache, meta);
		cache->counter = meta->counter;
		cache->build_id = meta->build_id;
		cache->valid = true;
	}
	if (!lock_held)
		UnlockPage(index, BHNSW_METAPAGE_BLKNO, ShareLock);
	pfree(meta);
	return cache;
}
