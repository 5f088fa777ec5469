package simd

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/klauspost/cpuid/v2"
)

// EnvVar names the environment variable that forces a kernel path at init.
const EnvVar = "BOREALIS_SIMD"

// CPUInfo says which kernel path is in use and what the CPU offers.
type CPUInfo struct {
	Path      string   `json:"path"`
	Arch      string   `json:"arch"`
	CPU       string   `json:"cpu"`
	Features  []string `json:"features"`
	Available []string `json:"available"`       // paths this CPU can run, best first
	Error     string   `json:"error,omitempty"` // why a forced path was refused, if it was
}

// impl is one complete set of kernels. Every field is set for every path: a path that
// has no faster form of a kernel reuses the generic one, so callers never branch.
type impl struct {
	name      string
	dot       func(a, b []float32) float32
	l2        func(a, b []float32) float32
	cos       func(a, b []float32) float32
	normSq    func(a []float32) float32
	dotBatch  func(q, data, out []float32)
	l2Batch   func(q, data, out []float32)
	cosBatch  func(q, data, out []float32)
	dotGather func(q, slab []float32, rows []uint32, out []float32)
	l2Gather  func(q, slab []float32, rows []uint32, out []float32)
	cosGather func(q, slab []float32, rows []uint32, out []float32)
	dotI8     func(a, b []int8) int32
	dotI8G    func(q, slab []int8, rows []uint32, out []int32)
	l2I8      func(a, b []int8) int32
	l1        func(a, b []float32) float32
	fromHalf  func(dst []float32, src []uint16)
	toHalf    func(dst []uint16, src []float32)
	l2Half    func(a, b []uint16) float32
	dotHalf   func(a, b []uint16) float32
	l1Half    func(a, b []uint16) float32
	cosHalf   func(a, b []uint16) float32
	cosHalfQ  func(q *HalfQuery, b, next []uint16) float32
	jaccard   func(a, b []uint64) float32
	hamming   func(a, b []uint64) int
}

type pathEntry struct {
	impl      *impl
	supported func() bool
}

var (
	active    atomic.Pointer[impl]
	initError string
)

// paths (declared per architecture in dispatch_<arch>.go as a package variable, so it is
// filled before any init runs) lists the non-generic paths, best first. An AVX-512 path
// would be one more entry ahead of avx2 with its own supported check; nothing else changes.

func init() { selectAtInit(os.Getenv(EnvVar)) }

// selectAtInit never panics: a forced path that is unknown or unsupported is recorded in
// Info().Error and the best supported path is used instead, because a panic here would kill
// the PostgreSQL backend loading us.
func selectAtInit(forced string) {
	best := available()[0]
	active.Store(best)
	if forced == "" {
		return
	}
	if err := Select(forced); err != nil {
		initError = fmt.Sprintf("%s=%s: %v; using %s", EnvVar, forced, err, best.name)
	}
}

func available() []*impl {
	var out []*impl
	for _, p := range paths {
		if p.supported() {
			out = append(out, p.impl)
		}
	}
	return append(out, &genericImpl)
}

// Select switches every kernel to the named path ("generic", "avx2", "neon", or "" / "auto"
// for the best this CPU supports). It returns an error, leaving the current path in place,
// if the name is unknown or the CPU lacks the instructions. It is meant for tests and
// benchmarks; calls racing with kernels are safe but see either path.
func Select(path string) error {
	path = strings.ToLower(strings.TrimSpace(path))
	if path == "" || path == "auto" {
		active.Store(available()[0])
		return nil
	}
	if path == genericImpl.name {
		active.Store(&genericImpl)
		return nil
	}
	for _, p := range paths {
		if p.impl.name == path {
			if !p.supported() {
				return fmt.Errorf("simd: path %q is not supported by this CPU (%s)", path, cpuName())
			}
			active.Store(p.impl)
			return nil
		}
	}
	return fmt.Errorf("simd: unknown path %q for %s (known: %s)", path, runtime.GOARCH, strings.Join(Paths(), ", "))
}

// Paths lists the kernel paths compiled into this binary, supported or not.
func Paths() []string {
	out := []string{}
	for _, p := range paths {
		out = append(out, p.impl.name)
	}
	return append(out, genericImpl.name)
}

// Info reports the kernel path in use and the CPU features seen.
func Info() CPUInfo {
	feats := cpuid.CPU.FeatureSet()
	sort.Strings(feats)
	var avail []string
	for _, p := range available() {
		avail = append(avail, p.name)
	}
	return CPUInfo{
		Path:      active.Load().name,
		Arch:      runtime.GOARCH,
		CPU:       cpuName(),
		Features:  feats,
		Available: avail,
		Error:     initError,
	}
}

func cpuName() string {
	if cpuid.CPU.BrandName != "" {
		return cpuid.CPU.BrandName
	}
	return "unknown " + runtime.GOARCH + " CPU"
}
