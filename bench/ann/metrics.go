package ann

import (
	"math"
	"sort"
	"time"
)

// Recall is the fraction of the k true neighbours an index found, given the true distances of
// what it returned and the true distance of the k-th neighbour. A returned row counts when it
// is no farther than the k-th true neighbour (with a relative tolerance of 1e-5), so ties at
// the k-th distance are not counted as misses, as ann-benchmarks does. Extra rows beyond k
// are ignored; missing rows are misses.
func Recall(k int, returned []float32, kth float32) float64 {
	limit := kth + float32(1e-5*math.Max(math.Abs(float64(kth)), 1e-6))
	found := 0
	for i, d := range returned {
		if i == k {
			break
		}
		if d <= limit {
			found++
		}
	}
	return float64(found) / float64(k)
}

// Percentile is the p-th percentile (0..100) of latencies by the nearest-rank method.
func Percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// CurvePoint is one (recall, QPS) measurement of an index.
type CurvePoint struct{ Recall, QPS float64 }

// Bound says how an interpolated QPS relates to the measurements.
type Bound int

const (
	// Unreached: no ef reached the recall level.
	Unreached Bound = iota
	// Interpolated: the level lies between two measured points (or on one).
	Interpolated
	// AtLeast: every ef exceeded the level; the QPS of the lowest-recall point is a lower
	// bound on what the index does at that level.
	AtLeast
)

// QPSAtRecall is the best QPS an index reaches at recall level r, interpolated linearly in
// recall between the two measurements around r on the Pareto frontier (a point slower and
// less accurate than another is ignored).
func QPSAtRecall(points []CurvePoint, r float64) (float64, Bound) {
	if len(points) == 0 {
		return 0, Unreached
	}
	s := append([]CurvePoint(nil), points...)
	sort.Slice(s, func(i, j int) bool { return s[i].Recall < s[j].Recall })
	// Frontier: the best QPS available at this recall or better, so non-increasing.
	for i := len(s) - 2; i >= 0; i-- {
		s[i].QPS = math.Max(s[i].QPS, s[i+1].QPS)
	}
	const eps = 1e-9
	if r > s[len(s)-1].Recall+eps {
		return 0, Unreached
	}
	if r < s[0].Recall-eps {
		return s[0].QPS, AtLeast
	}
	for i := 0; i < len(s); i++ {
		if math.Abs(s[i].Recall-r) <= eps {
			return s[i].QPS, Interpolated
		}
		if s[i].Recall > r {
			lo, hi := s[i-1], s[i]
			f := (r - lo.Recall) / (hi.Recall - lo.Recall)
			return lo.QPS + f*(hi.QPS-lo.QPS), Interpolated
		}
	}
	return s[len(s)-1].QPS, Interpolated
}
