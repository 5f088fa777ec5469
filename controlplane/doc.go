// Package controlplane is the root of the Borealis control plane: it runs clusters of
// PostgreSQL nodes as supervised local processes, routes clients to them and serves an API.
//
// Each concept is its own package:
//   - store: the embedded bbolt database of cluster definitions and events;
//   - cluster: members, node supervision, replication set-up, adoption after a restart;
//   - failover: the pure failover decisions (detection, choice of the reader);
//   - router: the PostgreSQL wire-protocol proxy behind each cluster's two endpoints;
//   - api: the HTTP JSON API with its bearer token;
//   - metrics: the Prometheus collector;
//   - capacity: what a capacity in ACUs means (memory, CPU, PostgreSQL settings);
//   - paramgroup: cluster parameter groups (catalogue, validation, custom groups);
//   - logs: log groups (collection of the nodes' jsonlog, local store, reading, OTLP export).
//
// The control plane never imports the index code (simd, hnsw, engine) and never loads the
// Borealis engine; it talks to nodes only over the PostgreSQL protocol.
package controlplane
