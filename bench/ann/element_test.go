package ann

import (
	"strings"
	"testing"

	"github.com/borealisdb/borealis/bench/dataset"
)

func TestElementSQL(t *testing.T) {
	for _, c := range []struct {
		element      string
		index, query string
	}{
		{ElementVector, "(embedding vector_cosine_ops)", "ORDER BY embedding <=> $1::vector LIMIT 10"},
		{ElementHalfvec, "((embedding::halfvec(1536)) halfvec_cosine_ops)", "ORDER BY embedding::halfvec(1536) <=> $1::vector::halfvec(1536) LIMIT 10"},
		{ElementBQ, "((binary_quantize(embedding)::bit(1536)) bit_hamming_ops)", "<~> binary_quantize($1::vector) LIMIT 1000) c ORDER BY embedding <=> $1::vector LIMIT 10"},
		{ElementSparsevec, "(embedding sparsevec_cosine_ops)", "ORDER BY embedding <=> $1::sparsevec LIMIT 10"},
	} {
		if got := indexTarget(c.element, dataset.Cosine, 1536); got != c.index {
			t.Errorf("%s: index %q, want %q", c.element, got, c.index)
		}
		if got := knnSQL(c.element, dataset.Cosine, 1536, 10); !strings.HasSuffix(got, c.query) {
			t.Errorf("%s: query %q, want it to end in %q", c.element, got, c.query)
		}
	}
	cfg := Config{Datasets: []string{"x"}, Indexes: []IndexSpec{{AM: "hnsw", GUC: "hnsw.ef_search"}}, Element: "float16"}
	cfg.Defaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--element") {
		t.Errorf("an unknown element: %v", err)
	}
	// A sparse: dataset is a sparsevec column: the element defaults to it and nothing else goes.
	cfg = Config{Datasets: []string{"sparse:100:30000"}, Indexes: []IndexSpec{{AM: "hnsw", GUC: "hnsw.ef_search"}}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil || cfg.Element != ElementSparsevec {
		t.Errorf("sparse dataset: element %q, %v", cfg.Element, err)
	}
	cfg.Element = ElementHalfvec
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "sparse") {
		t.Errorf("sparse dataset with halfvec: %v", err)
	}
	cfg = Config{Datasets: []string{"synthetic:100:8"}, Indexes: []IndexSpec{{AM: "hnsw", GUC: "hnsw.ef_search"}}, Element: ElementSparsevec}
	cfg.Defaults()
	if err := cfg.Validate(); err == nil {
		t.Errorf("a dense dataset as sparsevec was accepted")
	}
}
