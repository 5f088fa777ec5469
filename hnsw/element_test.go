package hnsw

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/borealisdb/borealis/simd"
)

// elementCase makes random elements of one type as codes, with the dense float64 view the
// reference distance is computed on (independently of the kernels under test).
type elementCase struct {
	elem   Element
	metric Metric
	dims   int // logical dimensions
}

func (c elementCase) words() int {
	switch c.elem {
	case Half:
		return (c.dims + 1) / 2
	case Bits:
		return 2 * ((c.dims + 63) / 64)
	case Sparse:
		return 1 + 2*min(c.dims, 1000)
	}
	return c.dims
}

func (c elementCase) random(r *rand.Rand) (code []float32, dense []float64) {
	code = make([]float32, c.words())
	dense = make([]float64, c.dims)
	switch c.elem {
	case Float32:
		for i := range code {
			code[i] = float32(r.NormFloat64())
			dense[i] = float64(code[i])
		}
	case Half:
		h := halves(code)
		f := make([]float32, c.dims)
		for i := range f {
			f[i] = float32(r.NormFloat64())
		}
		simd.Float32ToHalf(h[:c.dims], f)
		simd.HalfToFloat32(f, h[:c.dims])
		for i := range f {
			dense[i] = float64(f[i])
		}
	case Bits:
		w := words64(code)
		for i := range c.dims {
			if r.IntN(3) == 0 {
				w[i/64] |= 1 << (i % 64)
				dense[i] = 1
			}
		}
	case Sparse:
		room := (len(code) - 1) / 2
		n := 1 + r.IntN(min(room, 12))
		idx := r.Perm(c.dims)[:n]
		sort.Ints(idx)
		code[0] = math.Float32frombits(uint32(n))
		for k, i := range idx {
			v := float32(r.NormFloat64())
			code[1+k] = math.Float32frombits(uint32(i))
			code[1+room+k] = v
			dense[i] = float64(v)
		}
	}
	return code, dense
}

// reference is pgvector's distance for the metric on dense values.
func (c elementCase) reference(a, b []float64) float64 {
	var s, na, nb, ab float64
	for i := range a {
		switch c.metric {
		case L2:
			s += (a[i] - b[i]) * (a[i] - b[i])
		case L1:
			s += math.Abs(a[i] - b[i])
		case Hamming:
			if a[i] != b[i] {
				s++
			}
		}
		ab += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	switch c.metric {
	case L2:
		return math.Sqrt(s)
	case Cosine:
		return 1 - ab/math.Sqrt(na*nb)
	case InnerProduct:
		return -ab
	case Jaccard:
		if ab == 0 {
			return 1
		}
		return 1 - ab/(na+nb-ab)
	}
	return s
}

// Every element type under every metric pgvector defines on it: searches give the exact order
// of the reference distance at small n and a wide beam, and report pgvector's distance values.
func TestElementTypesExactOrder(t *testing.T) {
	var cases []elementCase
	for _, e := range []Element{Float32, Half, Sparse} {
		for _, m := range []Metric{L2, Cosine, InnerProduct, L1} {
			cases = append(cases, elementCase{e, m, 37})
		}
	}
	cases = append(cases, elementCase{Bits, Hamming, 100}, elementCase{Bits, Jaccard, 100},
		elementCase{Sparse, L2, 5000})
	for _, c := range cases {
		t.Run(c.elem.String()+"_"+c.metric.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.elem)*10+uint64(c.metric), uint64(c.dims)))
			x, err := New(c.words(), c.metric, Options{M: 8, EfConstruction: 100, Threads: 1, Element: c.elem})
			if err != nil {
				t.Fatal(err)
			}
			const n = 400
			dense := make([][]float64, n)
			for id := range n {
				code, d := c.random(r)
				if err := x.Add(uint32(id), code); err != nil {
					t.Fatal(err)
				}
				dense[id] = d
			}
			for q := range 5 {
				code, qd := c.random(r)
				got, err := x.SearchInto(nil, code, 10, n)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]int, n)
				for i := range want {
					want[i] = i
				}
				dist := func(i int) float64 { return c.reference(qd, dense[i]) }
				sort.SliceStable(want, func(i, j int) bool { return dist(want[i]) < dist(want[j]) })
				if len(got) != 10 {
					t.Fatalf("query %d: %d results", q, len(got))
				}
				for k, res := range got {
					ref := dist(int(res.ID))
					if math.Abs(float64(res.Distance)-ref) > 1e-4*math.Max(1, math.Abs(ref)) {
						t.Fatalf("query %d rank %d: id %d distance %v, reference %v", q, k, res.ID, res.Distance, ref)
					}
					// Ties (Hamming, Jaccard) may come in either order: compare distances.
					if wantD := dist(want[k]); math.Abs(ref-wantD) > 1e-4*math.Max(1, math.Abs(wantD)) {
						t.Fatalf("query %d rank %d: distance %v, exact order has %v", q, k, ref, wantD)
					}
				}
			}
		})
	}
}

func TestElementOptionsRefused(t *testing.T) {
	for _, c := range []struct {
		dims   int
		metric Metric
		opts   Options
	}{
		{4, Hamming, Options{}},                                     // Hamming is for bits
		{4, L2, Options{Element: Bits}},                             // L2 is not for bits
		{3, Hamming, Options{Element: Bits}},                        // bits come in 64-bit words
		{4, L2, Options{Element: Sparse}},                           // 1 + 2n words
		{8, Hamming, Options{Element: Bits, QuantizedSearch: true}}, // int8 traversal is float32 and half only
		{9, L2, Options{Element: Sparse, Quantization: QuantBinary}},
		{8, L1, Options{QuantizedSearch: true}}, // ... under l2, cosine, ip
		{8, L1, Options{Element: Half, Quantization: QuantInt8}},
	} {
		if _, err := New(c.dims, c.metric, c.opts); err == nil {
			t.Errorf("New(%d, %v, %+v) accepted", c.dims, c.metric, c.opts)
		}
	}
}
