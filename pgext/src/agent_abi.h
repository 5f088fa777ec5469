/*
 * agent_abi.h — the interface between the node agent's C half (agent*.c, in the background
 * worker) and its Go half (bgworker/agentlib, built into borealis_agent.so).
 *
 * Plain C on purpose: the Go side includes this file through cgo, so both halves share one
 * definition of the structs. C gathers facts that need PostgreSQL (sessions, from shared
 * memory); Go measures /proc and decides. Go never calls back into PostgreSQL.
 */
#ifndef BOREALIS_AGENT_ABI_H
#define BOREALIS_AGENT_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Bump on any change below; the loader refuses a library with another version. */
#define BOREALIS_AGENT_ABI 2

#define AGENT_OK		0
#define AGENT_ERROR		2

/* AgentSession.state */
#define AGENT_SESSION_OTHER				0
#define AGENT_SESSION_ACTIVE			1
#define AGENT_SESSION_IDLE				2
#define AGENT_SESSION_IDLE_IN_XACT		3

/* AgentSession.flags */
#define AGENT_SESSION_TEMP_TABLES		0x1
#define AGENT_SESSION_EXPLICIT_LOCKS	0x2
#define AGENT_SESSION_ADVISORY_LOCKS	0x4
#define AGENT_SESSION_HELD_CURSORS		0x8

/* AgentSnapshot.blockers: bit i is the i-th name, in this order (bgworker.Blockers). */
#define AGENT_BLOCKER_LONG_RUNNING_QUERY	0x1
#define AGENT_BLOCKER_OPEN_TRANSACTION		0x2
#define AGENT_BLOCKER_TEMP_TABLES			0x4
#define AGENT_BLOCKER_EXPLICIT_LOCKS		0x8
#define AGENT_BLOCKER_ADVISORY_LOCKS		0x10
#define AGENT_BLOCKER_HELD_CURSORS			0x20
#define AGENT_BLOCKER_PREPARED_XACTS		0x40
#define AGENT_BLOCKER_COUNT					7

/* One client session, as C read it from PostgreSQL's shared memory. */
typedef struct AgentSession
{
	int32_t		state;
	int32_t		flags;
	double		query_seconds;	/* age of the running statement; 0 unless active */
	double		xact_seconds;	/* age of the transaction; 0 if none */
} AgentSession;

/* What Go computed from one sample: node_status() minus sampled_at and agent_pid. */
typedef struct AgentSnapshot
{
	double		cpu_percent_1m;
	double		cpu_percent_5m;
	int64_t		memory_bytes;
	int32_t		connections_active;
	int32_t		connections_idle;
	int32_t		connections_idle_in_transaction;
	int32_t		temp_table_sessions;
	int32_t		explicit_lock_sessions;
	int32_t		scaling_point;	/* 0 or 1 */
	uint32_t	blockers;		/* AGENT_BLOCKER_* */
	int32_t		cpu_ok;			/* 0 when /proc could not be read; see last_error */
	double		oldest_query_seconds;
	double		oldest_transaction_seconds;
	int32_t		advisory_lock_sessions;
	int32_t		held_cursor_sessions;
	int32_t		prepared_transactions;
} AgentSnapshot;

/* The functions borealis_agent.so exports. */
typedef int (*agent_abi_version_fn) (void);
typedef int (*agent_init_fn) (int postmaster_pid, double clock_ticks, double cpus);
typedef int (*agent_sample_fn) (double threshold_seconds, const AgentSession *sessions,
								int nsessions, int prepared_xacts, AgentSnapshot *out);
typedef int (*agent_last_error_fn) (char *buf, size_t size);

#endif							/* BOREALIS_AGENT_ABI_H */
