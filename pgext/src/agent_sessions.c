/*
 * agent_sessions.c — reading the client sessions of this node for the agent, in C because it
 * is PostgreSQL state: states and timestamps from the backend status array (what
 * pg_stat_activity shows), PGPROC for backend ids, temp namespaces and local transaction ids,
 * the data directory for temporary relation files, and the lock table for advisory locks and
 * prepared transactions.
 */
#include "agent.h"

#include <stdlib.h>

#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"

static double
age_seconds(TimestampTz now, TimestampTz since)
{
	if (since == 0 || since >= now)
		return 0;
	return (double) (now - since) / USECS_PER_SEC;
}

/* Marks has_temp[id] for every backend id with a temporary relation file ("t<id>_<node>"). */
static void
scan_temp_files(const char *path, bool *has_temp)
{
	DIR		   *dir = AllocateDir(path);
	struct dirent *de;

	if (dir == NULL)
		return;					/* no such database directory in this tablespace */
	while ((de = ReadDirExtended(dir, path, LOG)) != NULL)
	{
		char	   *end;
		long		id;

		if (de->d_name[0] != 't')
			continue;
		id = strtol(de->d_name + 1, &end, 10);
		if (end != de->d_name + 1 && *end == '_' && id > 0 && id <= MaxBackends)
			has_temp[id] = true;
	}
	FreeDir(dir);
}

/*
 * A temp namespace in PGPROC says a session once created a temporary relation, not that it
 * still has one (the namespace outlives DROP TABLE). Its relations' files say that: they are
 * removed when the relation is dropped, at commit, or when the creating transaction aborts.
 * Temporary relations live in the database's directory of any tablespace (temp_tablespaces).
 */
static void
scan_database_temp_files(Oid dbid, bool *has_temp)
{
	DIR		   *tablespaces;
	struct dirent *de;

	scan_temp_files(psprintf("base/%u", dbid), has_temp);
	tablespaces = AllocateDir("pg_tblspc");
	if (tablespaces == NULL)
		return;
	while ((de = ReadDirExtended(tablespaces, "pg_tblspc", LOG)) != NULL)
	{
		if (de->d_name[0] == '.')
			continue;
		scan_temp_files(psprintf("pg_tblspc/%s/%s/%u", de->d_name, TABLESPACE_VERSION_DIRECTORY, dbid),
						has_temp);
	}
	FreeDir(tablespaces);
}

/*
 * One pass over the lock table. An advisory lock can be session-level (pg_advisory_lock) or
 * transaction-level (pg_advisory_xact_lock) and the shared lock table does not say which; but a
 * session that is idle outside any transaction can only still hold session-level ones, so
 * pids[] lists the backends holding an advisory lock and the caller counts only idle ones. (A
 * session-level lock of a session inside a transaction is reported as soon as the transaction
 * ends; meanwhile open_transaction blocks anyway.) A prepared transaction's locks belong to a
 * dummy PGPROC with pid 0, which holds the lock on its own transaction id; its virtual
 * transaction id is unique to it, so prepared transactions are counted by distinct vxid.
 */
static void
scan_lock_table(int **advisory_pids, int *nadvisory, int *prepared_xacts)
{
	LockData   *ld = GetLockStatusData();
	int		   *pids = palloc(sizeof(int) * Max(ld->nelements, 1));
	LocalTransactionId *prepared = palloc(sizeof(LocalTransactionId) * Max(ld->nelements, 1));
	BackendId  *prepared_backend = palloc(sizeof(BackendId) * Max(ld->nelements, 1));
	int			np = 0,
				nx = 0;

	for (int i = 0; i < ld->nelements; i++)
	{
		LockInstanceData *in = &ld->locks[i];
		bool		seen = false;

		if (in->holdMask == 0)
			continue;
		if (in->locktag.locktag_type == LOCKTAG_ADVISORY && in->pid != 0)
		{
			for (int j = 0; j < np && !seen; j++)
				seen = pids[j] == in->pid;
			if (!seen)
				pids[np++] = in->pid;
		}
		else if (in->locktag.locktag_type == LOCKTAG_TRANSACTION && in->pid == 0)
		{
			for (int j = 0; j < nx && !seen; j++)
				seen = prepared[j] == in->lxid &&
					prepared_backend[j] == in->backend;
			if (!seen)
			{
				prepared[nx] = in->lxid;
				prepared_backend[nx++] = in->backend;
			}
		}
	}
	*advisory_pids = pids;
	*nadvisory = np;
	*prepared_xacts = nx;
}

AgentSession *
agent_read_sessions(int *nsessions, int *prepared_xacts)
{
	int			nbackends = pgstat_fetch_stat_numbackends();
	AgentSession *sessions = palloc0(sizeof(AgentSession) * Max(nbackends, 1));
	/* Per session with a temp namespace: its backend id and database. */
	int		   *temp_backend = palloc0(sizeof(int) * Max(nbackends, 1));
	Oid		   *temp_db = palloc0(sizeof(Oid) * Max(nbackends, 1));
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;
	int		   *advisory_pids;
	int			nadvisory;

	scan_lock_table(&advisory_pids, &nadvisory, prepared_xacts);

	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;
		AgentSession *s;
		PGPROC	   *proc;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_backendType != B_BACKEND || be->st_procpid <= 0)
			continue;

		s = &sessions[n];
		switch (be->st_state)
		{
			case STATE_RUNNING:
			case STATE_FASTPATH:
				s->state = AGENT_SESSION_ACTIVE;
				s->query_seconds = age_seconds(now, be->st_activity_start_timestamp);
				break;
			case STATE_IDLE:
				s->state = AGENT_SESSION_IDLE;
				break;
			case STATE_IDLEINTRANSACTION:
			case STATE_IDLEINTRANSACTION_ABORTED:
				s->state = AGENT_SESSION_IDLE_IN_XACT;
				break;
			default:
				s->state = AGENT_SESSION_OTHER;
				break;
		}
		s->xact_seconds = age_seconds(now, be->st_xact_start_timestamp);
		if (be->st_state == STATE_IDLE)
		{
			for (int j = 0; j < nadvisory; j++)
				if (advisory_pids[j] == be->st_procpid)
					s->flags |= AGENT_SESSION_ADVISORY_LOCKS;
		}

		proc = BackendPidGetProc(be->st_procpid);
		if (proc != NULL)
		{
			if (agent_session_holds_explicit_locks(proc->backendId, proc->pid, proc->lxid))
				s->flags |= AGENT_SESSION_EXPLICIT_LOCKS;
			if (agent_session_has_held_cursors(proc->backendId, proc->pid))
				s->flags |= AGENT_SESSION_HELD_CURSORS;
			if (OidIsValid(proc->tempNamespaceId))
			{
				temp_backend[n] = proc->backendId;
				temp_db[n] = proc->databaseId;
			}
		}
		n++;
	}

	/* Scan each database with a temp namespace once, and only those. */
	for (int i = 0; i < n; i++)
	{
		bool	   *has_temp;
		Oid			db = temp_db[i];

		if (!OidIsValid(db))
			continue;
		has_temp = palloc0(sizeof(bool) * (MaxBackends + 1));
		scan_database_temp_files(db, has_temp);
		for (int j = i; j < n; j++)
		{
			if (temp_db[j] != db)
				continue;
			if (temp_backend[j] > 0 && temp_backend[j] <= MaxBackends && has_temp[temp_backend[j]])
				sessions[j].flags |= AGENT_SESSION_TEMP_TABLES;
			temp_db[j] = InvalidOid;
		}
		pfree(has_temp);
	}

	/* The status snapshot is per transaction in backends; the worker has none, so drop it. */
	pgstat_clear_backend_activity_snapshot();
	*nsessions = n;
	return sessions;
}
