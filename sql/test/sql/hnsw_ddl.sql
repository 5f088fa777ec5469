-- borealis_hnsw with PostgreSQL's DDL: REINDEX, CREATE INDEX CONCURRENTLY, partitioned and
-- unlogged tables, TRUNCATE.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS borealis CASCADE;
SET enable_seqscan = off;
SET borealis.ef_search = 100;

CREATE TABLE docs (id int PRIMARY KEY, embedding vector(4));
INSERT INTO docs SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.3), cos(i * 0.7)]::vector FROM generate_series(1, 500) i;

-- CREATE INDEX CONCURRENTLY (its validation pass walks the index through ambulkdelete).
CREATE INDEX CONCURRENTLY docs_cc ON docs USING borealis_hnsw (embedding vector_l2_ops);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'docs_cc'::regclass;
SELECT id FROM docs ORDER BY embedding <-> '[0,1,0,1]' LIMIT 5;
SELECT * FROM borealis_hnsw_check('docs_cc');

-- REINDEX (a new relfilenode: caches keyed by the old one are not used) and REINDEX CONCURRENTLY.
DELETE FROM docs WHERE id % 2 = 0;
REINDEX INDEX docs_cc;
SELECT id FROM docs ORDER BY embedding <-> '[0,1,0,1]' LIMIT 5;
REINDEX INDEX CONCURRENTLY docs_cc;
SELECT id FROM docs ORDER BY embedding <-> '[0,1,0,1]' LIMIT 5;
SELECT * FROM borealis_hnsw_check('docs_cc');

-- TRUNCATE empties the index; it works again at once.
TRUNCATE docs;
SELECT count(*) FROM (SELECT id FROM docs ORDER BY embedding <-> '[0,1,0,1]' LIMIT 5) s;
INSERT INTO docs VALUES (1, '[0,1,0,1]'), (2, '[1,0,1,0]');
SELECT id FROM docs ORDER BY embedding <-> '[0,1,0,1]' LIMIT 5;
SELECT * FROM borealis_hnsw_check('docs_cc');

-- Partitioned tables: one index per partition, merged by the executor in distance order.
CREATE TABLE parts (id int, region int, embedding vector(4)) PARTITION BY LIST (region);
CREATE TABLE parts_a PARTITION OF parts FOR VALUES IN (1);
CREATE TABLE parts_b PARTITION OF parts FOR VALUES IN (2);
INSERT INTO parts SELECT i, 1 + i % 2, ARRAY[sin(i), cos(i), sin(i * 0.3), cos(i * 0.7)]::vector FROM generate_series(1, 400) i;
CREATE INDEX parts_idx ON parts USING borealis_hnsw (embedding vector_cosine_ops);
EXPLAIN (COSTS OFF) SELECT id FROM parts ORDER BY embedding <=> '[0,1,0,1]' LIMIT 5;
SELECT id, region FROM parts ORDER BY embedding <=> '[0,1,0,1]' LIMIT 5;
RESET enable_seqscan;
SELECT array_agg(id) FROM (SELECT id FROM parts ORDER BY embedding <=> '[0,1,0,1]' LIMIT 5) s;
SET enable_seqscan = off;
SELECT * FROM borealis_hnsw_check('parts_a_embedding_idx');

-- Unlogged tables: the init fork holds an empty index (ambuildempty).
CREATE UNLOGGED TABLE scratch (id int, embedding vector(4));
CREATE INDEX scratch_idx ON scratch USING borealis_hnsw (embedding vector_ip_ops);
INSERT INTO scratch SELECT i, ARRAY[i, 1, 0, 1]::vector FROM generate_series(1, 50) i;
SELECT id FROM scratch ORDER BY embedding <#> '[1,0,0,0]' LIMIT 3;
SELECT * FROM borealis_hnsw_check('scratch_idx');

-- Not a borealis_hnsw index.
SELECT * FROM borealis_hnsw_check('docs_pkey');

RESET enable_seqscan;
DROP TABLE docs, parts, scratch;
