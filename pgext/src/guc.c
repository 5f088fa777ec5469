/*
 * guc.c — the borealis.* settings.
 */
#include "borealis.h"

#include <limits.h>
#include <sched.h>
#include <unistd.h>

#include "utils/guc.h"

int			borealis_ef_search = 40;
int			borealis_iterative_scan = BOREALIS_ITERATIVE_SCAN_OFF;
int			borealis_max_scan_tuples = 20000;
double		borealis_scan_mem_multiplier = 1;
int			borealis_build_threads = 1;
int			borealis_engine_memory_limit = 0;
bool		borealis_prewarm = true;
int			borealis_graph_spare = -1;
bool		borealis_skip_unread_order_keys = true;
int			borealis_debug_build_delay_us = 0;
int			borealis_debug_panic = 0;

static const struct config_enum_entry debug_panic_options[] = {
	{"off", 0, false},
	{"caller", 1, false},
	{"goroutine", 2, false},
	{NULL, 0, false}
};

static const struct config_enum_entry iterative_scan_options[] = {
	{"off", BOREALIS_ITERATIVE_SCAN_OFF, false},
	{"relaxed_order", BOREALIS_ITERATIVE_SCAN_RELAXED, false},
	{"strict_order", BOREALIS_ITERATIVE_SCAN_STRICT, false},
	{NULL, 0, false}
};

/*
 * The CPUs this server may run on: its affinity mask, not the machine's core count, so a
 * server pinned to a container's cpuset does not oversubscribe.
 */
static int
usable_cpus(void)
{
	cpu_set_t	set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return Max(1, (int) sysconf(_SC_NPROCESSORS_ONLN));
}

void
borealis_define_gucs(void)
{
	borealis_build_threads = Min(usable_cpus(), 64);

	DefineCustomIntVariable("borealis.ef_search",
							"Size of the candidate list searched by borealis_hnsw index scans.",
							"Higher values give better recall and slower queries.",
							&borealis_ef_search, 40, 1, 1000,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable("borealis.iterative_scan",
							 "Whether borealis_hnsw scans continue past ef_search when rows are filtered out.",
							 "off, relaxed_order or strict_order, as pgvector's hnsw.iterative_scan.",
							 &borealis_iterative_scan, BOREALIS_ITERATIVE_SCAN_OFF,
							 iterative_scan_options, PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("borealis.max_scan_tuples",
							"Most tuples an iterative borealis_hnsw scan visits.",
							"As pgvector's hnsw.max_scan_tuples: past it the scan walks no further and "
							"returns the rows it already found.",
							&borealis_max_scan_tuples, 20000, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomRealVariable("borealis.scan_mem_multiplier",
							 "Multiple of work_mem an iterative borealis_hnsw scan may keep for later rounds.",
							 "As pgvector's hnsw.scan_mem_multiplier: past it the scan walks no further.",
							 &borealis_scan_mem_multiplier, 1, 1, 1000,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("borealis.build_threads",
							"Goroutines the Go engine uses to build a borealis_hnsw index.",
							"Defaults to the number of CPUs this server may use.",
							&borealis_build_threads, borealis_build_threads, 1, 64,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("borealis.engine_memory_limit",
							"Most memory the Go engine's heap may use in one backend.",
							"An engine call that would need more fails with an out-of-memory ERROR instead of "
							"exhausting the backend. 0 (the default) means 1.25 x maintenance_work_mem + 256 MB. "
							"Shared graphs are mapped files outside this limit.",
							&borealis_engine_memory_limit, 0, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomStringVariable("borealis.graph_directory",
							   "Directory of the shared borealis_hnsw graph files.",
							   "Empty means pgsql_tmp_borealis_graph in the data directory (which pg_basebackup skips). "
							   "The files are a cache derived from the index pages.",
							   &borealis_graph_directory, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("borealis.prewarm",
							 "Load every borealis_hnsw index's shared graph at server start and after promotion.",
							 NULL,
							 &borealis_prewarm, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("borealis.skip_unread_order_keys",
							 "Skip recomputing the ORDER BY distance of a LIMIT query that a borealis_hnsw index scan already orders (hnswplan.c).",
							 "The value is a resjunk column nothing reads; off computes it for every row, as PostgreSQL does by default.",
							 &borealis_skip_unread_order_keys, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	/* A developer setting: tests make graph files grow often (see hnswcache.c build_file). */
	DefineCustomIntVariable("borealis.graph_spare",
							"Spare element slots a new shared graph file gets beyond the index's elements.",
							"-1 (the default) means as many as the index has, plus 1024.",
							&borealis_graph_spare, -1, -1, INT_MAX / 4,
							PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL, NULL, NULL, NULL);

	DefineCustomIntVariable("borealis.debug_build_delay_us",
							"Developer option: microseconds a borealis_hnsw build sleeps per row while loading and while writing pages.",
							"Makes those phases last, so tests can interrupt them. 0 (the default) sleeps never.",
							&borealis_debug_build_delay_us, 0, 0, 1000000,
							PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

	DefineCustomEnumVariable("borealis.debug_panic",
							 "Developer option: borealis_debug_spin() makes the Go engine panic instead of spinning.",
							 "caller panics in the calling goroutine, goroutine in one the engine starts; "
							 "either must come back as an ERROR, never as a backend crash.",
							 &borealis_debug_panic, 0, debug_panic_options,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL, NULL, NULL, NULL);

	MarkGUCPrefixReserved("borealis");
}
