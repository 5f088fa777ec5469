/*
 * engine.h — the C view of the Go engine (borealis_engine.so, built from engine/).
 *
 * The engine is reached only through this table, filled by dlsym on first use. Every entry
 * returns a status code; none of them calls back into PostgreSQL, so no PostgreSQL error can
 * ever unwind through Go frames. Callers turn a status into ereport() after the call returned.
 */
#ifndef BOREALIS_ENGINE_H
#define BOREALIS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Must match abiVersion in engine/abi.go. */
#define BOREALIS_ENGINE_ABI 10

#define ENGINE_OK			0
#define ENGINE_INTERRUPTED	1
#define ENGINE_ERROR		2
#define ENGINE_RUNNING		3
#define ENGINE_FULL			4	/* a mapped graph has no room left */

typedef struct BorealisEngine
{
	int			(*abi_version) (void);
	int			(*init) (void *interrupt_pending);
	int			(*go_version) (char *buf, size_t size);
	int			(*last_error) (char *buf, size_t size);
	int			(*info_json) (char *buf, size_t size);
	int			(*debug_spin) (long long ms);
	int			(*configure) (int procs, long long memory_limit);
	/* 1 when the last failed call was refused by the allocation guard; NULL in older engines. */
	int			(*last_error_code) (void);

	/* borealis_hnsw graphs (engine/index*.go); handles are opaque. */
	int			(*index_new) (int dims, int metric, int m, int ef_construction,
							  long long memory_limit, long long *handle);
	/* never waits for a build's goroutines: its mapping then goes through index_unmap */
	int			(*index_free) (long long handle);
	/* unmaps a graph mapping now, or once an abandoned build stops writing into it */
	int			(*index_unmap) (void *base, long long size);
	/* arena_words: room for sparsevec codes (0: every element at full width; other types ignore it) */
	long long	(*index_mapped_size) (int dims, int metric, int m, int quantization, long long capacity,
									  long long arena_words);
	int			(*index_attach) (void *base, long long size, int dims, int metric, int m,
								 int ef_construction, int quantization, long long capacity,
								 long long arena_words, int init, long long *handle);
	/* free sparse code words of a mapped graph; -1: it keeps no arena */
	long long	(*index_code_room) (long long handle);
	int			(*index_quantization) (long long handle);	/* resolved BHNSW_QUANT_*, never auto */
	long long	(*index_estimate) (long long n, int dims, int m);
	int			(*index_node_level) (long long handle, uint32_t id, int *level, int *deleted);
	int			(*index_node_vector) (long long handle, uint32_t id, float *vec);
	int			(*index_node_lists) (long long handle, uint32_t id, uint32_t *slots, int nslots);
	int			(*index_entry) (long long handle, uint32_t *id, int *level);
	int			(*index_check_vectors) (int metric, int dims, int n, float *vecs, int *bad);
	int			(*index_build_insert) (long long handle, long long first, int n, float *vecs,
									   int threads);
	/* ms 0: reports without waiting (C sleeps on its latch between polls) */
	int			(*index_build_wait) (long long handle, int ms, long long *done);
	int			(*index_export) (long long handle, long long first, int n, int *levels,
								 float *vecs, uint32_t *slots, int nslots);
	int			(*index_restore) (long long handle, uint32_t id, int level, int deleted, float *vec);
	int			(*index_set_lists) (long long handle, uint32_t id, uint32_t *slots, int nslots);
	int			(*index_set_entry) (long long handle, uint32_t id, int level);
	int			(*index_insert) (long long handle, uint32_t id, float *vec,
								 uint32_t *changed, int capacity, int *nchanged);
	int			(*index_insert_prepare) (long long handle, float *vec, unsigned long long level_key,
										 float *stored, int *level, uint32_t *slots, int nslots,
										 long long *prep);
	int			(*index_insert_commit) (long long prep, uint32_t id,
										uint32_t *changed, int capacity, int *nchanged);
	int			(*index_insert_release) (long long prep);
	int			(*index_nodes_lists) (long long handle, uint32_t *ids, int n,
									  uint32_t *out, int capacity, int *used);
	int			(*index_delete) (long long handle, uint32_t id,
								 uint32_t *changed, int capacity, int *nchanged);
	int			(*index_connect_all) (long long handle, uint32_t *changed, int capacity, int *nchanged);
	int			(*index_reconnect) (long long handle, uint32_t *dropped, int ndropped,
									uint32_t *changed, int capacity, int *nchanged);
	int			(*index_scan_begin) (long long handle, float *query, int ef, int relaxed,
									 long long max_tuples, long long max_memory, long long *scan);
	int			(*index_scan_next) (long long scan, int max, uint32_t *ids, float *dists, int *n);
	int			(*index_scan_end) (long long scan);
} BorealisEngine;

/* Loads the engine on first call in this process; raises ERROR if it cannot. */
extern const BorealisEngine *borealis_engine(void);

/* True once the engine was loaded in this process. */
extern bool borealis_engine_loaded(void);

/* Raises an ERROR carrying the engine's last error message; call with no Go frame active. */
extern void borealis_engine_raise(const char *what) pg_attribute_noreturn();

#endif							/* BOREALIS_ENGINE_H */
