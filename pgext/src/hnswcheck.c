/*
 * hnswcheck.c — borealis_hnsw_check(index regclass): verifies an index's pages and reports
 * each problem as a row (none when healthy). It reads the pages directly, not the cache, so it
 * checks what a crash or a standby's replay left on disk: the meta page, every element and
 * neighbour tuple, every reference, and that every live element is reachable from the entry
 * point. It runs entirely in C.
 */
#include "hnsw.h"

#include <math.h>

#include "access/relation.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#define MAX_PROBLEMS 100

typedef struct CheckElement
{
	bool		present;
	bool		deleted;
	bool		has_lists;
	uint8		level;
	ItemPointerData nbrtid;
	uint32	   *slots;
} CheckElement;

typedef struct CheckState
{
	Tuplestorestate *store;
	TupleDesc	desc;
	int			nproblems;
} CheckState;

static void
problem(CheckState *cs, const char *fmt,...) pg_attribute_printf(2, 3);

static void
problem(CheckState *cs, const char *fmt,...)
{
	va_list		args;
	char		buf[512];
	Datum		value;
	bool		isnull = false;

	if (++cs->nproblems > MAX_PROBLEMS)
		return;
	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	value = CStringGetTextDatum(buf);
	tuplestore_putvalues(cs->store, cs->desc, &value, &isnull);
}

static void
check_index(Relation index, CheckState *cs)
{
	BhnswMetaPageData *meta = palloc(sizeof(*meta));
	Buffer		buf;
	BlockNumber nblocks,
				blkno;
	CheckElement *el;
	uint32		n,
				id,
				live = 0,
				reached = 0;
	uint32	   *queue;
	bool	   *seen;
	int			head = 0,
				tail = 0;

	buf = ReadBuffer(index, BHNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(meta, BhnswPageGetMeta(BufferGetPage(buf)), sizeof(*meta));
	UnlockReleaseBuffer(buf);
	if (meta->magic != BHNSW_MAGIC)
	{
		problem(cs, "meta page: bad magic %08x", meta->magic);
		return;
	}
	if (meta->version < BHNSW_LAYOUT_MIN_VERSION || meta->version > BHNSW_LAYOUT_VERSION)
	{
		problem(cs, "meta page: layout version %u, expected %d", meta->version, BHNSW_LAYOUT_VERSION);
		return;
	}
	if (meta->dims < 1 || meta->dims > BHNSW_MAX_CODE_WORDS)
		problem(cs, "meta page: %u dimensions", meta->dims);
	if (!bhnsw_kind_valid(meta->metric))
		problem(cs, "meta page: unknown metric %u", meta->metric);
	if (meta->m < BHNSW_MIN_M || meta->m > BHNSW_MAX_M)
		problem(cs, "meta page: m = %u out of range", meta->m);
	if (cs->nproblems > 0)
		return;

	n = meta->element_count;
	el = palloc_extended(sizeof(CheckElement) * Max(n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	nblocks = RelationGetNumberOfBlocks(index);
	for (blkno = 1; blkno < nblocks; blkno++)
	{
		Page		page;
		OffsetNumber off,
					maxoff;

		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page) && BhnswPageGetOpaque(page)->page_id != BHNSW_PAGE_ID)
			problem(cs, "block %u: not a borealis_hnsw page", blkno);
		maxoff = PageIsNew(page) ? 0 : PageGetMaxOffsetNumber(page);
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId		iid = PageGetItemId(page, off);
			char	   *item = PageGetItem(page, iid);

			if (item[0] == BHNSW_ELEMENT_TUPLE)
			{
				BhnswElementTuple et = (BhnswElementTuple) item;
				uint32		j;

				if (et->id >= n)
				{
					problem(cs, "block %u offset %u: element id %u beyond element count %u", blkno, off, et->id, n);
					continue;
				}
				if (el[et->id].present)
				{
					problem(cs, "element %u appears twice (again at block %u offset %u)", et->id, blkno, off);
					continue;
				}
				if (ItemIdGetLength(iid) < offsetof(BhnswElementTupleData, vec) +
					sizeof(float) * ((et->flags & BHNSW_ELEMENT_EXTERNAL) ? 2 : et->dims) ||
					(et->dims != meta->dims &&
					 !(BHNSW_KIND_TYPE(meta->metric) == BHNSW_TYPE_SPARSEVEC && et->dims < meta->dims)) ||
					((et->flags & BHNSW_ELEMENT_EXTERNAL) != 0) == bhnsw_code_inline(meta->dims))
				{
					problem(cs, "element %u: %u dimensions, the index has %u", et->id, et->dims, meta->dims);
					continue;
				}
				{
					char	   *missing = NULL;
					const float *code = bhnsw_element_code(index, et, meta->dims, &missing);

					if (code == NULL)
						problem(cs, "%s", missing);
					else if (BHNSW_KIND_TYPE(meta->metric) == BHNSW_TYPE_VECTOR)
					{
						for (j = 0; j < meta->dims; j++)
							if (isnan(code[j]) || isinf(code[j]))
							{
								problem(cs, "element %u: component %u is not finite", et->id, j);
								break;
							}
					}
					else
					{
						const char *why = bhnsw_code_problem(meta->metric, 0, code, meta->dims);

						if (why != NULL)
							problem(cs, "element %u: %s", et->id, why);
					}
				}
				if (et->level > BHNSW_MAX_LEVEL)
					problem(cs, "element %u: level %u", et->id, et->level);
				if (!ItemPointerIsValid(&et->heaptid))
					problem(cs, "element %u: invalid heap TID", et->id);
				el[et->id].present = true;
				el[et->id].deleted = et->deleted != 0;
				el[et->id].level = et->level;
				el[et->id].nbrtid = et->neighbortid;
				if (!et->deleted)
					live++;
			}
			else if (item[0] == BHNSW_NEIGHBOR_TUPLE)
			{
				BhnswNeighborTuple nt = (BhnswNeighborTuple) item;

				if (nt->id >= n || !el[nt->id].present)
				{
					problem(cs, "block %u offset %u: neighbour tuple of unknown element %u", blkno, off, nt->id);
					continue;
				}
				if (ItemPointerGetBlockNumber(&el[nt->id].nbrtid) != blkno ||
					ItemPointerGetOffsetNumber(&el[nt->id].nbrtid) != off)
					problem(cs, "element %u: its neighbour tuple is at (%u,%u), not where the element says", nt->id, blkno, off);
				if (nt->level != el[nt->id].level || nt->nslots != BHNSW_NSLOTS(meta->m, nt->level))
				{
					problem(cs, "element %u: neighbour tuple has level %u and %u slots, element level %u",
							nt->id, nt->level, nt->nslots, el[nt->id].level);
					continue;
				}
				el[nt->id].slots = palloc(sizeof(uint32) * nt->nslots);
				memcpy(el[nt->id].slots, nt->slots, sizeof(uint32) * nt->nslots);
				el[nt->id].has_lists = true;
			}
			else if (item[0] != BHNSW_CHUNK_TUPLE) /* chunks are checked from their elements */
				problem(cs, "block %u offset %u: unknown tuple type %d", blkno, off, item[0]);
		}
		UnlockReleaseBuffer(buf);
	}

	/* References: in range, present, not self, reaching the layer they are on. */
	for (id = 0; id < n; id++)
	{
		int			layer,
					pos = 0;

		if (!el[id].present)
		{
			problem(cs, "element %u is counted by the meta page but not on any page", id);
			continue;
		}
		if (!el[id].has_lists)
		{
			problem(cs, "element %u has no neighbour tuple", id);
			continue;
		}
		for (layer = 0; layer <= el[id].level; layer++)
		{
			int			cap = layer == 0 ? 2 * meta->m : meta->m;
			int			k;

			for (k = 0; k < cap; k++)
			{
				uint32		e = el[id].slots[pos + k];

				if (e == BHNSW_NO_NEIGHBOR)
					continue;
				if (e == id)
					problem(cs, "element %u layer %d: links to itself", id, layer);
				else if (e >= n || !el[e].present)
					problem(cs, "element %u layer %d: neighbour %u does not exist", id, layer, e);
				else if (el[e].level < layer)
					problem(cs, "element %u layer %d: neighbour %u only reaches layer %u", id, layer, e, el[e].level);
			}
			pos += cap;
		}
	}
	if (cs->nproblems > 0)
		return;

	/* Entry point and reachability (through tombstones, which still route searches). */
	if (live == 0)
		return;
	if (meta->entry_level < 0 || meta->entry_id >= n)
	{
		problem(cs, "meta page: no entry point, but %u live elements", live);
		return;
	}
	if (el[meta->entry_id].level != meta->entry_level)
		problem(cs, "meta page: entry point %u has level %u, the meta page says %d",
				meta->entry_id, el[meta->entry_id].level, meta->entry_level);
	if (el[meta->entry_id].deleted)
		problem(cs, "meta page: entry point %u is deleted", meta->entry_id);
	seen = palloc_extended(sizeof(bool) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	queue = palloc_extended(sizeof(uint32) * n, MCXT_ALLOC_HUGE);
	queue[tail++] = meta->entry_id;
	seen[meta->entry_id] = true;
	while (head < tail)
	{
		uint32		cur = queue[head++];
		int			k,
					nslots = BHNSW_NSLOTS(meta->m, el[cur].level);

		if (!el[cur].deleted)
			reached++;
		for (k = 0; k < nslots; k++)
		{
			uint32		e = el[cur].slots[k];

			if (e != BHNSW_NO_NEIGHBOR && !seen[e])
			{
				seen[e] = true;
				queue[tail++] = e;
			}
		}
	}
	if (reached != live)
	{
		int			shown = 0;

		problem(cs, "%u of %u live elements are not reachable from the entry point", live - reached, live);
		for (id = 0; id < n && shown < 10; id++)
			if (!seen[id] && !el[id].deleted)
			{
				problem(cs, "element %u is not reachable from the entry point", id);
				shown++;
			}
	}
}

PG_FUNCTION_INFO_V1(borealis_hnsw_check);

Datum
borealis_hnsw_check(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CheckState	cs;
	Relation	index;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	cs.store = rsinfo->setResult;
	cs.desc = rsinfo->setDesc;
	cs.nproblems = 0;

	index = relation_open(relid, AccessShareLock);
	if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_indam == NULL ||
		index->rd_indam->amgettuple != bhnsw_gettuple)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a borealis_hnsw index", RelationGetRelationName(index)),
				 errhint("Pass an index created with USING borealis_hnsw.")));
	LockPage(index, BHNSW_METAPAGE_BLKNO, ShareLock);
	check_index(index, &cs);
	UnlockPage(index, BHNSW_METAPAGE_BLKNO, ShareLock);
	if (cs.nproblems > MAX_PROBLEMS)
	{
		int			more = cs.nproblems - MAX_PROBLEMS;

		cs.nproblems = 0;
		problem(&cs, "... and %d more problems", more);
	}
	relation_close(index, AccessShareLock);
	return (Datum) 0;
}
