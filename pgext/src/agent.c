/*
 * agent.c — the node agent's settings, its registration as a background worker, and the
 * shared memory it publishes into.
 *
 * Runs in the postmaster (from _PG_init) and so stays free of Go: the worker loads the agent's
 * Go half after fork (agent_lib.c). Without shared_preload_libraries there is no worker and
 * no shared state; borealis.node_status() then returns a row of NULLs.
 */
#include "agent.h"
#include "borealis.h"

#include <limits.h>

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

/* How long a statement may run, or a transaction stay open, before it blocks scaling. */
int			borealis_scaling_query_threshold_ms = 5000;
int			borealis_agent_interval_ms = 1000;

AgentShared *agent_shared = NULL;
AgentLockSlot *agent_lock_slots = NULL;

/* Seconds the postmaster waits before restarting a worker that exited or crashed. */
#define AGENT_RESTART_SECONDS 2

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
agent_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(AgentShared)), agent_lock_slots_size());
}

static void
agent_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(agent_shmem_size());
}

/* Runs in the postmaster at start and after every crash restart, on fresh shared memory. */
static void
agent_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	agent_shared = ShmemInitStruct("borealis node agent", agent_shmem_size(), &found);
	if (!found)
	{
		memset(agent_shared, 0, agent_shmem_size());
		SpinLockInit(&agent_shared->mutex);
	}
	agent_lock_slots = (AgentLockSlot *) ((char *) agent_shared + MAXALIGN(sizeof(AgentShared)));
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Defines the agent's settings (in every process that loads the module, so SHOW works
 * everywhere) and, when preloaded, registers the worker and its hooks. Called from _PG_init
 * before the "borealis" GUC prefix is reserved, so postgresql.conf may set these.
 */
void
borealis_agent_register(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("borealis.scaling_query_threshold",
							"A statement running, or a transaction open, for longer than this blocks a scaling point.",
							"An idle-in-transaction session blocks one at any age. See borealis.node_status().",
							&borealis_scaling_query_threshold_ms, 5000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("borealis.agent_interval_ms",
							"How often the Borealis node agent samples this node.",
							NULL,
							&borealis_agent_interval_ms, 1000, 100, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = agent_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = agent_shmem_startup;
	agent_locks_install_hook();

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	/* Hot standbys run the agent too, once they are consistent. */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = AGENT_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "borealis");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "borealis_agent_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "borealis node agent");
	snprintf(worker.bgw_type, BGW_MAXLEN, "borealis node agent");
	RegisterBackgroundWorker(&worker);
}
