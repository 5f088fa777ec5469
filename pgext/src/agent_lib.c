/*
 * agent_lib.c — loading the agent's Go half (borealis_agent.so) in the worker process.
 *
 * The same rules as engine.c, for the same reasons: never in the postmaster; PostgreSQL's
 * asynchronous signals blocked while the Go runtime starts (dlopen and the first call), so the
 * runtime's threads inherit a mask that leaves SIGURG, SIGTERM, SIGHUP... to the worker's own
 * thread; async preemption off, linked into the library (mk/agent.mk).
 */
#include "agent.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>

#include "miscadmin.h"

#define AGENT_FILE "borealis_agent.so"

/*
 * Fills lib and returns true, or writes why into why and returns false. It does not raise an
 * ERROR, so the worker can log once and stay down instead of restarting in a loop.
 */
bool
agent_lib_load(AgentLib *lib, char *why, size_t whysize)
{
	char		path[MAXPGPATH];
	void	   *handle;
	sigset_t	block,
				saved;
	int			abi = -1;

	Assert(IsUnderPostmaster);
	snprintf(path, sizeof(path), "%s/%s", pkglib_path, AGENT_FILE);

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

	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle != NULL)
	{
		lib->abi_version = (agent_abi_version_fn) dlsym(handle, "borealis_agent_abi_version");
		if (lib->abi_version != NULL)
			abi = lib->abi_version();	/* waits for the runtime to start */
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);

	if (handle == NULL)
	{
		const char *err = dlerror();

		snprintf(why, whysize, "could not load \"%s\": %s", path, err ? err : "unknown error");
		return false;
	}
	if (lib->abi_version == NULL)
	{
		snprintf(why, whysize, "\"%s\" lacks borealis_agent_abi_version", path);
		return false;
	}
	if (abi != BOREALIS_AGENT_ABI)
	{
		snprintf(why, whysize, "\"%s\" has ABI %d, this module needs %d", path, abi, BOREALIS_AGENT_ABI);
		return false;
	}
	lib->init = (agent_init_fn) dlsym(handle, "borealis_agent_init");
	lib->sample = (agent_sample_fn) dlsym(handle, "borealis_agent_sample");
	lib->last_error = (agent_last_error_fn) dlsym(handle, "borealis_agent_last_error");
	if (lib->init == NULL || lib->sample == NULL || lib->last_error == NULL)
	{
		snprintf(why, whysize, "\"%s\" lacks an agent function; it comes from another build", path);
		return false;
	}
	/* The library stays loaded for the life of the worker. */
	return true;
}
