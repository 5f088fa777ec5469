
-- Node agent: the snapshot the background worker publishes once per borealis.agent_interval_ms.
-- One row, readable by any role that can connect. All NULL when borealis is not in
-- shared_preload_libraries (no agent); sampled_at NULL until the agent's first sample.
CREATE FUNCTION borealis.node_status(
    OUT sampled_at timestamptz,
    OUT cpu_percent_1m float8,
    OUT cpu_percent_5m float8,
    OUT memory_bytes bigint,
    OUT connections_active int,
    OUT connections_idle int,
    OUT connections_idle_in_transaction int,
    OUT oldest_query_seconds float8,
    OUT oldest_transaction_seconds float8,
    OUT temp_table_sessions int,
    OUT explicit_lock_sessions int,
    OUT scaling_point boolean,
    OUT blockers text[],
    OUT agent_pid int,
    OUT advisory_lock_sessions int,
    OUT held_cursor_sessions int,
    OUT prepared_transactions int)
    RETURNS record
    AS 'MODULE_PATHNAME', 'borealis_node_status'
    LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION borealis.node_status() IS
    'Load and scaling point of this node, as last sampled by the Borealis node agent (CPU share of usable CPUs, memory as PSS, client sessions, and what blocks a scaling point: long queries, open transactions, temp tables, LOCK TABLE, session advisory locks, WITH HOLD cursors, prepared transactions)';

GRANT EXECUTE ON FUNCTION borealis.node_status() TO PUBLIC;
