package groundtruth

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/borealisdb/borealis/bench/dataset"
)

// cacheMagic starts every cache file; the version changes when the layout does.
const cacheMagic = "BRLSGT01"

// Key identifies a ground truth: a hash of the dataset's vectors (base and queries), its
// metric and k. Content, not name, so regenerated or edited data never reuses stale truth.
func Key(d *dataset.Dataset, k int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%d\x00", d.Metric, d.Dim, d.N(), d.NQ(), k)
	h.Write(floatBytes(d.Base))
	h.Write(floatBytes(d.Queries))
	if d.Sparse != nil {
		for _, set := range [][]dataset.SparseVec{d.Sparse.Base, d.Sparse.Queries} {
			for _, v := range set {
				fmt.Fprintf(h, "%d\x00", len(v.Indices))
				h.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v.Indices))), 4*len(v.Indices)))
				h.Write(floatBytes(v.Values))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// floatBytes views a float32 slice as its bytes (little-endian on every platform we build
// for), without copying hundreds of megabytes just to hash them.
func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), len(f)*4)
}

// CachePath is where the truth for (d, k) is kept under dir.
func CachePath(dir string, d *dataset.Dataset, k int) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(d.Name))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s-k%d-%s.gt", name, d.Metric, k, Key(d, k)))
}

// Load returns the cached truth for (d, k) from dir, or computes and caches it. cached says
// which. A damaged cache file is reported through warn, recomputed and replaced.
func Load(dir string, d *dataset.Dataset, k int, progress func(done, total int), warn func(string)) (t *Truth, cached bool, err error) {
	path := CachePath(dir, d, k)
	t, err = readCache(path, d.NQ(), k)
	if err == nil {
		return t, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) && warn != nil {
		warn(fmt.Sprintf("ground-truth cache %s is unusable (%v); recomputing", path, err))
	}
	if t, err = Compute(d, k, progress); err != nil {
		return nil, false, err
	}
	if err := writeCache(path, t); err != nil {
		return nil, false, fmt.Errorf("caching ground truth (use --cache-dir to put it elsewhere): %w", err)
	}
	return t, false, nil
}

func writeCache(path string, t *Truth) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	nq := len(t.IDs) / t.K
	buf := make([]byte, 0, 16+8*len(t.IDs)+4)
	buf = append(buf, cacheMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(t.K))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(nq))
	for _, id := range t.IDs {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(id))
	}
	for _, v := range t.Dists {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readCache(path string, nq, k int) (*Truth, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	want := 16 + 8*nq*k + 4
	if len(buf) != want {
		return nil, fmt.Errorf("%d bytes, want %d: truncated", len(buf), want)
	}
	if string(buf[:8]) != cacheMagic {
		return nil, fmt.Errorf("bad magic %q", buf[:8])
	}
	if crc := binary.LittleEndian.Uint32(buf[want-4:]); crc != crc32.ChecksumIEEE(buf[:want-4]) {
		return nil, errors.New("checksum mismatch: corrupt")
	}
	if gk, gn := int(binary.LittleEndian.Uint32(buf[8:])), int(binary.LittleEndian.Uint32(buf[12:])); gk != k || gn != nq {
		return nil, fmt.Errorf("holds k=%d for %d queries, want k=%d for %d", gk, gn, k, nq)
	}
	t := &Truth{K: k, IDs: make([]int32, nq*k), Dists: make([]float32, nq*k)}
	p := buf[16:]
	for i := range t.IDs {
		t.IDs[i] = int32(binary.LittleEndian.Uint32(p[4*i:]))
	}
	p = p[4*len(t.IDs):]
	for i := range t.Dists {
		t.Dists[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return t, nil
}
