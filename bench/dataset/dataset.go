package dataset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Metric is the distance a dataset is searched with, named as in the CLI.
type Metric string

const (
	L2     Metric = "l2"
	Cosine Metric = "cosine"
	IP     Metric = "ip"
)

// ParseMetric accepts l2, cosine or ip (inner product).
func ParseMetric(s string) (Metric, error) {
	switch m := Metric(strings.ToLower(s)); m {
	case L2, Cosine, IP:
		return m, nil
	}
	return "", fmt.Errorf("unknown metric %q: use l2, cosine or ip", s)
}

// Dataset is a base set to index and a disjoint query set, both row-major float32 matrices.
type Dataset struct {
	// Name identifies the data, e.g. "synthetic:100000:128:l2" or "mnist".
	Name    string
	Metric  Metric
	Dim     int
	Base    []float32
	Queries []float32
	// Sparse, when set, holds the vectors instead of Base and Queries (which are nil), and
	// Dim is the vocabulary (sparse.go).
	Sparse *SparseSet
}

// N is the number of base vectors.
func (d *Dataset) N() int {
	if d.Sparse != nil {
		return len(d.Sparse.Base)
	}
	return len(d.Base) / d.Dim
}

// NQ is the number of query vectors.
func (d *Dataset) NQ() int {
	if d.Sparse != nil {
		return len(d.Sparse.Queries)
	}
	return len(d.Queries) / d.Dim
}

// Row is base vector i.
func (d *Dataset) Row(i int) []float32 { return d.Base[i*d.Dim : (i+1)*d.Dim : (i+1)*d.Dim] }

// Query is query vector i.
func (d *Dataset) Query(i int) []float32 { return d.Queries[i*d.Dim : (i+1)*d.Dim : (i+1)*d.Dim] }

// Options tune Open.
type Options struct {
	// Dir holds the shared real datasets (mnist/, sift5k/); the repository's ../shared/datasets.
	Dir string
	// Queries is how many query vectors to use (held out from the base where the data has no
	// query set of its own). 0 means 1000.
	Queries int
	// Seed drives the synthetic generator.
	Seed uint64
}

// Specs lists the dataset names Open accepts, for usage messages.
const Specs = "synthetic:N:D[:metric], sparse:N:V[:metric], mnist, sift5k, fvecs:PATH[:metric], tsv:PATH[:metric]"

// Open loads the dataset named by spec.
func Open(spec string, opts Options) (*Dataset, error) {
	if opts.Queries == 0 {
		opts.Queries = 1000
	}
	if opts.Queries < 0 {
		return nil, fmt.Errorf("query count %d must be positive", opts.Queries)
	}
	kind, rest, _ := strings.Cut(spec, ":")
	switch kind {
	case "synthetic":
		n, d, metric, err := parseSynthetic(spec, rest)
		if err != nil {
			return nil, err
		}
		return Synthetic(n, d, opts.Queries, metric, opts.Seed), nil
	case "sparse":
		n, v, metric, err := parseSparse(spec, rest)
		if err != nil {
			return nil, err
		}
		return SparseSynthetic(n, v, opts.Queries, metric, opts.Seed), nil
	case "mnist":
		if rest != "" {
			return nil, fmt.Errorf("dataset %q: mnist takes no arguments", spec)
		}
		return MNIST(filepath.Join(opts.Dir, "mnist"), opts.Queries)
	case "sift5k":
		if rest != "" {
			return nil, fmt.Errorf("dataset %q: sift5k takes no arguments", spec)
		}
		return SIFT5k(filepath.Join(opts.Dir, "sift5k"), opts.Queries)
	case "fvecs", "tsv":
		path, metric := splitMetric(rest)
		if path == "" {
			return nil, fmt.Errorf("dataset %q: want %s:PATH[:metric]", spec, kind)
		}
		var rows []float32
		var dim int
		var err error
		if kind == "fvecs" {
			rows, dim, err = ReadFvecs(path)
		} else {
			rows, dim, err = ReadTSVFile(path, false)
		}
		if err != nil {
			return nil, err
		}
		return holdOut(spec, metric, dim, rows, opts.Queries)
	}
	return nil, fmt.Errorf("unknown dataset %q: use one of %s", spec, Specs)
}

// Check validates spec without reading the vectors: its syntax, and that the files it names
// exist. Callers use it to fail before starting expensive work.
func Check(spec string, opts Options) error {
	kind, rest, _ := strings.Cut(spec, ":")
	var files []string
	switch kind {
	case "synthetic":
		_, _, _, err := parseSynthetic(spec, rest)
		return err
	case "sparse":
		_, _, _, err := parseSparse(spec, rest)
		return err
	case "mnist":
		files = []string{filepath.Join(opts.Dir, "mnist", "train-images-idx3-ubyte.gz"), filepath.Join(opts.Dir, "mnist", "t10k-images-idx3-ubyte.gz")}
	case "sift5k":
		files = []string{filepath.Join(opts.Dir, "sift5k", "sift-dataset-5k.tsv")}
	case "fvecs", "tsv":
		path, _ := splitMetric(rest)
		files = []string{path}
	default:
		return fmt.Errorf("unknown dataset %q: use one of %s", spec, Specs)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("dataset %s: %w (the shared datasets live in ../shared/datasets; set --datasets-dir)", spec, err)
		}
	}
	return nil
}

// parseSynthetic parses the N:D[:metric] of a synthetic spec.
func parseSynthetic(spec, rest string) (n, d int, metric Metric, err error) {
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, "", fmt.Errorf("dataset %q: want synthetic:N:D[:metric], e.g. synthetic:100000:128:cosine", spec)
	}
	n, err1 := strconv.Atoi(parts[0])
	d, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || n <= 0 || d <= 0 {
		return 0, 0, "", fmt.Errorf("dataset %q: N and D must be positive integers", spec)
	}
	metric = L2
	if len(parts) == 3 {
		if metric, err = ParseMetric(parts[2]); err != nil {
			return 0, 0, "", fmt.Errorf("dataset %q: %w", spec, err)
		}
	}
	return n, d, metric, nil
}

// splitMetric takes an optional trailing ":metric" off a path.
func splitMetric(s string) (string, Metric) {
	if i := strings.LastIndex(s, ":"); i >= 0 {
		if m, err := ParseMetric(s[i+1:]); err == nil {
			return s[:i], m
		}
	}
	return s, L2
}

// holdOut makes the last q rows the queries, so they are disjoint from the base.
func holdOut(name string, metric Metric, dim int, rows []float32, q int) (*Dataset, error) {
	n := len(rows) / dim
	if q >= n {
		return nil, fmt.Errorf("dataset %s has %d vectors: holding out %d queries leaves no base; ask for fewer queries", name, n, q)
	}
	base := n - q
	return &Dataset{Name: name, Metric: metric, Dim: dim,
		Base: rows[: base*dim : base*dim], Queries: rows[base*dim:]}, nil
}

var errEmpty = errors.New("no vectors")
