package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// idxImageMagic starts an IDX file of unsigned-byte images (MNIST's image files).
const idxImageMagic = 2051

// MNIST loads ann-benchmarks' mnist-784-euclidean from dir: the 60,000 training images are
// the base, the first q of the 10,000 test images the queries; pixels become float32 0..255.
func MNIST(dir string, q int) (*Dataset, error) {
	base, dim, err := ReadIDXImages(filepath.Join(dir, "train-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	queries, qdim, err := ReadIDXImages(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	if qdim != dim {
		return nil, fmt.Errorf("mnist in %s: test images are %d pixels, training images %d", dir, qdim, dim)
	}
	if nq := len(queries) / dim; q > nq {
		return nil, fmt.Errorf("mnist has %d test images; asked for %d queries", nq, q)
	}
	return &Dataset{Name: "mnist", Metric: L2, Dim: dim, Base: base, Queries: queries[:q*dim]}, nil
}

// ReadIDXImages reads a gzip-compressed IDX image file into float32 rows.
func ReadIDXImages(path string) ([]float32, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("reading MNIST: %w (the shared datasets live in ../shared/datasets; set --datasets-dir)", err)
	}
	defer f.Close()
	return ParseIDXImages(path, f)
}

// ParseIDXImages decodes a gzip-compressed IDX image stream; name is used in errors.
func ParseIDXImages(name string, r io.Reader) ([]float32, int, error) {
	gz, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return nil, 0, fmt.Errorf("IDX file %s: not gzip data: %w", name, err)
	}
	var hdr [4]uint32
	if err := binary.Read(gz, binary.BigEndian, &hdr); err != nil {
		return nil, 0, fmt.Errorf("IDX file %s: header cut short: %w", name, err)
	}
	if hdr[0] != idxImageMagic {
		return nil, 0, fmt.Errorf("IDX file %s: magic %d, want %d (an image file, not a label file)", name, hdr[0], idxImageMagic)
	}
	n, dim := int(hdr[1]), int(hdr[2]*hdr[3])
	if n <= 0 || dim <= 0 || n > 1<<26 || dim > 1<<20 {
		return nil, 0, fmt.Errorf("IDX file %s: implausible header (%d images of %dx%d)", name, hdr[1], hdr[2], hdr[3])
	}
	pixels := make([]byte, n*dim)
	if got, err := io.ReadFull(gz, pixels); err != nil {
		return nil, 0, fmt.Errorf("IDX file %s: truncated: header promises %d images, data ends after %d (%v)", name, n, got/dim, err)
	}
	out := make([]float32, len(pixels))
	for i, p := range pixels {
		out[i] = float32(p)
	}
	return out, dim, nil
}

// SIFT5k loads the 5,000 SIFT descriptors from dir and holds the last q out as queries
// (the 3-vector query file that ships with them is too small to measure recall on).
func SIFT5k(dir string, q int) (*Dataset, error) {
	rows, dim, err := ReadTSVFile(filepath.Join(dir, "sift-dataset-5k.tsv"), true)
	if err != nil {
		return nil, err
	}
	return holdOut("sift5k", L2, dim, rows, q)
}
