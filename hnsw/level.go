package hnsw

import "math"

// levelOf draws a node's top layer from the exponential distribution of the
// paper, floor(−ln(u)·mL) with mL = 1/ln(M). u comes from a hash of (seed, id)
// rather than a shared RNG, so levels do not depend on the order in which
// threads insert: a seeded build is reproducible and parallel builds get the
// same level distribution.
func (x *Index) levelOf(id uint32) int { return x.levelFor(uint64(id)) }

// levelFor draws a level from any key that differs between nodes (an id, or
// for PrepareInsert, whose id comes later, the caller's row address).
func (x *Index) levelFor(key uint64) int {
	h := splitmix64(x.seed ^ (key+1)*0x9e3779b97f4a7c15)
	u := (float64(h>>11) + 0.5) / (1 << 53) // uniform in (0, 1)
	l := int(-math.Log(u) * x.mL)
	return min(l, maxLevel)
}

func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
