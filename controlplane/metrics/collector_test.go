package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/cluster/clustertest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestMetricsOfARunningCluster scrapes /metrics of a real 1-writer, 1-reader cluster after
// traffic through the router, and checks every promised family is there with sane values.
func TestMetricsOfARunningCluster(t *testing.T) {
	pgtest.RequireInstalled(t)
	t.Setenv(cluster.AutoPauseFloorEnv, "1")
	m := clustertest.NewManager(t, clustertest.NewHome(t, "borealis-metrics-"), cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := m.Create(cluster.CreateInput{MasterUserInput: cluster.MasterUserInput{MasterUsername: "borealis", MasterUserPassword: "metrics-test-pw"}, Name: "metered", Readers: 1, MinCapacity: 2, MaxCapacity: 8}); err != nil {
		t.Fatal(err)
	}
	d, err := m.WaitAvailable(ctx, "metered")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://borealis:metrics-test-pw@%s/postgres?sslmode=disable", d.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g"); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(promhttp.HandlerFor(NewRegistry(m), promhttp.HandlerOpts{}))
	defer srv.Close()
	scrape := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	value := func(text, pattern string) (float64, bool) {
		re := regexp.MustCompile(`(?m)^` + pattern + ` (\S+)$`)
		mm := re.FindStringSubmatch(text)
		if mm == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(mm[1], 64)
		return v, err == nil
	}
	writer := `\{cluster="metered",member="metered-1",role="writer"`
	reader := `\{cluster="metered",member="metered-2",role="reader"`
	want := map[string]func(float64) bool{
		`borealis_serverless_database_capacity` + writer + `\}`:                               func(v float64) bool { return v == 2 },
		`borealis_acu_utilization_percent` + writer + `\}`:                                    func(v float64) bool { return v == 25 },
		`borealis_cpu_utilization_percent` + writer + `,window="1m"\}`:                        func(v float64) bool { return v >= 0 && v <= 100 },
		`borealis_database_connections` + writer + `,state="idle"\}`:                          func(v float64) bool { return v >= 1 },
		`borealis_engine_uptime_seconds` + writer + `\}`:                                      func(v float64) bool { return v > 0 },
		`borealis_replica_lag_seconds` + reader + `\}`:                                        func(v float64) bool { return v >= 0 },
		`borealis_replica_lag_bytes` + reader + `\}`:                                          func(v float64) bool { return v >= 0 },
		`borealis_member_up` + reader + `\}`:                                                  func(v float64) bool { return v == 1 },
		`borealis_node_agent_available` + writer + `\}`:                                       func(v float64) bool { return v == 1 },
		`borealis_router_connections\{cluster="metered",endpoint="cluster"\}`:                 func(v float64) bool { return v == 1 },
		`borealis_router_connections_total\{cluster="metered",endpoint="cluster"\}`:           func(v float64) bool { return v >= 1 },
		`borealis_router_bytes_total\{cluster="metered",direction="out",endpoint="cluster"\}`: func(v float64) bool { return v > 100 },
		`borealis_events_total\{type="member.created"\}`:                                      func(v float64) bool { return v == 2 },
		`borealis_cluster_paused\{cluster="metered",status="available"\}`:                     func(v float64) bool { return v == 0 },
		`borealis_router_moved_sessions_total\{cluster="metered"\}`:                           func(v float64) bool { return v == 0 },
		`borealis_router_recovered_sessions_total\{cluster="metered"\}`:                       func(v float64) bool { return v == 0 },
		`borealis_router_pool_idle_backends\{cluster="metered"\}`:                             func(v float64) bool { return v >= 0 },
		`borealis_router_pool_in_use_backends\{cluster="metered"\}`:                           func(v float64) bool { return v >= 0 && v <= 1 },
		`borealis_router_pool_reused_backends_total\{cluster="metered"\}`:                     func(v float64) bool { return v >= 0 },
	}
	waitMetrics(t, scrape, value, want)

	// DATABASE DDL through the router: a client of a new database leaves its backend to the
	// pool; DROP DATABASE then closes it first (else 55006), which /metrics and describe count.
	if _, err := conn.Exec(ctx, "CREATE DATABASE scratch"); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, fmt.Sprintf("postgres://borealis:metrics-test-pw@%s/scratch?sslmode=disable", d.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	other.Close(ctx)
	cl, _ := m.Cluster("metered")
	for deadline := time.Now().Add(60 * time.Second); cl.Router().BackendPool().Idle < 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("scratch's backend not pooled after 60 s: %+v", cl.Router().BackendPool())
		}
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE scratch"); err != nil {
		t.Fatalf("DROP DATABASE through the router with the database's backend pooled: %v", err)
	}
	waitMetrics(t, scrape, value, map[string]func(float64) bool{
		`borealis_router_pool_ddl_drains_total\{cluster="metered"\}`:                        func(v float64) bool { return v == 2 },
		`borealis_router_pool_closed_backends_total\{cluster="metered",reason="ddl"\}`:      func(v float64) bool { return v == 1 },
		`borealis_router_pool_closed_backends_total\{cluster="metered",reason="settings"\}`: func(v float64) bool { return v == 0 },
		`borealis_router_pool_opened_backends_total\{cluster="metered"\}`:                   func(v float64) bool { return v >= 2 },
		`borealis_router_pool_settings_misses_total\{cluster="metered"\}`:                   func(v float64) bool { return v == 0 },
	})
	if bp := cl.Describe().BackendPool; bp == nil || bp.DDLDrains != 2 || bp.Closed["ddl"] != 1 || bp.Opened < 2 {
		t.Fatalf("describe's BackendPool after CREATE and DROP DATABASE: %+v", bp)
	}

	// Paused (the client gone, auto-pause after 1 s): /metrics says so, at capacity 0.
	conn.Close(ctx)
	one, on := 1, true
	if _, err := m.Modify("metered", cluster.ModifyInput{AutoPause: &on, SecondsUntilAutoPause: &one}); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, scrape, value, map[string]func(float64) bool{
		`borealis_cluster_paused\{cluster="metered",status="paused"\}`: func(v float64) bool { return v == 1 },
		`borealis_serverless_database_capacity` + writer + `\}`:        func(v float64) bool { return v == 0 },
		`borealis_events_total\{type="cluster.paused"\}`:               func(v float64) bool { return v == 1 },
	})
}

// waitMetrics scrapes until every pattern has a value its check accepts, or fails after 60 s.
func waitMetrics(t *testing.T, scrape func() string, value func(text, pattern string) (float64, bool), want map[string]func(float64) bool) {
	t.Helper()
	var text string
	deadline := time.Now().Add(60 * time.Second)
	for {
		text = scrape()
		missing := ""
		for pattern, ok := range want {
			if v, found := value(text, pattern); !found || !ok(v) {
				missing = fmt.Sprintf("%s (found %v, value %v)", pattern, found, v)
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s not as expected in:\n%s", missing, text)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
