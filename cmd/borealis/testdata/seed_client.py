"""The seed document's client code, as a new user runs it against Borealis: only the
connection settings (host, port, user, password, database) and the access method word
(USING hnsw -> USING borealis_hnsw) differ from the Aurora original.

Run by cmd/borealis/seed_test.go against a real `borealis up`; prints one JSON line of what
it saw."""
import json
import os
import random
import sys

import psycopg2
from psycopg2.extras import execute_values, Json


class AuroraVectorSearch:
    def __init__(self, host, port, database, user, password):
        self.conn = psycopg2.connect(
            host=host, port=port, database=database, user=user, password=password
        )
        self.cur = self.conn.cursor()
        self.setup_database()

    def setup_database(self):
        self.cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        self.cur.execute(
            """
            CREATE TABLE IF NOT EXISTS documents (
                id SERIAL PRIMARY KEY,
                content TEXT,
                embedding vector(1536),
                metadata JSONB
            )
            """
        )
        self.cur.execute(
            """
            CREATE INDEX IF NOT EXISTS documents_embedding_idx
            ON documents USING borealis_hnsw (embedding vector_cosine_ops)
            WITH (m = 16, ef_construction = 64)
            """
        )
        self.conn.commit()

    def insert_documents(self, documents):
        execute_values(
            self.cur,
            "INSERT INTO documents (content, embedding, metadata) VALUES %s",
            [(d["content"], d["embedding"], Json(d["metadata"])) for d in documents],
        )
        self.conn.commit()

    def similarity_search(self, query_embedding, limit=5, threshold=0.8):
        self.cur.execute(
            """
            SELECT id, content, metadata, 1 - (embedding <=> %s::vector) AS similarity
            FROM documents
            WHERE 1 - (embedding <=> %s::vector) > %s
            ORDER BY embedding <=> %s::vector
            LIMIT %s
            """,
            (query_embedding, query_embedding, threshold, query_embedding, limit),
        )
        return self.cur.fetchall()

    def close(self):
        self.cur.close()
        self.conn.close()


def main():
    settings = dict(
        host=os.environ["SEED_HOST"],
        port=int(os.environ["SEED_PORT"]),
        database=os.environ["SEED_DATABASE"],
        user=os.environ["SEED_USER"],
        password=os.environ["SEED_PASSWORD"],
    )
    out = {}
    # A wrong password must fail.
    try:
        psycopg2.connect(**dict(settings, password=settings["password"] + "-wrong")).close()
        out["wrong_password"] = "accepted"
    except psycopg2.OperationalError as e:
        out["wrong_password"] = str(e).strip()

    rng = random.Random(42)
    docs = []
    for i in range(300):
        emb = [rng.gauss(0, 1) for _ in range(1536)]
        docs.append({"content": "document %d" % i, "embedding": emb, "metadata": {"n": i, "source": "seed"}})

    search = AuroraVectorSearch(**settings)
    search.insert_documents(docs)
    hits = search.similarity_search(docs[7]["embedding"], limit=5, threshold=0.8)
    out["hits"] = [{"id": h[0], "content": h[1], "metadata": h[2], "similarity": float(h[3])} for h in hits]
    search.cur.execute(
        "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.relname = 'documents_embedding_idx'"
    )
    out["index_am"] = search.cur.fetchone()[0]
    search.cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    out["superuser"] = search.cur.fetchone()[0]
    search.cur.execute("SHOW server_version")
    out["server_version"] = search.cur.fetchone()[0]
    search.cur.execute("SET enable_seqscan = off")
    search.cur.execute(
        "EXPLAIN SELECT id FROM documents ORDER BY embedding <=> %s::vector LIMIT 5", (docs[7]["embedding"],)
    )
    out["plan"] = "\n".join(r[0] for r in search.cur.fetchall())
    out["ssl"] = search.conn.info.ssl_in_use
    search.close()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
