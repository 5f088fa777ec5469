package bgworker

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkSampleProcessTree is the /proc half of one agent sample (list children, CPU ticks,
// PSS of each) for this process with n idle children standing in for backends.
func BenchmarkSampleProcessTree(b *testing.B) {
	for _, n := range []int{0, 20, 100} {
		b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
			for range n {
				c := exec.Command("sleep", "600")
				if err := c.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Process.Kill(); c.Wait() })
			}
			s, err := NewSampler("/proc", os.Getpid(), 100, 2)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			b.ResetTimer()
			for i := range b.N {
				u, err := s.Sample(now.Add(time.Duration(i) * time.Second))
				if err != nil {
					b.Fatal(err)
				}
				if u.Processes != n+1 {
					b.Fatalf("saw %d processes, want %d", u.Processes, n+1)
				}
			}
		})
	}
}

// BenchmarkDecide is the decision over n sessions.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			sessions := make([]Session, n)
			for i := range sessions {
				sessions[i] = Session{State: SessionState(i % 4), QueryAge: time.Duration(i) * time.Millisecond,
					TransactionAge: time.Duration(i) * time.Millisecond, TempTables: i%97 == 0}
			}
			b.ResetTimer()
			for range b.N {
				_ = Decide(sessions, 0, 5*time.Second)
			}
		})
	}
}
