/*
 * hnsw.h — the borealis_hnsw index access method: what its C files share.
 *
 * The AM keeps its data in PostgreSQL pages (hnswpage.h) and does its graph work in the Go
 * engine on a per-backend cache rebuilt from those pages (hnswcache.c). C does every buffer
 * access, lock, WAL record and ereport; Go only computes on memory C hands it.
 */
#ifndef BOREALIS_HNSW_H
#define BOREALIS_HNSW_H

#include "borealis.h"

#include "access/amapi.h"
#include "access/genam.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "utils/rel.h"

#include "engine.h"
#include "hnswpage.h"

#define BHNSW_DEFAULT_M					16
#define BHNSW_MIN_M						2
#define BHNSW_MAX_M						100
#define BHNSW_DEFAULT_EF_CONSTRUCTION	64
#define BHNSW_MIN_EF_CONSTRUCTION		4
#define BHNSW_MAX_EF_CONSTRUCTION		1000

/* Build sub-phases shown in pg_stat_progress_create_index. */
#define BHNSW_PHASE_LOAD	2
#define BHNSW_PHASE_GRAPH	3
#define BHNSW_PHASE_WRITE	4

/* The reloptions. */
typedef struct BhnswOptions
{
	int32		vl_len_;
	int			m;
	int			ef_construction;
} BhnswOptions;

/* pgvector's vector type, as stored. */
typedef struct BhnswVector
{
	int32		vl_len_;
	int16		dim;
	int16		unused;
	float		x[FLEXIBLE_ARRAY_MEMBER];
} BhnswVector;

/* Where element id lives. */
typedef struct BhnswLocation
{
	ItemPointerData heaptid;
	ItemPointerData elemtid;
	ItemPointerData nbrtid;
	uint8		level;
	bool		present;
	bool		deleted;
} BhnswLocation;

/* A backend's copy of one index: the Go graph plus where each element is on the pages. */
typedef struct BhnswCache
{
	RelFileNode node;			/* key: a REINDEX or TRUNCATE gives a new one */
	bool		in_use;
	bool		valid;			/* false while it may disagree with the pages */
	long long	graph;			/* Go handle, 0 when none */
	uint32		counter;		/* meta page change counter the graph reflects */
	uint32		build_id;		/* the meta page's build_id the graph was loaded from */
	uint32		dims;
	int			metric;
	int			m;
	int			ef_construction;
	uint32		capacity;		/* entries allocated in loc */
	uint32		nids;			/* ids below this may be present */
	BhnswLocation *loc;
	uint64		last_used;
} BhnswCache;

/* hnsw.c */
extern void bhnsw_init(void);
extern int	bhnsw_metric_of(Relation index);
extern int	bhnsw_dims_of(Relation index);
extern void bhnsw_reloptions_of(Relation index, int *m, int *ef_construction);

/* hnswutils.c */
extern void bhnsw_init_page(Page page);
extern void bhnsw_read_meta(Relation index, BhnswMetaPageData *meta);
extern void bhnsw_engine_check(int rc, const char *what);
extern BhnswVector *bhnsw_datum_vector(Datum value);
extern char *bhnsw_tid_string(ItemPointer tid);
extern void bhnsw_write_lists(Relation index, BhnswCache *cache, uint32 *ids, int n,
							  uint32 **dropped, int *ndropped);
extern int	bhnsw_connect_all(BhnswCache *cache, uint32 *changed, int capacity);
extern uint32 bhnsw_commit_meta(Relation index, BhnswCache *cache, uint32 *ids, int n, bool force_full_reload);

/* hnswcache.c */
extern BhnswCache *bhnsw_cache_get(Relation index, bool lock_held);
extern BhnswCache *bhnsw_cache_find(Relation index);
extern void bhnsw_cache_reserve(BhnswCache *cache, uint32 n);
extern void bhnsw_cache_invalidate(BhnswCache *cache);

/* hnswbuild.c */
extern IndexBuildResult *bhnsw_build(Relation heap, Relation index, IndexInfo *info);
extern void bhnsw_buildempty(Relation index);
extern char *bhnsw_buildphasename(int64 phase);

/* hnswinsert.c */
extern bool bhnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
						 Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
						 IndexInfo *info);

/* hnswscan.c */
extern IndexScanDesc bhnsw_beginscan(Relation index, int nkeys, int norderbys);
extern void bhnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
extern bool bhnsw_gettuple(IndexScanDesc scan, ScanDirection dir);
extern void bhnsw_endscan(IndexScanDesc scan);

/* hnswvacuum.c */
extern IndexBulkDeleteResult *bhnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
											   IndexBulkDeleteCallback callback, void *callback_state);
extern IndexBulkDeleteResult *bhnsw_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats);

#endif							/* BOREALIS_HNSW_H */
