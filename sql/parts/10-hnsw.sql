-- borealis_hnsw: the HNSW index access method, with pgvector's operator class names and
-- operators, so pgvector SQL ports by changing the word after USING.

CREATE FUNCTION borealis_hnsw_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'borealis_hnsw_handler'
    LANGUAGE C;

CREATE ACCESS METHOD borealis_hnsw TYPE INDEX HANDLER borealis_hnsw_handler;

COMMENT ON ACCESS METHOD borealis_hnsw IS 'HNSW vector index whose graph work runs in the Borealis Go engine';

-- Support function 1 is pgvector's own distance function for the operator: it names the metric.
CREATE OPERATOR CLASS vector_l2_ops
    FOR TYPE vector USING borealis_hnsw AS
    OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 l2_distance(vector, vector);

CREATE OPERATOR CLASS vector_cosine_ops
    FOR TYPE vector USING borealis_hnsw AS
    OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(vector, vector);

CREATE OPERATOR CLASS vector_ip_ops
    FOR TYPE vector USING borealis_hnsw AS
    OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector);

CREATE FUNCTION borealis_hnsw_check(index regclass) RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'borealis_hnsw_check'
    LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION borealis_hnsw_check(regclass) IS 'Problems in a borealis_hnsw index''s pages (meta page, tuples, references, reachability); no rows when healthy';

CREATE FUNCTION borealis_hnsw_prewarm(index regclass) RETURNS bigint
    AS 'MODULE_PATHNAME', 'borealis_hnsw_prewarm'
    LANGUAGE C STRICT;

COMMENT ON FUNCTION borealis_hnsw_prewarm(regclass) IS 'Maps (building when missing or stale) the shared graph of a borealis_hnsw index; returns its size in bytes';
