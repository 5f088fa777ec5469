package ann

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A comm with spaces and a ')' inside, as the kernel prints it.
	line := "4242 (postgres: a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 700 300 20 0 3 0 100 1000 10"
	self, children, err := parseStatCPU([]byte(line))
	if err != nil || self != 3.0 || children != 10.0 {
		t.Fatalf("self %v children %v err %v, want 3 and 10", self, children, err)
	}
	if _, _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("a short line gave no error")
	}
}

func TestServerCPUCountsThisProcess(t *testing.T) {
	before := ServerCPU(os.Getpid())
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0.0
	for time.Now().Before(deadline) {
		x += math.Sqrt(x + 1)
	}
	if got := ServerCPU(os.Getpid()) - before; got <= 0 || x == 0 {
		t.Fatalf("300 ms of spinning added %v CPU seconds", got)
	}
}

func TestBuildPairsAndMedians(t *testing.T) {
	rounds := []BuildRound{
		{1, "borealis_hnsw", Build{Seconds: 10, CPUSeconds: 16}}, {1, "hnsw", Build{Seconds: 20, CPUSeconds: 32}},
		{2, "borealis_hnsw", Build{Seconds: 30, CPUSeconds: 18}}, {2, "hnsw", Build{Seconds: 20, CPUSeconds: 30}},
		{3, "borealis_hnsw", Build{Seconds: 12, CPUSeconds: 17}}, {3, "hnsw", Build{Seconds: 16, CPUSeconds: 34}},
	}
	pairs := pairRounds(rounds)
	if len(pairs) != 3 || pairs[1].WallRatio != 1.5 || pairs[1].CPURatio != 0.6 || pairs[0].Candidate != "borealis_hnsw" || pairs[0].Baseline != "hnsw" {
		t.Fatalf("%+v", pairs)
	}
	med := medianPairs(pairs)
	if len(med) != 1 || med[0].Rounds != 3 || med[0].Wall != 0.75 || med[0].CPU != 0.5 {
		t.Fatalf("%+v", med)
	}
	if medianFloat([]float64{4, 1, 3, 2}) != 2.5 || medianFloat(nil) != 0 {
		t.Fatal("median")
	}
	var b strings.Builder
	writeBuildRounds(&b, DatasetResult{BuildRounds: rounds, BuildMedians: med})
	for _, s := range []string{"| 2 | borealis_hnsw ÷ hnsw | 1.50x | 0.60x |", "| median of 3 | borealis_hnsw ÷ hnsw | 0.75x | 0.50x |", "| 1 | hnsw | 20.0 | 32.0 |"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("tables lack %q:\n%s", s, b.String())
		}
	}
}
