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

/* Must match abiVersion in engine/abi.go. */
#define BOREALIS_ENGINE_ABI 1

#define ENGINE_OK			0
#define ENGINE_INTERRUPTED	1
#define ENGINE_ERROR		2

typedef struct BorealisEngine
{
	int			(*abi_version) (void);
	int			(*init) (void *interrupt_pending);
	int			(*go_version) (char *buf, size_t size);
	int			(*last_error) (char *buf, size_t size);
	int			(*info_json) (char *buf, size_t size);
	int			(*debug_spin) (long long ms);
} BorealisEngine;

/* Loads the engine on first call in this process; raises ERROR if it cannot. */
extern const BorealisEngine *borealis_engine(void);

/* True once the engine was loaded in this process. */
extern bool borealis_engine_loaded(void);

/* Raises an ERROR carrying the engine's last error message; call with no Go frame active. */
extern void borealis_engine_raise(const char *what) pg_attribute_noreturn();

#endif							/* BOREALIS_ENGINE_H */
