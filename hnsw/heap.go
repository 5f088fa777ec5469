package hnsw

// candidate is a node and its internal distance to the query.
type candidate struct {
	dist float32
	id   uint32
}

// minHeap and maxHeap are binary heaps over reused slices: pushing never
// allocates once the backing array has grown to the search's working size.
// (container/heap would box every element in an interface.) The two are written out
// rather than shared through a generic comparator because they sit on the search's hot path,
// where a comparator call per sift step would sit in the innermost loop.
type minHeap []candidate

func (h *minHeap) push(c candidate) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].dist <= c.dist {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

func (h *minHeap) pop() candidate {
	s := *h
	top := s[0]
	last := s[len(s)-1]
	s = s[:len(s)-1]
	n := len(s)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s[r].dist < s[l].dist {
			l = r
		}
		if last.dist <= s[l].dist {
			break
		}
		s[i] = s[l]
		i = l
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

type maxHeap []candidate

func (h *maxHeap) push(c candidate) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].dist >= c.dist {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

func (h *maxHeap) pop() candidate {
	s := *h
	top := s[0]
	last := s[len(s)-1]
	s = s[:len(s)-1]
	n := len(s)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s[r].dist > s[l].dist {
			l = r
		}
		if last.dist >= s[l].dist {
			break
		}
		s[i] = s[l]
		i = l
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// sortAscending sorts a candidate slice by distance, then id, in place
// (insertion sort for the short lists of neighbour selection, heap-sort order
// otherwise) without allocating.
func sortAscending(s []candidate) {
	if len(s) <= 48 {
		for i := 1; i < len(s); i++ {
			c := s[i]
			j := i
			for j > 0 && less(c, s[j-1]) {
				s[j] = s[j-1]
				j--
			}
			s[j] = c
		}
		return
	}
	// Heap sort: build a max-heap, then move the max to the end repeatedly.
	n := len(s)
	for i := n/2 - 1; i >= 0; i-- {
		siftDown(s, i, n)
	}
	for end := n - 1; end > 0; end-- {
		s[0], s[end] = s[end], s[0]
		siftDown(s, 0, end)
	}
}

func less(a, b candidate) bool {
	return a.dist < b.dist || (a.dist == b.dist && a.id < b.id)
}

func siftDown(s []candidate, i, n int) {
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		if r := l + 1; r < n && less(s[l], s[r]) {
			l = r
		}
		if !less(s[i], s[l]) {
			return
		}
		s[i], s[l] = s[l], s[i]
		i = l
	}
}
