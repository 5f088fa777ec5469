-- Init script of the integration suite: runs once, through the cluster endpoint, when the cluster
-- is first created.
CREATE EXTENSION IF NOT EXISTS borealis CASCADE;
CREATE TABLE items (
    id        bigint PRIMARY KEY,
    category  int NOT NULL,
    embedding vector(16) NOT NULL
);
