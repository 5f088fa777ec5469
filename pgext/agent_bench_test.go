package pgext_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// BenchmarkNodeAgentSample measures what the real agent costs: its own CPU time (from
// /proc/<agent>/stat) per sample, in a server with 20 idle client sessions, sampling every
// 100 ms and every 1000 ms (the default). One iteration is one new snapshot; run with
// -benchtime=Nx.
func BenchmarkNodeAgentSample(b *testing.B) {
	for _, interval := range []int{100, 1000} {
		b.Run("interval="+strconv.Itoa(interval)+"ms", func(b *testing.B) { benchAgent(b, interval) })
	}
}

func benchAgent(b *testing.B, intervalMs int) {
	pgtest.RequireInstalled(b)
	s := pgtest.Start(b, pgtest.Options{Preload: true, Extension: true, Settings: map[string]string{
		"borealis.agent_interval_ms": strconv.Itoa(intervalMs),
	}})
	ctx := context.Background()
	for range 20 {
		s.Connect("postgres")
	}
	obs := s.Connect("postgres")
	var pid int
	var last time.Time
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 || last.IsZero() {
		var p *int32
		var at *time.Time
		if err := obs.QueryRow(ctx, "SELECT agent_pid, sampled_at FROM borealis.node_status()").Scan(&p, &at); err != nil {
			b.Fatal(err)
		}
		if p != nil && at != nil {
			pid, last = int(*p), *at
		}
		if time.Now().After(deadline) {
			b.Fatal("no agent snapshot within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	startTicks := processTicks(b, pid)
	first := last
	b.ResetTimer()
	for range b.N {
		for {
			var at time.Time
			if err := obs.QueryRow(ctx, "SELECT sampled_at FROM borealis.node_status()").Scan(&at); err != nil {
				b.Fatal(err)
			}
			if at.After(last) {
				last = at
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b.StopTimer()
	elapsed := last.Sub(first).Seconds()
	samples := elapsed * 1000 / float64(intervalMs) // the agent samples every interval, seen or not
	cpuMs := float64(processTicks(b, pid)-startTicks) * 10
	b.ReportMetric(cpuMs/samples, "agent-cpu-ms/sample")
	b.ReportMetric(cpuMs/elapsed/10, "agent-cpu-%")
}
