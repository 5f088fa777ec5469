/*
 * borealis.h — declarations shared by the C files of the Borealis extension module.
 *
 * The C module is the only part of Borealis that PostgreSQL loads at postmaster start
 * (shared_preload_libraries). It registers GUCs and, through engine.c, loads the Go engine
 * lazily in a backend or worker, never in the postmaster.
 */
#ifndef BOREALIS_H
#define BOREALIS_H

#include "postgres.h"

#define BOREALIS_VERSION "0.1.0"

/* GUCs (guc.c) */
extern int	borealis_ef_search;
extern int	borealis_iterative_scan;
extern int	borealis_max_scan_tuples;
extern double borealis_scan_mem_multiplier;
extern int	borealis_build_threads;
extern int	borealis_engine_memory_limit;
extern int	borealis_debug_panic;
extern int	borealis_debug_build_delay_us;
extern char *borealis_graph_directory;
extern bool borealis_prewarm;
extern int	borealis_graph_spare;
extern bool borealis_skip_unread_order_keys;

typedef enum BorealisIterativeScan
{
	BOREALIS_ITERATIVE_SCAN_OFF,
	BOREALIS_ITERATIVE_SCAN_RELAXED,
	BOREALIS_ITERATIVE_SCAN_STRICT
} BorealisIterativeScan;

extern void borealis_define_gucs(void);

/* The node agent (agent.c): its GUCs, and when preloaded its background worker and hooks. */
extern void borealis_agent_register(void);

#endif							/* BOREALIS_H */
