package hnsw

import (
	"errors"
	"math"
	"testing"
)

// FuzzDecode: arbitrary bytes must give an index or an ErrCorrupt/ErrOutOfMemory
// error, never a panic; whatever decodes must survive a search and re-encode
// to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		x, _ := New(3, m, Options{M: 2, Seed: 1})
		for i := range 6 {
			_ = x.Add(uint32(i), []float32{float32(i) + 1, float32(i % 3), 1})
		}
		_ = x.Delete(2)
		f.Add(x.Encode(nil))
	}
	empty, _ := New(2, L2, Options{})
	f.Add(empty.Encode(nil))
	f.Add([]byte("BRLSHNSW"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := Decode(data, Options{MemoryLimit: 64 << 20})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrOutOfMemory) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		q := make([]float32, x.Dims())
		q[0] = 1
		x.Search(q, 3, 8)
		if got := x.Encode(nil); string(got) != string(data) {
			t.Fatalf("decode/encode is not the identity")
		}
	})
}

// FuzzTinyGraphSearch builds graphs of 0–3 nodes from fuzz bytes, deletes
// some, and checks that searches and iterators return only live nodes, in
// order, with the exact distances.
func FuzzTinyGraphSearch(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{})
	f.Add(uint8(1), uint8(0), []byte{1, 2, 3, 4})
	f.Add(uint8(2), uint8(1), []byte{9, 9, 9, 9, 1, 0, 0, 1, 5})
	f.Add(uint8(3), uint8(7), []byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, n, delMask uint8, raw []byte) {
		n %= 4
		vec := func(i int) []float32 {
			v := make([]float32, 2)
			for j := range v {
				k := 2*i + j
				if k < len(raw) {
					v[j] = float32(int8(raw[k]))
				}
			}
			return v
		}
		for _, m := range []Metric{L2, Cosine, InnerProduct} {
			x, _ := New(2, m, Options{M: 2, Seed: 3})
			var live []int
			for i := range int(n) {
				if err := x.Add(uint32(i), vec(i)); err != nil {
					if m == Cosine && errors.Is(err, ErrZeroVector) {
						continue
					}
					t.Fatal(err)
				}
				live = append(live, i)
			}
			kept := live[:0:0]
			for _, i := range live {
				if delMask&(1<<i) != 0 {
					if err := x.Delete(uint32(i)); err != nil {
						t.Fatal(err)
					}
				} else {
					kept = append(kept, i)
				}
			}
			q := vec(3)
			if m == Cosine && q[0] == 0 && q[1] == 0 {
				q[0] = 1
			}
			res, err := x.SearchInto(nil, q, 4, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(kept) {
				t.Fatalf("%v: %d results for %d live nodes", m, len(res), len(kept))
			}
			for i, r := range res {
				if x.IsDeleted(r.ID) || (i > 0 && r.Distance < res[i-1].Distance) {
					t.Fatalf("%v: bad result list %v", m, res)
				}
				want := exactDistance(m, q, vec(int(r.ID)))
				if math.Abs(float64(r.Distance)-want) > 1e-4*math.Max(1, math.Abs(want)) {
					t.Fatalf("%v: distance %v, want %v", m, r.Distance, want)
				}
			}
			it, _ := x.NewIterator(q, SearchOptions{Ef: 1})
			count := 0
			for _, ok := it.Next(); ok; _, ok = it.Next() {
				count++
			}
			it.Close()
			if count != len(kept) {
				t.Fatalf("%v: iterator yielded %d of %d", m, count, len(kept))
			}
		}
	})
}
