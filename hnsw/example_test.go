package hnsw_test

import (
	"fmt"

	"github.com/borealisdb/borealis/hnsw"
)

func Example() {
	idx, err := hnsw.New(3, hnsw.L2, hnsw.Options{M: 16, EfConstruction: 64, Seed: 1})
	if err != nil {
		panic(err)
	}
	vectors := [][]float32{{0, 0, 0}, {1, 0, 0}, {0, 2, 0}, {0, 0, 3}}
	for id, v := range vectors {
		if err := idx.Add(uint32(id), v); err != nil {
			panic(err)
		}
	}
	for _, r := range idx.Search([]float32{0.9, 0, 0}, 2, 40) {
		fmt.Printf("id %d at %.2f\n", r.ID, r.Distance)
	}
	// Output:
	// id 1 at 0.10
	// id 0 at 0.90
}

// Cosine distances are pgvector's `<=>`; a bound expresses
// `WHERE 1 - (embedding <=> q) > 0.8`.
func ExampleIndex_SearchWith() {
	idx, _ := hnsw.New(2, hnsw.Cosine, hnsw.Options{Seed: 1})
	_ = idx.AddBatch([]uint32{0, 1, 2}, [][]float32{{1, 0}, {1, 1}, {0, 1}})
	res, _ := idx.SearchWith(nil, []float32{1, 0.1}, 3, hnsw.SearchOptions{
		Ef:             40,
		MaxDistance:    0.2,
		UseMaxDistance: true,
	})
	for _, r := range res { // id 1 (distance 0.222) is beyond the bound
		fmt.Printf("id %d at %.3f\n", r.ID, r.Distance)
	}
	// Output:
	// id 0 at 0.005
}

// An iterator keeps going past ef, as PostgreSQL's iterative scans ask.
func ExampleIterator() {
	idx, _ := hnsw.New(1, hnsw.InnerProduct, hnsw.Options{Seed: 1})
	for id := range uint32(5) {
		_ = idx.Add(id, []float32{float32(id)})
	}
	it, _ := idx.NewIterator([]float32{1}, hnsw.SearchOptions{Ef: 2})
	defer it.Close()
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		fmt.Print(r.ID, " ")
	}
	fmt.Println()
	// Output: 4 3 2 1 0
}

// Encode's bytes go to pages; Decode validates them back.
func ExampleDecode() {
	idx, _ := hnsw.New(2, hnsw.L2, hnsw.Options{Seed: 1})
	_ = idx.Add(0, []float32{1, 2})
	buf := idx.Encode(nil)
	back, err := hnsw.Decode(buf, hnsw.Options{})
	fmt.Println(back.Len(), err)
	buf[70] ^= 1
	_, err = hnsw.Decode(buf, hnsw.Options{})
	fmt.Println(err != nil)
	// Output:
	// 1 <nil>
	// true
}
