/*
 * agent_status.c — borealis.node_status(): the agent's last snapshot, one row, readable by
 * any role. Copies the shared snapshot under its spinlock and builds the row outside it.
 */
#include "agent.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(borealis_node_status);

/*
 * The columns of node_status(); the first 14 are those of the first release, which a database
 * whose extension script predates the rest still declares (see borealis_node_status).
 */
#define NODE_STATUS_COLUMNS 17
#define NODE_STATUS_COLUMNS_V1 14

/* Indexed by bit number of AGENT_BLOCKER_*; the order node_status() lists them in. */
static const char *const blocker_names[AGENT_BLOCKER_COUNT] = {
	"long_running_query", "open_transaction", "temp_tables", "explicit_locks",
	"advisory_locks", "held_cursors", "prepared_transactions",
};

static Datum
blockers_array(uint32 blockers)
{
	Datum		elems[AGENT_BLOCKER_COUNT];
	int			n = 0;

	for (int bit = 0; bit < AGENT_BLOCKER_COUNT; bit++)
		if (blockers & (1u << bit))
			elems[n++] = CStringGetTextDatum(blocker_names[bit]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

Datum
borealis_node_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[NODE_STATUS_COLUMNS];
	bool		nulls[NODE_STATUS_COLUMNS];
	AgentSnapshot snap;
	TimestampTz sampled_at = 0;
	bool		has_snapshot = false,
				has_usage = false;
	int			pid = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("borealis.node_status() must be called where a record is expected")));
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != NODE_STATUS_COLUMNS && tupdesc->natts != NODE_STATUS_COLUMNS_V1)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("borealis.node_status() is declared with %d columns, the module returns %d",
						tupdesc->natts, NODE_STATUS_COLUMNS),
				 errhint("Run \"ALTER EXTENSION borealis UPDATE\" or reinstall the extension.")));

	memset(nulls, true, sizeof(nulls));
	memset(&snap, 0, sizeof(snap));
	if (agent_shared != NULL)
	{
		SpinLockAcquire(&agent_shared->mutex);
		pid = agent_shared->agent_pid;
		has_snapshot = agent_shared->has_snapshot;
		has_usage = agent_shared->has_usage;
		sampled_at = agent_shared->sampled_at;
		snap = agent_shared->snapshot;
		SpinLockRelease(&agent_shared->mutex);
	}

	if (has_snapshot)
	{
		values[0] = TimestampTzGetDatum(sampled_at);
		if (has_usage)
		{
			values[1] = Float8GetDatum(snap.cpu_percent_1m);
			values[2] = Float8GetDatum(snap.cpu_percent_5m);
			values[3] = Int64GetDatum(snap.memory_bytes);
			nulls[1] = nulls[2] = nulls[3] = false;
		}
		values[4] = Int32GetDatum(snap.connections_active);
		values[5] = Int32GetDatum(snap.connections_idle);
		values[6] = Int32GetDatum(snap.connections_idle_in_transaction);
		values[7] = Float8GetDatum(snap.oldest_query_seconds);
		values[8] = Float8GetDatum(snap.oldest_transaction_seconds);
		values[9] = Int32GetDatum(snap.temp_table_sessions);
		values[10] = Int32GetDatum(snap.explicit_lock_sessions);
		values[11] = BoolGetDatum(snap.scaling_point != 0);
		values[12] = blockers_array(snap.blockers);
		nulls[0] = false;
		for (int i = 4; i <= 12; i++)
			nulls[i] = false;
	}
	if (pid != 0)
	{
		values[13] = Int32GetDatum(pid);
		nulls[13] = false;
	}
	if (has_snapshot)
	{
		values[14] = Int32GetDatum(snap.advisory_lock_sessions);
		values[15] = Int32GetDatum(snap.held_cursor_sessions);
		values[16] = Int32GetDatum(snap.prepared_transactions);
		nulls[14] = nulls[15] = nulls[16] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
