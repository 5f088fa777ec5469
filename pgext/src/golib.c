/*
 * golib.c — the one place a Go c-shared library is loaded into a PostgreSQL process.
 *
 * Both Go libraries (the engine in backends, the agent in its worker) are loaded here, so the
 * rules below hold for both and cannot drift apart (docs/architecture.md gives the reasons):
 *  - never in the postmaster: a Go runtime does not survive fork();
 *  - PostgreSQL's asynchronous signals are blocked in the loading thread while the runtime
 *    starts, which is the dlopen plus the first call into Go (it waits for the runtime's
 *    initialisation). The runtime's threads inherit that mask and keep it, because the
 *    libraries are linked with async preemption off (otherwise the runtime would unblock
 *    SIGURG, PostgreSQL 15's latch signal, in every one of its threads).
 */
#include "postgres.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>

#include "golib.h"
#include "miscadmin.h"

typedef int (*abi_fn) (void);

void *
borealis_golib_open(const char *file, const char *abi_symbol, int *abi, char *why, size_t whysize)
{
	char		path[MAXPGPATH];
	void	   *handle;
	abi_fn		get_abi = NULL;
	sigset_t	block,
				saved;

	if (IsPostmasterEnvironment && !IsUnderPostmaster)
	{
		snprintf(why, whysize, "a Go library cannot be loaded in the postmaster: its runtime would not survive fork()");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", pkglib_path, file);

	sigemptyset(&block);
	sigaddset(&block, SIGURG);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGALRM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &block, &saved);

	/* Nothing between the two mask changes may raise an ERROR. */
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle != NULL)
	{
		get_abi = (abi_fn) dlsym(handle, abi_symbol);
		if (get_abi != NULL)
			*abi = get_abi();
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);

	if (handle == NULL)
	{
		const char *err = dlerror();

		snprintf(why, whysize, "could not load \"%s\": %s", path, err ? err : "unknown error");
		return NULL;
	}
	if (get_abi == NULL)
	{
		snprintf(why, whysize, "\"%s\" lacks %s; it comes from another build", path, abi_symbol);
		return NULL;
	}
	return handle;
}
