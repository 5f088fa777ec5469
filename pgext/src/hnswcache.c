/*
 * hnswcache.c — one shared graph per index per node: a file every backend maps.
 *
 * The pages stay the truth (WAL, replicas, crash recovery); the graph file is a cache derived
 * from them, keyed by (database, index, relfilenode, the meta page's build_id) plus the data
 * directory's and the kernel boot's identity, and valid for the meta page change counter it
 * records. bhnsw_cache_get hands a backend a pinned mapping whose counter equals the meta
 * page's:
 *
 *   fast path   the backend's mapping is current (one shared buffer lock on the meta page);
 *   slow path   under the graph lock (a heavyweight lock on a page number no block uses), so
 *               one backend builds while the others wait and then map its result:
 *               map the file if another backend made it current; else catch it up in place
 *               from the meta page's change ring; else rebuild it from the pages into a
 *               temporary file, rename it into place and retire the old one.
 *
 * A file is never trusted when its header's checksum or key does not match, when it was
 * retired (replaced, or torn by a change that failed), or when it names a writer that is not
 * alive (kill -9 mid-change: the whole node restarts, and the file carries the dead pid).
 * Inserts and VACUUM change the mapped graph in place while holding the meta page's lock
 * exclusive (one writer per index), marking the header with their pid while they do; the
 * engine publishes an element with one atomic store after its vector and lists are written.
 *
 * When the file cannot be created (unwritable directory, no space: posix_fallocate reserves
 * the whole file so a mapping never meets ENOSPC as SIGBUS) the backend warns once and keeps
 * a private anonymous mapping of the same layout: slower to warm, still correct.
 */
#include "hnsw.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/bufmgr.h"
#include "storage/fd.h"
#include "common/file_perm.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/json.h"
#include "utils/memutils.h"

#define BHNSW_MAX_CACHES	16
#define BHNSW_GRAPH_LOCK_BLKNO	0xFFFFFFFE	/* lock tag only: no block has this number */
#define BHNSW_HEADER_SIZE	4096
#define BHNSW_DEFAULT_GRAPH_DIR "pgsql_tmp_borealis_graph"

StaticAssertDecl(sizeof(BhnswGraphHeader) <= BHNSW_HEADER_SIZE, "graph header fits its page");
StaticAssertDecl(offsetof(BhnswGraphHeader, writer_start) % 8 == 0, "64-bit atomic aligned");
/* pgext/hnsw_shared_test.go damages these fields on purpose. */
StaticAssertDecl(offsetof(BhnswGraphHeader, build_id) == 20, "build_id offset");
StaticAssertDecl(offsetof(BhnswGraphHeader, writer_pid) == 128, "writer_pid offset");
StaticAssertDecl(offsetof(BhnswGraphHeader, inserters) % 8 == 0, "64-bit atomics aligned");

char	   *borealis_graph_directory = NULL;

static BhnswCache caches[BHNSW_MAX_CACHES];
static uint64 cache_clock = 0;
static bool warned_private = false;
static uint64 my_start_time = 0;
static bool cache_initialised = false;

/* ---- identity of this process, this boot and this data directory ---- */

/* The start time of pid in clock ticks since boot (field 22 of /proc/<pid>/stat), 0 if gone. */
static uint64
proc_start_time(int pid)
{
	char		path[64];
	char		buf[1024];
	char	   *p;
	int			fd,
				n,
				field;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');		/* the command name may hold spaces */
	if (p == NULL)
		return 0;
	/* After ") " comes field 3. */
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static void
read_boot_id(uint8 *out)
{
	char		buf[64];
	int			fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY);
	int			n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	int			i,
				j = 0;

	if (fd >= 0)
		close(fd);
	memset(out, 0, 16);
	for (i = 0; i < n && j < 32; i++)
	{
		int			c = buf[i];
		int			v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;

		if (v < 0)
			continue;
		out[j / 2] |= (j % 2 == 0) ? v << 4 : v;
		j++;
	}
}

char *
bhnsw_graph_directory(void)
{
	if (borealis_graph_directory && borealis_graph_directory[0] != '\0')
		return borealis_graph_directory;
	return BHNSW_DEFAULT_GRAPH_DIR;	/* relative to the data directory, a backend's cwd */
}

static char *
graph_path(Oid dboid, Oid indexoid, Oid relnode)
{
	return psprintf("%s/%u_%u_%u.graph", bhnsw_graph_directory(), dboid, indexoid, relnode);
}

static pg_crc32c
header_crc(BhnswGraphHeader *h)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, h, offsetof(BhnswGraphHeader, crc));
	FIN_CRC32C(crc);
	return crc;
}

/* The key a file must carry to serve index at this meta page, on this boot and data directory. */
static void
expected_key(Relation index, BhnswMetaPageData *meta, BhnswGraphHeader *k)
{
	struct stat st;

	memset(k, 0, sizeof(*k));
	k->magic = BHNSW_GRAPH_MAGIC;
	k->version = BHNSW_GRAPH_VERSION;
	k->dboid = MyDatabaseId;
	k->indexoid = RelationGetRelid(index);
	k->relnode = index->rd_node.relNode;
	k->build_id = meta->build_id;
	read_boot_id(k->boot_id);
	if (stat(DataDir, &st) == 0)
	{
		k->datadir_dev = st.st_dev;
		k->datadir_ino = st.st_ino;
	}
	k->dims = meta->dims;
	k->metric = meta->metric;
	k->m = meta->m;
	k->ef_construction = meta->ef_construction;
	/* A derived choice, not in the pages: ALTER INDEX ... SET (quantization) rebuilds the file. */
	k->quantization = bhnsw_quantization_of(index);
}

static bool
key_matches(BhnswGraphHeader *h, BhnswGraphHeader *k)
{
	return h->magic == k->magic && h->version == k->version && h->dboid == k->dboid &&
		h->indexoid == k->indexoid && h->relnode == k->relnode && h->build_id == k->build_id &&
		memcmp(h->boot_id, k->boot_id, 16) == 0 && h->datadir_dev == k->datadir_dev &&
		h->datadir_ino == k->datadir_ino && h->dims == k->dims && h->metric == k->metric &&
		h->m == k->m && h->ef_construction == k->ef_construction && h->quantization == k->quantization;
}

/* A writer mark names a live backend, or none; so does every inserter's slot. */
static bool
writer_alive(BhnswGraphHeader *h)
{
	uint32		pid = pg_atomic_read_u32(&h->writer_pid);
	int			i;

	if (pid != 0)
	{
		uint64		start = proc_start_time(pid);

		if ((int) pid == MyProcPid || start == 0 || start != pg_atomic_read_u64(&h->writer_start))
			return false;
	}
	for (i = 0; i < BHNSW_MAX_INSERTERS; i++)
	{
		uint64		slot = pg_atomic_read_u64(&h->inserters[i]);

		if (slot == 0)
			continue;
		pid = (uint32) slot;
		if ((int) pid == MyProcPid || (uint32) proc_start_time(pid) != (uint32) (slot >> 32))
			return false;
	}
	return true;
}

/* ---- cache slots ---- */

static void
cache_release(BhnswCache *cache)
{
	if (cache->graph != 0)
		borealis_engine()->index_free(cache->graph);
	/*
	 * Through the engine: a cancelled build's goroutines may still be finishing an insert into
	 * this mapping (index_free does not wait for them), and the engine unmaps it after them.
	 */
	if (cache->base && borealis_engine()->index_unmap(cache->base, (long long) cache->size) != ENGINE_OK)
		elog(WARNING, "borealis_hnsw: could not unmap a graph file mapping");
	memset(cache, 0, sizeof(*cache));
}

static void
cache_retire(BhnswCache *cache)
{
	cache->retired = true;
	if (cache->pins == 0)
		cache_release(cache);
}

void
bhnsw_cache_unpin(BhnswCache *cache)
{
	Assert(cache->pins > 0);
	if (--cache->pins == 0 && cache->retired)
		cache_release(cache);
}

static BhnswCache *
cache_find(Relation index)
{
	int			i;

	for (i = 0; i < BHNSW_MAX_CACHES; i++)
		if (caches[i].in_use && !caches[i].retired && RelFileNodeEquals(caches[i].node, index->rd_node))
			return &caches[i];
	return NULL;
}

static BhnswCache *
cache_slot(void)
{
	BhnswCache *victim = NULL;
	int			i;

	for (i = 0; i < BHNSW_MAX_CACHES; i++)
	{
		if (!caches[i].in_use)
			return &caches[i];
		if (caches[i].pins == 0 && (victim == NULL || caches[i].last_used < victim->last_used))
			victim = &caches[i];
	}
	if (victim == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many borealis_hnsw indexes in use at once in one statement (at most %d)",
						BHNSW_MAX_CACHES)));
	cache_release(victim);
	return victim;
}

/* A dropped, reindexed or truncated index: its mapping goes (now, or when its scans end). */
static void
relcache_callback(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < BHNSW_MAX_CACHES; i++)
		if (caches[i].in_use && !caches[i].retired && (relid == InvalidOid || caches[i].indexoid == relid))
			cache_retire(&caches[i]);
}

/* A backend leaving in the middle of a change (FATAL, pg_terminate_backend) tears the file. */
static void
exit_callback(int code, Datum arg)
{
	int			i;

	for (i = 0; i < BHNSW_MAX_CACHES; i++)
		if (caches[i].in_use && caches[i].hdr &&
			(pg_atomic_read_u32(&caches[i].hdr->writer_pid) == (uint32) MyProcPid ||
			 caches[i].insert_slot >= 0))
			pg_atomic_write_u32(&caches[i].hdr->retired, 1);
}

static object_access_hook_type prev_object_access = NULL;

/* DROP INDEX removes the graph files of the index (other backends unmap on invalidation). */
static void
object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == RelationRelationId && subId == 0 &&
		get_rel_relkind(objectId) == RELKIND_INDEX)
		bhnsw_cache_forget_index(MyDatabaseId, objectId, InvalidOid);
}

/* Per backend, on first use (callbacks registered in the postmaster would not carry over). */
void
bhnsw_cache_init(void)
{
	if (cache_initialised)
		return;
	cache_initialised = true;
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	before_shmem_exit(exit_callback, (Datum) 0);
}

/* From _PG_init: hooks are process-wide and inherited by every backend. */
void
bhnsw_register_hooks(void)
{
	prev_object_access = object_access_hook;
	object_access_hook = object_access;
}

/*
 * Removes the graph files of index indexoid except the one for keep_relnode. Its file name
 * says which index it serves; a file of a dropped or rebuilt index is never trusted anyway
 * (its key no longer matches), this only gives its disk space back.
 */
void
bhnsw_cache_forget_index(Oid dboid, Oid indexoid, Oid keep_relnode)
{
	char	   *dir = bhnsw_graph_directory();
	char		prefix[64];
	DIR		   *d;
	struct dirent *de;

	snprintf(prefix, sizeof(prefix), "%u_%u_", dboid, indexoid);
	d = AllocateDir(dir);
	if (d == NULL)
		return;
	while ((de = ReadDirExtended(d, dir, DEBUG1)) != NULL)
	{
		Oid			relnode;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		relnode = (Oid) strtoul(de->d_name + strlen(prefix), NULL, 10);
		if (OidIsValid(keep_relnode) && relnode == keep_relnode)
			continue;
		{
			char	   *path = psprintf("%s/%s", dir, de->d_name);

			if (unlink(path) != 0 && errno != ENOENT)
				ereport(DEBUG1, (errmsg("could not remove \"%s\": %m", path)));
			pfree(path);
		}
	}
	FreeDir(d);
}

int64
bhnsw_cache_shared_bytes(void)
{
	int64		total = 0;
	int			i;

	for (i = 0; i < BHNSW_MAX_CACHES; i++)
		if (caches[i].in_use && caches[i].shared)
			total += caches[i].size;
	return total;
}

/*
 * Appends a JSON array describing the graphs this backend maps (for borealis_engine_info):
 * index, dimensions, elements, bytes and the quantization in force (auto resolved).
 */
void
bhnsw_cache_describe(StringInfo out)
{
	static const char *const quant_names[] = {"auto", "none", "int8", "binary"};
	int			i;
	bool		first = true;

	appendStringInfoChar(out, '[');
	for (i = 0; i < BHNSW_MAX_CACHES; i++)
	{
		BhnswCache *c = &caches[i];
		char	   *name;
		int			q;

		if (!c->in_use || c->retired || c->graph == 0)
			continue;
		name = get_rel_name(c->indexoid);
		q = borealis_engine()->index_quantization(c->graph);
		appendStringInfo(out, "%s{\"index\": ", first ? "" : ", ");
		escape_json(out, name ? name : "?");
		appendStringInfo(out, ", \"dims\": %u, \"elements\": %u, \"bytes\": %lld, \"shared\": %s, "
						 "\"quantization\": \"%s\", \"quantization_setting\": \"%s\"}",
						 c->dims, pg_atomic_read_u32(&c->hdr->nids), (long long) c->size,
						 c->shared ? "true" : "false",
						 q >= 0 && q < lengthof(quant_names) ? quant_names[q] : "?",
						 c->quantization >= 0 && c->quantization < lengthof(quant_names) ?
						 quant_names[c->quantization] : "?");
		first = false;
	}
	appendStringInfoChar(out, ']');
}

/* ---- loading pages into a mapping ---- */

void
bhnsw_cache_reserve(BhnswCache *cache, uint32 n)
{
	if (n > cache->capacity)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("borealis_hnsw graph of \"%u\" has room for %u elements, %u needed",
						cache->indexoid, cache->capacity, n),
				 errhint("Retry: the next statement maps a larger graph.")));
}

static void
set_nids(BhnswCache *cache, uint32 n)
{
	uint32		cur = pg_atomic_read_u32(&cache->hdr->nids);

	if (n > cache->nids)
		cache->nids = n;
	/* Inserters in other backends raise it too. */
	while (cur < cache->nids && !pg_atomic_compare_exchange_u32(&cache->hdr->nids, &cur, cache->nids))
		;
}

/* Element id is on the pages and in the location records. */
void
bhnsw_cache_note_id(BhnswCache *cache, uint32 id)
{
	set_nids(cache, id + 1);
}

/* Reads one block's tuples into the graph; only ids in `only` (when given) are taken. */
static void
load_block(Relation index, BhnswCache *cache, BlockNumber blkno, bool *only, uint32 nonly)
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

			if (only && (et->id >= nonly || !only[et->id]))
				continue;
			if (et->id >= cache->capacity)
				continue;		/* replayed after the mapping was sized (a standby) */
			loc = &cache->loc[et->id];
			loc->heaptid = et->heaptid;
			ItemPointerSet(&loc->elemtid, blkno, off);
			loc->nbrtid = et->neighbortid;
			loc->level = et->level;
			loc->deleted = et->deleted != 0;
			pg_write_barrier();
			loc->present = true;
			set_nids(cache, et->id + 1);
			if (eng->index_restore(cache->graph, et->id, et->level, et->deleted,
										  (float *) bhnsw_element_code(index, et, cache->dims, NULL)) != ENGINE_OK)
			{
				UnlockReleaseBuffer(buf);
				borealis_engine_raise("loading an element of a borealis_hnsw index; REINDEX it");
			}
		}
		else if (item[0] == BHNSW_NEIGHBOR_TUPLE)
		{
			BhnswNeighborTuple nt = (BhnswNeighborTuple) item;

			if (nt->id >= cache->capacity || !cache->loc[nt->id].present)
				continue;		/* its element is not loaded (a standby mid-replay) */
			if (only && (nt->id >= nonly || !only[nt->id]))
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
	if (meta->entry_level >= 0 && meta->entry_id < cache->capacity && cache->loc[meta->entry_id].present)
		bhnsw_engine_check(borealis_engine()->index_set_entry(cache->graph, meta->entry_id, meta->entry_level),
						   "setting the entry point");
}

static void
load_full(Relation index, BhnswCache *cache, BhnswMetaPageData *meta)
{
	BlockNumber nblocks,
				blkno;

	nblocks = RelationGetNumberOfBlocks(index);
	for (blkno = BHNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		CHECK_FOR_INTERRUPTS();
		load_block(index, cache, blkno, NULL, 0);
	}
	set_entry(cache, meta);
}

/* The largest id the ring names after counter, or -1 when it names none. */
static int64
ring_max_id(BhnswMetaPageData *meta, uint32 counter)
{
	int64		maxid = -1;
	int			i;

	for (i = 0; i < BHNSW_LOG_SIZE; i++)
		if (meta->log[i].counter > counter)
			maxid = Max(maxid, (int64) meta->log[i].id);
	return maxid;
}

/*
 * Whether a graph's sparse code arena has room for the elements up to max_id it does not hold
 * yet, each at full width (a catch-up that ran out would have to give up half-way).
 */
static bool
code_room_for(BhnswCache *cache, int64 max_id)
{
	long long	room = borealis_engine()->index_code_room(cache->graph);
	int64		fresh = max_id + 1 - (int64) pg_atomic_read_u32(&cache->hdr->nids);

	return room < 0 || fresh <= 0 || room >= fresh * (int64) cache->dims;
}

/* Re-reads the elements the ring lists as changed after counter. */
static void
load_changes(Relation index, BhnswCache *cache, BhnswMetaPageData *meta, uint32 counter)
{
	bool	   *only;
	BlockNumber *blocks;
	int			nblocks = 0;
	int			i,
				j;
	uint32		nonly = (uint32) (ring_max_id(meta, counter) + 1);
	BlockNumber relblocks;

	only = palloc0(sizeof(bool) * Max(nonly, 1));
	blocks = palloc(sizeof(BlockNumber) * BHNSW_LOG_SIZE * 2);
	for (i = 0; i < BHNSW_LOG_SIZE; i++)
	{
		BhnswLogEntry *e = &meta->log[i];

		if (e->counter <= counter)
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
	relblocks = RelationGetNumberOfBlocks(index);
	for (i = 0; i < nblocks; i++)
		if ((i == 0 || blocks[i] != blocks[i - 1]) && blocks[i] < relblocks)
			load_block(index, cache, blocks[i], only, nonly);
	set_entry(cache, meta);
	pfree(only);
	pfree(blocks);
}

/* ---- writers' marks ---- */

void
bhnsw_cache_begin_write(BhnswCache *cache)
{
	if (my_start_time == 0)
		my_start_time = proc_start_time(MyProcPid);
	pg_atomic_write_u64(&cache->hdr->writer_start, my_start_time);
	pg_atomic_write_u32(&cache->hdr->writer_pid, MyProcPid);
	pg_memory_barrier();
}

void
bhnsw_cache_end_write(BhnswCache *cache, uint32 counter)
{
	set_nids(cache, cache->nids);
	pg_write_barrier();
	pg_atomic_write_u32(&cache->hdr->counter, counter);
	pg_atomic_write_u32(&cache->hdr->writer_pid, 0);
}

/* A change failed half-way: nobody may trust this mapping again. */
void
bhnsw_cache_abandon(BhnswCache *cache)
{
	pg_atomic_write_u32(&cache->hdr->retired, 1);
	cache_retire(cache);
}

/*
 * An insert is about to change the shared graph alongside others: it takes a slot of the
 * header's inserters, so that a backend dying mid-insert makes the file untrusted.
 */
void
bhnsw_cache_begin_insert(BhnswCache *cache)
{
	uint64		mine;
	int			i;

	if (my_start_time == 0)
		my_start_time = proc_start_time(MyProcPid);
	mine = ((uint64) (uint32) my_start_time << 32) | (uint32) MyProcPid;
	Assert(cache->insert_slot < 0);
	for (;;)
	{
		for (i = 0; i < BHNSW_MAX_INSERTERS; i++)
		{
			uint64		free_slot = 0;

			if (pg_atomic_compare_exchange_u64(&cache->hdr->inserters[(i + MyProcPid) % BHNSW_MAX_INSERTERS],
											   &free_slot, mine))
			{
				cache->insert_slot = (i + MyProcPid) % BHNSW_MAX_INSERTERS;
				pg_memory_barrier();
				return;
			}
		}
		/* More concurrent inserters than slots: wait for one to finish. */
		CHECK_FOR_INTERRUPTS();
		pg_usleep(1000L);
	}
}

void
bhnsw_cache_end_insert(BhnswCache *cache)
{
	if (cache->insert_slot < 0)
		return;
	pg_write_barrier();
	pg_atomic_write_u64(&cache->hdr->inserters[cache->insert_slot], 0);
	cache->insert_slot = -1;
}

/*
 * The meta page's counter became counter (the caller holds the meta buffer's lock): a mapping
 * that reflected every change before it reflects this one too, since writers change the graph
 * before they commit. A private copy other backends' changes did not reach stays behind.
 */
void
bhnsw_cache_committed(BhnswCache *cache, uint32 counter)
{
	uint32		expected = counter - 1;

	set_nids(cache, cache->nids);
	pg_write_barrier();
	(void) pg_atomic_compare_exchange_u32(&cache->hdr->counter, &expected, counter);
}

/*
 * Whether cache, pinned, still serves index as its meta page is now: an insert checks it once
 * it holds the meta page's lock, under which nothing rebuilds or catches up the graph.
 */
bool
bhnsw_cache_is_current(Relation index, BhnswCache *cache)
{
	BhnswMetaPageData *meta = palloc(sizeof(*meta));
	bool		ok;

	bhnsw_read_meta_head(index, meta);
	ok = !cache->retired && cache->build_id == meta->build_id &&
		pg_atomic_read_u32(&cache->hdr->retired) == 0 &&
		pg_atomic_read_u32(&cache->hdr->counter) == meta->counter &&
		pg_atomic_read_u32(&cache->hdr->writer_pid) == 0;
	pfree(meta);
	return ok;
}

/* ---- mapping ---- */

static Size
tids_bytes(uint32 capacity)
{
	return TYPEALIGN(4096, (Size) capacity * sizeof(BhnswLocation));
}

/* Removes path's temporary files left by builders that died (kill -9 mid-build). */
static void
remove_dead_temps(const char *path)
{
	char	   *dir = bhnsw_graph_directory();
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char	   *prefix = psprintf("%s.tmp", base);
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = ReadDirExtended(d, dir, DEBUG1)) != NULL)
	{
		int			pid;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		pid = atoi(de->d_name + strlen(prefix));
		if (pid != MyProcPid && pid > 0 && kill(pid, 0) == 0)
			continue;			/* a live builder's (one that holds the meta page lock) */
		{
			char	   *p = psprintf("%s/%s", dir, de->d_name);

			(void) unlink(p);
			pfree(p);
		}
	}
	FreeDir(d);
	pfree(prefix);
}

/*
 * Fills a slot from a mapping whose header is set; attaches the Go graph (init: lay it out, with
 * arena_words of sparse code room; else the graph's own header says it).
 */
static bool
attach(BhnswCache *c, Relation index, char *base, Size size, bool shared, bool init, int64 arena_words,
	   char **why)
{
	BhnswGraphHeader *h = (BhnswGraphHeader *) base;
	int			rc;

	c->in_use = true;
	c->insert_slot = -1;
	c->node = index->rd_node;
	c->indexoid = RelationGetRelid(index);
	c->base = base;
	c->size = size;
	c->shared = shared;
	c->hdr = h;
	c->build_id = h->build_id;
	c->dims = h->dims;
	c->metric = h->metric;
	c->m = h->m;
	c->ef_construction = h->ef_construction;
	c->quantization = h->quantization;
	c->capacity = h->capacity;
	c->loc = (BhnswLocation *) (base + h->tids_offset);
	c->nids = pg_atomic_read_u32(&h->nids);
	rc = borealis_engine()->index_attach(base + h->graph_offset, (long long) h->graph_size, h->dims, h->metric,
										 h->m, h->ef_construction, h->quantization, h->capacity,
										 init ? (long long) arena_words : 0, init ? 1 : 0, &c->graph);
	if (rc != ENGINE_OK)
	{
		char		msg[256];

		borealis_engine()->last_error(msg, sizeof(msg));
		*why = pstrdup(msg);
		c->graph = 0;
		cache_release(c);
		return false;
	}
	return true;
}

/* Maps the file at path if it is whole and carries key; *why says why not. */
static bool
open_file(BhnswCache *c, Relation index, const char *path, BhnswGraphHeader *key, char **why)
{
	int			fd = open(path, O_RDWR | PG_BINARY);
	struct stat st;
	char	   *base;
	BhnswGraphHeader *h;

	if (fd < 0)
	{
		*why = psprintf("%s: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0 || st.st_size < BHNSW_HEADER_SIZE)
	{
		close(fd);
		*why = psprintf("%s is shorter than its header", path);
		return false;
	}
	base = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
	{
		*why = psprintf("mmap %s: %s", path, strerror(errno));
		return false;
	}
	h = (BhnswGraphHeader *) base;
	if (h->crc != header_crc(h) || !key_matches(h, key))
		*why = psprintf("%s: header checksum or key does not match", path);
	else if (h->file_size != (uint64) st.st_size ||
			 h->tids_offset < BHNSW_HEADER_SIZE ||
			 h->tids_offset + tids_bytes(h->capacity) > h->graph_offset ||
			 h->graph_offset + h->graph_size > h->file_size)
		*why = psprintf("%s: %lld bytes, header says %llu", path, (long long) st.st_size,
						(unsigned long long) h->file_size);
	else if (pg_atomic_read_u32(&h->retired) != 0)
		*why = psprintf("%s was retired", path);
	else if (!writer_alive(h))
		*why = psprintf("%s was being changed by process %u, which is gone", path,
						pg_atomic_read_u32(&h->writer_pid));
	else
		return attach(c, index, base, st.st_size, true, false, 0, why);
	munmap(base, st.st_size);
	return false;
}

/*
 * Words of compact sparsevec code (hnsw/arena.go) for a graph of capacity elements of words-word
 * codes, when nelements elements take used words: as many words per element as they average,
 * for every element of the capacity (twice the elements: inserts fill the rest), plus one
 * widest code; 0 (every element at full width) for other types or when nothing is known. An
 * insert that finds it full gets ENGINE_FULL and the file is rebuilt larger.
 */
int64
bhnsw_arena_words(int kind, int words, uint32 capacity, int64 nelements, int64 used)
{
	int64		worst = (int64) capacity * words;

	if (BHNSW_KIND_TYPE(kind) != BHNSW_TYPE_SPARSEVEC || nelements <= 0 || used <= 0)
		return 0;
	return Min(worst, (used + nelements - 1) / nelements * (int64) capacity + words);
}

/*
 * Creates a graph file for index, sized for capacity elements (and arena_words of sparse code,
 * bhnsw_arena_words), as path's temporary file, lays out an empty graph in it and attaches it
 * to slot c; falls back to a private anonymous mapping when the file cannot be made. Returns
 * the temporary file's name (palloc'd), or NULL for a private mapping.
 */
static char *
create_file(BhnswCache *c, Relation index, BhnswGraphHeader *key, uint32 capacity, int64 arena_words,
			const char *path)
{
	const BorealisEngine *eng = borealis_engine();
	int64		graph_size = eng->index_mapped_size(key->dims, key->metric, key->m, key->quantization, capacity,
													arena_words);
	Size		tids_offset = BHNSW_HEADER_SIZE;
	Size		graph_offset = tids_offset + tids_bytes(capacity);
	Size		file_size = graph_offset + graph_size;
	char	   *tmp = psprintf("%s.tmp%d", path, MyProcPid);
	char	   *base = MAP_FAILED;
	bool		shared = false;
	int			fd;
	int			err = 0;
	char	   *why = NULL;
	BhnswGraphHeader *h;

	(void) MakePGDirectory(bhnsw_graph_directory());
	remove_dead_temps(path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
		err = errno;
	else
	{
		/* Reserve every block now: a mapping that meets a full disk later gets SIGBUS. */
		err = posix_fallocate(fd, 0, file_size);
		if (err == 0)
		{
			base = mmap(NULL, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (base == MAP_FAILED)
				err = errno;
			else

				/*
				 * Written in random order: no readahead, and so page-sized folios rather than
				 * large ones, which a reader that touches one element would map whole (on ext4
				 * with large folios one touch mapped ~0.5 MB, counted in that backend's PSS).
				 */
				(void) madvise(base, file_size, MADV_RANDOM);
		}
		close(fd);
		if (err != 0)
			unlink(tmp);
	}
	shared = base != MAP_FAILED;
	if (!shared)
	{
		if (!warned_private)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not create the shared graph file \"%s\" of index \"%s\": %s",
							tmp, RelationGetRelationName(index), strerror(err)),
					 errdetail("This backend keeps a private copy of the graph; other backends build their own."),
					 errhint("Make borealis.graph_directory (\"%s\") writable by the server and give it %lld MB of free space.",
							 bhnsw_graph_directory(), (long long) (file_size >> 20) + 1)));
		warned_private = true;
		base = mmap(NULL, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not map %lld MB for the graph of index \"%s\": %m",
							(long long) (file_size >> 20) + 1, RelationGetRelationName(index))));
	}

	h = (BhnswGraphHeader *) base;
	memcpy(h, key, offsetof(BhnswGraphHeader, crc));
	h->capacity = capacity;
	h->tids_offset = tids_offset;
	h->graph_offset = graph_offset;
	h->graph_size = graph_size;
	h->file_size = file_size;
	h->crc = header_crc(h);
	if (!attach(c, index, base, file_size, shared, true, arena_words, &why))
	{
		munmap(base, file_size);
		if (shared)
			unlink(tmp);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not lay out the graph of index \"%s\": %s", RelationGetRelationName(index), why)));
	}
	if (!shared)
	{
		pfree(tmp);
		return NULL;
	}
	return tmp;
}

/* Moves a written temporary file into place (keeping the mapping); false if it could not. */
static bool
publish_file(BhnswCache *c, char *tmp, const char *path)
{
	/*
	 * No fsync: the key holds the kernel's boot id, so a file is only trusted on the boot that
	 * wrote it, when the page cache holds whatever was written.
	 */
	if (tmp && rename(tmp, path) != 0)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not rename \"%s\" to \"%s\": %m", tmp, path)));
		unlink(tmp);
		c->shared = false;
		return false;
	}
	return tmp != NULL;
}

/*
 * Creates a graph file for index sized for its meta page, loads every page into it and moves
 * it into place; falls back to a private mapping when the file cannot be made. Returns with
 * the slot filled.
 */
static void
build_file(BhnswCache *c, Relation index, BhnswMetaPageData *meta, BhnswGraphHeader *key, const char *path)
{
	/* Room for twice the elements: growing means rebuilding the file from the pages. */
	uint32		capacity = meta->element_count +
		(borealis_graph_spare >= 0 ? (uint32) borealis_graph_spare + 1 : meta->element_count + 1024);

	/*
	 * Compact sparse codes take no more room than the pages that hold them (with their
	 * neighbour tuples): the pages bound the words the elements take, read before any page is.
	 */
	int64		pages_words = (int64) (RelationGetNumberOfBlocks(index) - 1) * (BLCKSZ / sizeof(float));
	char	   *tmp = create_file(c, index, key, capacity,
								  bhnsw_arena_words(key->metric, key->dims, capacity, meta->element_count,
													pages_words),
								  path);

	bhnsw_cache_begin_write(c);
	PG_TRY();
	{
		load_full(index, c, meta);
	}
	PG_CATCH();
	{
		if (tmp)
			unlink(tmp);
		bhnsw_cache_abandon(c);
		PG_RE_THROW();
	}
	PG_END_TRY();
	bhnsw_cache_end_write(c, meta->counter);
	publish_file(c, tmp, path);
	if (tmp)
		pfree(tmp);
}

/* ---- CREATE INDEX: the build writes the graph file itself ---- */

static char *build_tmp = NULL;
static char *build_path = NULL;

/*
 * Returns a new, empty graph for the index being built, pinned and marked as being written:
 * a temporary graph file sized for capacity elements (and arena_words of sparse code), keyed by
 * meta (the meta page the build
 * will write), or a private mapping when no file can be made (c->shared false). The build
 * fills it, writes the pages and their locations, then calls bhnsw_cache_build_finish, or
 * bhnsw_cache_build_abort on error.
 */
BhnswCache *
bhnsw_cache_build_begin(Relation index, BhnswMetaPageData *meta, uint32 capacity, int64 arena_words)
{
	BhnswGraphHeader key;
	BhnswCache *c;

	bhnsw_cache_init();
	expected_key(index, meta, &key);
	build_path = graph_path(MyDatabaseId, RelationGetRelid(index), index->rd_node.relNode);
	c = cache_slot();
	build_tmp = create_file(c, index, &key, capacity, arena_words, build_path);
	c->pins++;
	c->last_used = ++cache_clock;
	bhnsw_cache_begin_write(c);
	return c;
}

/* The graph and locations of the first nids elements are written: publish it at counter. */
void
bhnsw_cache_build_finish(BhnswCache *c, uint32 counter, uint32 nids)
{
	set_nids(c, nids);
	bhnsw_cache_end_write(c, counter);
	publish_file(c, build_tmp, build_path);
	if (build_tmp)
		pfree(build_tmp);
	build_tmp = NULL;
	pfree(build_path);
	build_path = NULL;
	bhnsw_cache_unpin(c);
}

/* The build failed: remove its file; the caller has stopped the engine's goroutines. */
void
bhnsw_cache_build_abort(BhnswCache *c)
{
	if (build_tmp)
		unlink(build_tmp);
	build_tmp = NULL;
	build_path = NULL;
	c->pins--;
	bhnsw_cache_abandon(c);
}

/* Whether cache serves the meta page as it is now. */
static bool
current(BhnswCache *c, BhnswMetaPageData *meta, bool need_room)
{
	return c->build_id == meta->build_id &&
		pg_atomic_read_u32(&c->hdr->retired) == 0 &&
		pg_atomic_read_u32(&c->hdr->counter) == meta->counter &&
		(pg_atomic_read_u32(&c->hdr->writer_pid) == 0 ||
		 pg_atomic_read_u32(&c->hdr->writer_pid) != (uint32) MyProcPid) &&
		(!need_room || meta->element_count < c->capacity);
}

/*
 * Returns the index's graph, pinned (bhnsw_cache_unpin when done), reflecting the meta page's
 * counter. lock_held says the caller holds the meta page's heavyweight lock exclusive (inserts
 * and VACUUM); then no other backend can be changing the graph, and the graph lock is not
 * taken (it is taken before the meta page's lock elsewhere). need_room asks for room for one
 * more element.
 */
BhnswCache *
bhnsw_cache_get(Relation index, bool lock_held, bool need_room)
{
	BhnswCache *c;
	BhnswMetaPageData *meta;
	BhnswGraphHeader key;
	char	   *path;
	char	   *why = NULL;
	uint32		counter;

	bhnsw_cache_init();
	meta = palloc(sizeof(*meta));
	/* current() reads only the head; the slow path below reads the whole page again. */
	bhnsw_read_meta_head(index, meta);
	c = cache_find(index);
	if (c && current(c, meta, need_room))
	{
		c->pins++;
		c->last_used = ++cache_clock;
		c->nids = pg_atomic_read_u32(&c->hdr->nids);
		pfree(meta);
		return c;
	}

	if (!lock_held)
	{
		LockPage(index, BHNSW_GRAPH_LOCK_BLKNO, ExclusiveLock);
		/* Pages are loaded under the meta page's lock in share mode: no insert runs meanwhile. */
		LockPage(index, BHNSW_METAPAGE_BLKNO, ShareLock);
	}
	bhnsw_read_meta(index, meta);
	expected_key(index, meta, &key);
	path = graph_path(MyDatabaseId, RelationGetRelid(index), index->rd_node.relNode);

	/*
	 * A private copy is caught up where it is; a file mapping is looked at afresh, since
	 * another backend may have made the file current or replaced it while we waited.
	 */
	c = cache_find(index);
	if (c && c->shared && current(c, meta, need_room))
	{
		/* Another backend made the file current while we waited (an insert committing). */
	}
	else if (c && c->shared)
	{
		cache_retire(c);
		c = NULL;
	}
	if (c == NULL)
	{
		c = cache_slot();
		if (!open_file(c, index, path, &key, &why))
			c = NULL;
	}
	if (c && !current(c, meta, need_room))
	{
		/* Catch up from the ring when it covers every change since the graph's counter. */
		counter = pg_atomic_read_u32(&c->hdr->counter);
		if (pg_atomic_read_u32(&c->hdr->writer_pid) == 0 && pg_atomic_read_u32(&c->hdr->retired) == 0 &&
			c->build_id == meta->build_id && counter < meta->counter &&
			counter + 1 >= meta->log_complete_from &&
			ring_max_id(meta, counter) < (int64) c->capacity &&
			meta->element_count + (need_room ? 1 : 0) <= c->capacity &&
			code_room_for(c, ring_max_id(meta, counter)))
		{
			c->pins++;
			bhnsw_cache_begin_write(c);
			PG_TRY();
			{
				load_changes(index, c, meta, counter);
			}
			PG_CATCH();
			{
				bhnsw_cache_abandon(c);
				PG_RE_THROW();
			}
			PG_END_TRY();
			bhnsw_cache_end_write(c, meta->counter);
			c->pins--;
		}
		else
		{
			/* Stale beyond the ring, full, or torn: replace it. */
			pg_atomic_write_u32(&c->hdr->retired, 1);
			cache_retire(c);
			c = NULL;
		}
	}
	if (c == NULL)
	{
		c = cache_slot();
		build_file(c, index, meta, &key, path);
	}
	if (!lock_held)
	{
		UnlockPage(index, BHNSW_METAPAGE_BLKNO, ShareLock);
		UnlockPage(index, BHNSW_GRAPH_LOCK_BLKNO, ExclusiveLock);
	}
	c->pins++;
	c->last_used = ++cache_clock;
	pfree(meta);
	return c;
}
