package hnsw

// EstimateMemory returns the bytes an index of n nodes with dims components and
// parameter M needs: vectors, the layer-0 slab, the expected upper layers
// (a node reaches layer l with probability M^-l, so on average 1/(M-1) upper
// lists per node), per-node level, state and lock, and one search scratch
// (visited bits) per CPU. Go's own overheads are not counted; keep some slack.
func EstimateMemory(n, dims, M int) int64 {
	if n <= 0 || dims <= 0 || M < 2 {
		return 0
	}
	nn, d, m := int64(n), int64(dims), int64(M)
	vectors := nn * d * 4
	layer0 := nn * (2*m + 1) * 4
	upper := nn*24 + nn*(m+1)*4/(m-1) // slice header per node + expected lists
	perNode := nn * (1 + 4 + 8)       // level, state, lock
	scratch := nn / 8 * 2             // visited bits for a couple of concurrent searches
	return vectors + layer0 + upper + perNode + scratch
}
