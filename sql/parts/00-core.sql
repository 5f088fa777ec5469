-- Core: versions and engine health. User-facing objects live in the schema the extension is
-- created in (normally public), so pgvector SQL ports by changing only the word after USING.
-- Operational functions (node status, debugging) live in the schema "borealis".

\echo Use "CREATE EXTENSION borealis CASCADE" to load this file. \quit

CREATE SCHEMA borealis;
GRANT USAGE ON SCHEMA borealis TO PUBLIC;

CREATE FUNCTION borealis_version() RETURNS text
    AS 'MODULE_PATHNAME', 'borealis_version'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION borealis_version() IS 'Borealis extension version and the Go runtime version of its engine';

CREATE FUNCTION borealis_engine_info() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'borealis_engine_info'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION borealis_engine_info() IS 'The SIMD path, CPU features and Go runtime of the Borealis engine in this backend';

-- Test-only: keeps the backend busy inside the Go engine, to prove interrupts reach Go work.
CREATE FUNCTION borealis.debug_spin(seconds float8) RETURNS boolean
    AS 'MODULE_PATHNAME', 'borealis_debug_spin'
    LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION borealis.debug_spin(float8) FROM PUBLIC;
