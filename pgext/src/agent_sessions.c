/*
 * agent_sessions.c — reading the client sessions of this node for the agent, in C because it
 * is PostgreSQL state: states and timestamps from the backend status array (what
 * pg_stat_activity shows), PGPROC for backend ids, temp namespaces and local transaction ids,
 * and the data directory for temporary relation files.
 */
#include "agent.h"

#include <stdlib.h>

#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/fd.h"
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

AgentSession *
agent_read_sessions(int *nsessions)
{
	int			nbackends = pgstat_fetch_stat_numbackends();
	AgentSession *sessions = palloc0(sizeof(AgentSession) * Max(nbackends, 1));
	/* Per session with a temp namespace: its backend id and database. */
	int		   *temp_backend = palloc0(sizeof(int) * Max(nbackends, 1));
	Oid		   *temp_db = palloc0(sizeof(Oid) * Max(nbackends, 1));
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;

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

		proc = BackendPidGetProc(be->st_procpid);
		if (proc != NULL)
		{
			if (agent_session_holds_explicit_locks(proc->backendId, proc->pid, proc->lxid))
				s->flags |= AGENT_SESSION_EXPLICIT_LOCKS;
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
