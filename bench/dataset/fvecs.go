package dataset

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// ReadFvecs reads an fvecs file (the TEXMEX format: each record is a little-endian int32
// dimension followed by that many float32s) into one row-major matrix.
func ReadFvecs(path string) ([]float32, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("reading fvecs file: %w", err)
	}
	return ParseFvecs(path, data)
}

// ParseFvecs decodes fvecs bytes; name is used in errors. Every record must have the same
// dimension, and the file must end on a record boundary.
func ParseFvecs(name string, data []byte) ([]float32, int, error) {
	if len(data) < 4 {
		return nil, 0, fmt.Errorf("fvecs file %s: %w (%d bytes; an fvecs record starts with a 4-byte dimension)", name, errEmpty, len(data))
	}
	dim := int(int32(binary.LittleEndian.Uint32(data)))
	if dim <= 0 || dim > 1<<20 {
		return nil, 0, fmt.Errorf("fvecs file %s: first record has dimension %d; is this really an fvecs file (not bvecs/ivecs)?", name, dim)
	}
	rec := 4 + 4*dim
	if len(data)%rec != 0 {
		return nil, 0, fmt.Errorf("fvecs file %s: %d bytes is not a whole number of %d-byte records (dimension %d): the file is truncated or corrupt (record %d is cut short)",
			name, len(data), rec, dim, len(data)/rec)
	}
	n := len(data) / rec
	out := make([]float32, n*dim)
	for i := 0; i < n; i++ {
		r := data[i*rec:]
		if d := int(int32(binary.LittleEndian.Uint32(r))); d != dim {
			return nil, 0, fmt.Errorf("fvecs file %s: record %d has dimension %d, the first had %d: the file is corrupt or mixes dimensions", name, i, d, dim)
		}
		for j := 0; j < dim; j++ {
			v := math.Float32frombits(binary.LittleEndian.Uint32(r[4+4*j:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, 0, fmt.Errorf("fvecs file %s: record %d component %d is %v: vectors must be finite", name, i, j, v)
			}
			out[i*dim+j] = v
		}
	}
	return out, dim, nil
}

// WriteFvecs encodes rows of dimension dim as fvecs bytes (for tests and for exporting).
func WriteFvecs(rows []float32, dim int) []byte {
	n := len(rows) / dim
	out := make([]byte, 0, n*(4+4*dim))
	for i := 0; i < n; i++ {
		out = binary.LittleEndian.AppendUint32(out, uint32(dim))
		for _, v := range rows[i*dim : (i+1)*dim] {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out
}
