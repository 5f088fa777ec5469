package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsToken: /metrics is open by default on loopback and needs the token when asked
// (serve asks whenever the API is off loopback); /healthz stays open either way.
func TestMetricsToken(t *testing.T) {
	token := strings.Repeat("ab", 32)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "borealis_test_total", Help: "test"}))
	for _, required := range []bool{false, true} {
		srv := httptest.NewServer(Handler(Config{Token: token, Registry: reg, MetricsToken: required}))
		c := apiClient{t: t, url: srv.URL}
		code, body := c.do("GET", "/metrics", "")
		if want := map[bool]int{false: 200, true: 401}[required]; code != want {
			t.Errorf("metrics without token, required=%v: %d %.200s, want %d", required, code, body, want)
		}
		c.token = token
		if code, body = c.do("GET", "/metrics", ""); code != 200 || !strings.Contains(string(body), "borealis_test_total") {
			t.Errorf("metrics with token, required=%v: %d %.200s", required, code, body)
		}
		c.token = ""
		if code, _ = c.do("GET", "/healthz", ""); code != 200 {
			t.Errorf("healthz: %d", code)
		}
		srv.Close()
	}
	defer func() {
		if recover() == nil {
			t.Error("a handler without a token was made")
		}
	}()
	Handler(Config{Registry: reg})
}
