-- borealis_hnsw: every pgvector HNSW operator class beyond vector_l2/cosine/ip_ops, expression
-- indexes (binary quantization with re-ranking, subvector), dimension limits and bad input.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS borealis CASCADE;
SET borealis.ef_search = 100;

-- exact(table, column, operator, query, k): runs ORDER BY column operator query LIMIT k through
-- the index (and says so only if EXPLAIN shows the index), then by sequential scan, and returns
-- 'index, exact' when the index gives the exact order: the same distance at every rank (ties
-- may come in either order) and k distinct rows.
CREATE FUNCTION exact(tbl text, col text, op text, q text, k int DEFAULT 10) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  sql text := format('SELECT id, %s %s %s AS d FROM %I WHERE %s IS NOT NULL ORDER BY %s %s %s LIMIT %s',
                     col, op, q, tbl, col, col, op, q, k);
  line text;
  plan text := '';
  idx_d float8[];
  seq_d float8[];
  ids int;
BEGIN
  PERFORM set_config('enable_seqscan', 'off', true);
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
    plan := plan || line || E'\n';
  END LOOP;
  IF plan NOT LIKE '%Index Scan using%' THEN
    RETURN 'no index scan: ' || plan;
  END IF;
  EXECUTE format('SELECT array_agg(d ORDER BY n), count(DISTINCT id) FROM (SELECT *, row_number() OVER () AS n FROM (%s) s) t', sql)
    INTO idx_d, ids;
  PERFORM set_config('enable_seqscan', 'on', true);
  PERFORM set_config('enable_indexscan', 'off', true);
  EXECUTE format('SELECT array_agg(d ORDER BY d) FROM (%s) s', sql) INTO seq_d;
  PERFORM set_config('enable_indexscan', 'on', true);
  IF idx_d IS DISTINCT FROM seq_d OR ids <> k THEN
    RETURN format('not exact: index %s (%s rows), sequential %s', idx_d, ids, seq_d);
  END IF;
  RETURN 'index, exact';
END $$;

-- 300 rows of each type, with NULLs: 8-dimension vectors and halfvecs, 40-dimension sparse
-- vectors with about a fifth of their components non-zero, 64-bit strings.
CREATE TABLE t (id int PRIMARY KEY, v vector(8), h halfvec(8), s sparsevec(40), b bit(64));
INSERT INTO t
  SELECT i, x::vector, x::vector::halfvec, sp::vector::sparsevec,
         (hashint4(i)::bit(32) || hashint4(i + 100000)::bit(32))
  FROM generate_series(1, 300) i,
  LATERAL (SELECT ARRAY[sin(i), cos(i * 0.7), sin(i * 0.3) + 0.2, cos(i * 1.3), (i % 17) / 17.0,
                        sin(i * 2.1), cos(i * 0.11), (i % 5) / 5.0] AS x) a,
  LATERAL (SELECT array_agg(CASE WHEN abs(hashint4(i * 1000 + j)) % 5 = 0 THEN sin(i * j + 1.0) ELSE 0 END
                            ORDER BY j) AS sp FROM generate_series(1, 40) j) c;
INSERT INTO t VALUES (0, NULL, NULL, NULL, NULL);

CREATE INDEX t_v_l1 ON t USING borealis_hnsw (v vector_l1_ops);
CREATE INDEX t_h_l2 ON t USING borealis_hnsw (h halfvec_l2_ops);
CREATE INDEX t_h_ip ON t USING borealis_hnsw (h halfvec_ip_ops);
CREATE INDEX t_h_cos ON t USING borealis_hnsw (h halfvec_cosine_ops);
CREATE INDEX t_h_l1 ON t USING borealis_hnsw (h halfvec_l1_ops);
CREATE INDEX t_b_ham ON t USING borealis_hnsw (b bit_hamming_ops);
CREATE INDEX t_b_jac ON t USING borealis_hnsw (b bit_jaccard_ops);
CREATE INDEX t_s_l2 ON t USING borealis_hnsw (s sparsevec_l2_ops);
CREATE INDEX t_s_ip ON t USING borealis_hnsw (s sparsevec_ip_ops);
CREATE INDEX t_s_cos ON t USING borealis_hnsw (s sparsevec_cosine_ops);
CREATE INDEX t_s_l1 ON t USING borealis_hnsw (s sparsevec_l1_ops) WITH (m = 8, ef_construction = 32);
SELECT c.relname, p.problem FROM pg_class c, LATERAL borealis_hnsw_check(c.oid) p(problem)
  WHERE c.relname LIKE 't\_%\_%';

-- Every operator class gives the exact order, through the index.
SELECT exact('t', 'v', '<+>', '''[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]''::vector') AS vector_l1;
SELECT exact('t', 'h', '<->', '''[0.5,-0.5,0.5,0.5,0.2,0,0.5,0.5]''::halfvec') AS halfvec_l2;
SELECT exact('t', 'h', '<#>', '''[1,2,0.5,0,1,0,0,1]''::halfvec') AS halfvec_ip;
SELECT exact('t', 'h', '<=>', '''[1,-1,0.5,0,1,0,0,1]''::halfvec') AS halfvec_cosine;
SELECT exact('t', 'h', '<+>', '''[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]''::halfvec') AS halfvec_l1;
SELECT exact('t', 'b', '<~>', '(hashint4(7)::bit(32) || hashint4(9)::bit(32))') AS bit_hamming;
SELECT exact('t', 'b', '<%>', '(hashint4(7)::bit(32) || hashint4(9)::bit(32))') AS bit_jaccard;
SELECT exact('t', 's', '<->', '''{1:0.5,5:-0.7,12:1,33:0.25}/40''::sparsevec') AS sparsevec_l2;
SELECT exact('t', 's', '<#>', '''{1:0.5,5:-0.7,12:1,33:0.25}/40''::sparsevec') AS sparsevec_ip;
SELECT exact('t', 's', '<=>', '''{1:0.5,5:-0.7,12:1,33:0.25}/40''::sparsevec') AS sparsevec_cosine;
SELECT exact('t', 's', '<+>', '''{1:0.5,5:-0.7,12:1,33:0.25}/40''::sparsevec') AS sparsevec_l1;
-- The distances are the operators' own values.
SET enable_seqscan = off;
SELECT id, round((h <-> '[0.5,-0.5,0.5,0.5,0.2,0,0.5,0.5]')::numeric, 4) AS halfvec_l2
  FROM t ORDER BY h <-> '[0.5,-0.5,0.5,0.5,0.2,0,0.5,0.5]' LIMIT 3;
SELECT id, round((s <=> '{1:0.5,5:-0.7,12:1,33:0.25}/40')::numeric, 4) AS sparsevec_cosine
  FROM t ORDER BY s <=> '{1:0.5,5:-0.7,12:1,33:0.25}/40' LIMIT 3;
RESET enable_seqscan;

-- Inserts of each type are found at once (and are exact), NULLs skipped.
INSERT INTO t VALUES
  (1001, '[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]', '[0.5,-0.5,0.5,0.5,0.2,0,0.5,0.5]',
   '{1:0.5,5:-0.7,12:1,33:0.25}/40', hashint4(7)::bit(32) || hashint4(9)::bit(32)),
  (1002, NULL, NULL, NULL, NULL);
SELECT exact('t', 'v', '<+>', '''[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]''::vector', 3) AS vector_l1,
       exact('t', 'h', '<->', '''[0.5,-0.5,0.5,0.5,0.2,0,0.5,0.5]''::halfvec', 3) AS halfvec_l2,
       exact('t', 'b', '<~>', '(hashint4(7)::bit(32) || hashint4(9)::bit(32))', 3) AS bit_hamming,
       exact('t', 's', '<->', '''{1:0.5,5:-0.7,12:1,33:0.25}/40''::sparsevec', 3) AS sparsevec_l2;
SET enable_seqscan = off;
SELECT id FROM t ORDER BY b <~> (hashint4(7)::bit(32) || hashint4(9)::bit(32)) LIMIT 1;
SELECT id FROM t ORDER BY s <-> '{1:0.5,5:-0.7,12:1,33:0.25}/40' LIMIT 1;
RESET enable_seqscan;
SELECT c.relname, p.problem FROM pg_class c, LATERAL borealis_hnsw_check(c.oid) p(problem)
  WHERE c.relname LIKE 't\_%\_%';

-- Binary quantization with re-ranking: the index holds bit(64) codes of the vectors, the outer
-- query re-ranks the nearest 40 by Hamming distance with the exact cosine distance.
CREATE TABLE docs (id int PRIMARY KEY, embedding vector(64));
INSERT INTO docs SELECT i, (SELECT array_agg(sin(i * 0.37 + j * 1.3) + cos(i * j * 0.01) ORDER BY j)
                              FROM generate_series(1, 64) j)::vector
  FROM generate_series(1, 500) i;
CREATE INDEX docs_bq ON docs USING borealis_hnsw ((binary_quantize(embedding)::bit(64)) bit_hamming_ops);
CREATE INDEX docs_sub ON docs USING borealis_hnsw ((subvector(embedding, 1, 8)::vector(8)) vector_l2_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM (SELECT id, embedding FROM docs
                ORDER BY binary_quantize(embedding)::bit(64) <~> binary_quantize((SELECT embedding FROM docs WHERE id = 42))
                LIMIT 40) c
  ORDER BY embedding <=> (SELECT embedding FROM docs WHERE id = 42) LIMIT 5;
CREATE TEMP TABLE reranked AS
SELECT id FROM (SELECT id, embedding FROM docs
                ORDER BY binary_quantize(embedding)::bit(64) <~> binary_quantize((SELECT embedding FROM docs WHERE id = 42))
                LIMIT 40) c
  ORDER BY embedding <=> (SELECT embedding FROM docs WHERE id = 42) LIMIT 5;
RESET enable_seqscan;
-- The re-ranked top 5 starts with the query's own row and shares most of the exact top 5.
SELECT (SELECT count(*) FROM reranked WHERE id IN
          (SELECT id FROM docs ORDER BY embedding <=> (SELECT embedding FROM docs WHERE id = 42) LIMIT 5)) >= 4
       AS bq_rerank_recall,
       42 IN (SELECT id FROM reranked) AS finds_itself;
-- subvector: an index on the first 8 dimensions.
SELECT exact('docs', 'subvector(embedding, 1, 8)::vector(8)', '<->', '''[1,1,1,1,1,1,1,1]''::vector') AS subvector_l2;

-- Bad queries: wrong dimensions of each type; zero queries under cosine have no order.
SET enable_seqscan = off;
SELECT id FROM t ORDER BY h <-> '[1,2,3]' LIMIT 1;
SELECT id FROM t ORDER BY b <~> B'101' LIMIT 1;
SELECT id FROM t ORDER BY s <-> '{1:1}/39' LIMIT 1;
SELECT count(*) FROM (SELECT id FROM t ORDER BY h <=> '[0,0,0,0,0,0,0,0]' LIMIT 5) s;
SELECT count(*) FROM (SELECT id FROM t ORDER BY s <=> '{}/40' LIMIT 5) s;
RESET enable_seqscan;

-- Bad rows: an empty sparse vector has no cosine distance (at insert and at build), but is a
-- point like any other under L2; NaN and infinity never reach an index (pgvector refuses them).
INSERT INTO t (id, s) VALUES (2001, '{}/40');
INSERT INTO t (id, h) VALUES (2002, '[0,0,0,0,0,0,0,0]');
CREATE TABLE sp (id int, s sparsevec(40));
INSERT INTO sp VALUES (1, '{1:1}/40'), (2, '{}/40');
CREATE INDEX ON sp USING borealis_hnsw (s sparsevec_cosine_ops);
CREATE INDEX sp_l2 ON sp USING borealis_hnsw (s sparsevec_l2_ops);
SELECT id FROM sp ORDER BY s <-> '{1:1}/40' LIMIT 5;
-- A build refused for a zero vector names the L2 operator class of the column's own type.
CREATE TABLE zv (id int, v vector(3), h halfvec(3));
INSERT INTO zv VALUES (1, '[1,0,0]', '[1,0,0]'), (2, '[0,0,0]', '[0,0,0]');
CREATE INDEX ON zv USING borealis_hnsw (v vector_cosine_ops);
CREATE INDEX ON zv USING borealis_hnsw (h halfvec_cosine_ops);
DROP TABLE zv;
INSERT INTO t (id, h) VALUES (2003, '[NaN,0,0,0,0,0,0,1]');
INSERT INTO t (id, s) VALUES (2004, '{1:Infinity}/40');

-- Limits: sparsevec up to 1,000 non-zero elements (at build and at insert); bit up to 64,000
-- dimensions and halfvec up to 4,000 in one page.
CREATE TABLE big (id int, s sparsevec(2000));
INSERT INTO big VALUES (1, (array_fill(1::real, ARRAY[1000]) || array_fill(0::real, ARRAY[1000]))::vector::sparsevec);
CREATE INDEX big_l2 ON big USING borealis_hnsw (s sparsevec_l2_ops);
SELECT * FROM borealis_hnsw_check('big_l2');
-- Element tuples hold a sparsevec's own non-zeros, not the 1,000 its type allows: 300 rows of
-- 3 non-zeros in sparsevec(30000), built and inserted, fit a few pages (at full width, 8 kB
-- per code, each row took two).
CREATE TABLE narrow (id int, s sparsevec(30000));
INSERT INTO narrow SELECT i, format('{%s:1,%s:0.5,%s:2}/30000', i, i + 1000, i + 2000)::sparsevec
  FROM generate_series(1, 200) i;
CREATE INDEX narrow_ip ON narrow USING borealis_hnsw (s sparsevec_ip_ops);
INSERT INTO narrow SELECT i, format('{%s:1,%s:0.5,%s:2}/30000', i, i + 1000, i + 2000)::sparsevec
  FROM generate_series(201, 300) i;
SELECT pg_relation_size('narrow_ip') / 8192 <= 20 AS compact_pages;
SELECT * FROM borealis_hnsw_check('narrow_ip');
SELECT exact('narrow', 's', '<#>', '''{7:1,1007:1,2150:3}/30000''::sparsevec') AS narrow_ip;
DROP TABLE narrow;
INSERT INTO big VALUES (2, (array_fill(1::real, ARRAY[1001]) || array_fill(0::real, ARRAY[999]))::vector::sparsevec);
DROP INDEX big_l2;
INSERT INTO big VALUES (2, (array_fill(1::real, ARRAY[1001]) || array_fill(0::real, ARRAY[999]))::vector::sparsevec);
CREATE INDEX ON big USING borealis_hnsw (s sparsevec_l2_ops);
CREATE TABLE wideh (id int, h halfvec(4000), b bit(64000));
INSERT INTO wideh SELECT i, array_fill(i::real, ARRAY[4000])::halfvec,
                         (repeat('1', i * 100) || repeat('0', 64000 - i * 100))::bit(64000)
  FROM generate_series(1, 5) i;
CREATE INDEX wideh_l2 ON wideh USING borealis_hnsw (h halfvec_l2_ops);
CREATE INDEX wideh_ham ON wideh USING borealis_hnsw (b bit_hamming_ops);
SET enable_seqscan = off;
SELECT id FROM wideh ORDER BY h <-> array_fill(3.2::real, ARRAY[4000])::halfvec LIMIT 3;
SELECT id FROM wideh ORDER BY b <~> (repeat('1', 410) || repeat('0', 63590))::bit(64000) LIMIT 3;
RESET enable_seqscan;
SELECT * FROM borealis_hnsw_check('wideh_l2');
SELECT * FROM borealis_hnsw_check('wideh_ham');
-- Past one page: vector and halfvec codes live in chunk pages (4,100 dimensions: 3 chunks of a
-- vector, 2 of a halfvec), built, inserted, found exactly and checked.
CREATE TABLE huge (id int, v vector(4100), h halfvec(4100));
INSERT INTO huge SELECT i, x::vector, x::vector::halfvec
  FROM generate_series(1, 40) i,
  LATERAL (SELECT array_agg(sin(i * 0.37 + j * 1.3) ORDER BY j) AS x FROM generate_series(1, 4100) j) a;
CREATE INDEX huge_v ON huge USING borealis_hnsw (v vector_l2_ops);
CREATE INDEX huge_h ON huge USING borealis_hnsw (h halfvec_cosine_ops);
INSERT INTO huge SELECT i, x::vector, x::vector::halfvec
  FROM generate_series(41, 60) i,
  LATERAL (SELECT array_agg(sin(i * 0.37 + j * 1.3) ORDER BY j) AS x FROM generate_series(1, 4100) j) a;
SELECT exact('huge', 'v', '<->', '(SELECT v FROM huge WHERE id = 50)', 5) AS vector_4100,
       exact('huge', 'h', '<=>', '(SELECT h FROM huge WHERE id = 7)', 5) AS halfvec_4100;
SELECT * FROM borealis_hnsw_check('huge_v');
SELECT * FROM borealis_hnsw_check('huge_h');
SELECT pg_relation_size('huge_v') / 8192 AS vector_pages, pg_relation_size('huge_h') / 8192 AS halfvec_pages;
-- Over the limits: bit past 64,000 (vector and halfvec cannot be declared past 16,000).
CREATE TABLE wider (id int, b bit(64001));
CREATE INDEX ON wider USING borealis_hnsw (b bit_hamming_ops);
CREATE TABLE widest (id int, v vector(16001));
-- An operator class of another type's distance is refused by PostgreSQL itself.
CREATE INDEX ON t USING borealis_hnsw (h vector_l2_ops);

DROP TABLE t, docs, sp, big, wideh, huge, wider;
DROP FUNCTION exact;
