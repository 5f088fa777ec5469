package ann

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/simd"
)

// Machine describes where a run happened.
type Machine struct {
	CPU        string   `json:"cpu"`
	Cores      int      `json:"cores"`
	MemoryGiB  float64  `json:"memory_gib"`
	Kernel     string   `json:"kernel"`
	LoadAvg    string   `json:"loadavg_at_start"`
	LoadAvgEnd string   `json:"loadavg_at_end,omitempty"`
	PostgreSQL string   `json:"postgresql"`
	PGVector   string   `json:"pgvector"`
	Borealis   string   `json:"borealis,omitempty"`
	SIMDPath   string   `json:"simd_path"`
	SIMDFeats  []string `json:"simd_features"`
	GoVersion  string   `json:"go"`
}

func describeMachine(ctx context.Context, conn *pgx.Conn) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvg: loadAvg()}
	info := simd.Info()
	m.SIMDPath, m.SIMDFeats, m.CPU = info.Path, info.Features, info.CPU
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				m.MemoryGiB = float64(int(kb/1024/1024*10)) / 10
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	_ = conn.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&m.PostgreSQL)
	_ = conn.QueryRow(ctx, "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), '')").Scan(&m.PGVector)
	_ = conn.QueryRow(ctx, "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'borealis'), '')").Scan(&m.Borealis)
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
