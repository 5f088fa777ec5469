/*
 * agent_lib.c — loading the agent's Go half (borealis_agent.so) in the worker process.
 *
 * golib.c loads it under the same rules as the engine: never in the postmaster, PostgreSQL's
 * asynchronous signals blocked while the Go runtime starts, async preemption off (linked into
 * the library by mk/agent.mk).
 */
#include "agent.h"

#include <dlfcn.h>

#include "golib.h"
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
	int			abi = -1;

	Assert(IsUnderPostmaster);
	snprintf(path, sizeof(path), "%s/%s", pkglib_path, AGENT_FILE);
	handle = borealis_golib_open(AGENT_FILE, "borealis_agent_abi_version", &abi, why, whysize);
	if (handle == NULL)
		return false;
	lib->abi_version = (agent_abi_version_fn) dlsym(handle, "borealis_agent_abi_version");
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
