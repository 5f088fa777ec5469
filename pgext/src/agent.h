/*
 * agent.h — the node agent's C half: a background worker that samples this node once per
 * borealis.agent_interval_ms and publishes a snapshot in shared memory for
 * borealis.node_status(). docs/architecture.md ("Node agent") describes it.
 *
 * Split by concern: agent.c (GUCs, registration, shared memory), agent_locks.c (which sessions
 * ran LOCK TABLE or keep WITH HOLD cursors), agent_sessions.c (reading backends), agent_lib.c (loading the Go half),
 * agent_worker.c (the worker's main loop), agent_status.c (the SQL function).
 */
#ifndef BOREALIS_AGENT_H
#define BOREALIS_AGENT_H

#include "postgres.h"

#include "agent_abi.h"
#include "datatype/timestamp.h"
#include "storage/spin.h"

/* GUCs */
extern int	borealis_scaling_query_threshold_ms;
extern int	borealis_agent_interval_ms;

/* The published snapshot; guarded by mutex, written by the worker only. */
typedef struct AgentShared
{
	slock_t		mutex;
	int			agent_pid;		/* 0 when no worker runs */
	bool		has_snapshot;
	bool		has_usage;		/* CPU and memory were measured */
	TimestampTz sampled_at;
	AgentSnapshot snapshot;
} AgentShared;

/*
 * Per-backend slot (indexed by BackendId - 1), written by its backend only: the transaction in
 * which it ran LOCK TABLE, and how many WITH HOLD cursors outlive their transaction. Each field
 * is valid only while its pid matches the backend's (slots are reused by later backends).
 */
typedef struct AgentLockSlot
{
	int			pid;
	LocalTransactionId lxid;
	int			cursor_pid;
	int			held_cursors;
} AgentLockSlot;

/* NULL unless borealis is preloaded (the state lives in shared memory set up at start). */
extern AgentShared *agent_shared;
extern AgentLockSlot *agent_lock_slots;

extern void agent_locks_install_hook(void);
extern bool agent_session_holds_explicit_locks(int backend_id, int pid, LocalTransactionId lxid);
extern bool agent_session_has_held_cursors(int backend_id, int pid);
extern Size agent_lock_slots_size(void);

/*
 * Reads the client sessions into a palloc'd array (in the current memory context), and counts
 * the prepared transactions of the node.
 */
extern AgentSession *agent_read_sessions(int *nsessions, int *prepared_xacts);

/* The Go half, loaded in the worker process; NULL-free once agent_lib_load returned true. */
typedef struct AgentLib
{
	agent_abi_version_fn abi_version;
	agent_init_fn init;
	agent_sample_fn sample;
	agent_last_error_fn last_error;
} AgentLib;

extern bool agent_lib_load(AgentLib *lib, char *why, size_t whysize);

extern PGDLLEXPORT void borealis_agent_main(Datum arg);

#endif							/* BOREALIS_AGENT_H */
