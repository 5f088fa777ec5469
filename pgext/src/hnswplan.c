/*
 * hnswplan.c — a planner hook that stops the executor recomputing an ORDER BY distance no one
 * reads.
 *
 * For `SELECT id FROM t ORDER BY embedding <=> $1 LIMIT 10` PostgreSQL 15 puts the ORDER BY
 * expression in the scan's target list as a resjunk column, and the index scan's projection
 * evaluates it for every row it returns: it detoasts the row's vector (6 kB at 1,536
 * dimensions, TOASTed out of line), runs pgvector's casts (vector_to_halfvec for a halfvec
 * expression index, on the row and on the query) and the distance again. When the plan is
 * Limit -> IndexScan on a borealis_hnsw index, the rows already arrive in order, nothing
 * above the scan compares them, and the junk filter drops the column before the client sees
 * it: the value is never read. This hook replaces such columns with a NULL constant of the same
 * type after standard planning, so the projection costs nothing and the heap tuple's vector is
 * not detoasted.
 *
 * Only this exact shape is changed, and only columns that are resjunk sort keys, non-volatile
 * and not a plain Var: a Limit WITH TIES (it compares the sort keys), a Sort, Unique, Agg,
 * MergeAppend, Gather or LockRows above the scan, or a distance the query selects, keep their
 * computation. PostgreSQL's index AM API has no way to hand the index's distance to the
 * projection (xs_orderbyvals serve only the executor's reorder queue), hence the hook.
 * borealis.skip_unread_order_keys = off turns it off (EXPLAIN VERBOSE then shows the
 * expression instead of NULL).
 */
#include "borealis.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "hnsw.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "utils/syscache.h"

static planner_hook_type prev_planner_hook = NULL;

static Oid
index_am_of(Oid indexoid)
{
	HeapTuple	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));
	Oid			am = InvalidOid;

	if (HeapTupleIsValid(tp))
	{
		am = ((Form_pg_class) GETSTRUCT(tp))->relam;
		ReleaseSysCache(tp);
	}
	return am;
}

/* Replaces the unread ORDER BY columns of a Limit -> borealis_hnsw IndexScan plan. */
static void
skip_unread_order_keys(PlannedStmt *stmt)
{
	Limit	   *limit;
	IndexScan  *scan;
	Oid			am;
	ListCell   *lc;

	if (stmt->commandType != CMD_SELECT || stmt->planTree == NULL || !IsA(stmt->planTree, Limit))
		return;
	limit = (Limit *) stmt->planTree;
	if (limit->limitOption == LIMIT_OPTION_WITH_TIES || limit->plan.lefttree == NULL ||
		!IsA(limit->plan.lefttree, IndexScan))
		return;
	scan = (IndexScan *) limit->plan.lefttree;
	if (scan->indexorderby == NIL)
		return;
	am = get_am_oid("borealis_hnsw", true);
	if (!OidIsValid(am) || index_am_of(scan->indexid) != am)
		return;
	foreach(lc, scan->scan.plan.targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Node	   *expr = (Node *) tle->expr;

		if (!tle->resjunk || tle->ressortgroupref == 0 || IsA(expr, Var) || IsA(expr, Const) ||
			contain_volatile_functions(expr))
			continue;
		tle->expr = (Expr *) makeNullConst(exprType(expr), exprTypmod(expr), exprCollation(expr));
	}
}

static PlannedStmt *
bhnsw_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *stmt;

	if (prev_planner_hook)
		stmt = prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	else
		stmt = standard_planner(parse, query_string, cursorOptions, boundParams);
	if (borealis_skip_unread_order_keys)
		skip_unread_order_keys(stmt);
	return stmt;
}

/* From _PG_init: hooks are process-wide and inherited by every backend. */
void
bhnsw_register_planner(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = bhnsw_planner;
}
