//go:build linux

package hnsw

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// Prefault maps a mapped graph's next rows writable without changing a byte of the graph,
// rows already written included, and the graph goes on taking inserts as before.
func TestPrefaultKeepsTheGraphAndMapsTheRows(t *testing.T) {
	const dims, capacity, n = 256, 4000, 3000
	opts := Options{M: 8, Seed: 3, Quantization: QuantInt8, Threads: 1}
	size := MappedSize(dims, Cosine, opts, capacity)
	f, err := os.Create(filepath.Join(t.TempDir(), "graph"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	x, err := Attach(mem, dims, Cosine, opts, capacity, true)
	if err != nil {
		t.Fatal(err)
	}
	data := clustered(n, dims, 16, 7)
	for i := range 1000 {
		if err := x.Add(uint32(i), data[i]); err != nil {
			t.Fatal(err)
		}
	}
	before := bytes.Clone(mem)
	x.Prefault(900, 2000) // overlaps rows already written
	if !bytes.Equal(before, mem) {
		t.Fatal("Prefault changed the mapped graph")
	}
	// On a kernel with MADV_POPULATE_WRITE the rows are in memory now: the file was sparse there.
	probe := x.vectors[2500*dims : 2900*dims]
	addr := uintptr(unsafe.Pointer(&probe[0])) &^ 4095
	end := uintptr(unsafe.Pointer(&probe[len(probe)-1]))
	pages := int((end-addr)/4096) + 1
	vec := make([]byte, pages)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, addr, uintptr(pages*4096), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	resident := 0
	for _, b := range vec {
		resident += int(b & 1)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(&mem[0])), 4096, madvPopulateWrite); e == syscall.EINVAL {
		t.Logf("kernel without MADV_POPULATE_WRITE: %d of %d pages resident, writes fault as before", resident, pages)
	} else if resident != pages {
		t.Fatalf("%d of %d pages of prefaulted rows resident", resident, pages)
	}
	for i := 1000; i < n; i++ {
		if err := x.Add(uint32(i), data[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := recallAt(t, x, data, data[:100], nil, 10, 64); got < 0.9 {
		t.Fatalf("recall %.3f after prefaulted inserts", got)
	}
	x.Prefault(capacity-10, 100) // past the end: clipped, no fault
	x.Prefault(-1, 10)
}
