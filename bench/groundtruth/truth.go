package groundtruth

import (
	"container/heap"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/borealisdb/borealis/bench/dataset"
)

// Truth is the exact k nearest base vectors of every query, nearest first.
type Truth struct {
	K     int
	IDs   []int32   // NQ×K row-major
	Dists []float32 // NQ×K, in Distance's units
}

// Neighbours are query i's true neighbour ids.
func (t *Truth) Neighbours(i int) []int32 { return t.IDs[i*t.K : (i+1)*t.K] }

// KthDistance is the distance of query i's k-th true neighbour.
func (t *Truth) KthDistance(i int) float32 { return t.Dists[(i+1)*t.K-1] }

// Compute scans every base vector for every query on all CPUs. progress, if not nil, is
// called with the number of queries done so far now and then.
func Compute(d *dataset.Dataset, k int, progress func(done, total int)) (*Truth, error) {
	if k <= 0 || k > d.N() {
		return nil, fmt.Errorf("k=%d must be between 1 and the base size %d", k, d.N())
	}
	nq := d.NQ()
	t := &Truth{K: k, IDs: make([]int32, nq*k), Dists: make([]float32, nq*k)}
	dist := batchDistance(d.Metric)
	scores := func(i int, out []float32) { dist(d.Query(i), d.Base, out) }
	if d.Sparse != nil {
		scores = sparseScores(d)
	}
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	step := max(1, nq/100)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			all := make([]float32, d.N())
			h := &maxHeap{}
			for {
				i := int(next.Add(1) - 1)
				if i >= nq {
					return
				}
				scores(i, all)
				h.items = h.items[:0]
				for id, v := range all {
					if len(h.items) < k {
						heap.Push(h, cand{int32(id), v})
					} else if v < h.items[0].dist {
						h.items[0] = cand{int32(id), v}
						heap.Fix(h, 0)
					}
				}
				for j := k - 1; j >= 0; j-- {
					c := heap.Pop(h).(cand)
					t.IDs[i*k+j], t.Dists[i*k+j] = c.id, c.dist
				}
				if d.Sparse != nil {
					refineSparse(d, i, t.IDs[i*k:(i+1)*k], t.Dists[i*k:(i+1)*k])
				}
				if n := int(done.Add(1)); progress != nil && (n%step == 0 || n == nq) {
					mu.Lock()
					progress(n, nq)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return t, nil
}

type cand struct {
	id   int32
	dist float32
}

// maxHeap keeps the k best candidates with the worst on top; ties break on the larger id so
// the result is deterministic.
type maxHeap struct{ items []cand }

func (h *maxHeap) Len() int { return len(h.items) }
func (h *maxHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.dist != b.dist {
		return a.dist > b.dist
	}
	return a.id > b.id
}
func (h *maxHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *maxHeap) Push(x any)    { h.items = append(h.items, x.(cand)) }
func (h *maxHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}
