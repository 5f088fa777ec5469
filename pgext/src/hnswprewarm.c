/*
 * hnswprewarm.c — load the shared graphs before the first query needs them.
 *
 * With borealis.prewarm on and the module preloaded, a background worker starts once the
 * server is consistent (a primary after recovery, a standby once it accepts queries). It lists
 * the databases and starts one short-lived worker per database, which maps (building when
 * needed) the graph of every borealis_hnsw index there. On a standby it then waits for
 * promotion and does it once more, so the first query of the new primary finds graphs that
 * are current. The worker then stays, keeping every graph file mapped (hnswresident.c).
 * borealis_hnsw_prewarm(regclass) does the same for one index on demand.
 */
#include "hnsw.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relation.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "tcop/tcopprot.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void borealis_prewarm_main(Datum arg);
PGDLLEXPORT void borealis_prewarm_db_main(Datum arg);

PG_FUNCTION_INFO_V1(borealis_hnsw_prewarm);

/* Maps index's graph (building it when missing or stale); returns its size in bytes. */
static int64
prewarm_index(Relation index)
{
	BhnswCache *c = bhnsw_cache_get(index, false, false);
	int64		size = (int64) c->size;

	bhnsw_cache_unpin(c);
	return size;
}

Datum
borealis_hnsw_prewarm(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	index;
	int64		size;
	AclResult	acl;

	index = index_open(relid, AccessShareLock);
	acl = pg_class_aclcheck(index->rd_index->indrelid, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, get_rel_name(index->rd_index->indrelid));
	if (index->rd_rel->relam != get_index_am_oid("borealis_hnsw", false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a borealis_hnsw index", RelationGetRelationName(index))));
	size = prewarm_index(index);
	index_close(index, AccessShareLock);
	PG_RETURN_INT64(size);
}

/* The per-database worker: every borealis_hnsw index of database arg. */
void
borealis_prewarm_db_main(Datum arg)
{
	Oid			am;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *indexes = NIL;
	ListCell   *lc;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	am = get_index_am_oid("borealis_hnsw", true);
	if (OidIsValid(am))
	{
		rel = table_open(RelationRelationId, AccessShareLock);
		scan = table_beginscan_catalog(rel, 0, NULL);
		while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);

			if (form->relkind == RELKIND_INDEX && form->relam == am)
			{
				/* The list outlives the transaction. */
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				indexes = lappend_oid(indexes, form->oid);
				MemoryContextSwitchTo(old);
			}
		}
		table_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, indexes)
	{
		Relation	index;

		CHECK_FOR_INTERRUPTS();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		index = try_relation_open(lfirst_oid(lc), AccessShareLock);
		if (index)
		{
			int64		size = prewarm_index(index);

			ereport(LOG,
					(errmsg("borealis prewarm: graph of index \"%s\" mapped (%lld MB)",
							RelationGetRelationName(index), (long long) (size >> 20))));
			relation_close(index, AccessShareLock);
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	proc_exit(0);
}

/* Starts one per-database worker for each database that takes connections, one at a time. */
static void
prewarm_all(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *dbs = NIL;
	ListCell   *lc;

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			dbs = lappend_oid(dbs, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	foreach(lc, dbs)
	{
		BackgroundWorker w;
		BackgroundWorkerHandle *handle;
		pid_t		pid;

		memset(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_ConsistentState;
		w.bgw_restart_time = BGW_NEVER_RESTART;
		snprintf(w.bgw_library_name, BGW_MAXLEN, "borealis");
		snprintf(w.bgw_function_name, BGW_MAXLEN, "borealis_prewarm_db_main");
		snprintf(w.bgw_name, BGW_MAXLEN, "borealis prewarm of database %u", lfirst_oid(lc));
		snprintf(w.bgw_type, BGW_MAXLEN, "borealis prewarm");
		w.bgw_main_arg = ObjectIdGetDatum(lfirst_oid(lc));
		w.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&w, &handle))
		{
			ereport(LOG, (errmsg("borealis prewarm: no background worker slot for database %u", lfirst_oid(lc))));
			continue;
		}
		if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
			WaitForBackgroundWorkerShutdown(handle);
	}
}

void
borealis_prewarm_main(Datum arg)
{
	bool		standby;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	standby = RecoveryInProgress();

	prewarm_all();

	/*
	 * Then stay, keeping every graph file mapped (hnswresident.c) so its pages count once for
	 * the node and a new connection adds only its private memory. A standby also waits for
	 * promotion, then maps the graphs again (they may lag the last replayed pages).
	 */
	for (;;)
	{
		bhnsw_keep_graphs_resident();
		if (standby && !RecoveryInProgress())
		{
			standby = false;
			prewarm_all();
			continue;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

/* From _PG_init when preloaded. */
void
bhnsw_register_prewarm(void)
{
	BackgroundWorker w;

	if (!process_shared_preload_libraries_in_progress || !borealis_prewarm)
		return;
	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "borealis");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "borealis_prewarm_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "borealis prewarm");
	snprintf(w.bgw_type, BGW_MAXLEN, "borealis prewarm");
	w.bgw_main_arg = (Datum) 1;
	RegisterBackgroundWorker(&w);
}
