/*
 * hnswvacuum.c — VACUUM: find elements whose heap rows are dead, mark them deleted and repair
 * the lists that went through them (hnsw DeleteTracked), then write the flags and lists with
 * GenericXLog. Deleted elements stay on their pages as tombstones that still route searches
 * (their heap TIDs may be reused by new rows, so they are never returned again); their space
 * is not reused yet — REINDEX compacts.
 */
#include "hnsw.h"

#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"

IndexBulkDeleteResult *
bhnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				 IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	const BorealisEngine *eng = borealis_engine();
	BhnswCache *cache;
	uint32	   *dead;
	uint32	   *changed;
	uint32	   *buf;
	bool	   *mark;
	int			ndead = 0,
				nchanged = 0;
	double		live = 0;
	uint32		id;
	int			i,
				n,
				rc;

	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));

	/* Map the graph first: loading it under the exclusive lock would stall every writer. */
	cache = bhnsw_cache_get(index, false, false);
	bhnsw_cache_unpin(cache);
	LockPage(index, BHNSW_METAPAGE_BLKNO, ExclusiveLock);
	cache = bhnsw_cache_get(index, true, false);
	dead = palloc(sizeof(uint32) * Max(cache->nids, 1));
	for (id = 0; id < cache->nids; id++)
	{
		BhnswLocation *loc = &cache->loc[id];

		if (!loc->present || loc->deleted)
			continue;
		if (callback(&loc->heaptid, callback_state))
			dead[ndead++] = id;
		else
			live++;
	}

	if (ndead > 0)
	{
		int			cap = 65536;

		mark = palloc0(sizeof(bool) * cache->nids);
		buf = palloc(sizeof(uint32) * cap);
		/*
		 * VACUUM changes the shared graph in place and leaves it current (its counter is the
		 * meta page's), so other backends keep their mappings instead of reloading the graph.
		 */
		bhnsw_cache_begin_write(cache);
		PG_TRY();
		{
		for (i = 0; i < ndead; i++)
		{
			vacuum_delay_point();
			rc = eng->index_delete(cache->graph, dead[i], buf, cap, &n);
			bhnsw_engine_check(rc, "repairing the graph around a deleted element");
			mark[dead[i]] = true;
			while (n-- > 0)
				if (buf[n] < cache->nids)
					mark[buf[n]] = true;
		}
		changed = palloc(sizeof(uint32) * cache->nids);
		n = bhnsw_connect_all(cache, changed, cache->nids);
		while (n-- > 0)
			if (changed[n] < cache->nids)
				mark[changed[n]] = true;
		for (id = 0; id < cache->nids; id++)
			if (mark[id] && cache->loc[id].present)
				changed[nchanged++] = id;
		bhnsw_write_lists(index, cache, changed, nchanged, NULL, NULL);
		bhnsw_cache_end_write(cache, bhnsw_commit_meta(index, cache, NULL, 0, true));
		}
		PG_CATCH();
		{
			bhnsw_cache_abandon(cache);
			bhnsw_cache_unpin(cache);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	bhnsw_cache_unpin(cache);
	UnlockPage(index, BHNSW_METAPAGE_BLKNO, ExclusiveLock);

	stats->num_pages = RelationGetNumberOfBlocks(index);
	stats->num_index_tuples = live;
	stats->tuples_removed += ndead;
	return stats;
}

IndexBulkDeleteResult *
bhnsw_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;

	/*
	 * No bulk delete ran, so nothing changed: returning NULL keeps the statistics as they were,
	 * and spares an autovacuum worker loading the whole graph just to count it.
	 */
	if (stats == NULL)
		return NULL;
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	return stats;
}
