package hnswtest

import (
	"slices"
	"testing"
)

// TestClusteredIsRepeatableAndPrefixStable: the same arguments give the same vectors, a shorter
// run is a prefix of a longer one (tests take the first k of a larger set), and the vectors
// really sit around their centres (nearest centre distance well under the centres' spread).
func TestClusteredIsRepeatableAndPrefixStable(t *testing.T) {
	a := Clustered(500, 8, 4, 3)
	b := Clustered(500, 8, 4, 3)
	short := Clustered(100, 8, 4, 3)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("vector %d differs between two calls with the same seed", i)
		}
		if i < len(short) && !slices.Equal(a[i], short[i]) {
			t.Fatalf("vector %d of a 100-vector run differs from the 500-vector run's", i)
		}
	}
	if other := Clustered(1, 8, 4, 4); slices.Equal(other[0], a[0]) {
		t.Fatal("a different seed gave the same first vector")
	}
	// Clustered around 4 centres: about a quarter of the vectors share the first one's centre
	// and lie within twice the expected within-cluster distance of it (squared: 2 * dims * 2 *
	// 0.35^2); the others are around centres ~sqrt(2 * dims) away.
	near := 0
	for i := 1; i < len(a); i++ {
		var d float32
		for k := range a[i] {
			x := a[i][k] - a[0][k]
			d += x * x
		}
		if d < 2*8*2*0.35*0.35 {
			near++
		}
	}
	if frac := float64(near) / float64(len(a)-1); frac < 0.1 || frac > 0.5 {
		t.Fatalf("%d of %d vectors near the first (want about a quarter): not clustered around 4 centres", near, len(a)-1)
	}
}
