// Command simd prints, from one run, each simd kernel path as ns/op, GB/s and ratios to the
// generic Go path and to viterin/vek, plus an estimate of cycles per call for the load-port
// bound check. Run it with `make bench-simd`; results go to bench/results/simd.md.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/borealisdb/borealis/simd"
	"github.com/viterin/vek/vek32"
)

var (
	benchtime = flag.Duration("benchtime", 300*time.Millisecond, "time per measurement")
	count     = flag.Int("count", 3, "measurements per cell; the median is printed")
	dimsFlag  = flag.String("dims", "128,384,768,1536,3072", "dimensions")
	only      = flag.String("kernels", "", "regexp: run only the kernels whose name matches")
	cpuTime   = flag.Bool("cputime", false, "time with the thread's CPU clock instead of the wall clock")
)

const rows = 1000

var sink float32

func main() {
	flag.Parse()
	var dims []int
	for _, s := range strings.Split(*dimsFlag, ",") {
		var d int
		fmt.Sscan(s, &d)
		dims = append(dims, d)
	}
	ghz := estimateGHz()
	info := simd.Info()
	fmt.Printf("CPU: %s (%s), %d threads; clock estimated at %.2f GHz from a dependent IMUL chain\n",
		info.CPU, runtime.GOARCH, runtime.NumCPU(), ghz)
	clock := "wall"
	if *cpuTime {
		clock = "thread CPU"
	}
	fmt.Printf("paths: %v; median of %d x %v per cell, round-robin over a cell's paths; %s time\n\n",
		info.Available, *count, *benchtime, clock)
	fmt.Println("| kernel | dim | path | ns/op | GB/s | cycles | x generic | x vek | x naive | x f32 |")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")

	match, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "-kernels:", err)
		os.Exit(2)
	}
	for _, k := range kernels() {
		if !match.MatchString(k.name) {
			continue
		}
		for _, dim := range dims {
			var order []string
			var fs []func()
			for _, p := range append(append([]string{}, k.baselines...), info.Available...) {
				if f := k.make(p, dim); f != nil {
					order, fs = append(order, p), append(fs, f)
				}
			}
			ns := map[string]float64{}
			for i, v := range medians(order, fs) {
				ns[order[i]] = v
			}
			for _, p := range order {
				bytes := float64(k.bytes(dim))
				if p == "f32" {
					bytes *= 4 // it reads float32s
				}
				fmt.Printf("| %s | %d | %s | %.1f | %.1f | %.0f | %s | %s | %s | %s |\n",
					k.name, dim, p, ns[p], bytes/ns[p], ns[p]*ghz,
					ratio(ns, "generic", p, "f32"), ratio(ns, "vek", p), ratio(ns, "naive", p), ratio(ns, "f32", p))
			}
		}
	}
	_ = simd.Select("")
}

// ratio is ns[base]/ns[p], blank where p is the base or one of the unrelated baselines
// (the float32 row of an int8 kernel has no int8 generic to compare with).
func ratio(ns map[string]float64, base, p string, unrelated ...string) string {
	b, ok := ns[base]
	if !ok || base == p || slices.Contains(unrelated, p) {
		return ""
	}
	return fmt.Sprintf("%.2f", b/ns[p])
}

// medians measures every body *count times, round-robin (a, b, c, a, b, c, ...), so load
// from other processes on a shared machine falls on all of them alike rather than on
// whichever ran during a busy second, and returns each one's median ns/op.
func medians(paths []string, fs []func()) []float64 {
	v := make([][]float64, len(fs))
	for range *count {
		for i, f := range fs {
			selectPath(paths[i])
			v[i] = append(v[i], nsPerOp(f))
		}
	}
	out := make([]float64, len(fs))
	for i := range v {
		slices.Sort(v[i])
		out[i] = v[i][len(v[i])/2]
	}
	return out
}

// nsPerOp runs body about *benchtime and returns ns per call: wall time, or with -cputime
// the CPU time of the (locked) OS thread, which leaves out the time the thread waited for
// a core while other processes ran.
func nsPerOp(body func()) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := wallNs
	if *cpuTime {
		clock = threadCPUNs
	}
	run := func(n int) int64 {
		t := clock()
		for range n {
			body()
		}
		return clock() - t
	}
	n := 1
	for {
		d := run(n)
		if d >= benchtime.Nanoseconds()/20 || n >= 1<<30 {
			n = int(float64(n) * float64(benchtime.Nanoseconds()) / float64(max(d, 1)))
			break
		}
		n *= 10
	}
	n = max(n, 1)
	return float64(run(n)) / float64(n)
}

var start = time.Now()

func wallNs() int64 { return int64(time.Since(start)) }

type kernel struct {
	name      string
	baselines []string // non-simd implementations measured alongside the paths
	bytes     func(dim int) int
	make      func(path string, dim int) func()
}

func data(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

// selectPath switches simd to the path a cell measures: the named kernel path, the best
// one for the "f32" baseline, and no change for the non-simd baselines.
func selectPath(path string) {
	switch path {
	case "naive", "vek":
	case "f32":
		_ = simd.Select("")
	default:
		if err := simd.Select(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func kernels() []kernel {
	pair := func(name string, ours func(a, b []float32) float32, vek func(a, b []float32) float32, naive func(a, b []float32) float32) kernel {
		return kernel{name, []string{"naive", "vek"}, func(d int) int { return 8 * d },
			func(p string, dim int) func() {
				x, y := data(dim, 1), data(dim, 2)
				switch p {
				case "naive":
					if naive == nil {
						return nil
					}
					return func() { sink = naive(x, y) }
				case "vek":
					return func() { sink = vek(x, y) }
				}
				return func() { sink = ours(x, y) }
			}}
	}
	batch := func(name string, ours func(q, d, o []float32), vek func(a, b []float32) float32) kernel {
		return kernel{name + " x1000", []string{"vek"}, func(d int) int { return 4 * d * rows },
			func(p string, dim int) func() {
				q, m, out := data(dim, 1), data(dim*rows, 2), make([]float32, rows)
				if p == "vek" {
					return func() {
						for i := range out {
							out[i] = vek(q, m[i*dim:(i+1)*dim])
						}
					}
				}
				return func() { ours(q, m, out) }
			}}
	}
	// int8 operands are QuantizeInt8 codes of random floats, as an index stores them.
	codes := func(dim int, seed uint64) []int8 {
		c := make([]int8, dim)
		simd.QuantizeInt8(c, data(dim, seed))
		return c
	}
	// The "f32" baseline is the float32 kernel of the same distance at the same dims, on
	// the best path: the int8 target is a ratio to it.
	i8 := func(name string, f func(a, b []int8) int32, f32 func(a, b []float32) float32) kernel {
		return kernel{name, []string{"f32"}, func(d int) int { return 2 * d },
			func(p string, dim int) func() {
				if p == "f32" {
					x, y := data(dim, 1), data(dim, 2)
					return func() { sink = f32(x, y) }
				}
				x, y := codes(dim, 1), codes(dim, 2)
				return func() { sink = float32(f(x, y)) }
			}}
	}
	gather := kernel{"SquaredL2Gather x32", nil, func(d int) int { return 4 * d * 32 },
		func(p string, dim int) func() {
			q, m, out := data(dim, 1), data(dim*rows, 2), make([]float32, 32)
			idx := make([]uint32, 32)
			for i := range idx {
				idx[i] = uint32(i * 31 % rows)
			}
			return func() { simd.SquaredL2Gather(q, m, idx, out) }
		}}
	// Half kernels read binary16 codes of random floats; the "f32" baseline is the float32
	// kernel of the same distance on the best path (vek has no half precision).
	halves := func(dim int, seed uint64) []uint16 {
		h := make([]uint16, dim)
		simd.Float32ToHalf(h, data(dim, seed))
		return h
	}
	half := func(name string, f func(a, b []uint16) float32, f32 func(a, b []float32) float32) kernel {
		return kernel{name, []string{"f32"}, func(d int) int { return 4 * d },
			func(p string, dim int) func() {
				if p == "f32" {
					x, y := data(dim, 1), data(dim, 2)
					return func() { sink = f32(x, y) }
				}
				x, y := halves(dim, 1), halves(dim, 2)
				return func() { sink = f(x, y) }
			}}
	}
	conv := []kernel{
		{"HalfToFloat32", nil, func(d int) int { return 6 * d }, func(p string, dim int) func() {
			x, out := halves(dim, 1), make([]float32, dim)
			return func() { simd.HalfToFloat32(out, x) }
		}},
		{"Float32ToHalf", nil, func(d int) int { return 6 * d }, func(p string, dim int) func() {
			x, out := data(dim, 1), make([]uint16, dim)
			return func() { simd.Float32ToHalf(out, x) }
		}},
	}
	// Jaccard and Hamming over dim bits (random words, half the bits set).
	bitsKernel := func(name string, f func(x, y []uint64) float32) kernel {
		return kernel{name + " (dim = bits)", nil, func(d int) int { return 2 * d / 8 },
			func(p string, dim int) func() {
				r := rand.New(rand.NewPCG(uint64(dim), 3))
				x, y := make([]uint64, (dim+63)/64), make([]uint64, (dim+63)/64)
				for i := range x {
					x[i], y[i] = r.Uint64(), r.Uint64()
				}
				return func() { sink = f(x, y) }
			}}
	}
	jaccard := bitsKernel("Jaccard", simd.Jaccard)
	hamming := bitsKernel("Hamming", func(x, y []uint64) float32 { return float32(simd.Hamming(x, y)) })
	// Sparse kernels: dim/4 non-zeros each from a 30,000-word vocabulary (SPLADE-like), so a
	// pair shares ~1% of its indices at 384 dims and ~10% at 3,072. Plain Go on every path,
	// so only the generic row is printed.
	sparse := func(name string, f func(ai []int32, av []float32, bi []int32, bv []float32) float32) kernel {
		return kernel{name + " (nnz = dim/4)", nil, func(d int) int { return 2 * 8 * (d / 4) },
			func(p string, dim int) func() {
				if p != "generic" {
					return nil
				}
				r := rand.New(rand.NewPCG(uint64(dim), 5))
				mk := func() ([]int32, []float32) {
					seen := map[int32]bool{}
					for len(seen) < dim/4 {
						seen[int32(1+r.IntN(30000))] = true
					}
					idx := make([]int32, 0, len(seen))
					for i := range seen {
						idx = append(idx, i)
					}
					slices.Sort(idx)
					return idx, data(len(idx), uint64(len(seen)))
				}
				ai, av := mk()
				bi, bv := mk()
				return func() { sink = f(ai, av, bi, bv) }
			}}
	}
	return []kernel{
		sparse("SparseDot", simd.SparseDot),
		sparse("SparseSquaredL2", simd.SparseSquaredL2),
		sparse("SparseL1", simd.SparseL1),
		sparse("SparseCosineDistance", simd.SparseCosineDistance),
		pair("L1", simd.L1, vek32.ManhattanDistance, nil),
		half("DotHalf", simd.DotHalf, simd.Dot),
		half("SquaredL2Half", simd.SquaredL2Half, simd.SquaredL2),
		half("L1Half", simd.L1Half, simd.L1),
		half("CosineDistanceHalf", simd.CosineDistanceHalf, simd.CosineDistance),
		conv[0], conv[1], jaccard, hamming,
		pair("Dot", simd.Dot, vek32.Dot, naiveDot),
		pair("SquaredL2 (vek: sqrt'd)", simd.SquaredL2, vek32.Distance, nil),
		pair("CosineDistance", simd.CosineDistance, func(a, b []float32) float32 { return 1 - vek32.CosineSimilarity(a, b) }, nil),
		i8("DotInt8", simd.DotInt8, simd.Dot),
		i8("SquaredL2Int8", simd.SquaredL2Int8, simd.SquaredL2),
		batch("DotBatch", simd.DotBatch, vek32.Dot),
		batch("SquaredL2Batch", simd.SquaredL2Batch, vek32.Distance),
		batch("CosineDistanceBatch", simd.CosineDistanceBatch, func(a, b []float32) float32 { return 1 - vek32.CosineSimilarity(a, b) }),
		gather,
	}
}

func naiveDot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// estimateGHz times a chain of dependent 64-bit multiplies (3 cycles each on every x86-64
// core since Nehalem and on Arm's big cores), the usual way to read the running clock
// without performance counters, which this VM does not expose.
func estimateGHz() float64 {
	const n = 20_000_000
	k := uint64(len(os.Args)) | 3
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := wallNs
	if *cpuTime {
		clock = threadCPUNs // the same clock as the cells, so cycles = ns x GHz holds
	}
	best := int64(1 << 62)
	for range 5 {
		x := k
		t := clock()
		for i := 0; i < n; i++ {
			x *= k
			x *= k
			x *= k
			x *= k
		}
		if d := clock() - t; d < best {
			best = d
		}
		if x == 42 {
			fmt.Print("")
		}
	}
	return float64(n*4*3) / float64(best)
}
