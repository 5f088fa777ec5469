package dataset

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// ReadTSVFile reads one vector per line, components separated by tabs (or spaces). When
// trailingID is set the last column is an identifier and is dropped (SIFT-5k's layout).
func ReadTSVFile(path string, trailingID bool) ([]float32, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("reading TSV file: %w", err)
	}
	defer f.Close()
	return ParseTSV(path, f, trailingID)
}

// ParseTSV decodes TSV vectors from r; name is used in errors. Every line must have the same
// number of columns; blank lines are skipped.
func ParseTSV(name string, r io.Reader, trailingID bool) ([]float32, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var out []float32
	dim := -1
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if trailingID {
			fields = fields[:len(fields)-1]
		}
		if dim < 0 {
			dim = len(fields)
			if dim == 0 {
				return nil, 0, fmt.Errorf("TSV file %s line %d: no vector components before the id column", name, line)
			}
		} else if len(fields) != dim {
			return nil, 0, fmt.Errorf("TSV file %s line %d: %d components, earlier lines have %d: the file is truncated or corrupt", name, line, len(fields), dim)
		}
		for j, s := range fields {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("TSV file %s line %d column %d: %q is not a finite number", name, line, j+1, s)
			}
			out = append(out, float32(v))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("TSV file %s line %d: %w", name, line+1, err)
	}
	if dim < 0 {
		return nil, 0, fmt.Errorf("TSV file %s: %w", name, errEmpty)
	}
	return out, dim, nil
}
