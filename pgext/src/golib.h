/*
 * golib.h — loading a Go c-shared library into a PostgreSQL process (see golib.c).
 */
#ifndef BOREALIS_GOLIB_H
#define BOREALIS_GOLIB_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Loads $libdir/file and calls its int abi_symbol(void), both with PostgreSQL's asynchronous
 * signals blocked. On success returns the handle (never closed) and the ABI number in *abi.
 * On failure returns NULL and writes the reason into why; it never raises an ERROR, so a
 * background worker can log once and stay down.
 */
extern void *borealis_golib_open(const char *file, const char *abi_symbol, int *abi,
								 char *why, size_t whysize);

#endif							/* BOREALIS_GOLIB_H */
