package main

/*
#cgo CFLAGS: -I${SRCDIR}/../pgext/src
#include "hnswtypes.h"
*/
import "C"

import (
	"fmt"

	"github.com/borealisdb/borealis/hnsw"
)

// The kind C passes wherever a metric goes (metric | element type << 8) is defined in
// pgext/src/hnswtypes.h, read here through cgo: this file is the one place that turns its codes
// into the hnsw package's Metric and Element, so no number is spelt twice.

// The codes, as Go constants (tests cannot use cgo).
const (
	metricL2      = C.BHNSW_METRIC_L2
	metricCosine  = C.BHNSW_METRIC_COSINE
	metricIP      = C.BHNSW_METRIC_IP
	metricL1      = C.BHNSW_METRIC_L1
	metricHamming = C.BHNSW_METRIC_HAMMING
	metricJaccard = C.BHNSW_METRIC_JACCARD
	typeVector    = C.BHNSW_TYPE_VECTOR
	typeHalfvec   = C.BHNSW_TYPE_HALFVEC
	typeBit       = C.BHNSW_TYPE_BIT
	typeSparsevec = C.BHNSW_TYPE_SPARSEVEC
)

// kindOf splits a kind into the graph's metric and element type.
func kindOf(kind C.int) (hnsw.Metric, hnsw.Element, error) {
	if C.bhnsw_kind_valid(kind) == 0 {
		return 0, 0, fmt.Errorf("unknown metric and element type %#x", int(kind))
	}
	var m hnsw.Metric
	switch int(kind) & 0xFF {
	case metricL2:
		m = hnsw.L2
	case metricCosine:
		m = hnsw.Cosine
	case metricIP:
		m = hnsw.InnerProduct
	case metricL1:
		m = hnsw.L1
	case metricHamming:
		m = hnsw.Hamming
	case metricJaccard:
		m = hnsw.Jaccard
	}
	var e hnsw.Element
	switch int(kind) >> 8 {
	case typeVector:
		e = hnsw.Float32
	case typeHalfvec:
		e = hnsw.Half
	case typeBit:
		e = hnsw.Bits
	case typeSparsevec:
		e = hnsw.Sparse
	}
	return m, e, nil
}

// graphOptions are the hnsw metric and options every graph of these parameters uses. The int8
// traversal (quantizedMinDims) applies to float32 vectors under l2, cosine and inner product.
func graphOptions(dims int, kind C.int, m, efConstruction int) (hnsw.Metric, hnsw.Options, error) {
	metric, elem, err := kindOf(kind)
	if err != nil {
		return 0, hnsw.Options{}, err
	}
	quant := elem == hnsw.Float32 && metric != hnsw.L1 && dims >= quantizedMinDims
	return metric, hnsw.Options{M: m, EfConstruction: efConstruction, QuantizedSearch: quant, Element: elem}, nil
}

// C_int converts for tests, which cannot use cgo.
func C_int(v int) C.int { return C.int(v) }
