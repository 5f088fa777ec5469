package bgworker

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCPUMeterWindows(t *testing.T) {
	m := CPUMeter{CPUs: 2, Keep: 5 * time.Minute}
	t0 := time.Unix(1_000_000, 0)
	if got := m.Percent(time.Minute); got != 0 {
		t.Fatalf("no samples: %v%%, want 0", got)
	}
	// Four minutes at one full CPU (50% of two), then one minute idle.
	cum := 0.0
	for i := 0; i <= 300; i++ {
		m.Add(t0.Add(time.Duration(i)*time.Second), cum)
		if i < 240 {
			cum++
		}
	}
	if got := m.Percent(time.Minute); !near(got, 0) {
		t.Fatalf("1m after a idle minute = %v%%, want 0", got)
	}
	if got := m.Percent(5 * time.Minute); !near(got, 40) {
		t.Fatalf("5m = %v%%, want 40 (240 CPU-seconds over 300 s on 2 CPUs)", got)
	}
	// Samples older than the longest window are dropped, keeping one at its start.
	if n := len(m.points); n != 301 {
		t.Fatalf("kept %d samples, want 301", n)
	}
	m.Add(t0.Add(301*time.Second), cum)
	if n := len(m.points); n != 301 || !m.points[0].at.Equal(t0.Add(time.Second)) {
		t.Fatalf("after one more sample: %d samples from %v", n, m.points[0].at)
	}
}

func TestCPUMeterPartialWindowAndClamp(t *testing.T) {
	m := CPUMeter{CPUs: 4, Keep: 5 * time.Minute}
	t0 := time.Unix(1_000_000, 0)
	m.Add(t0, 100)
	m.Add(t0.Add(10*time.Second), 120) // 2 CPU-seconds per second of 4 CPUs
	if got := m.Percent(time.Minute); !near(got, 50) {
		t.Fatalf("10 s into the first minute: %v%%, want 50", got)
	}
	if got := m.Percent(5 * time.Minute); !near(got, 50) {
		t.Fatalf("5m over 10 s: %v%%, want 50", got)
	}
	// A dip (child exited, not yet reaped) is held, then counted once made up.
	m.Add(t0.Add(11*time.Second), 110)
	m.Add(t0.Add(12*time.Second), 124)
	if got := m.Percent(time.Minute); !near(got, 24.0/12/4*100) {
		t.Fatalf("after a dip: %v%%, want %v", got, 24.0/12/4*100)
	}
	// Samples at the same instant or going back in time are ignored.
	m.Add(t0.Add(12*time.Second), 1e9)
	m.Add(t0, 1e9)
	if got := m.Percent(time.Minute); !near(got, 24.0/12/4*100) {
		t.Fatalf("after out-of-order samples: %v%%", got)
	}
	// Never above 100%, even if the CPU count given is too small.
	m.Add(t0.Add(13*time.Second), 1000)
	if got := m.Percent(time.Minute); got != 100 {
		t.Fatalf("overload: %v%%, want clamped to 100", got)
	}
}
