/*
 * agent_locks.c — which sessions hold explicit table locks (LOCK TABLE), and which keep
 * WITH HOLD cursors past their transaction.
 *
 * The lock table cannot tell LOCK TABLE from the locks every statement takes (a SELECT and
 * LOCK ... IN ACCESS SHARE MODE hold the same lock), so each backend notes, in its own slot of
 * shared memory, the local transaction id in which it last ran LOCK TABLE. The lock is held
 * until that transaction ends, and a transaction's end changes PGPROC->lxid, so the agent
 * counts a session while its slot matches its current lxid; nothing needs clearing. A lock
 * taken in a subtransaction that rolled back still counts until the top transaction ends.
 *
 * WITH HOLD cursors are portals, which live in the backend's private memory. Each backend keeps
 * the names it declared WITH HOLD and, after each utility statement and at each transaction
 * end, publishes in its slot how many of them are still portals that outlived the transaction
 * that declared them (createSubid is reset when a holdable portal is committed). The portal
 * itself is the truth, so CLOSE, CLOSE ALL, DISCARD ALL, a protocol-level Close and a rolled
 * back DECLARE are all seen without being parsed here.
 */
#include "agent.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/portal.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Names this backend declared WITH HOLD that may still be portals; in TopMemoryContext. */
static List *held_cursor_names = NIL;

static AgentLockSlot *
my_slot(void)
{
	if (agent_lock_slots == NULL || MyProc == NULL || MyBackendId <= 0 || MyBackendId > MaxBackends)
		return NULL;
	return &agent_lock_slots[MyBackendId - 1];
}

/* Recounts the held cursors and publishes the count. Never raises an error (runs in abort). */
static void
publish_held_cursors(void)
{
	volatile AgentLockSlot *slot = my_slot();
	ListCell   *lc;
	int			held = 0;

	foreach(lc, held_cursor_names)
	{
		char	   *name = lfirst(lc);
		Portal		portal = GetPortalByName(name);

		if (portal == NULL || !(portal->cursorOptions & CURSOR_OPT_HOLD))
		{
			held_cursor_names = foreach_delete_current(held_cursor_names, lc);
			pfree(name);
			continue;
		}
		if (portal->createSubid == InvalidSubTransactionId)
			held++;
	}
	if (slot == NULL)
		return;
	slot->held_cursors = held;
	pg_write_barrier();
	slot->cursor_pid = MyProcPid;
}

static void
note_held_cursor(const char *name)
{
	MemoryContext old;
	ListCell   *lc;

	if (name == NULL || name[0] == '\0')
		return;
	foreach(lc, held_cursor_names)
		if (strcmp(lfirst(lc), name) == 0)
			return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	held_cursor_names = lappend(held_cursor_names, pstrdup(name));
	MemoryContextSwitchTo(old);
}

static void
agent_xact_callback(XactEvent event, void *arg)
{
	if (held_cursor_names == NIL)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		publish_held_cursors();
}

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
	const char *hold_name = NULL;

	if (IsA(pstmt->utilityStmt, DeclareCursorStmt) &&
		(((DeclareCursorStmt *) pstmt->utilityStmt)->options & CURSOR_OPT_HOLD))
		hold_name = ((DeclareCursorStmt *) pstmt->utilityStmt)->portalname;

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
	/* Only once declared: a DECLARE that failed made no portal. */
	if (hold_name != NULL)
		note_held_cursor(hold_name);
	if (held_cursor_names != NIL)
		publish_held_cursors();
}

void
agent_locks_install_hook(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = agent_process_utility;
	RegisterXactCallback(agent_xact_callback, NULL);
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

bool
agent_session_has_held_cursors(int backend_id, int pid)
{
	volatile AgentLockSlot *slot;
	int			slot_pid;

	if (agent_lock_slots == NULL || backend_id <= 0 || backend_id > MaxBackends)
		return false;
	slot = &agent_lock_slots[backend_id - 1];
	slot_pid = slot->cursor_pid;
	pg_read_barrier();
	return slot_pid == pid && slot->held_cursors > 0;
}
