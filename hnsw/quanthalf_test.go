package hnsw

import (
	"math"
	"testing"
)

// halfData is clustered data of dims components as half codes (two per word) and as the
// float32 values those halves hold exactly.
func halfData(n, dims int, seed uint64) (codes, dense [][]float32) {
	dense = clustered(n, dims, 32, seed)
	for _, v := range dense {
		codes = append(codes, halfCodes(v))
	}
	return codes, dense
}

// Half elements traverse with int8 or binary codes (quanthalf.go): recall holds, every
// reported distance has exactly the bits an unquantized Half index reports for that row
// (rescoring reads the binary16 rows), through SearchWith and the iterator, for every
// metric the codes serve. 255 components: the last word's pad half is zero.
func TestHalfQuantizedExactDistancesAndRecall(t *testing.T) {
	const n, dims, nq = 3000, 255, 40
	codes, dense := halfData(n+nq, dims, 11)
	data, queries := codes[:n], codes[n:]
	for _, c := range []struct {
		metric Metric
		quant  Quantization
		ef     int
		min    float64
	}{
		{Cosine, QuantInt8, 64, 0.95},
		{L2, QuantInt8, 64, 0.95},
		{InnerProduct, QuantInt8, 64, 0.9},
		{Cosine, QuantBinary, 200, 0.9},
	} {
		t.Run(c.metric.String()+"/"+c.quant.String(), func(t *testing.T) {
			x := build(t, data, c.metric, Options{M: 12, EfConstruction: 64, Seed: 5, Element: Half, Quantization: c.quant})
			if x.Quantization() != c.quant {
				t.Fatalf("quantization %v, want %v", x.Quantization(), c.quant)
			}
			hit := 0
			for qi, q := range queries {
				truth := bruteForce(x, dense[:n], nil, dense[n+qi], 10)
				res, err := x.SearchWith(nil, q, 10, SearchOptions{Ef: c.ef})
				if err != nil {
					t.Fatal(err)
				}
				in := map[uint32]bool{}
				for _, id := range truth {
					in[id] = true
				}
				check := func(how string, res []Result) {
					t.Helper()
					for i, r := range res {
						want := x.reported(x.codeDistance(q, data[r.ID]))
						if math.Float32bits(r.Distance) != math.Float32bits(want) {
							t.Fatalf("query %d %s rank %d (id %d): distance %v, the half row's %v", qi, how, i, r.ID, r.Distance, want)
						}
						if i > 0 && r.Distance < res[i-1].Distance {
							t.Fatalf("query %d %s rank %d: out of order", qi, how, i)
						}
					}
				}
				check("search", res)
				for _, r := range res {
					if in[r.ID] {
						hit++
					}
				}
				got := drain(t, x, q, SearchOptions{Ef: c.ef}, 30)
				if len(got) != 30 {
					t.Fatalf("query %d: iterator returned %d", qi, len(got))
				}
				check("iterator", got)
			}
			r := float64(hit) / float64(10*nq)
			t.Logf("half %v %v: recall@10 %.3f at ef %d", c.metric, c.quant, r, c.ef)
			if r < c.min {
				t.Fatalf("recall@10 %.3f < %.2f", r, c.min)
			}
		})
	}
}

// A Half row's int8 codes are the float32 row's: the same components, so the same codes
// and scale under L2 (the squared norm too); under cosine the scale carries 1/‖v‖ and the
// approximate distance tracks the exact one.
func TestHalfCodesAreTheFloat32Codes(t *testing.T) {
	const n, dims = 50, 301
	codes, dense := halfData(n, dims, 13)
	for _, m := range []Metric{L2, Cosine} {
		h := build(t, codes, m, Options{M: 8, Seed: 1, Threads: 1, Element: Half, Quantization: QuantInt8})
		f := build(t, dense, m, Options{M: 8, Seed: 1, Threads: 1, Quantization: QuantInt8})
		if h.cdims != dims+1 || len(h.codeOf(0)) != dims+1 {
			t.Fatalf("half code of %d components, want %d", len(h.codeOf(0)), dims+1)
		}
		s := h.pool.get()
		for id := uint32(0); id < n; id++ {
			hc, fc := h.codeOf(id), f.codeOf(id)
			if hc[dims] != 0 {
				t.Fatalf("pad component coded %d", hc[dims])
			}
			if m == L2 {
				for i := range fc {
					if hc[i] != fc[i] {
						t.Fatalf("id %d component %d: half code %d, float32 code %d", id, i, hc[i], fc[i])
					}
				}
				if h.scales[id] != f.scales[id] || h.norms2[id] != f.norms2[id] {
					t.Fatalf("id %d: scale/norm² %v/%v, float32 %v/%v", id, h.scales[id], h.norms2[id], f.scales[id], f.norms2[id])
				}
			}
			h.quantizeQuery(s, codes[(id+1)%n])
			approx := float64(h.approx(s, id))
			exact := float64(h.codeDistance(codes[(id+1)%n], codes[id]))
			if math.Abs(approx-exact) > 0.02*math.Max(1, math.Abs(exact)) {
				t.Fatalf("%v id %d: approximate %v, exact %v", m, id, approx, exact)
			}
		}
		h.pool.put(s)
	}
}

// A mapped Half graph with int8 codes lays them out at two components a word (the file grows
// by exactly that), and a second view reads the same graph with the same answers.
func TestHalfQuantizedMapped(t *testing.T) {
	const n, dims, capacity = 1500, 128, 1500
	codes, _ := halfData(n, dims, 17)
	words := dims / 2
	none := Options{M: 8, Seed: 3, Element: Half}
	opts := Options{M: 8, Seed: 3, Element: Half, Quantization: QuantInt8}
	size := MappedSize(words, Cosine, opts, capacity)
	want := int64(capacity * (dims + 4)) // codes and a scale per node; the layout rounds to pages
	if extra := size - MappedSize(words, Cosine, none, capacity); extra < want-4096 || extra > want+2*4096 {
		t.Fatalf("int8 codes add %d bytes, want about %d", extra, want)
	}
	mem := alignedBytes(size)
	w, err := Attach(mem, words, Cosine, opts, capacity, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range codes {
		if err := w.Add(uint32(i), v); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Attach(mem, words, Cosine, opts, capacity, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(mem, words, Cosine, none, capacity, false); err == nil {
		t.Fatal("an int8 graph opened as unquantized")
	}
	for q := 0; q < 30; q++ {
		a, b := w.Search(codes[q], 10, 64), r.Search(codes[q], 10, 64)
		if len(a) != 10 || a[0].ID != uint32(q) {
			t.Fatalf("query %d: %v", q, a)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("query %d: writer %v, reader %v", q, a, b)
			}
		}
	}
}
