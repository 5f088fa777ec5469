-- The extension installs with its dependency and reports a working engine.
CREATE EXTENSION borealis CASCADE;
SELECT extname, extversion FROM pg_extension WHERE extname IN ('vector', 'borealis') ORDER BY 1;

SELECT borealis_version() ~ '^borealis 0\.1\.0 \(engine go1\.[0-9]+' AS version_ok;

SELECT info ? 'go_version' AS has_go, info->>'extension_version' AS ext,
       (info->'simd'->>'path') IN ('avx512', 'avx2', 'generic', 'neon') AS simd_path_known,
       (info->'signal_isolation'->>'ok')::boolean AS go_threads_isolated
FROM borealis_engine_info() AS info;

-- Settings and their limits.
SHOW borealis.ef_search;
SET borealis.ef_search = 100;
SHOW borealis.ef_search;
SET borealis.ef_search = 0;
SET borealis.ef_search = 1001;
SET borealis.iterative_scan = relaxed_order;
SET borealis.iterative_scan = sideways;
SET borealis.build_threads = 0;
SET borealis.no_such_setting = 1;
RESET ALL;

-- The test-only spin function checks its argument and is not for PUBLIC.
SELECT borealis.debug_spin(0.01);
SELECT borealis.debug_spin(-1);
SELECT borealis.debug_spin('NaN');
CREATE ROLE borealis_regress_user;
SET ROLE borealis_regress_user;
SELECT borealis.debug_spin(0.01);
RESET ROLE;
DROP ROLE borealis_regress_user;

DROP EXTENSION borealis;
SELECT count(*) AS borealis_objects_left FROM pg_namespace WHERE nspname = 'borealis';
