/*
 * info.c — SQL functions that show the engine is loaded and healthy.
 */
#include "borealis.h"
#include "hnsw.h"

#include "engine.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include <math.h>

PG_FUNCTION_INFO_V1(borealis_version);
PG_FUNCTION_INFO_V1(borealis_engine_info);
PG_FUNCTION_INFO_V1(borealis_debug_spin);

/* Reads a string from an engine function that fills a caller buffer and returns the length. */
static char *
engine_string(int (*fn) (char *, size_t))
{
	size_t		size = 512;

	for (;;)
	{
		char	   *buf = palloc(size);
		int			len = fn(buf, size);

		if (len < 0)
			borealis_engine_raise("producing a string");
		if ((size_t) len < size)
			return buf;
		pfree(buf);
		size = (size_t) len + 1;
	}
}

Datum
borealis_version(PG_FUNCTION_ARGS)
{
	const BorealisEngine *engine = borealis_engine();
	char	   *go = engine_string(engine->go_version);

	PG_RETURN_TEXT_P(cstring_to_text(psprintf("borealis %s (engine %s)", BOREALIS_VERSION, go)));
}

Datum
borealis_engine_info(PG_FUNCTION_ARGS)
{
	const BorealisEngine *engine = borealis_engine();
	char	   *json = engine_string(engine->info_json);

	/* Add the module's own version in front of what the engine reports. */
	/* shared_graph_bytes: the graph files this backend maps (shared with every backend). */
	/* graphs: each index graph this backend maps, with the quantization its scans use. */
	{
		StringInfoData graphs;

		initStringInfo(&graphs);
		bhnsw_cache_describe(&graphs);
		json = psprintf("{\"extension_version\": \"%s\", \"shared_graph_bytes\": %lld, \"graphs\": %s, %s",
						BOREALIS_VERSION, (long long) bhnsw_cache_shared_bytes(), graphs.data, json + 1);
	}
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

/*
 * borealis_debug_spin(seconds) keeps the backend busy inside Go for that long. The engine
 * returns every time PostgreSQL flags an interrupt; CHECK_FOR_INTERRUPTS then raises the cancel
 * or termination with no Go frame on the stack. Test-only: the script revokes it from PUBLIC.
 */
Datum
borealis_debug_spin(PG_FUNCTION_ARGS)
{
	float8		seconds = PG_GETARG_FLOAT8(0);
	const BorealisEngine *engine = borealis_engine();
	TimestampTz end;

	if (seconds < 0 || seconds > 3600 || isnan(seconds))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("borealis_debug_spin: seconds must be between 0 and 3600, got %g", seconds)));

	if (borealis_debug_panic != 0 && engine->debug_spin(-borealis_debug_panic) != ENGINE_OK)
		borealis_engine_raise("spinning");
	end = GetCurrentTimestamp() + (TimestampTz) (seconds * USECS_PER_SEC);
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		int			rc;

		if (now >= end)
			break;
		rc = engine->debug_spin((long long) ((end - now) / 1000) + 1);
		if (rc == ENGINE_ERROR)
			borealis_engine_raise("spinning");
		CHECK_FOR_INTERRUPTS();
		if (rc == ENGINE_OK)
			break;
	}
	PG_RETURN_BOOL(true);
}
