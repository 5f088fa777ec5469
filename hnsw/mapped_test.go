package hnsw

import (
	"errors"
	"sync"
	"testing"
	"unsafe"
)

// alignedBytes is zeroed memory with the alignment of a mapping.
func alignedBytes(n int64) []byte {
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

// A mapped graph built in one Index is read, as it is, by a second Index over
// the same memory (another process mapping the same file), with the same
// results, and it refuses to grow past its capacity.
func TestMappedGraphSharedBetweenViews(t *testing.T) {
	for _, quant := range []Quantization{QuantNone, QuantInt8, QuantBinary} {
		data := clustered(3000, 32, 16, 5)
		opts := Options{M: 8, Seed: 3, Quantization: quant}
		const capacity = 3000
		mem := alignedBytes(MappedSize(32, L2, opts, capacity))
		w, err := Attach(mem, 32, L2, opts, capacity, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range data {
			if err := w.Add(uint32(i), v); err != nil {
				t.Fatalf("add %d: %v", i, err)
			}
		}
		r, err := Attach(mem, 32, L2, opts, capacity, false)
		if err != nil {
			t.Fatal(err)
		}
		if r.Len() != len(data) || !r.Mapped() {
			t.Fatalf("reader sees %d nodes, want %d", r.Len(), len(data))
		}
		ef := 64
		if quant == QuantBinary {
			ef = 200 // 32 sign bits rank coarsely: a wider beam, all rescored
		}
		for q := 0; q < 50; q++ {
			a, b := w.Search(data[q], 10, ef), r.Search(data[q], 10, ef)
			if len(a) != 10 || len(b) != 10 || a[0].ID != uint32(q) {
				t.Fatalf("quant %v query %d: %v / %v", quant, q, a, b)
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("quant %v query %d: writer %v, reader %v", quant, q, a, b)
				}
			}
		}
		if got := recallAt(t, r, data, data[:100], nil, 10, ef); got < 0.9 {
			t.Fatalf("quant %v: recall %.3f over the mapped graph", quant, got)
		}
		if err := w.Add(capacity, data[0]); !errors.Is(err, ErrFull) {
			t.Fatalf("add past capacity: %v, want ErrFull", err)
		}
		// Changes by the writer show through the reader at once.
		if err := w.Delete(7); err != nil {
			t.Fatal(err)
		}
		if !r.IsDeleted(7) {
			t.Fatal("deletion not visible through the second view")
		}
		// A different geometry is refused.
		if _, err := Attach(mem, 16, L2, opts, capacity, false); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("attach with other dims: %v", err)
		}
	}
}

// Searches through one view run while another view inserts: no torn ids, no
// panics (run with -race).
func TestMappedConcurrentInsertAndSearch(t *testing.T) {
	data := clustered(4000, 16, 8, 9)
	opts := Options{M: 8, Seed: 4}
	mem := alignedBytes(MappedSize(16, Cosine, opts, len(data)))
	w, err := Attach(mem, 16, Cosine, opts, len(data), true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := w.Add(uint32(i), data[i]); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Attach(mem, 16, Cosine, opts, len(data), false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1000; i < len(data); i++ {
			if err := w.Add(uint32(i), data[i]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for q := 0; q < 300; q++ {
		for _, res := range r.Search(data[q%len(data)], 10, 40) {
			if int(res.ID) >= len(data) || !r.Contains(res.ID) {
				t.Fatalf("search returned id %d, not a published node", res.ID)
			}
		}
	}
	wg.Wait()
	if r.Len() != len(data) {
		t.Fatalf("reader sees %d nodes after the inserts, want %d", r.Len(), len(data))
	}
}
