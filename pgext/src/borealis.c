/*
 * borealis.c — module entry point.
 *
 * _PG_init runs in the postmaster when the module is preloaded. It must stay free of Go:
 * a Go runtime started here would be inherited half-dead by every forked backend. So it only
 * registers GUCs (and, in later parts, background workers and hooks).
 */
#include "borealis.h"

#include "fmgr.h"
#include "hnsw.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* First: its GUCs must exist before borealis_define_gucs() reserves the prefix. */
	borealis_agent_register();
	borealis_define_gucs();
	bhnsw_register_hooks();
	bhnsw_register_planner();
	bhnsw_register_prewarm();
}
