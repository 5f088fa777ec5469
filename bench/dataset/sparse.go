package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// SparseVec is one sparse vector: 0-based term ids, ascending, and their non-zero weights
// (pgvector's sparsevec, whose text form counts from 1).
type SparseVec struct {
	Indices []int32
	Values  []float32
}

// SparseSet holds a sparse dataset's vectors (Dataset.Sparse); Dataset.Dim is the vocabulary.
type SparseSet struct {
	Base, Queries []SparseVec
}

// The SPLADE-like generator's shape (documented in bench/README.md and the result files).
const (
	sparseTopics     = 200  // topics, each a weighted set of terms
	sparseTopicSize  = 400  // distinct terms a topic draws from
	sparseMinNNZ     = 50   // non-zeros per vector: uniform in [sparseMinNNZ, sparseMaxNNZ]
	sparseMaxNNZ     = 150  //
	sparseZipfS      = 1.1  // Zipf exponent of term popularity over term ids
	sparseTopicFrac  = 0.6  // share of a vector's terms drawn from its topics, the rest from the whole vocabulary
	sparseSigma      = 0.75 // log-normal weight spread; topic terms get weight × sparseTopicBoost
	sparseTopicBoost = 1.5
)

// SparseSynthetic makes n base and q query sparse vectors over a vocabulary of vocab terms,
// as SPLADE-like learned sparse embeddings look: term popularity follows a Zipf law over term
// ids (s = 1.1, so a few ids are in most vectors and most ids are rare); each vector has
// 50–150 non-zeros; 60% of its terms come from one or two of 200 topics (each a set of 400
// Zipf-drawn terms), the rest from the whole vocabulary; weights are positive, log-normal
// (σ 0.75), topic terms 1.5× heavier. Topics give the data neighbourhoods, as real documents
// have; without them every pair would share only the Zipf head. Queries are drawn after the
// base from the same generator, so they are disjoint from it. The same seed gives the same
// data bit for bit.
func SparseSynthetic(n, vocab, q int, metric Metric, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 0x7370617273650000)) // "sparse"
	zipf := rand.NewZipf(rand.New(rand.NewPCG(seed, 0x7a697066)), sparseZipfS, 1, uint64(vocab-1))
	topics := make([][]int32, sparseTopics)
	for t := range topics {
		seen := map[int32]bool{}
		for len(topics[t]) < min(sparseTopicSize, vocab/2) {
			// A topic's terms are Zipf-popular but shifted, so topics differ in their heads.
			id := int32((zipf.Uint64() + uint64(t)*uint64(vocab)/sparseTopics) % uint64(vocab))
			if !seen[id] {
				seen[id] = true
				topics[t] = append(topics[t], id)
			}
		}
	}
	gen := func(rows int) []SparseVec {
		out := make([]SparseVec, rows)
		w := map[int32]float32{}
		for r := range out {
			clear(w)
			nnz := sparseMinNNZ + rng.IntN(sparseMaxNNZ-sparseMinNNZ+1)
			nnz = min(nnz, vocab)
			ts := []int{rng.IntN(sparseTopics)}
			if rng.IntN(2) == 0 {
				ts = append(ts, rng.IntN(sparseTopics))
			}
			for len(w) < nnz {
				weight := float32(math.Exp(sparseSigma * rng.NormFloat64()))
				var id int32
				if rng.Float64() < sparseTopicFrac {
					terms := topics[ts[rng.IntN(len(ts))]]
					// Within a topic, earlier terms are likelier (squared uniform).
					u := rng.Float64()
					id = terms[int(u*u*float64(len(terms)))]
					weight *= sparseTopicBoost
				} else {
					id = int32(zipf.Uint64())
				}
				if _, ok := w[id]; !ok {
					w[id] = weight
				}
			}
			v := SparseVec{Indices: make([]int32, 0, len(w)), Values: make([]float32, 0, len(w))}
			for id := range w {
				v.Indices = append(v.Indices, id)
			}
			slices.Sort(v.Indices)
			for _, id := range v.Indices {
				v.Values = append(v.Values, w[id])
			}
			out[r] = v
		}
		return out
	}
	base := gen(n)
	queries := gen(q)
	return &Dataset{Name: fmt.Sprintf("sparse:%d:%d:%s", n, vocab, metric), Metric: metric, Dim: vocab,
		Sparse: &SparseSet{Base: base, Queries: queries}}
}

// parseSparse parses the N:V[:metric] of a sparse spec (default metric ip, as SPLADE scores).
func parseSparse(spec, rest string) (n, vocab int, metric Metric, err error) {
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, "", fmt.Errorf("dataset %q: want sparse:N:V[:metric], e.g. sparse:50000:30000:ip", spec)
	}
	n, err1 := strconv.Atoi(parts[0])
	vocab, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || n <= 0 || vocab < 2*sparseMaxNNZ || vocab > 1_000_000_000 {
		return 0, 0, "", fmt.Errorf("dataset %q: N must be a positive integer and V (the vocabulary) at least %d", spec, 2*sparseMaxNNZ)
	}
	metric = IP
	if len(parts) == 3 {
		if metric, err = ParseMetric(parts[2]); err != nil {
			return 0, 0, "", fmt.Errorf("dataset %q: %w", spec, err)
		}
	}
	return n, vocab, metric, nil
}

// SparseDot is a·b over two sparse vectors (float64 accumulation).
func SparseDot(a, b SparseVec) float64 {
	s := 0.0
	i, j := 0, 0
	for i < len(a.Indices) && j < len(b.Indices) {
		switch {
		case a.Indices[i] < b.Indices[j]:
			i++
		case a.Indices[i] > b.Indices[j]:
			j++
		default:
			s += float64(a.Values[i]) * float64(b.Values[j])
			i++
			j++
		}
	}
	return s
}

// Norm2 is the squared Euclidean norm of v.
func (v SparseVec) Norm2() float64 {
	s := 0.0
	for _, x := range v.Values {
		s += float64(x) * float64(x)
	}
	return s
}

// SparseDistance is the order PostgreSQL's operator for m sorts sparsevecs by, in the units
// groundtruth uses for dense vectors: squared L2, cosine distance, negative inner product.
func SparseDistance(m Metric, a, b SparseVec) float32 {
	if m == L2 {
		return float32(sparseSquaredL2(a, b))
	}
	dot := SparseDot(a, b)
	switch m {
	case Cosine:
		na, nb := a.Norm2(), b.Norm2()
		if na == 0 || nb == 0 {
			return float32(math.NaN())
		}
		return float32(1 - max(-1, min(1, dot/math.Sqrt(na*nb))))
	case IP:
	}
	return float32(-dot)
}

// sparseSquaredL2 sums squared differences term by term (no cancellation near duplicates).
func sparseSquaredL2(a, b SparseVec) float64 {
	s := 0.0
	i, j := 0, 0
	for i < len(a.Indices) || j < len(b.Indices) {
		var d float64
		switch {
		case j == len(b.Indices) || i < len(a.Indices) && a.Indices[i] < b.Indices[j]:
			d = float64(a.Values[i])
			i++
		case i == len(a.Indices) || b.Indices[j] < a.Indices[i]:
			d = float64(b.Values[j])
			j++
		default:
			d = float64(a.Values[i]) - float64(b.Values[j])
			i++
			j++
		}
		s += d * d
	}
	return s
}

// Midpoint is (a+b)/2, a new point between two vectors (the insert workload's rows).
func Midpoint(a, b SparseVec) SparseVec {
	var v SparseVec
	i, j := 0, 0
	for i < len(a.Indices) || j < len(b.Indices) {
		switch {
		case j == len(b.Indices) || i < len(a.Indices) && a.Indices[i] < b.Indices[j]:
			v.Indices, v.Values = append(v.Indices, a.Indices[i]), append(v.Values, a.Values[i]/2)
			i++
		case i == len(a.Indices) || b.Indices[j] < a.Indices[i]:
			v.Indices, v.Values = append(v.Indices, b.Indices[j]), append(v.Values, b.Values[j]/2)
			j++
		default:
			v.Indices, v.Values = append(v.Indices, a.Indices[i]), append(v.Values, (a.Values[i]+b.Values[j])/2)
			i++
			j++
		}
	}
	return v
}

// MeanNNZ is the base set's average number of non-zeros.
func (s *SparseSet) MeanNNZ() float64 {
	t := 0
	for _, v := range s.Base {
		t += len(v.Indices)
	}
	return float64(t) / float64(max(1, len(s.Base)))
}
