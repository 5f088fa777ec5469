-- The node agent: borealis.node_status() and its settings, on the preloaded regression server.
CREATE EXTENSION borealis CASCADE;

-- The interface the control plane relies on: one row, these columns in this order.
SELECT pg_get_function_arguments('borealis.node_status()'::regprocedure);

-- Waits (up to 10 s) until the agent has published a snapshot taken after this call.
CREATE FUNCTION pg_temp.wait_for_sample(cond text DEFAULT 'true') RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    since timestamptz := clock_timestamp();
    ok boolean;
BEGIN
    FOR i IN 1..100 LOOP
        EXECUTE format('SELECT sampled_at > $1 AND (%s) FROM borealis.node_status()', cond) INTO ok USING since;
        EXIT WHEN ok;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;

SELECT pg_temp.wait_for_sample();
SELECT count(*) AS rows FROM borealis.node_status();
SELECT agent_pid IS NOT NULL AS agent_running,
       agent_pid <> pg_backend_pid() AS agent_is_its_own_process,
       sampled_at <= clock_timestamp() AS sampled_in_the_past,
       cpu_percent_1m BETWEEN 0 AND 100 AS cpu_1m_in_range,
       cpu_percent_5m BETWEEN 0 AND 100 AS cpu_5m_in_range,
       memory_bytes > 0 AS has_memory,
       connections_idle_in_transaction AS idle_in_xact,
       oldest_query_seconds >= 0 AND oldest_transaction_seconds >= 0 AS ages_ok,
       pg_typeof(blockers) AS blockers_type
FROM borealis.node_status();

-- This session's temp table blocks a scaling point, until it is dropped. (The session calls
-- node_status() from a temp-schema function, which itself holds no temp relation.)
CREATE TEMP TABLE agent_scratch (i int);
SELECT pg_temp.wait_for_sample('temp_table_sessions = 1');
SELECT temp_table_sessions, scaling_point, blockers FROM borealis.node_status();
DROP TABLE agent_scratch;
SELECT pg_temp.wait_for_sample('temp_table_sessions = 0');
SELECT temp_table_sessions, scaling_point, blockers FROM borealis.node_status();

-- Any role may read it.
CREATE ROLE borealis_regress_reader;
SET ROLE borealis_regress_reader;
SELECT count(*) AS rows_for_any_role FROM borealis.node_status();
RESET ROLE;
DROP ROLE borealis_regress_reader;

-- Settings: defaults, limits, and the agent only rereads them on reload.
SELECT name, setting, unit, context, min_val, max_val
FROM pg_settings
WHERE name IN ('borealis.agent_interval_ms', 'borealis.scaling_query_threshold')
ORDER BY name;
SHOW borealis.scaling_query_threshold;
SET borealis.scaling_query_threshold = '1s';
SET borealis.agent_interval_ms = 500;

DROP EXTENSION borealis;
DROP EXTENSION vector;
