package hnsw

import "testing"

// Graphs of 0, 1 and 2 nodes, and all-deleted graphs, through every search entry point.
func TestTinyGraphs(t *testing.T) {
	q := []float32{1, 0}
	for n := 0; n <= 2; n++ {
		x, _ := New(2, Cosine, Options{M: 2})
		for i := range n {
			if err := x.Add(uint32(i), []float32{1, float32(i)}); err != nil {
				t.Fatal(err)
			}
		}
		got := x.Search(q, 5, 10)
		if len(got) != n {
			t.Fatalf("%d nodes: search returned %d", n, len(got))
		}
		if n > 0 && got[0].ID != 0 {
			t.Fatalf("%d nodes: nearest = %v", n, got)
		}
		it, err := x.NewIterator(q, SearchOptions{Ef: 1})
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, ok := it.Next(); ok; _, ok = it.Next() {
			count++
		}
		it.Close()
		if count != n {
			t.Fatalf("%d nodes: iterator yielded %d", n, count)
		}
		for i := range n {
			if err := x.Delete(uint32(i)); err != nil {
				t.Fatal(err)
			}
		}
		if got := x.Search(q, 5, 10); len(got) != 0 {
			t.Fatalf("%d deleted nodes: search returned %v", n, got)
		}
	}
}
