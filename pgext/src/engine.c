/*
 * engine.c — lazy loading of the Go engine, and the table of its functions.
 *
 * The engine is loaded the first time a backend needs it, after fork, through golib.c, which
 * keeps the process-model rules (never in the postmaster, signals blocked while the runtime
 * starts). Asynchronous preemption is off because the engine is linked with
 * asyncpreemptoff=1 as its built-in GODEBUG default (see the Makefile): the environment cannot
 * carry it, since a c-shared runtime reads the environment strings that PostgreSQL's process
 * titles have overwritten.
 */
#include "borealis.h"

#include <dlfcn.h>

#include "engine.h"
#include "golib.h"
#include "miscadmin.h"

#define ENGINE_FILE "borealis_engine.so"

static BorealisEngine engine_table;
static bool engine_ready = false;
static int	applied_procs = -1;
static long long applied_limit = -1;

/* The Go heap's budget in bytes: borealis.engine_memory_limit, or its automatic value. */
static long long
engine_memory_limit_bytes(void)
{
	if (borealis_engine_memory_limit > 0)
		return (long long) borealis_engine_memory_limit * 1024;
	return (long long) maintenance_work_mem * 1024 * 5 / 4 + (256LL << 20);
}

/*
 * Sets the runtime's limits deliberately, and again whenever the settings changed since: as
 * many threads as the build may use, and the heap budget, which is both Go's soft memory
 * limit and the allocation guard's hard one (engine/memguard.go). Searched graphs live in
 * shared mappings, outside the heap.
 */
static void
apply_runtime_settings(void)
{
	long long	limit = engine_memory_limit_bytes();

	if (applied_procs == borealis_build_threads && applied_limit == limit)
		return;
	if (engine_table.configure(borealis_build_threads, limit) != ENGINE_OK)
		borealis_engine_raise("configuring the Go runtime");
	applied_procs = borealis_build_threads;
	applied_limit = limit;
}

bool
borealis_engine_loaded(void)
{
	return engine_ready;
}

static void *
engine_symbol(void *handle, const char *path, const char *name)
{
	void	   *fn = dlsym(handle, name);

	if (fn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("Borealis engine \"%s\" lacks symbol %s", path, name),
				 errhint("The engine and the extension module come from different builds; run \"make install\" again.")));
	return fn;
}

const BorealisEngine *
borealis_engine(void)
{
	char	   *path;
	void	   *handle;
	char		why[MAXPGPATH + 256];
	int			abi = -1;

	if (engine_ready)
	{
		apply_runtime_settings();
		return &engine_table;
	}

	path = psprintf("%s/%s", pkglib_path, ENGINE_FILE);
	handle = borealis_golib_open(ENGINE_FILE, "borealis_engine_abi_version", &abi, why, sizeof(why));
	if (handle == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load the Borealis engine: %s", why),
				 errhint("Install it with \"make install\" from the Borealis source tree.")));

	if (abi != BOREALIS_ENGINE_ABI)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Borealis engine \"%s\" has ABI %d, this module needs %d", path, abi, BOREALIS_ENGINE_ABI),
				 errhint("Run \"make install\" so the module and the engine come from one build.")));

	engine_table.abi_version = engine_symbol(handle, path, "borealis_engine_abi_version");
	engine_table.init = engine_symbol(handle, path, "borealis_engine_init");
	engine_table.go_version = engine_symbol(handle, path, "borealis_engine_go_version");
	engine_table.last_error = engine_symbol(handle, path, "borealis_engine_last_error");
	engine_table.info_json = engine_symbol(handle, path, "borealis_engine_info_json");
	engine_table.debug_spin = engine_symbol(handle, path, "borealis_engine_debug_spin");
	engine_table.index_new = engine_symbol(handle, path, "borealis_index_new");
	engine_table.index_free = engine_symbol(handle, path, "borealis_index_free");
	engine_table.index_unmap = engine_symbol(handle, path, "borealis_index_unmap");
	engine_table.index_mapped_size = engine_symbol(handle, path, "borealis_index_mapped_size");
	engine_table.index_attach = engine_symbol(handle, path, "borealis_index_attach");
	engine_table.index_code_room = engine_symbol(handle, path, "borealis_index_code_room");
	engine_table.configure = engine_symbol(handle, path, "borealis_engine_configure");
	engine_table.index_estimate = engine_symbol(handle, path, "borealis_index_estimate");
	engine_table.index_node_level = engine_symbol(handle, path, "borealis_index_node_level");
	engine_table.index_node_vector = engine_symbol(handle, path, "borealis_index_node_vector");
	engine_table.index_node_lists = engine_symbol(handle, path, "borealis_index_node_lists");
	engine_table.index_entry = engine_symbol(handle, path, "borealis_index_entry");
	engine_table.index_check_vectors = engine_symbol(handle, path, "borealis_index_check_vectors");
	engine_table.index_build_insert = engine_symbol(handle, path, "borealis_index_build_insert");
	engine_table.index_export = engine_symbol(handle, path, "borealis_index_export");
	engine_table.index_build_wait = engine_symbol(handle, path, "borealis_index_build_wait");
	engine_table.index_restore = engine_symbol(handle, path, "borealis_index_restore");
	engine_table.index_set_lists = engine_symbol(handle, path, "borealis_index_set_lists");
	engine_table.index_set_entry = engine_symbol(handle, path, "borealis_index_set_entry");
	engine_table.index_insert = engine_symbol(handle, path, "borealis_index_insert");
	engine_table.index_insert_prepare = engine_symbol(handle, path, "borealis_index_insert_prepare");
	engine_table.index_insert_commit = engine_symbol(handle, path, "borealis_index_insert_commit");
	engine_table.index_insert_release = engine_symbol(handle, path, "borealis_index_insert_release");
	engine_table.index_nodes_lists = engine_symbol(handle, path, "borealis_index_nodes_lists");
	engine_table.index_delete = engine_symbol(handle, path, "borealis_index_delete");
	engine_table.index_connect_all = engine_symbol(handle, path, "borealis_index_connect_all");
	engine_table.index_reconnect = engine_symbol(handle, path, "borealis_index_reconnect");
	engine_table.index_scan_begin = engine_symbol(handle, path, "borealis_index_scan_begin");
	engine_table.index_quantization = engine_symbol(handle, path, "borealis_index_quantization");
	engine_table.index_scan_next = engine_symbol(handle, path, "borealis_index_scan_next");
	engine_table.index_scan_end = engine_symbol(handle, path, "borealis_index_scan_end");
	/* Optional: an engine without it reports every failure as an internal error. */
	engine_table.last_error_code = dlsym(handle, "borealis_engine_last_error_code");

	if (engine_table.init((void *) &InterruptPending) != ENGINE_OK)
		borealis_engine_raise("initialising the engine");

	apply_runtime_settings();

	/* The library stays loaded for the life of the process; its handle is never closed. */
	engine_ready = true;
	pfree(path);
	return &engine_table;
}

void
borealis_engine_raise(const char *what)
{
	char		msg[1024];

	msg[0] = '\0';
	if (engine_table.last_error != NULL)
		engine_table.last_error(msg, sizeof(msg));
	if (engine_table.last_error_code != NULL && engine_table.last_error_code() == 1)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory in the Borealis engine %s", what),
				 errdetail("%s.", msg),
				 errhint("Raise borealis.engine_memory_limit (this backend's budget is %lld kB), or ask for "
						 "less: a lower ef_search, max_scan_tuples or scan_mem_multiplier.",
						 applied_limit / 1024)));
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("Borealis engine failed %s: %s", what, msg[0] ? msg : "no detail")));
}
