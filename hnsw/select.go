package hnsw

// selectNeighbors is the paper's heuristic (Algorithm 4) with
// keepPrunedConnections and without extendCandidates. cands must be sorted by
// distance to the base node. A candidate is kept when it is closer to the base
// than to every neighbour kept so far — this spreads edges over directions
// instead of spending them all on one nearby cluster. Discarded candidates then
// top the list up to m, closest first, so lists stay full (better recall for
// the cost of a few longer edges). The result is written into *out; *pruned is
// scratch. Neither allocates once the buffers have grown.
//
// nKept is how many leading entries of the result passed the diversity test
// (the rest were re-admitted), or -1 when cands fit in m and were not tested.
func (x *Index) selectNeighbors(s *scratch, cands []candidate, m int, out, pruned *[]candidate) (sel []candidate, nKept int) {
	sel = (*out)[:0]
	if len(cands) <= m {
		// keepPrunedConnections would re-add every discard: all candidates stay.
		sel = append(sel, cands...)
		*out = sel
		return sel, -1
	}
	pr := (*pruned)[:0]
	for _, c := range cands {
		if len(sel) >= m {
			break
		}
		vc := x.vec(c.id)
		keep := true
		for _, r := range sel {
			if x.pairDistance(s, vc, x.vec(r.id)) < c.dist {
				keep = false
				break
			}
		}
		if keep {
			sel = append(sel, c)
		} else {
			pr = append(pr, c)
		}
	}
	nKept = len(sel)
	for _, p := range pr {
		if len(sel) >= m {
			break
		}
		sel = append(sel, p)
	}
	*out, *pruned = sel, pr
	return sel, nKept
}
