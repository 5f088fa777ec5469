-- borealis_hnsw: build, ordered scans for every operator class, inserts, bad input, options.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS borealis CASCADE;

-- A small table with distinct distances: 300 rows of 3 dimensions, plus a NULL.
CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
INSERT INTO items SELECT i, ARRAY[sin(i) + 1.5, cos(i * 0.7) + 1.5, (i % 17) / 17.0 + 0.1]::vector
  FROM generate_series(1, 300) i;
INSERT INTO items VALUES (0, NULL);

-- The exact answers, by sequential scan, to compare with.
CREATE TABLE expected AS
  SELECT 'l2' AS op, array_agg(id ORDER BY d, id) AS ids FROM (SELECT id, embedding <-> '[2,2,0.5]' AS d FROM items WHERE embedding IS NOT NULL ORDER BY d LIMIT 10) s
  UNION ALL
  SELECT 'cosine', array_agg(id ORDER BY d, id) FROM (SELECT id, embedding <=> '[2,1,0.5]' AS d FROM items WHERE embedding IS NOT NULL ORDER BY d LIMIT 10) s
  UNION ALL
  SELECT 'ip', array_agg(id ORDER BY d, id) FROM (SELECT id, embedding <#> '[1,2,0.5]' AS d FROM items WHERE embedding IS NOT NULL ORDER BY d LIMIT 10) s;

CREATE INDEX items_l2 ON items USING borealis_hnsw (embedding vector_l2_ops);
CREATE INDEX items_cos ON items USING borealis_hnsw (embedding vector_cosine_ops) WITH (m = 8, ef_construction = 32);
CREATE INDEX items_ip ON items USING borealis_hnsw (embedding vector_ip_ops);
SELECT * FROM borealis_hnsw_check('items_l2');
SELECT * FROM borealis_hnsw_check('items_cos');
SELECT * FROM borealis_hnsw_check('items_ip');

SET enable_seqscan = off;
SET borealis.ef_search = 100;
-- EXPLAIN picks the index for ORDER BY ... LIMIT.
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <=> '[2,1,0.5]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <#> '[1,2,0.5]' LIMIT 10;
-- ... and never for a plain scan.
RESET enable_seqscan;
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE embedding IS NOT NULL;
SET enable_seqscan = off;

-- Every operator class gives the exact order, with the operator's own distance values.
SELECT (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 10) s)
  = (SELECT ids FROM expected WHERE op = 'l2') AS l2_exact;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY embedding <=> '[2,1,0.5]' LIMIT 10) s)
  = (SELECT ids FROM expected WHERE op = 'cosine') AS cosine_exact;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY embedding <#> '[1,2,0.5]' LIMIT 10) s)
  = (SELECT ids FROM expected WHERE op = 'ip') AS ip_exact;
SELECT id, round((embedding <-> '[2,2,0.5]')::numeric, 5) AS distance
  FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 3;

-- Inserts are found at once, NULLs are skipped.
INSERT INTO items VALUES (1001, '[2,2,0.5]'), (1002, NULL), (1003, '[2.01,2,0.5]');
SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 2;
SELECT count(*) AS rows_found FROM (SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 1000) s;
SELECT * FROM borealis_hnsw_check('items_l2');

-- Without iterative scan a scan stops at ef_search rows; with it, a filter still gets its rows.
SET borealis.ef_search = 10;
SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 50) s;
SELECT count(*) FROM (SELECT id FROM items WHERE id % 10 = 0 ORDER BY embedding <-> '[2,2,0.5]' LIMIT 20) s;
SET borealis.iterative_scan = strict_order;
SELECT count(*) FROM (SELECT id FROM items WHERE id % 10 = 0 ORDER BY embedding <-> '[2,2,0.5]' LIMIT 20) s;
SET borealis.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM items WHERE id % 10 = 0 ORDER BY embedding <-> '[2,2,0.5]' LIMIT 20) s;
-- borealis.max_scan_tuples stops an iterative scan, as pgvector's: it counts elements the walk
-- visited; past it the walk goes no further and the scan returns the rows it had found, so it
-- ends short of the table's 302 rows, in either order mode.
SET borealis.max_scan_tuples = 1;
SET borealis.ef_search = 1;
SELECT count(*) BETWEEN 1 AND 301 AS relaxed_stopped
  FROM (SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 1000) s;
SET borealis.iterative_scan = strict_order;
SELECT count(*) BETWEEN 1 AND 301 AS strict_stopped
  FROM (SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 1000) s;
SET borealis.ef_search = 10;
SHOW borealis.scan_mem_multiplier;
SET borealis.scan_mem_multiplier = 0.5;
-- relaxed_order drops nothing: with room to run it reaches every row (302), where strict_order
-- skips what a resumed search finds closer than a row already returned.
SET borealis.max_scan_tuples = 100000;
SET borealis.iterative_scan = relaxed_order;
SELECT count(*) AS relaxed_rows FROM (SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 1000) s;
SELECT count(DISTINCT id) AS relaxed_distinct FROM (SELECT id FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 1000) s;
SET borealis.iterative_scan = strict_order;
SELECT count(*) <= 302 AS strict_at_most_all,
       bool_and(ordered) AS strict_in_order
  FROM (SELECT d >= lag(d, 1, 0::float8) OVER (ORDER BY n) - 1e-6 AS ordered
          FROM (SELECT embedding <-> '[2,2,0.5]' AS d, row_number() OVER () AS n
                  FROM (SELECT embedding FROM items ORDER BY embedding <-> '[2,2,0.5]' LIMIT 1000) a) b) c;
RESET borealis.max_scan_tuples;
RESET borealis.iterative_scan;
RESET borealis.ef_search;

-- A query vector of the wrong size, a NULL query, a zero query under cosine.
SELECT id FROM items ORDER BY embedding <-> '[1,2]' LIMIT 1;
SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <-> NULL LIMIT 5) s;
SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <=> '[0,0,0]' LIMIT 5) s;

-- Bad input: a zero vector under cosine, at build and at insert.
CREATE TABLE zeros (id int, embedding vector(3));
INSERT INTO zeros VALUES (1, '[1,2,3]'), (2, '[0,0,0]');
CREATE INDEX ON zeros USING borealis_hnsw (embedding vector_cosine_ops);
CREATE INDEX ON zeros USING borealis_hnsw (embedding vector_l2_ops);
DELETE FROM zeros WHERE id = 2;
CREATE INDEX zeros_cos ON zeros USING borealis_hnsw (embedding vector_cosine_ops);
INSERT INTO zeros VALUES (3, '[0,0,0]');
INSERT INTO zeros VALUES (4, '[3,2,1]');
SELECT id FROM zeros ORDER BY embedding <=> '[1,2,3]' LIMIT 5;
-- NaN and infinity never reach the index (pgvector refuses them at input, text and binary).
INSERT INTO zeros VALUES (5, '[NaN,1,1]');
INSERT INTO zeros VALUES (5, '[Infinity,1,1]');

-- Mixed dimensions in one column: a column without dimensions cannot be indexed.
CREATE TABLE mixed (id int, embedding vector);
INSERT INTO mixed VALUES (1, '[1,2,3]'), (2, '[1,2]');
CREATE INDEX ON mixed USING borealis_hnsw (embedding vector_l2_ops);

-- Dimensions: 2,000 fit one page; from 2,001 the vectors live in chunk pages (hnsw_types.sql).
CREATE TABLE wide (id int, embedding vector(2000));
INSERT INTO wide SELECT i, array_fill(i::real, ARRAY[2000])::vector FROM generate_series(1, 5) i;
CREATE INDEX wide_l2 ON wide USING borealis_hnsw (embedding vector_l2_ops);
INSERT INTO wide SELECT i, array_fill(i::real, ARRAY[2000])::vector FROM generate_series(6, 8) i;
SELECT id FROM wide ORDER BY embedding <-> array_fill(6.2::real, ARRAY[2000])::vector LIMIT 3;
SELECT * FROM borealis_hnsw_check('wide_l2');
CREATE TABLE wider (id int, embedding vector(2001));
CREATE INDEX ON wider USING borealis_hnsw (embedding vector_l2_ops);

-- Reloptions: pgvector's ranges.
CREATE INDEX ON items USING borealis_hnsw (embedding vector_l2_ops) WITH (m = 1);
CREATE INDEX ON items USING borealis_hnsw (embedding vector_l2_ops) WITH (m = 101);
CREATE INDEX ON items USING borealis_hnsw (embedding vector_l2_ops) WITH (ef_construction = 3);
CREATE INDEX ON items USING borealis_hnsw (embedding vector_l2_ops) WITH (ef_construction = 1001);
CREATE INDEX ON items USING borealis_hnsw (embedding vector_l2_ops) WITH (m = 40, ef_construction = 64);
CREATE INDEX ON items USING borealis_hnsw (embedding vector_l2_ops) WITH (colour = 3);

-- Empty tables, and a build larger than maintenance_work_mem (the graph file is paged by the kernel).
CREATE TABLE empty (id int, embedding vector(3));
CREATE INDEX empty_l2 ON empty USING borealis_hnsw (embedding vector_l2_ops);
SELECT count(*) FROM (SELECT id FROM empty ORDER BY embedding <-> '[1,1,1]' LIMIT 5) s;
INSERT INTO empty VALUES (1, '[1,1,1]');
SELECT id FROM empty ORDER BY embedding <-> '[1,1,1]' LIMIT 5;
SELECT * FROM borealis_hnsw_check('empty_l2');
CREATE TABLE many (id int, embedding vector(64));
INSERT INTO many SELECT i, array_fill((i % 97)::real, ARRAY[64])::vector FROM generate_series(1, 10000) i;
ANALYZE many;
SET maintenance_work_mem = '1MB';
CREATE INDEX many_l2 ON many USING borealis_hnsw (embedding vector_l2_ops);
RESET maintenance_work_mem;
SELECT pg_relation_size('many_l2') > 4 * 1024 * 1024 AS larger_than_maintenance_work_mem;
SELECT * FROM borealis_hnsw_check('many_l2');
SELECT count(*) FROM (SELECT id FROM many ORDER BY embedding <-> array_fill(5::real, ARRAY[64])::vector LIMIT 10) s;

SELECT * FROM borealis_hnsw_check('items');
RESET enable_seqscan;
DROP TABLE items, expected, zeros, mixed, wide, wider, empty, many;
