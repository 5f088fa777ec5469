// Package layering holds no code: its test enforces the direction of the project's
// dependencies (simd ← hnsw ← engine ← pgext; controlplane and bgworker never import the
// index code), so docs/architecture.md's "who may call whom" cannot silently rot.
package layering
