// Package dataset owns the vector sets the ANN benchmark runs on: a deterministic clustered
// Gaussian generator, a SPLADE-like sparse generator (sparse.go: Zipf term ids, 50–150
// positive log-normal weights per vector, topics for neighbourhoods), and readers for MNIST (gzip IDX), SIFT-5k (TSV), fvecs and plain TSV
// files, each split into a base set and a disjoint query set.
//
// It only reads files and produces float32 rows in memory. It never talks to a database,
// never computes neighbours (package groundtruth does) and never writes anything.
package dataset
