// Package ann owns `borealis bench ann`: it loads a dataset into PostgreSQL with binary COPY,
// builds each requested index access method on the same table with the same settings,
// measures build time, index size and the server's peak memory, sweeps the ef-style search
// GUC for recall, QPS and latency through prepared statements, and writes JSON lines, a
// Markdown table and a recall/QPS plot with the machine described.
//
// Everything it measures goes through SQL against a server (a given DSN, or a throwaway one
// started with internal/pgproc); it never imports the index code it measures, so pgvector's
// hnsw and borealis_hnsw are measured the same way. It never touches a server it was pointed
// at beyond its own table (bench_items) and the indexes it builds there.
package ann
