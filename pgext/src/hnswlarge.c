/*
 * hnswlarge.c — element codes larger than a page: vector and halfvec past 2,000 and 4,000
 * dimensions, up to pgvector's 16,000.
 *
 * Such a code is written, before its element tuple, as chunk tuples of BHNSW_CHUNK_WORDS words,
 * one per new page, last chunk first so that each names the next by TID; the element tuple then
 * holds the first chunk's TID where its code would be, with BHNSW_ELEMENT_EXTERNAL set. Chunks
 * never change after they are written (a code is immutable; VACUUM only flips the element's
 * deleted flag), so readers take them under a share lock one page at a time. A crash after the
 * chunks and before the element record leaves unreferenced chunk pages: wasted space, never a
 * wrong graph. Why not a compact code in the index and exact distances from the heap: the AM
 * returns exact distances with no recheck, and PostgreSQL's ORDER BY recheck requires the
 * index's values to be lower bounds, which no compact code gives; see docs/architecture.md.
 */
#include "hnsw.h"

#include "access/generic_xlog.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"

bool
bhnsw_code_inline(int words)
{
	return words <= BHNSW_INLINE_MAX_WORDS;
}

/*
 * Moves et's code (words words at et->vec) into chunk tuples on new pages and leaves the first
 * chunk's TID in its place; returns the element tuple's new size. The first chunk holds the
 * remainder (words modulo BHNSW_CHUNK_WORDS) and is written last: with keep (a build), its page
 * is handed back still locked, for the element and neighbour tuples to use its free space.
 * With wal (an insert), every page is one GenericXLog record with its full image; a build logs
 * all its pages at its end.
 */
Size
bhnsw_externalize(Relation index, BhnswElementTuple et, int words, bool wal, Buffer *keep)
{
	int			first = words % BHNSW_CHUNK_WORDS == 0 ? BHNSW_CHUNK_WORDS : words % BHNSW_CHUNK_WORDS;
	int			nchunks = 1 + (words - first) / BHNSW_CHUNK_WORDS;
	BhnswChunkTuple chunk = palloc0(offsetof(BhnswChunkTupleData, words) + sizeof(float) * BHNSW_CHUNK_WORDS);
	ItemPointerData next;
	int			c;

	ItemPointerSetInvalid(&next);
	for (c = nchunks - 1; c >= 0; c--)
	{
		int			offset = c == 0 ? 0 : first + (c - 1) * BHNSW_CHUNK_WORDS;
		int			n = c == 0 ? first : BHNSW_CHUNK_WORDS;
		Size		size = MAXALIGN(offsetof(BhnswChunkTupleData, words) + sizeof(float) * n);
		GenericXLogState *state = NULL;
		Buffer		buf;
		Page		page;
		OffsetNumber offno;

		chunk->type = BHNSW_CHUNK_TUPLE;
		chunk->nwords = n;
		chunk->id = et->id;
		chunk->offset = offset;
		chunk->next = next;
		memcpy(chunk->words, et->vec + offset, sizeof(float) * n);

		LockRelationForExtension(index, ExclusiveLock);
		buf = ReadBuffer(index, P_NEW);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		UnlockRelationForExtension(index, ExclusiveLock);
		if (wal)
		{
			state = GenericXLogStart(index);
			page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
		}
		else
			page = BufferGetPage(buf);
		bhnsw_init_page(page);
		offno = PageAddItem(page, (Item) chunk, size, InvalidOffsetNumber, false, false);
		if (offno == InvalidOffsetNumber)
			elog(ERROR, "borealis_hnsw: could not place a chunk of element %u in \"%s\"",
				 et->id, RelationGetRelationName(index));
		if (wal)
			GenericXLogFinish(state);
		else
			MarkBufferDirty(buf);
		ItemPointerSet(&next, BufferGetBlockNumber(buf), offno);
		if (c == 0 && keep != NULL)
			*keep = buf;
		else
			UnlockReleaseBuffer(buf);
	}
	pfree(chunk);
	memset(et->vec, 0, sizeof(float) * 2);
	memcpy(et->vec, &next, sizeof(ItemPointerData));
	et->flags |= BHNSW_ELEMENT_EXTERNAL;
	et->dims = words;
	return BHNSW_ELEMENT_SIZE(2);
}

/*
 * The build's hook: when the code in et is too large for its tuple, moves it to chunks and
 * returns the first chunk's page (the chunks took the pages after buf, so the element and its
 * neighbour tuple go after them: in that page's free space when they fit), with *esize the
 * element tuple's size. Otherwise returns buf.
 */
Buffer
bhnsw_build_externalize(Relation index, Buffer buf, BhnswElementTuple et, int words, Size *esize)
{
	Buffer		head;

	if (bhnsw_code_inline(words))
		return buf;
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
	*esize = bhnsw_externalize(index, et, words, false, &head);
	return head;
}

/*
 * et's code of words words: in the tuple, or gathered from its chunks into a buffer this
 * function owns (valid until the next call). A chunk that is missing or does not belong raises
 * ERROR, or, with problem given (the checker), sets *problem and returns NULL.
 */
const float *
bhnsw_element_code(Relation index, BhnswElementTuple et, int words, char **problem)
{
	static float *gathered = NULL;
	ItemPointerData tid;
	int			got = 0;

	if (gathered == NULL)
		gathered = MemoryContextAlloc(TopMemoryContext, sizeof(float) * BHNSW_MAX_CODE_WORDS);
	if (!(et->flags & BHNSW_ELEMENT_EXTERNAL))
	{
		const char *bad;

		if (et->dims == words)
			return et->vec;
		/* A compact sparsevec code (hnswtypes.c), widened to the graph's width. */
		bad = bhnsw_tuple_expand(et->vec, et->dims, gathered, words);
		if (bad == NULL)
			return gathered;
		{
			char	   *msg = psprintf("element %u: %s", et->id, bad);

			if (problem != NULL)
			{
				*problem = msg;
				return NULL;
			}
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("borealis_hnsw index \"%s\": %s", RelationGetRelationName(index), msg),
					 errhint("REINDEX the index.")));
		}
	}
	memcpy(&tid, et->vec, sizeof(ItemPointerData));
	while (ItemPointerIsValid(&tid) && got < words)
	{
		BlockNumber blkno = ItemPointerGetBlockNumber(&tid);
		OffsetNumber offno = ItemPointerGetOffsetNumber(&tid);
		const char *bad = NULL;
		Buffer		buf;
		Page		page;
		BhnswChunkTuple chunk;

		if (blkno == BHNSW_METAPAGE_BLKNO || blkno >= RelationGetNumberOfBlocks(index))
			bad = "points past the index";
		else
		{
			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (PageIsNew(page) || offno < FirstOffsetNumber || offno > PageGetMaxOffsetNumber(page))
				bad = "points to no tuple";
			else
			{
				chunk = (BhnswChunkTuple) PageGetItem(page, PageGetItemId(page, offno));
				if (chunk->type != BHNSW_CHUNK_TUPLE || chunk->id != et->id || chunk->offset != (uint32) got ||
					chunk->nwords == 0 || got + chunk->nwords > words)
					bad = "points to a chunk of another element or place";
				else
				{
					memcpy(gathered + got, chunk->words, sizeof(float) * chunk->nwords);
					got += chunk->nwords;
					tid = chunk->next;
				}
			}
			UnlockReleaseBuffer(buf);
		}
		if (bad != NULL)
		{
			char	   *msg = psprintf("element %u: its code at (%u,%u) %s", et->id, blkno, offno, bad);

			if (problem != NULL)
			{
				*problem = msg;
				return NULL;
			}
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("borealis_hnsw index \"%s\": %s", RelationGetRelationName(index), msg),
					 errhint("REINDEX the index.")));
		}
	}
	if (got != words || ItemPointerIsValid(&tid))
	{
		char	   *msg = psprintf("element %u: its chunks hold %d words, the index has %d", et->id, got, words);

		if (problem != NULL)
		{
			*problem = msg;
			return NULL;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("borealis_hnsw index \"%s\": %s", RelationGetRelationName(index), msg),
				 errhint("REINDEX the index.")));
	}
	return gathered;
}
