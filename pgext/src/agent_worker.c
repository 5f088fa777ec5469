/*
 * agent_worker.c — the node agent's background worker: once per borealis.agent_interval_ms it
 * reads the sessions (agent_sessions.c), hands them to the Go half to measure /proc and decide,
 * and publishes the result for borealis.node_status().
 *
 * The worker connects to no database: everything it reads is in shared memory or /proc. It
 * exits promptly on SIGTERM (smart and fast shutdown, or pg_terminate-like kills; the latch
 * wakes it) with code 1, so the postmaster restarts it after AGENT_RESTART_SECONDS unless the
 * server is shutting down; after a crash the postmaster restarts it the same way.
 */
#include "agent.h"

#include <sched.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * The CPUs in this server's affinity mask (inherited from the postmaster); the Go half lowers
 * that to a cgroup v2 quota where one is set.
 */
static double
agent_usable_cpus(void)
{
	cpu_set_t	set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return Max(1, (int) sysconf(_SC_NPROCESSORS_ONLN));
}

static void
agent_clear_pid(int code, Datum arg)
{
	SpinLockAcquire(&agent_shared->mutex);
	if (agent_shared->agent_pid == MyProcPid)
		agent_shared->agent_pid = 0;
	SpinLockRelease(&agent_shared->mutex);
}

static void
agent_last_error(const AgentLib *lib, char *buf, size_t size)
{
	buf[0] = '\0';
	lib->last_error(buf, size);
}

/*
 * Warnings are said once per spell of trouble, not once per sample: the worker samples every
 * second and a log line per second would drown the server log.
 */
typedef struct AgentWarned
{
	bool		sample;			/* the Go half failed a sample */
	bool		usage;			/* /proc could not be read */
} AgentWarned;

static void
agent_sample_once(const AgentLib *lib, MemoryContext cxt, AgentWarned *warned)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	AgentSnapshot snap;
	AgentSession *sessions;
	int			nsessions;
	int			prepared_xacts;
	TimestampTz now;
	char		msg[1024];

	sessions = agent_read_sessions(&nsessions, &prepared_xacts);
	now = GetCurrentTimestamp();
	memset(&snap, 0, sizeof(snap));
	if (lib->sample(borealis_scaling_query_threshold_ms / 1000.0, sessions, nsessions, prepared_xacts,
					&snap) != AGENT_OK)
	{
		if (!warned->sample)
		{
			agent_last_error(lib, msg, sizeof(msg));
			ereport(WARNING,
					(errmsg("borealis node agent: sampling failed: %s", msg),
					 errdetail("node_status() keeps its last snapshot until sampling works again.")));
			warned->sample = true;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		return;
	}
	warned->sample = false;
	if (!snap.cpu_ok && !warned->usage)
	{
		agent_last_error(lib, msg, sizeof(msg));
		ereport(WARNING,
				(errmsg("borealis node agent: cannot measure CPU and memory: %s", msg),
				 errdetail("node_status() reports them as NULL until /proc can be read.")));
		warned->usage = true;
	}
	else if (snap.cpu_ok)
		warned->usage = false;

	SpinLockAcquire(&agent_shared->mutex);
	agent_shared->snapshot = snap;
	agent_shared->sampled_at = now;
	agent_shared->has_snapshot = true;
	agent_shared->has_usage = snap.cpu_ok != 0;
	SpinLockRelease(&agent_shared->mutex);

	MemoryContextSwitchTo(old);
	MemoryContextReset(cxt);
}

void
borealis_agent_main(Datum arg)
{
	AgentLib	lib;
	char		why[1024];
	MemoryContext cxt;
	AgentWarned warned = {false, false};

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	if (agent_shared == NULL)
		proc_exit(0);			/* not preloaded: cannot happen, the worker is registered then */

	/*
	 * Without its Go half the agent cannot decide; say so once and stay down (exit code 0 is
	 * not restarted) rather than fail every few seconds.
	 */
	memset(&lib, 0, sizeof(lib));
	if (!agent_lib_load(&lib, why, sizeof(why)))
	{
		ereport(LOG,
				(errmsg("borealis node agent disabled: %s", why),
				 errhint("Install it with \"make install\" from the Borealis source tree and restart the server.")));
		proc_exit(0);
	}
	if (lib.init(PostmasterPid, (double) sysconf(_SC_CLK_TCK), agent_usable_cpus()) != AGENT_OK)
	{
		agent_last_error(&lib, why, sizeof(why));
		ereport(LOG, (errmsg("borealis node agent disabled: %s", why)));
		proc_exit(0);
	}

	on_shmem_exit(agent_clear_pid, (Datum) 0);
	SpinLockAcquire(&agent_shared->mutex);
	agent_shared->agent_pid = MyProcPid;
	SpinLockRelease(&agent_shared->mutex);

	cxt = AllocSetContextCreate(TopMemoryContext, "borealis node agent sample", ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending)
	{
		TimestampTz started = GetCurrentTimestamp();
		long		wait_ms;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		agent_sample_once(&lib, cxt, &warned);

		/* Keep the period, not the pause: sampling time is not added to the interval. */
		wait_ms = borealis_agent_interval_ms -
			(long) ((GetCurrentTimestamp() - started) / 1000);
		if (wait_ms > 0 && !ShutdownRequestPending)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
	proc_exit(1);
}
