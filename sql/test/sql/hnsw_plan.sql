-- hnswplan.c: a LIMIT query ordered by a borealis_hnsw index scan does not recompute the
-- ORDER BY distance for each row when nothing reads it (a resjunk sort column): the scan
-- outputs NULL in its place. Same rows, same order; every other plan shape keeps the value.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS borealis CASCADE;
CREATE TABLE pv (id int PRIMARY KEY, embedding vector(16));
INSERT INTO pv SELECT i, (SELECT array_agg(sin(i * 0.71 + j * 1.3)) FROM generate_series(1, 16) j)::vector
  FROM generate_series(1, 300) i;
CREATE INDEX pv_idx ON pv USING borealis_hnsw (embedding vector_l2_ops);
CREATE INDEX pv_half ON pv USING borealis_hnsw ((embedding::halfvec(16)) halfvec_cosine_ops) WITH (quantization = int8);
CREATE INDEX pv_bq ON pv USING borealis_hnsw ((binary_quantize(embedding)::bit(16)) bit_hamming_ops);
SET enable_seqscan = off;
SET borealis.ef_search = 100;

-- The ORDER BY column is not computed (NULL in the scan's output).
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM pv ORDER BY embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]' LIMIT 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM pv ORDER BY embedding::halfvec(16) <=> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]'::vector::halfvec(16) LIMIT 5;
-- In a subquery too: binary quantization with re-ranking computes the Hamming distance of no
-- candidate (the outer sort computes its own exact distance).
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM (SELECT id, embedding FROM pv
    ORDER BY binary_quantize(embedding)::bit(16) <~> binary_quantize('[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]'::vector) LIMIT 40) c
  ORDER BY embedding <=> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]' LIMIT 5;
-- Same answers with the hook off. Each top-10 is its own top-level statement (EXECUTE in
-- PL/pgSQL), planned afresh under the setting in force.
CREATE FUNCTION plan_ids(q int, op text) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
  v vector := (SELECT embedding FROM pv WHERE id = q);
  r int[] := '{}';
  rec record;
BEGIN
  FOR rec IN EXECUTE CASE op
      WHEN 'l2' THEN 'SELECT id FROM pv ORDER BY embedding <-> $1 LIMIT 10'
      WHEN 'bq' THEN 'SELECT id FROM (SELECT id, embedding FROM pv ORDER BY binary_quantize(embedding)::bit(16) <~> binary_quantize($1) LIMIT 60) c ORDER BY embedding <=> $1 LIMIT 10'
      ELSE 'SELECT id FROM pv ORDER BY embedding::halfvec(16) <=> $1::halfvec(16) LIMIT 10' END USING v LOOP
    r := r || rec.id;
  END LOOP;
  RETURN r;
END $$;
CREATE TABLE plan_on AS SELECT q, plan_ids(q, 'l2') AS l2, plan_ids(q, 'half') AS half, plan_ids(q, 'bq') AS bq FROM generate_series(1, 300, 37) q;
SET borealis.skip_unread_order_keys = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM pv ORDER BY embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]' LIMIT 5;
CREATE TABLE plan_off AS SELECT q, plan_ids(q, 'l2') AS l2, plan_ids(q, 'half') AS half, plan_ids(q, 'bq') AS bq FROM generate_series(1, 300, 37) q;
SELECT count(*) AS queries,
       bool_and(a.l2 = b.l2 AND a.half = b.half AND a.bq = b.bq AND cardinality(a.l2) = 10 AND cardinality(a.half) = 10 AND cardinality(a.bq) = 10) AS same,
       bool_and(a.l2[1] = a.q AND a.half[1] = a.q AND a.bq[1] = a.q) AS self_first
  FROM plan_on a JOIN plan_off b USING (q);
RESET borealis.skip_unread_order_keys;

-- Shapes that read the value keep it: a selected distance, WITH TIES, a sort above the scan,
-- row locks.
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]' AS d FROM pv ORDER BY d LIMIT 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM pv ORDER BY embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]' FETCH FIRST 5 ROWS WITH TIES;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM pv ORDER BY embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]', id LIMIT 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM pv ORDER BY embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]' LIMIT 5 FOR UPDATE;
-- A selected expression of the distance is computed; only the junk copy is not.
SELECT id, round((embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]')::numeric, 2) AS d
  FROM pv ORDER BY embedding <-> '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]' LIMIT 1;
DROP TABLE pv, plan_on, plan_off;
DROP FUNCTION plan_ids(int, text);
