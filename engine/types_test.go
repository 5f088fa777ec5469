package main

import (
	"testing"

	"github.com/borealisdb/borealis/hnsw"
)

// Every kind C can send maps to the hnsw metric and element of the same meaning, and the ones
// pgvector does not define (Hamming on vectors, L2 on bits) are refused.
func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		typ, metric int
		m           hnsw.Metric
		e           hnsw.Element
	}{
		{typeVector, metricL2, hnsw.L2, hnsw.Float32},
		{typeVector, metricCosine, hnsw.Cosine, hnsw.Float32},
		{typeVector, metricIP, hnsw.InnerProduct, hnsw.Float32},
		{typeVector, metricL1, hnsw.L1, hnsw.Float32},
		{typeHalfvec, metricL1, hnsw.L1, hnsw.Half},
		{typeBit, metricHamming, hnsw.Hamming, hnsw.Bits},
		{typeBit, metricJaccard, hnsw.Jaccard, hnsw.Bits},
		{typeSparsevec, metricIP, hnsw.InnerProduct, hnsw.Sparse},
	} {
		m, e, err := kindOf(C_int(c.metric | c.typ<<8))
		if err != nil || m != c.m || e != c.e {
			t.Errorf("kindOf(type %d, metric %d) = %v %v %v, want %v %v", c.typ, c.metric, m, e, err, c.m, c.e)
		}
	}
	for _, bad := range []int{0, 7, metricHamming, metricL2 | typeBit<<8, 1 | 9<<8} {
		if _, _, err := kindOf(C_int(bad)); err == nil {
			t.Errorf("kindOf(%#x) accepted", int(bad))
		}
	}
	// Quantized traversal only where its int8 distances are defined.
	if _, o, _ := graphOptions(1536, C_int(metricL1), 16, 64); o.QuantizedSearch {
		t.Error("L1 graphs must not traverse with int8 distances")
	}
	if _, o, _ := graphOptions(1536, C_int(metricCosine), 16, 64); !o.QuantizedSearch {
		t.Error("1,536-dimension cosine vector graphs traverse with int8 distances")
	}
}
