package ann

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// IndexSpec is an access method and the GUC that sets its search breadth, e.g.
// hnsw:hnsw.ef_search.
type IndexSpec struct {
	AM  string `json:"am"`
	GUC string `json:"guc"`
}

func (s IndexSpec) String() string { return s.AM + ":" + s.GUC }

var (
	identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	gucRe   = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)
)

// ParseIndexSpec parses "am:guc". Both parts become SQL identifiers, so only lower-case
// identifier characters are accepted.
func ParseIndexSpec(s string) (IndexSpec, error) {
	am, guc, ok := strings.Cut(s, ":")
	if !ok || !identRe.MatchString(am) || !gucRe.MatchString(guc) {
		return IndexSpec{}, fmt.Errorf("--index %q: want AM:GUC, e.g. hnsw:hnsw.ef_search or borealis_hnsw:borealis.ef_search", s)
	}
	return IndexSpec{AM: am, GUC: guc}, nil
}

// ParseEfs parses a comma-separated list of positive ef values, e.g. "10,20,40".
func ParseEfs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--ef %q: want positive integers separated by commas, e.g. 10,20,40,80", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// Config is one benchmark run.
type Config struct {
	// DSN is the server to use; empty starts a throwaway one.
	DSN string
	// Suite names the run's output files: <OutDir>/<date>-<Suite>.{md,json,png}.
	Suite    string
	Datasets []string
	Indexes  []IndexSpec
	// SkipMissing skips (with a warning) an index whose access method the server lacks,
	// instead of failing before anything is measured.
	SkipMissing bool

	// Build settings, the same for every index.
	M                  int
	EfConstruction     int
	MaintenanceWorkMem string
	ParallelWorkers    int
	// BuildRounds is how many times every index is built, interleaved (A, B, A, B ...) and
	// dropped, before the sweep's own build, for per-pair build ratios (buildcpu.go); 0 none.
	BuildRounds int

	// Search settings.
	Efs     []int
	K       int
	Clients int
	Queries int
	// Warmup is how many queries run untimed on every connection before the sweep.
	Warmup int
	// MinTime is the least time each QPS measurement lasts: the query list is repeated until
	// it has passed (recall is scored on the first pass only). 0 means one pass.
	MinTime time.Duration

	// FreshConnections is how many new connections time their first query, one after another,
	// and stay open while the server's memory is read.
	FreshConnections int
	// InsertClients is N of the N-client insert rate; InsertTime how long each insert rate is
	// measured.
	InsertClients int
	InsertTime    time.Duration

	Seed        uint64
	DatasetsDir string
	CacheDir    string
	OutDir      string
	// SharedBuffers of the throwaway server.
	SharedBuffers string
	// Note is free text written into the results (e.g. what else loaded the machine).
	Note string

	// Filtered are the selectivities (fractions of rows, e.g. 0.1, 0.01, 0.001) of the
	// filtered-query sweep (filtered.go); none skips it. FilteredEfs are its ef values and
	// IterativeScan the AMs' iterative_scan setting for it.
	Filtered      []float64
	FilteredEfs   []int
	IterativeScan string
	// MaxScanTuples is every AM's max_scan_tuples in the filtered sweep (AM-prefix.max_scan_tuples,
	// as iterative_scan); 0 leaves each at its default (20,000 in both). A selective filter
	// over a large table needs more than the default for either AM to reach a recall level.
	MaxScanTuples int
	// With holds extra reloptions per access method, e.g. borealis_hnsw → "quantization = binary".
	With map[string]string
	// Element is what every index is built on (element.go): vector (default), halfvec or bq;
	// Elements overrides it per access method.
	Element  string
	Elements map[string]string
}

// ElementOf is what am's index is built on.
func (c *Config) ElementOf(am string) string {
	if e := c.Elements[am]; e != "" {
		return e
	}
	return c.Element
}

// ParseSelectivities parses a comma-separated list of fractions in (0, 1], e.g. "0.1,0.01".
func ParseSelectivities(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > 1 || catLimit(v) < 1 {
			return nil, fmt.Errorf("--filtered %q: want fractions of rows between 0.001 and 1 separated by commas, e.g. 0.1,0.01,0.001", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// Defaults fills zero fields with the standard settings.
func (c *Config) Defaults() {
	if c.Suite == "" {
		c.Suite = "ann"
	}
	if c.Element == "" {
		c.Element = ElementVector
		if len(c.Datasets) > 0 && isSparseSpec(c.Datasets[0]) {
			c.Element = ElementSparsevec
		}
	}
	if c.M == 0 {
		c.M = 16
	}
	if c.EfConstruction == 0 {
		c.EfConstruction = 64
	}
	if c.MaintenanceWorkMem == "" {
		c.MaintenanceWorkMem = "1GB"
	}
	if len(c.Efs) == 0 {
		c.Efs = []int{10, 20, 40, 80, 160, 320}
	}
	if c.K == 0 {
		c.K = 10
	}
	if c.Clients == 0 {
		c.Clients = 2
	}
	if c.Queries == 0 {
		c.Queries = 1000
	}
	if c.Warmup == 0 {
		c.Warmup = 50
	}
	if c.FreshConnections == 0 {
		c.FreshConnections = 10
	}
	if c.InsertClients == 0 {
		c.InsertClients = 4
	}
	if c.InsertTime == 0 {
		c.InsertTime = 10 * time.Second
	}
	if c.SharedBuffers == "" {
		c.SharedBuffers = "1GB"
	}
	if c.OutDir == "" {
		c.OutDir = "bench/results"
	}
	if len(c.FilteredEfs) == 0 {
		c.FilteredEfs = []int{40}
	}
	if c.IterativeScan == "" {
		c.IterativeScan = "relaxed_order"
	}
}

// Validate reports the first bad setting, naming the flag to fix.
func (c *Config) Validate() error {
	switch {
	case len(c.Datasets) == 0:
		return fmt.Errorf("no dataset: give --dataset (or a known --suite)")
	case len(c.Indexes) == 0:
		return fmt.Errorf("no index: give --index AM:GUC, e.g. --index hnsw:hnsw.ef_search")
	case c.M < 2 || c.EfConstruction < 1:
		return fmt.Errorf("--m must be at least 2 and --ef-construction at least 1")
	case c.K < 1 || c.Clients < 1 || c.Queries < 1 || c.Warmup < 0 || c.ParallelWorkers < 0 || c.MinTime < 0 || c.BuildRounds < 0:
		return fmt.Errorf("--k, --clients and --queries must be positive, --warmup, --min-time, --parallel-workers and --build-rounds not negative")
	case c.FreshConnections < 1 || c.InsertClients < 1 || c.InsertTime <= 0:
		return fmt.Errorf("--fresh-connections, --insert-clients and --insert-time must be positive")
	case !regexp.MustCompile(`^[0-9]+\s*[kMGT]?B?$`).MatchString(c.MaintenanceWorkMem):
		return fmt.Errorf("--maintenance-work-mem %q: want a PostgreSQL memory size such as 512MB or 1GB", c.MaintenanceWorkMem)
	case !regexp.MustCompile(`^[0-9]+\s*[kMGT]?B?$`).MatchString(c.SharedBuffers):
		return fmt.Errorf("--shared-buffers %q: want a PostgreSQL memory size such as 1GB", c.SharedBuffers)
	case c.MaxScanTuples < 0:
		return fmt.Errorf("--max-scan-tuples must not be negative (0 leaves each AM's default)")
	case c.IterativeScan != "relaxed_order" && c.IterativeScan != "strict_order":
		return fmt.Errorf("--iterative-scan %q: want relaxed_order or strict_order", c.IterativeScan)
	case !validElement(c.Element):
		return fmt.Errorf("--element %q: want vector, halfvec, bq or sparsevec", c.Element)
	case (c.Element != ElementVector || len(c.Elements) > 0) && len(c.Filtered) > 0:
		return fmt.Errorf("--filtered needs --element vector")
	case !identRe.MatchString(strings.ReplaceAll(c.Suite, "-", "_")):
		return fmt.Errorf("--suite %q: use lower-case letters, digits, - and _", c.Suite)
	}
	for am, e := range c.Elements {
		if !validElement(e) {
			return fmt.Errorf("--element %s:%s: want vector, halfvec, bq or sparsevec", am, e)
		}
	}
	for _, spec := range c.Datasets {
		for _, ix := range c.Indexes {
			if isSparseSpec(spec) != (c.ElementOf(ix.AM) == ElementSparsevec) {
				return fmt.Errorf("dataset %s and --element %s (index %s): sparse: datasets are sparsevec columns, the others vector columns; run them separately", spec, c.ElementOf(ix.AM), ix.AM)
			}
		}
	}
	seen := map[string]bool{}
	for _, ix := range c.Indexes {
		if seen[ix.AM] {
			return fmt.Errorf("--index %s given twice", ix.AM)
		}
		seen[ix.AM] = true
	}
	return nil
}
