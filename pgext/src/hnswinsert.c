/*
 * hnswinsert.c — aminsert: link one element into the graph on its pages.
 *
 * Inserts into one index are serialised by the heavyweight lock on its meta page (exclusive;
 * graph rebuilds take it shared). The graph is mapped before the lock is taken; under it, Go
 * links the new element into the shared graph in place (hnsw AddTracked, which names every element whose lists changed), then write, each
 * with GenericXLog: (1) the meta page's element count with the new element and its lists,
 * (2) the changed lists, four pages per record, (3) the meta page's counter, entry point and
 * change ring. A crash between records leaves a valid graph: every list is old or new whole,
 * and the element's id is never handed out twice.
 */
#include "hnsw.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"

#define MAX_CHANGED 65536

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

/* Record (1): appends the element and its neighbour tuple, and counts the id as used. */
static void
append_element(Relation index, BhnswCache *cache, uint32 id, ItemPointer heaptid)
{
	const BorealisEngine *eng = borealis_engine();
	Size		esize = BHNSW_ELEMENT_SIZE(cache->dims);
	BhnswElementTuple et = palloc0(esize);
	BhnswNeighborTuple nt;
	Size		nsize;
	int			level,
				deleted;
	GenericXLogState *state;
	Buffer		metabuf,
				buf,
				nbuf = InvalidBuffer;
	Page		metapage,
				page,
				npage;
	BhnswMetaPage meta;
	BhnswLocation *loc;

	bhnsw_engine_check(eng->index_node_level(cache->graph, id, &level, &deleted), "reading the new node");
	nsize = BHNSW_NEIGHBOR_SIZE(cache->m, level);
	nt = palloc0(nsize);
	et->type = BHNSW_ELEMENT_TUPLE;
	et->level = level;
	et->id = id;
	et->heaptid = *heaptid;
	et->dims = cache->dims;
	bhnsw_engine_check(eng->index_node_vector(cache->graph, id, et->vec), "reading the new vector");
	if (!bhnsw_code_inline(cache->dims))
		esize = bhnsw_externalize(index, et, cache->dims, true, NULL);
	nt->type = BHNSW_NEIGHBOR_TUPLE;
	nt->level = level;
	nt->nslots = BHNSW_NSLOTS(cache->m, level);
	nt->id = id;
	bhnsw_engine_check(eng->index_node_lists(cache->graph, id, nt->slots, nt->nslots), "reading the new lists");

	metabuf = ReadBuffer(index, BHNSW_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
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

	loc = &cache->loc[id];
	ItemPointerSet(&loc->elemtid, BufferGetBlockNumber(buf),
				   PageAddItem(page, (Item) et, esize, InvalidOffsetNumber, false, false));
	if (PageAddItem(npage, (Item) nt, nsize, InvalidOffsetNumber, false, false) != ItemPointerGetOffsetNumber(&et->neighbortid) ||
		ItemPointerGetOffsetNumber(&loc->elemtid) == InvalidOffsetNumber)
		elog(ERROR, "borealis_hnsw: could not place element %u in \"%s\"", id, RelationGetRelationName(index));
	loc->nbrtid = et->neighbortid;
	loc->level = level;
	loc->deleted = false;
	pg_write_barrier();
	loc->present = true;
	cache->nids = Max(cache->nids, id + 1);

	meta->element_count = id + 1;
	meta->insert_page = BufferGetBlockNumber(BufferIsValid(nbuf) ? nbuf : buf);
	GenericXLogFinish(state);
	if (BufferIsValid(nbuf))
		UnlockReleaseBuffer(nbuf);
	UnlockReleaseBuffer(buf);
	UnlockReleaseBuffer(metabuf);
	pfree(et);
	pfree(nt);
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
	BhnswCache *cache;
	BhnswMetaPageData *meta;
	uint32	   *changed;
	uint32	   *others;
	int			nchanged = 0,
				nothers = 0,
				rc,
				i;
	uint32		id;
	int			attempt;
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

	/*
	 * Map (build, catch up) the graph before taking the meta page's lock exclusive, so a fresh
	 * connection's first INSERT does not stall every other writer and refreshing reader while
	 * it loads; under the lock the graph is normally current already.
	 */
	for (attempt = 0;; attempt++)
	{
		cache = bhnsw_cache_get(index, false, true);
		bhnsw_cache_unpin(cache);
		LockPage(index, BHNSW_METAPAGE_BLKNO, ExclusiveLock);
		cache = bhnsw_cache_get(index, true, true);
		if (dims != type.dims || type.words != (int) cache->dims)
		{
			bhnsw_cache_unpin(cache);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("cannot index row %s of \"%s\": the vector has %d dimensions, the index has %d",
							bhnsw_tid_string(heap_tid), RelationGetRelationName(heap), dims, type.dims)));
		}

		meta = palloc(sizeof(*meta));
		bhnsw_read_meta(index, meta);
		id = meta->element_count;
		changed = palloc(sizeof(uint32) * MAX_CHANGED);

		/*
		 * From here the graph runs ahead of the pages until the last record is written: the
		 * header names this backend as its writer, and a failure tears the file
		 * (bhnsw_cache_abandon) so that nobody trusts it again. The heap TID goes in before Go
		 * publishes the element.
		 */
		bhnsw_cache_begin_write(cache);
		cache->loc[id].heaptid = *heap_tid;
		cache->loc[id].present = false;
		rc = eng->index_insert(cache->graph, id, code, changed, MAX_CHANGED, &nchanged);
		if (rc != ENGINE_FULL)
			break;
		/* The mapped graph has no room left (its upper layers): map a larger one and retry. */
		bhnsw_cache_abandon(cache);
		bhnsw_cache_unpin(cache);
		UnlockPage(index, BHNSW_METAPAGE_BLKNO, ExclusiveLock);
		if (attempt >= 2)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("borealis_hnsw graph of \"%s\" stays full after %d rebuilds", RelationGetRelationName(index), attempt + 1)));
	}
	PG_TRY();
	{
		if (rc == ENGINE_ERROR)
		{
			char		msg[256];
			int			level = -1,
						deleted;

			eng->last_error(msg, sizeof(msg));
			/* The graph refuses a bad vector before changing anything. */
			if (eng->index_node_level(cache->graph, id, &level, &deleted) == ENGINE_OK && level < 0)
				bhnsw_cache_end_write(cache, meta->counter);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("cannot index row %s of \"%s\": %s",
							bhnsw_tid_string(heap_tid), RelationGetRelationName(heap), msg),
					 BHNSW_KIND_METRIC(cache->metric) == BHNSW_METRIC_COSINE ?
					 errhint("Cosine distance needs a non-zero vector.") : 0));
		}
		bhnsw_engine_check(rc, "inserting into the graph");

		append_element(index, cache, id, heap_tid);
		others = palloc(sizeof(uint32) * nchanged);
		for (i = 0; i < nchanged; i++)
			if (changed[i] != id)
				others[nothers++] = changed[i];
		{
			uint32	   *dropped = NULL;
			int			ndropped = 0,
						nrelinked = 0;

			bhnsw_write_lists(index, cache, others, nothers, &dropped, &ndropped);
			if (ndropped > 0)
			{
				uint32	   *relinked = palloc(sizeof(uint32) * ndropped);

				bhnsw_engine_check(eng->index_reconnect(cache->graph, dropped, ndropped, relinked, ndropped, &nrelinked),
								   "relinking elements an insert disconnected");
				if (nrelinked > 0)
				{
					bhnsw_write_lists(index, cache, relinked, nrelinked, NULL, NULL);
					changed = repalloc(changed, sizeof(uint32) * (nchanged + nrelinked));
					memcpy(changed + nchanged, relinked, sizeof(uint32) * nrelinked);
					nchanged += nrelinked;
				}
			}
		}
		bhnsw_cache_end_write(cache, bhnsw_commit_meta(index, cache, changed, nchanged, false));
	}
	PG_CATCH();
	{
		/* Unless the vector was refused untouched, the graph ran ahead of the pages. */
		if (pg_atomic_read_u32(&cache->hdr->writer_pid) == (uint32) MyProcPid)
			bhnsw_cache_abandon(cache);
		bhnsw_cache_unpin(cache);
		PG_RE_THROW();
	}
	PG_END_TRY();
	bhnsw_cache_unpin(cache);
	UnlockPage(index, BHNSW_METAPAGE_BLKNO, ExclusiveLock);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	return false;
}
