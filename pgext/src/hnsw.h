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
#include "port/atomics.h"
#include "utils/rel.h"

#include "engine.h"
#include "hnswquant.h"
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
	int			quantization;	/* BHNSW_QUANT_* (hnswquant.h) */
} BhnswOptions;

/* pgvector's vector type, as stored. */
typedef struct BhnswVector
{
	int32		vl_len_;
	int16		dim;
	int16		unused;
	float		x[FLEXIBLE_ARRAY_MEMBER];
} BhnswVector;

/*
 * Where element id lives: one record per element in the shared graph file, beside the graph
 * (C owns these, Go owns the graph). Writers fill heaptid before Go publishes the element, so
 * a scan that gets an id from Go finds its heap TID.
 */
typedef struct BhnswLocation
{
	ItemPointerData heaptid;
	ItemPointerData elemtid;
	ItemPointerData nbrtid;
	uint8		level;
	bool		present;
	bool		deleted;
} BhnswLocation;

/*
 * The header of a shared graph file, $PGDATA/pgsql_tmp_borealis_graph/<db>_<index>_<relfilenode>.graph
 * (or under borealis.graph_directory). Layout: this header in the first 4 kB, the location
 * records at tids_offset, the Go graph (hnsw/mapped.go) at graph_offset. Offsets only, so
 * every backend maps it at its own address. The key fields and the geometry are fixed at
 * creation and covered by crc; the fields after it change in place.
 */
#define BHNSW_GRAPH_MAGIC	0xB0EA6A4F
#define BHNSW_GRAPH_VERSION 3	/* 2: inserters' slots, concurrent inserts; 3: sparse code arena */
#define BHNSW_MAX_INSERTERS 64

typedef struct BhnswGraphHeader
{
	uint32		magic;
	uint32		version;
	Oid			dboid;
	Oid			indexoid;
	Oid			relnode;
	uint32		build_id;		/* the meta page's: a new build never reuses a file */
	uint8		boot_id[16];	/* the kernel's boot: after a reboot unsynced pages are gone */
	uint64		datadir_dev;	/* the data directory's identity: a copy carried by a backup */
	uint64		datadir_ino;	/* or a restore elsewhere is never trusted */
	uint32		dims;
	uint32		metric;
	uint32		m;
	uint32		ef_construction;
	uint32		capacity;		/* elements it has room for */
	uint32		quantization;	/* the reloption's BHNSW_QUANT_* the graph was laid out for */
	uint64		tids_offset;
	uint64		graph_offset;
	uint64		graph_size;
	uint64		file_size;
	uint32		crc;			/* CRC-32C of everything above */
	uint32		unused2;
	/* Mutable: */
	pg_atomic_uint64 writer_start;	/* the writer's start time (/proc/<pid>/stat) */
	pg_atomic_uint32 writer_pid;	/* non-zero while a backend changes the graph */
	pg_atomic_uint32 counter;	/* the meta page change counter the graph reflects */
	pg_atomic_uint32 retired;	/* 1: replaced by a newer file, or torn by a failed change */
	pg_atomic_uint32 nids;		/* ids below this may be present */
	/*
	 * Inserts change the graph concurrently, each in a slot of its own while it does:
	 * (low 32 bits of its start time) << 32 | pid, 0 when free.
	 */
	pg_atomic_uint64 inserters[BHNSW_MAX_INSERTERS];
} BhnswGraphHeader;

/*
 * A backend's mapping of one index's graph. It is pinned while in use (scans, inserts,
 * VACUUM); a relcache invalidation or a newer file retires it, and it is unmapped once
 * unpinned.
 */
typedef struct BhnswCache
{
	RelFileNode node;			/* key: a REINDEX or TRUNCATE gives a new one */
	Oid			indexoid;
	bool		in_use;
	bool		retired;		/* not handed out any more; unmapped when unpinned */
	bool		shared;			/* a file mapping (false: this backend's private copy) */
	int			pins;
	long long	graph;			/* Go handle over the mapping, 0 when none */
	char	   *base;			/* the mapping */
	Size		size;
	BhnswGraphHeader *hdr;
	uint32		build_id;
	uint32		dims;
	int			metric;
	int			m;
	int			ef_construction;
	int			quantization;	/* the reloption's BHNSW_QUANT_* */
	uint32		capacity;
	uint32		nids;			/* copy of hdr->nids as of the last bhnsw_cache_get or write */
	BhnswLocation *loc;			/* capacity records, in the mapping */
	int			insert_slot;	/* hdr->inserters slot this backend holds, -1 none */
	uint64		last_used;
} BhnswCache;

/* An index's element type: its kind (hnswtypes.h), declared dimensions and code width. */
typedef struct BhnswElemType
{
	int			kind;
	int			dims;
	int			words;
} BhnswElemType;

/* hnswtypes.c */
extern int	bhnsw_metric_of(Relation index);
extern int	bhnsw_typmod_dims(Relation index);
extern char *bhnsw_opclass_name(int type, int metric);
extern char *bhnsw_opclass_list(void);
extern int	bhnsw_tuple_code(int kind, const float *code, int words, float *dst);
extern const char *bhnsw_tuple_expand(const float *tcode, int twords, float *dst, int words);
extern int	bhnsw_dims_of(Relation index);
extern void bhnsw_elemtype_of(Relation index, BhnswElemType *t);
extern int	bhnsw_encode(const BhnswElemType *t, Datum value, float *dst, bool *zero);
extern const char *bhnsw_code_problem(int kind, int dims, const float *code, int words);

/* hnswlarge.c */
extern bool bhnsw_code_inline(int words);
extern Size bhnsw_externalize(Relation index, BhnswElementTuple et, int words, bool wal, Buffer *keep);
extern Buffer bhnsw_build_externalize(Relation index, Buffer buf, BhnswElementTuple et, int words, Size *esize);
extern const float *bhnsw_element_code(Relation index, BhnswElementTuple et, int words, char **problem);

/* hnsw.c */
extern void bhnsw_init(void);
extern void bhnsw_reloptions_of(Relation index, int *m, int *ef_construction);
extern int	bhnsw_quantization_of(Relation index);
extern void bhnsw_check_quantization(Relation index, int kind);

/* hnswutils.c */
extern void bhnsw_init_page(Page page);
extern void bhnsw_read_meta(Relation index, BhnswMetaPageData *meta);
extern void bhnsw_read_meta_head(Relation index, BhnswMetaPageData *meta);
extern void bhnsw_engine_check(int rc, const char *what);
extern BhnswVector *bhnsw_datum_vector(Datum value);
extern char *bhnsw_tid_string(ItemPointer tid);
extern void bhnsw_write_lists(Relation index, BhnswCache *cache, uint32 *ids, int n,
							  uint32 **dropped, int *ndropped);
extern int	bhnsw_connect_all(BhnswCache *cache, uint32 *changed, int capacity);
extern uint32 bhnsw_commit_meta(Relation index, BhnswCache *cache, uint32 *ids, int n, bool force_full_reload);

/* hnswcache.c */
extern BhnswCache *bhnsw_cache_get(Relation index, bool lock_held, bool need_room);
extern void bhnsw_cache_unpin(BhnswCache *cache);
extern void bhnsw_cache_reserve(BhnswCache *cache, uint32 n);
extern void bhnsw_cache_begin_write(BhnswCache *cache);
extern void bhnsw_cache_end_write(BhnswCache *cache, uint32 counter);
extern void bhnsw_cache_abandon(BhnswCache *cache);
extern BhnswCache *bhnsw_cache_build_begin(Relation index, BhnswMetaPageData *meta, uint32 capacity,
											 int64 arena_words);
extern int64 bhnsw_arena_words(int kind, int words, uint32 capacity, int64 nelements, int64 used);
extern void bhnsw_cache_build_finish(BhnswCache *cache, uint32 counter, uint32 nids);
extern void bhnsw_cache_build_abort(BhnswCache *cache);
extern bool bhnsw_cache_is_current(Relation index, BhnswCache *cache);
extern void bhnsw_cache_begin_insert(BhnswCache *cache);
extern void bhnsw_cache_end_insert(BhnswCache *cache);
extern void bhnsw_cache_note_id(BhnswCache *cache, uint32 id);
extern void bhnsw_cache_committed(BhnswCache *cache, uint32 counter);
extern void bhnsw_cache_forget_index(Oid dboid, Oid indexoid, Oid keep_relnode);
extern void bhnsw_cache_init(void);
extern void bhnsw_register_planner(void);
extern void bhnsw_register_hooks(void);

/* hnswprewarm.c */
extern void bhnsw_register_prewarm(void);
extern char *bhnsw_graph_directory(void);

/* hnswresident.c */
extern void bhnsw_keep_graphs_resident(void);
extern int64 bhnsw_cache_shared_bytes(void);
extern void bhnsw_cache_describe(StringInfo out);

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
