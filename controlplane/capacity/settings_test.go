package capacity

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func value(t *testing.T, acu float64, name string) string {
	t.Helper()
	for _, s := range Settings(acu) {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("Settings(%g) has no %s", acu, name)
	return ""
}

func kbValue(t *testing.T, acu float64, name string) int64 {
	t.Helper()
	v := value(t, acu, name)
	n, err := strconv.ParseInt(strings.TrimSuffix(v, "kB"), 10, 64)
	if err != nil || !strings.HasSuffix(v, "kB") {
		t.Fatalf("%s at %g ACU = %q, want a number of kB", name, acu, v)
	}
	return n
}

func TestMaxConnectionsSeedTable(t *testing.T) {
	for _, c := range []struct {
		acu  float64
		want int
	}{
		{0, 90}, {0.5, 90}, {1, 90}, {1.5, 90}, {2, 180}, {3, 180}, {4, 270}, {7.5, 270}, {8, 1000},
		{16, 2000}, {32, 3000}, {64, 4000}, {128, 5000}, {192, 5000}, {256, 6000}, {1000, 6000},
	} {
		if got := MaxConnections(c.acu); got != c.want {
			t.Errorf("MaxConnections(%g) = %d, want %d", c.acu, got, c.want)
		}
	}
}

func TestSettingsValues(t *testing.T) {
	for _, c := range []struct {
		acu                     float64
		sbKB, ecsKB, wmKB, mwKB int64
		workers, gather, thr    string
	}{
		// 1 ACU: 2 GiB; shared_buffers 512 MB; work_mem (2048-512) MB / 180.
		{1, 512 * 1024, 1536 * 1024, (1536 * 1024 * 1024 / 180) / 1024, 256 * 1024, "0", "0", "1"},
		{1.5, 512 * 1024, 2304 * 1024, (2560 * 1024 * 1024 / 180) / 1024, 384 * 1024, "0", "0", "1"},
		{4, 2048 * 1024, 6144 * 1024, (6144 * 1024 * 1024 / 540) / 1024, 1024 * 1024, "2", "1", "2"},
		{0.5, 256 * 1024, 768 * 1024, (768 * 1024 * 1024 / 180) / 1024, 128 * 1024, "0", "0", "1"},
		{128, 65536 * 1024, 196608 * 1024, (196608 * 1024 * 1024 / 10000) / 1024, 8 * 1024 * 1024, "64", "4", "64"},
		{256, 131072 * 1024, 393216 * 1024, (393216 * 1024 * 1024 / 12000) / 1024, 8 * 1024 * 1024, "64", "4", "64"},
	} {
		if got := kbValue(t, c.acu, "shared_buffers"); got != c.sbKB {
			t.Errorf("shared_buffers at %g = %d kB, want %d", c.acu, got, c.sbKB)
		}
		if got, want := kbValue(t, c.acu, "wal_buffers"), min(c.sbKB/128, 16*1024); got != want {
			t.Errorf("wal_buffers at %g = %d kB, want %d", c.acu, got, want)
		}
		if got := kbValue(t, c.acu, "effective_cache_size"); got != c.ecsKB {
			t.Errorf("effective_cache_size at %g = %d kB, want %d", c.acu, got, c.ecsKB)
		}
		if got := kbValue(t, c.acu, "work_mem"); got != c.wmKB {
			t.Errorf("work_mem at %g = %d kB, want %d", c.acu, got, c.wmKB)
		}
		if got := kbValue(t, c.acu, "maintenance_work_mem"); got != c.mwKB {
			t.Errorf("maintenance_work_mem at %g = %d kB, want %d", c.acu, got, c.mwKB)
		}
		if got := value(t, c.acu, "max_parallel_workers"); got != c.workers {
			t.Errorf("max_parallel_workers at %g = %s, want %s", c.acu, got, c.workers)
		}
		if got := value(t, c.acu, "max_parallel_workers_per_gather"); got != c.gather {
			t.Errorf("max_parallel_workers_per_gather at %g = %s, want %s", c.acu, got, c.gather)
		}
		if got := value(t, c.acu, "borealis.build_threads"); got != c.thr {
			t.Errorf("borealis.build_threads at %g = %s, want %s", c.acu, got, c.thr)
		}
	}
}

// Every capacity the API accepts gives a consistent set: settings PostgreSQL would accept
// together, memory settings that fit the memory, monotone in capacity.
func TestSettingsInvariants(t *testing.T) {
	prevConns, prevSB := 0, int64(0)
	for acu := 0.5; acu <= MaxNodeACU; acu += 0.5 {
		conns := MaxConnections(acu)
		sb := SharedBuffersBytes(acu)
		if conns < prevConns || sb < prevSB {
			t.Fatalf("settings shrink from %g to %g ACU", acu-0.5, acu)
		}
		prevConns, prevSB = conns, sb
		if sb*4 > MemoryBytes(acu) {
			t.Fatalf("shared_buffers %d over a quarter of %g ACU", sb, acu)
		}
		workers, _ := strconv.Atoi(value(t, acu, "max_parallel_workers"))
		gather, _ := strconv.Atoi(value(t, acu, "max_parallel_workers_per_gather"))
		if workers > WorkerProcesses-8 || gather > workers {
			t.Fatalf("%g ACU: %d parallel workers, %d per gather, %d worker processes", acu, workers, gather, WorkerProcesses)
		}
		if wm := kbValue(t, acu, "work_mem"); wm < 4096 {
			t.Fatalf("work_mem %d kB at %g ACU is below 4 MB", wm, acu)
		}
		// Within a tier only reloadable settings change: in place.
		if Tier(acu) == Tier(acu+0.5) {
			if r := RestartNeeded(Settings(acu), Settings(acu+0.5)); len(r) != 0 {
				t.Fatalf("%g -> %g ACU needs a restart for %v within one tier", acu, acu+0.5, r)
			}
		} else if r := RestartNeeded(Settings(acu), Settings(acu+0.5)); len(r) == 0 {
			t.Fatalf("%g -> %g ACU crosses a tier without a restart-type change", acu, acu+0.5)
		}
	}
}

func TestRestartNeeded(t *testing.T) {
	if got := RestartNeeded(Settings(1), Settings(1.5)); len(got) != 0 {
		t.Errorf("1 -> 1.5 ACU: %v, want none", got)
	}
	if got := fmt.Sprint(RestartNeeded(Settings(2), Settings(4))); got != "[max_connections shared_buffers wal_buffers]" {
		t.Errorf("2 -> 4 ACU: %s", got)
	}
	if got := fmt.Sprint(RestartNeeded(nil, Settings(1))); got != "[max_connections max_worker_processes shared_buffers wal_buffers]" {
		t.Errorf("from nothing: %s", got)
	}
}

func TestStandbyKeepsWritersMaxConnections(t *testing.T) {
	m := Map(StandbySettings(1, 8))
	if m["max_connections"] != "1000" {
		t.Errorf("standby at 1 ACU with writer max 8: max_connections %s, want 1000", m["max_connections"])
	}
	if m["shared_buffers"] != Map(Settings(1))["shared_buffers"] {
		t.Errorf("standby shared_buffers should follow its own capacity")
	}
	if Map(StandbySettings(16, 8))["max_connections"] != "2000" {
		t.Errorf("standby above the writer's max keeps its own value")
	}
}

func TestOwned(t *testing.T) {
	got := Owned()
	if len(got) != 11 || !IsOwned("shared_buffers") || !IsOwned("borealis.build_threads") || IsOwned("log_min_duration_statement") {
		t.Fatalf("Owned() = %v", got)
	}
}

func TestNaNAndNegative(t *testing.T) {
	for _, acu := range []float64{-1, 0, nanACU()} {
		if MaxConnections(acu) != 90 || MemoryBytes(acu) != MemoryPerACU/2 {
			t.Errorf("%g ACU: %d conns, %d bytes", acu, MaxConnections(acu), MemoryBytes(acu))
		}
	}
}

func nanACU() float64 { var z float64; return z / z }

// TestDocumentedTable keeps docs/architecture.md's table equal to what Settings computes.
func TestDocumentedTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := MarkdownTable([]float64{0.5, 1, 1.5, 2, 4, 8, 16, 32, 64, 128, 256})
	if !strings.Contains(string(doc), want) {
		t.Fatalf("docs/architecture.md does not contain the current settings table; put this in:\n%s", want)
	}
}
