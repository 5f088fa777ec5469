package ann

import (
	"fmt"
	"strings"

	"github.com/pgvector/pgvector-go"

	"github.com/borealisdb/borealis/bench/dataset"
)

// The element an index is built on, as an expression over the vector column — how pgvector
// indexes half-precision copies and binary codes of a vector column — so that every AM indexes
// the same thing and recall is scored against the exact float32 answers.
const (
	// ElementVector indexes the column itself.
	ElementVector = "vector"
	// ElementHalfvec indexes embedding::halfvec(dim) with the metric's halfvec operator class.
	ElementHalfvec = "halfvec"
	// ElementBQ indexes binary_quantize(embedding)::bit(dim) with bit_hamming_ops and re-ranks
	// the index's candidates (min(ef, bqCandidates) of them: a scan without iterative scan returns
	// at most ef rows) with the exact distance.
	ElementBQ = "bq"
	// ElementSparsevec is a sparsevec column (a sparse: dataset) with the metric's sparsevec
	// operator class.
	ElementSparsevec = "sparsevec"
)

// bqCandidates caps the candidates a binary-quantized query re-ranks; below it ef decides.
const bqCandidates = 1000

func validElement(e string) bool {
	return e == ElementVector || e == ElementHalfvec || e == ElementBQ || e == ElementSparsevec
}

// isSparseSpec says whether a dataset spec names sparse data (a sparsevec column).
func isSparseSpec(spec string) bool { return strings.HasPrefix(spec, "sparse:") }

// baseType is the type of the table's embedding column for d, without its dimensions.
func baseType(d *dataset.Dataset) string {
	if d.Sparse != nil {
		return "sparsevec"
	}
	return "vector"
}

// columnType is the table's embedding column type for d.
func columnType(d *dataset.Dataset) string { return fmt.Sprintf("%s(%d)", baseType(d), d.Dim) }

// queryValue is query i of d as a query parameter.
func queryValue(d *dataset.Dataset, i int) any {
	if d.Sparse != nil {
		return sparseValue(d.Dim, d.Sparse.Queries[i])
	}
	return pgvector.NewVector(d.Query(i))
}

// rowValue is base row i of d as a COPY value.
func rowValue(d *dataset.Dataset, i int) any {
	if d.Sparse != nil {
		return sparseValue(d.Dim, d.Sparse.Base[i])
	}
	return pgvector.NewVector(d.Row(i))
}

func sparseValue(dim int, v dataset.SparseVec) pgvector.SparseVector {
	m := make(map[int32]float32, len(v.Indices))
	for j, id := range v.Indices {
		m[id] = v.Values[j]
	}
	return pgvector.NewSparseVectorFromMap(m, int32(dim))
}

// indexTarget is the parenthesised column or expression and operator class of CREATE INDEX.
func indexTarget(element string, m dataset.Metric, dim int) string {
	switch element {
	case ElementHalfvec:
		return fmt.Sprintf("((embedding::halfvec(%d)) %s)", dim, strings.Replace(opclass(m), "vector_", "halfvec_", 1))
	case ElementBQ:
		return fmt.Sprintf("((binary_quantize(embedding)::bit(%d)) bit_hamming_ops)", dim)
	case ElementSparsevec:
		return "(embedding " + strings.Replace(opclass(m), "vector_", "sparsevec_", 1) + ")"
	}
	return "(embedding " + opclass(m) + ")"
}

// knnSQL is the top-k query for the element, $1 the query vector.
func knnSQL(element string, m dataset.Metric, dim, k int) string {
	op := operator(m)
	switch element {
	case ElementHalfvec:
		return fmt.Sprintf("SELECT id FROM %s ORDER BY embedding::halfvec(%d) %s $1::vector::halfvec(%d) LIMIT %d",
			table, dim, op, dim, k)
	case ElementBQ:
		return fmt.Sprintf("SELECT id FROM (SELECT id, embedding FROM %s ORDER BY binary_quantize(embedding)::bit(%d) <~> binary_quantize($1::vector) LIMIT %d) c ORDER BY embedding %s $1::vector LIMIT %d",
			table, dim, bqCandidates, op, k)
	case ElementSparsevec:
		return fmt.Sprintf("SELECT id FROM %s ORDER BY embedding %s $1::sparsevec LIMIT %d", table, op, k)
	}
	return fmt.Sprintf("SELECT id FROM %s ORDER BY embedding %s $1::vector LIMIT %d", table, op, k)
}
