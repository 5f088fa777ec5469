// Package groundtruth owns the exact k nearest neighbours of a dataset's queries: computed by
// brute force with the simd kernels, and cached on disk keyed by the dataset's content, the
// metric and k, so a rerun on the same data skips the scan.
//
// It reads datasets and writes only its own cache files. It never talks to a database and
// never judges an index; recall is computed by the benchmark runner from what it returns.
package groundtruth
