/*
 * agent_locks.c — which sessions hold explicit table locks (LOCK TABLE).
 *
 * The lock table cannot tell LOCK TABLE from the locks every statement takes (a SELECT and
 * LOCK ... IN ACCESS SHARE MODE hold the same lock), so each backend notes, in its own slot of
 * shared memory, the local transaction id in which it last ran LOCK TABLE. The lock is held
 * until that transaction ends, and a transaction's end changes PGPROC->lxid, so the agent
 * counts a session while its slot matches its current lxid; nothing needs clearing. A lock
 * taken in a subtransaction that rolled back still counts until the top transaction ends.
 */
#include "agent.h"

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "tcop/utility.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

Size
agent_lock_slots_size(void)
{
	return mul_size(MaxBackends, sizeof(AgentLockSlot));
}

static void
agent_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	bool		is_lock = IsA(pstmt->utilityStmt, LockStmt);

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	/* Only once the locks are held: a LOCK that failed holds nothing. */
	if (is_lock && agent_lock_slots != NULL && MyProc != NULL &&
		MyBackendId > 0 && MyBackendId <= MaxBackends)
	{
		volatile AgentLockSlot *slot = &agent_lock_slots[MyBackendId - 1];

		slot->lxid = MyProc->lxid;
		pg_write_barrier();
		slot->pid = MyProcPid;
	}
}

void
agent_locks_install_hook(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = agent_process_utility;
}

bool
agent_session_holds_explicit_locks(int backend_id, int pid, LocalTransactionId lxid)
{
	volatile AgentLockSlot *slot;
	int			slot_pid;

	if (agent_lock_slots == NULL || backend_id <= 0 || backend_id > MaxBackends ||
		lxid == InvalidLocalTransactionId)
		return false;
	slot = &agent_lock_slots[backend_id - 1];
	slot_pid = slot->pid;
	pg_read_barrier();
	return slot_pid == pid && slot->lxid == lxid;
}
