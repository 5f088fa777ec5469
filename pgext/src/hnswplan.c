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
 * Only this shape is changed (wherever it appears: the top of the plan, a subquery such as
 * the candidate list of a binary-quantization re-ranking query, a SubPlan), and only columns
 * that are resjunk sort keys, non-volatile and not a plain Var: a Limit WITH TIES (it compares
 * the sort keys), a Sort, Unique, Agg, MergeAppend, Gather or LockRows between the Limit and
 * the scan, or a distance the query selects, keep their computation. PostgreSQL's index AM API has no way to hand the index's distance to the
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
#include "miscadmin.h"
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

/*
 * Replaces the unread ORDER BY columns of plan when it is a Limit over a borealis_hnsw
 * IndexScan. A resjunk column is read only within its own query level, and there a Limit is
 * the last node that orders (ORDER BY is applied before LIMIT): the nodes above it at that
 * level (LockRows, ProjectSet) pass the column on unread, and the level above sees only the
 * non-junk columns. So wherever the pair appears (the top, a subquery, a SubPlan) the column
 * is unread, unless WITH TIES compares it.
 */
static void
skip_in_limit(Plan *plan, Oid am)
{
	Limit	   *limit = (Limit *) plan;
	IndexScan  *scan;
	ListCell   *lc;

	if (limit->limitOption == LIMIT_OPTION_WITH_TIES || limit->plan.lefttree == NULL ||
		!IsA(limit->plan.lefttree, IndexScan))
		return;
	scan = (IndexScan *) limit->plan.lefttree;
	if (scan->indexorderby == NIL || index_am_of(scan->indexid) != am)
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

static void
skip_in_plan(Plan *plan, Oid am)
{
	ListCell   *lc;
	List	   *children = NIL;

	if (plan == NULL)
		return;
	check_stack_depth();
	if (IsA(plan, Limit))
		skip_in_limit(plan, am);
	skip_in_plan(plan->lefttree, am);
	skip_in_plan(plan->righttree, am);
	switch (nodeTag(plan))
	{
		case T_SubqueryScan:
			skip_in_plan(((SubqueryScan *) plan)->subplan, am);
			break;
		case T_Append:
			children = ((Append *) plan)->appendplans;
			break;
		case T_MergeAppend:
			children = ((MergeAppend *) plan)->mergeplans;
			break;
		case T_CustomScan:
			children = ((CustomScan *) plan)->custom_plans;
			break;
		default:
			break;
	}
	foreach(lc, children)
		skip_in_plan((Plan *) lfirst(lc), am);
}

/* Applies skip_in_limit to every Limit of a SELECT's plan and its SubPlans and InitPlans. */
static void
skip_unread_order_keys(PlannedStmt *stmt)
{
	Oid			am;
	ListCell   *lc;

	if (stmt->commandType != CMD_SELECT)
		return;
	am = get_am_oid("borealis_hnsw", true);
	if (!OidIsValid(am))
		return;
	skip_in_plan(stmt->planTree, am);
	foreach(lc, stmt->subplans)
		skip_in_plan((Plan *) lfirst(lc), am);
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
