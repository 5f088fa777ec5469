-- borealis_hnsw's quantization reloption: auto | none | int8 | binary. Each setting answers in
-- the exact order with exact distances (scans rescore what the codes found), shows in the
-- index's options and in borealis_engine_info(), and bad values get a clear error.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS borealis CASCADE;

-- 400 rows of 64 dimensions centred on zero (signs carry information, as in text embeddings).
CREATE TABLE qv (id int PRIMARY KEY, embedding vector(64));
INSERT INTO qv SELECT i, (SELECT array_agg(sin(i * 0.37 + j * 1.91) + 0.3 * cos(i * j * 0.013)) FROM generate_series(1, 64) j)::vector
  FROM generate_series(1, 400) i;
CREATE TABLE qv_expected AS
  SELECT array_agg(id ORDER BY d, id) AS ids FROM (
    SELECT id, embedding <=> (SELECT embedding FROM qv WHERE id = 7) AS d FROM qv ORDER BY d, id LIMIT 10) s;

-- Bad values name the choices.
CREATE INDEX qv_bad ON qv USING borealis_hnsw (embedding vector_cosine_ops) WITH (quantization = int4);
CREATE INDEX qv_bad ON qv USING borealis_hnsw (embedding vector_cosine_ops) WITH (quantization = '');

CREATE INDEX qv_idx ON qv USING borealis_hnsw (embedding vector_cosine_ops) WITH (quantization = none);
SELECT reloptions FROM pg_class WHERE relname = 'qv_idx';
SET enable_seqscan = off;
SET borealis.ef_search = 200;

CREATE FUNCTION qv_check() RETURNS TABLE (setting text, in_use text, exact_order bool, ordered bool)
LANGUAGE sql AS $$
  SELECT g->>'quantization_setting', g->>'quantization',
         (SELECT array_agg(id) FROM (SELECT id FROM qv ORDER BY embedding <=> (SELECT embedding FROM qv WHERE id = 7) LIMIT 10) s)
           = (SELECT ids FROM qv_expected),
         (SELECT bool_and(d >= p) FROM (
            SELECT d, lag(d, 1, 0::float8) OVER (ORDER BY n) AS p FROM (
              SELECT embedding <=> (SELECT embedding FROM qv WHERE id = 7) AS d, row_number() OVER () AS n
                FROM (SELECT embedding FROM qv ORDER BY embedding <=> (SELECT embedding FROM qv WHERE id = 7) LIMIT 50) a) b) c)
    FROM (SELECT 1 FROM qv ORDER BY embedding <=> (SELECT embedding FROM qv WHERE id = 7) LIMIT 1) warm,
         jsonb_array_elements(borealis_engine_info()->'graphs') g
   WHERE g->>'index' = 'qv_idx'
$$;
SELECT * FROM qv_check();
ALTER INDEX qv_idx SET (quantization = int8);
SELECT reloptions FROM pg_class WHERE relname = 'qv_idx';
SELECT * FROM qv_check();
ALTER INDEX qv_idx SET (quantization = binary);
SELECT * FROM qv_check();
ALTER INDEX qv_idx RESET (quantization);
SELECT * FROM qv_check();
ALTER INDEX qv_idx SET (quantization = half);
SELECT * FROM borealis_hnsw_check('qv_idx');

-- Built with binary from the start, and inserts keep its codes.
DROP INDEX qv_idx;
CREATE INDEX qv_idx ON qv USING borealis_hnsw (embedding vector_cosine_ops) WITH (quantization = binary);
INSERT INTO qv SELECT i, (SELECT array_agg(sin(i * 0.37 + j * 1.91) + 0.3 * cos(i * j * 0.013)) FROM generate_series(1, 64) j)::vector
  FROM generate_series(401, 450) i;
SELECT id FROM qv ORDER BY embedding <=> (SELECT embedding FROM qv WHERE id = 433) LIMIT 1;
SELECT * FROM qv_check();
SELECT * FROM borealis_hnsw_check('qv_idx');
-- int8 and binary need vector or halfvec elements under l2, cosine or inner product.
CREATE INDEX qv_l1 ON qv USING borealis_hnsw (embedding vector_l1_ops) WITH (quantization = binary);
CREATE INDEX qv_half_l1 ON qv USING borealis_hnsw ((embedding::halfvec(64)) halfvec_l1_ops) WITH (quantization = int8);

-- halfvec walks int8 or binary codes of its binary16 rows and rescores from the rows: the
-- exact order, and inserts keep the codes.
DROP INDEX qv_idx;
CREATE TABLE qh_expected AS
  SELECT array_agg(id ORDER BY d, id) AS ids FROM (
    SELECT id, embedding::halfvec(64) <=> (SELECT embedding FROM qv WHERE id = 7)::halfvec(64) AS d FROM qv ORDER BY d, id LIMIT 10) s;
CREATE INDEX qv_half ON qv USING borealis_hnsw ((embedding::halfvec(64)) halfvec_cosine_ops) WITH (quantization = int8);
CREATE FUNCTION qh_check() RETURNS TABLE (setting text, in_use text, exact_order bool)
LANGUAGE sql AS $$
  SELECT g->>'quantization_setting', g->>'quantization',
         (SELECT array_agg(id) FROM (SELECT id FROM qv ORDER BY embedding::halfvec(64) <=> (SELECT embedding FROM qv WHERE id = 7)::halfvec(64) LIMIT 10) s)
           = (SELECT ids FROM qh_expected)
    FROM (SELECT 1 FROM qv ORDER BY embedding::halfvec(64) <=> (SELECT embedding FROM qv WHERE id = 7)::halfvec(64) LIMIT 1) warm,
         jsonb_array_elements(borealis_engine_info()->'graphs') g
   WHERE g->>'index' = 'qv_half'
$$;
SELECT * FROM qh_check();
ALTER INDEX qv_half SET (quantization = binary);
SELECT * FROM qh_check();
ALTER INDEX qv_half SET (quantization = none);
SELECT * FROM qh_check();
ALTER INDEX qv_half SET (quantization = int8);
INSERT INTO qv SELECT i, (SELECT array_agg(sin(i * 0.37 + j * 1.91) + 0.3 * cos(i * j * 0.013)) FROM generate_series(1, 64) j)::vector
  FROM generate_series(451, 470) i;
SELECT id FROM qv ORDER BY embedding::halfvec(64) <=> (SELECT embedding FROM qv WHERE id = 466)::halfvec(64) LIMIT 1;
SELECT * FROM borealis_hnsw_check('qv_half');
DROP TABLE qh_expected;
DROP FUNCTION qh_check();
DROP TABLE qv, qv_expected;
DROP FUNCTION qv_check();
