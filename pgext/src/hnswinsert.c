/*
 * hnswinsert.c — aminsert: link one element into the graph on its pages.
 *
 * Inserts into one index run concurrently, as pgvector's do: each holds the meta page's
 * heavyweight lock in RowExclusiveLock, which conflicts with the ShareLock a graph rebuild or
 * catch-up takes and with VACUUM's ExclusiveLock, not with other inserts. (A backend left
 * with a private copy of the graph, when the graph directory is unwritable, takes it
 * ExclusiveLock instead, since others' inserts do not reach its copy.) The graph is mapped
 * (built, caught up) before the lock is taken. Under it:
 *
 *   prepare  Go finds the new element's neighbours in the shared graph without changing it,
 *            and hands back its vector as stored, its level and its lists;
 *   (1)      one GenericXLog record appends the element tuple and its neighbour tuple, with
 *            those lists, and counts its id (the meta page's element count, taken under the
 *            meta buffer's lock, so ids are dense and never handed out twice);
 *   commit   Go claims the id, writes the element into the graph, links its neighbours back
 *            and publishes it (after C wrote its heap TID);
 *   (2)      the neighbours' changed lists, read from the graph while their pages are locked
 *            (so the last writer of a page writes the newest lists), four pages a record,
 *            in ascending block order;
 *   (3)      relinking of elements a full list dropped and a search no longer finds;
 *   (4)      the meta page's counter, entry point and change ring; the file's counter moves
 *            with it under the same buffer lock, so other backends find the file current.
 *
 * Nobody can reach an element before commit links it, and commit runs after (1), so no list
 * on any page names an element whose tuple is not there. A crash between records leaves a
 * valid graph: each list old or new as a whole. While it changes the shared graph an insert
 * holds a writer slot in the file's header; a backend that dies holding one makes the file
 * untrusted, and one that fails retires it (both lead to a rebuild from the pages).
 */
#include "hnsw.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"

#define MAX_CHANGED 65536
#define MAX_ATTEMPTS 8

static Buffer
extend_index(Relation index)
{
	Buffer		buf;

	LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBuffer(index, P_NEW);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
}

/*
 * Record (1): appends the element and its neighbour tuple and counts its id, which it returns
 * in *id. Returns false, writing nothing, when the mapped graph has no room for another id.
 */
static bool
append_element(Relation index, BhnswCache *cache, ItemPointer heaptid, float *stored, int level,
			   uint32 *slots, uint32 *id)
{
	Size		esize = BHNSW_ELEMENT_SIZE(cache->dims);
	Size		nsize = BHNSW_NEIGHBOR_SIZE(cache->m, level);
	BhnswElementTuple et = palloc0(esize);
	BhnswNeighborTuple nt = palloc0(nsize);
	GenericXLogState *state;
	Buffer		metabuf,
				buf,
				nbuf = InvalidBuffer;
	Page		metapage,
				page,
				npage;
	BhnswMetaPage meta;
	BhnswLocation *loc;
	OffsetNumber eoff;

	et->type = BHNSW_ELEMENT_TUPLE;
	et->level = level;
	et->heaptid = *heaptid;
	et->dims = bhnsw_tuple_code(cache->metric, stored, cache->dims, et->vec);
	esize = BHNSW_ELEMENT_SIZE(et->dims);
	nt->type = BHNSW_NEIGHBOR_TUPLE;
	nt->level = level;
	nt->nslots = BHNSW_NSLOTS(cache->m, level);
	memcpy(nt->slots, slots, sizeof(uint32) * nt->nslots);

	metabuf = ReadBuffer(index, BHNSW_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	meta = BhnswPageGetMeta(BufferGetPage(metabuf));
	if (meta->element_count >= cache->capacity)
	{
		UnlockReleaseBuffer(metabuf);
		pfree(et);
		pfree(nt);
		return false;
	}
	*id = meta->element_count;
	et->id = nt->id = *id;
	/*
	 * A vector too large for one page goes first to chunk pages named by its id, while the meta
	 * page stays locked so that no other insert takes that id.
	 */
	if (!bhnsw_code_inline(cache->dims))
		esize = bhnsw_externalize(index, et, cache->dims, true, NULL);
	state = GenericXLogStart(index);
	metapage = GenericXLogRegisterBuffer(state, metabuf, 0);
	meta = BhnswPageGetMeta(metapage);

	if (meta->insert_page == BHNSW_METAPAGE_BLKNO)
	{
		buf = extend_index(index);
		page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
		bhnsw_init_page(page);
	}
	else
	{
		buf = ReadBuffer(index, meta->insert_page);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		if (PageGetFreeSpace(page) < esize + sizeof(ItemIdData))
		{
			GenericXLogAbort(state);
			UnlockReleaseBuffer(buf);
			state = GenericXLogStart(index);
			metapage = GenericXLogRegisterBuffer(state, metabuf, 0);
			meta = BhnswPageGetMeta(metapage);
			buf = extend_index(index);
			page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
			bhnsw_init_page(page);
		}
	}
	npage = page;
	if (PageGetFreeSpace(page) < esize + nsize + 2 * sizeof(ItemIdData))
	{
		nbuf = extend_index(index);
		npage = GenericXLogRegisterBuffer(state, nbuf, GENERIC_XLOG_FULL_IMAGE);
		bhnsw_init_page(npage);
		ItemPointerSet(&et->neighbortid, BufferGetBlockNumber(nbuf), FirstOffsetNumber);
	}
	else
		ItemPointerSet(&et->neighbortid, BufferGetBlockNumber(buf), PageGetMaxOffsetNumber(page) + 2);

	eoff = PageAddItem(page, (Item) et, esize, InvalidOffsetNumber, false, false);
	if (eoff == InvalidOffsetNumber ||
		PageAddItem(npage, (Item) nt, nsize, InvalidOffsetNumber, false, false) != ItemPointerGetOffsetNumber(&et->neighbortid))
		elog(ERROR, "borealis_hnsw: could not place element %u in \"%s\"", *id, RelationGetRelationName(index));

	/* The heap TID is in place before Go publishes the element (commit). */
	loc = &cache->loc[*id];
	loc->heaptid = *heaptid;
	ItemPointerSet(&loc->elemtid, BufferGetBlockNumber(buf), eoff);
	loc->nbrtid = et->neighbortid;
	loc->level = level;
	loc->deleted = false;
	pg_write_barrier();
	loc->present = true;
	bhnsw_cache_note_id(cache, *id);

	meta->element_count = *id + 1;
	meta->insert_page = BufferGetBlockNumber(BufferIsValid(nbuf) ? nbuf : buf);
	GenericXLogFinish(state);
	if (BufferIsValid(nbuf))
		UnlockReleaseBuffer(nbuf);
	UnlockReleaseBuffer(buf);
	UnlockReleaseBuffer(metabuf);
	pfree(et);
	pfree(nt);
	return true;
}

/* Raises the error for a vector the graph refused (nothing was changed). */
static void
refuse_vector(int metric, Relation heap, ItemPointer heap_tid)
{
	char		msg[256];

	borealis_engine()->last_error(msg, sizeof(msg));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("cannot index row %s of \"%s\": %s",
					bhnsw_tid_string(heap_tid), RelationGetRelationName(heap), msg),
			 BHNSW_KIND_METRIC(metric) == BHNSW_METRIC_COSINE ?
			 errhint("Cosine distance needs a non-zero vector.") : 0));
}

bool
bhnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
			 Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
			 IndexInfo *info)
{
	const BorealisEngine *eng;
	BhnswElemType type;
	float	   *code;
	int			dims;
	bool		zero;
	BhnswCache *cache = NULL;
	uint32	   *changed;
	uint32	   *slots;
	float	   *stored;
	int			nchanged = 0,
				level = 0,
				rc,
				attempt;
	uint32		id = 0;
	long long	prep = 0;
	volatile bool need_room = false;
	volatile bool committed = false;
	uint64		level_key;
	LOCKMODE	lockmode = RowExclusiveLock;
	MemoryContext old,
				tmp;

	if (isnull[0])
		return false;

	tmp = AllocSetContextCreate(CurrentMemoryContext, "borealis_hnsw insert", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(tmp);
	eng = borealis_engine();
	bhnsw_elemtype_of(index, &type);
	code = palloc(sizeof(float) * type.words);
	dims = bhnsw_encode(&type, values[0], code, &zero);
	/* Levels are drawn from the row's address: the id is only known once the tuple is written. */
	level_key = ((uint64) ItemPointerGetBlockNumber(heap_tid) << 16) | ItemPointerGetOffsetNumber(heap_tid);
	changed = palloc(sizeof(uint32) * MAX_CHANGED);

	for (attempt = 0;; attempt++)
	{
		if (attempt >= MAX_ATTEMPTS)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("borealis_hnsw graph of \"%s\" stays full or stale after %d attempts",
							RelationGetRelationName(index), attempt)));
		/*
		 * Map (build, catch up, grow) the graph before taking the lock, so a fresh connection's
		 * first INSERT does not stall every other writer while it loads.
		 */
		cache = bhnsw_cache_get(index, false, true);
		if (dims != type.dims || type.words != (int) cache->dims)
		{
			bhnsw_cache_unpin(cache);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("cannot index row %s of \"%s\": the vector has %d dimensions, the index has %d",
							bhnsw_tid_string(heap_tid), RelationGetRelationName(heap), dims, type.dims)));
		}
		if (cache->shared)
		{
			lockmode = RowExclusiveLock;
			LockPage(index, BHNSW_METAPAGE_BLKNO, lockmode);
			/* Under the lock nothing rebuilds or catches up the graph: ours must be current. */
			if (!bhnsw_cache_is_current(index, cache))
			{
				UnlockPage(index, BHNSW_METAPAGE_BLKNO, lockmode);
				bhnsw_cache_unpin(cache);
				continue;
			}
		}
		else
		{
			/*
			 * A private copy (the graph directory is unwritable): other backends' inserts do not
			 * reach it, so it is caught up with the lock held exclusive, and this backend's
			 * inserts wait for every other one, as before inserts ran concurrently.
			 */
			bhnsw_cache_unpin(cache);
			lockmode = ExclusiveLock;
			LockPage(index, BHNSW_METAPAGE_BLKNO, lockmode);
			cache = bhnsw_cache_get(index, true, true);
		}

		slots = palloc(sizeof(uint32) * BHNSW_NSLOTS(cache->m, BHNSW_MAX_LEVEL));
		stored = palloc(sizeof(float) * cache->dims);
		bhnsw_cache_begin_insert(cache);
		rc = eng->index_insert_prepare(cache->graph, code, level_key, stored, &level, slots,
									   BHNSW_NSLOTS(cache->m, BHNSW_MAX_LEVEL), &prep);
		if (rc == ENGINE_ERROR)
		{
			int			metric = cache->metric;

			/* The graph refuses a bad vector before changing anything. */
			bhnsw_cache_end_insert(cache);
			UnlockPage(index, BHNSW_METAPAGE_BLKNO, lockmode);
			bhnsw_cache_unpin(cache);
			refuse_vector(metric, heap, heap_tid);
		}
		if (rc == ENGINE_FULL)
		{
			/* No upper-layer room left in the mapping: it is replaced by a larger one. */
			bhnsw_cache_end_insert(cache);
			bhnsw_cache_abandon(cache);
			UnlockPage(index, BHNSW_METAPAGE_BLKNO, lockmode);
			bhnsw_cache_unpin(cache);
			continue;
		}
		bhnsw_engine_check(rc, "finding the new element's neighbours");

		PG_TRY();
		{
			need_room = !append_element(index, cache, heap_tid, stored, level, slots, &id);
			if (!need_room)
			{
				rc = eng->index_insert_commit(prep, id, changed, MAX_CHANGED - 1, &nchanged);
				committed = true;
				bhnsw_engine_check(rc, "linking the new element into the graph");
			}
			else
				eng->index_insert_release(prep);
		}
		PG_CATCH();
		{
			if (!committed)
				eng->index_insert_release(prep);
			bhnsw_cache_abandon(cache);
			bhnsw_cache_end_insert(cache);
			bhnsw_cache_unpin(cache);
			PG_RE_THROW();
		}
		PG_END_TRY();
		if (!need_room)
			break;
		/* Others filled the mapping since we mapped it: map one with room and start again. */
		bhnsw_cache_end_insert(cache);
		UnlockPage(index, BHNSW_METAPAGE_BLKNO, lockmode);
		bhnsw_cache_unpin(cache);
	}

	PG_TRY();
	{
		uint32	   *dropped = NULL;
		int			ndropped = 0,
					nrelinked = 0;

		bhnsw_write_lists(index, cache, changed, nchanged, &dropped, &ndropped);
		if (ndropped > 0)
		{
			uint32	   *relinked = palloc(sizeof(uint32) * ndropped);

			bhnsw_engine_check(eng->index_reconnect(cache->graph, dropped, ndropped, relinked, ndropped, &nrelinked),
							   "relinking elements an insert disconnected");
			if (nrelinked > 0)
			{
				bhnsw_write_lists(index, cache, relinked, nrelinked, NULL, NULL);
				changed = repalloc(changed, sizeof(uint32) * (nchanged + nrelinked + 1));
				memcpy(changed + nchanged, relinked, sizeof(uint32) * nrelinked);
				nchanged += nrelinked;
			}
		}
		/* The ring names the new element too, so other nodes' caches load it. */
		changed[nchanged++] = id;
		bhnsw_commit_meta(index, cache, changed, nchanged, false);
	}
	PG_CATCH();
	{
		/* The graph ran ahead of the pages: nobody may trust this mapping again. */
		bhnsw_cache_abandon(cache);
		bhnsw_cache_end_insert(cache);
		bhnsw_cache_unpin(cache);
		PG_RE_THROW();
	}
	PG_END_TRY();
	bhnsw_cache_end_insert(cache);
	bhnsw_cache_unpin(cache);
	UnlockPage(index, BHNSW_METAPAGE_BLKNO, lockmode);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	return false;
}
