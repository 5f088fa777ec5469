package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/cluster/clustertest"
	"github.com/borealisdb/borealis/controlplane/metrics"
	"github.com/borealisdb/borealis/internal/pgtest"
)

type apiClient struct {
	t     *testing.T
	url   string
	token string
}

func (c apiClient) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func startAPI(t *testing.T) (apiClient, *cluster.Manager) {
	t.Helper()
	home := clustertest.NewHome(t, "borealis-api-")
	m := clustertest.NewManager(t, home, cluster.Options{})
	token, err := LoadOrCreateToken(filepath.Join(home, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(Config{Manager: m, Token: token, Registry: metrics.NewRegistry(m)}))
	t.Cleanup(srv.Close)
	return apiClient{t: t, url: srv.URL, token: token}, m
}

func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api-token")
	tok, err := LoadOrCreateToken(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 || len(tok) != 64 {
		t.Fatalf("token file mode %o, token length %d", fi.Mode().Perm(), len(tok))
	}
	again, err := LoadOrCreateToken(path)
	if err != nil || again != tok {
		t.Fatalf("second load: %q, %v", again, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file: %v", err)
	}
}

func TestParseAddress(t *testing.T) {
	for addr, want := range map[string]string{"127.0.0.1:8433": "loopback", "localhost:1": "loopback", "[::1]:8433": "loopback",
		"0.0.0.0:8433": "open", ":8433": "open", "10.1.2.3:80": "open", "[::]:1": "open",
		"127.0.0.1": "error", "127.0.0.1:http": "error", "127.0.0.1:70000": "error", "example.com:80": "error"} {
		loopback, err := ParseAddress(addr)
		got := map[bool]string{true: "loopback", false: "open"}[loopback]
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%s: %s (%v), want %s", addr, got, err, want)
		}
	}
}

// TestBadRequests: every malformed request is a 4xx naming what is wrong, and creates nothing.
func TestBadRequests(t *testing.T) {
	c, m := startAPI(t)
	noToken := c
	noToken.token = ""
	if code, body := noToken.do("GET", "/v1/clusters", ""); code != 401 || !strings.Contains(string(body), "bearer token") {
		t.Fatalf("no token: %d %s", code, body)
	}
	wrong := c
	wrong.token = strings.Repeat("0", 64)
	if code, _ := wrong.do("GET", "/v1/clusters", ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"POST", "/v1/clusters", `{"Readers": 1}`, 400, "Name"},
		{"POST", "/v1/clusters", `{"Name": "Bad_Name"}`, 400, "Name"},
		{"POST", "/v1/clusters", `{"Name": "ok", "Readers": 16}`, 400, "Readers"},
		{"POST", "/v1/clusters", `{"Name": "ok", "Readers": "two"}`, 400, "Readers"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MinCapacity": 0.3}`, 400, "MinCapacity"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MinCapacity": 16, "MaxCapacity": 8}`, 400, "MinCapacity"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MaxCapacity": 256}`, 400, "MaxCapacity"},
		{"POST", "/v1/clusters", `{"Name": "ok", "SecondsBeforeTimeout": 30}`, 400, "SecondsBeforeTimeout"},
		{"POST", "/v1/clusters", `{"Name": "ok", "SecondsUntilAutoPause": 10}`, 400, "SecondsUntilAutoPause"},
		{"POST", "/v1/clusters", `{"Name": "ok", "TimeoutAction": "Shrug"}`, 400, "TimeoutAction"},
		{"POST", "/v1/clusters", `{"Name": "ok", "Port": 80}`, 400, "Port"},
		{"POST", "/v1/clusters", `{"Name": "ok", "Replicas": 2}`, 400, "Replicas"},
		{"POST", "/v1/clusters", `{"Name": "ok"} {"Name": "again"}`, 400, ""},
		{"POST", "/v1/clusters", `not json`, 400, ""},
		{"POST", "/v1/clusters", ``, 400, ""},
		{"POST", "/v1/clusters", `{"Name": "` + strings.Repeat("a", 70000) + `"}`, 400, ""},
		{"GET", "/v1/clusters/nosuch", ``, 404, ""},
		{"PATCH", "/v1/clusters/nosuch", `{"MaxCapacity": 4}`, 404, ""},
		{"DELETE", "/v1/clusters/nosuch?SkipFinalSnapshot=true", ``, 404, ""},
		{"DELETE", "/v1/clusters/nosuch", ``, 400, "SkipFinalSnapshot"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MasterUsername": "postgres"}`, 400, "MasterUsername"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MasterUsername": "a;drop"}`, 400, "MasterUsername"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MasterUserPassword": "short"}`, 400, "MasterUserPassword"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MasterUserPassword": "has a space"}`, 400, "MasterUserPassword"},
		{"POST", "/v1/clusters", `{"Name": "ok", "MasterUserPassword": "longenough", "ManageMasterUserPassword": true}`, 400, "MasterUserPassword"},
		{"POST", "/v1/clusters", `{"Name": "ok", "DatabaseName": "template1"}`, 400, "DatabaseName"},
		{"PATCH", "/v1/clusters/nosuch", `{"MasterUserPassword": "x"}`, 404, ""},
		{"POST", "/v1/clusters/nosuch/stop", ``, 404, ""},
		{"POST", "/v1/clusters/nosuch/start", ``, 404, ""},
		{"POST", "/v1/clusters/nosuch/reboot", ``, 404, ""},
		{"POST", "/v1/clusters/nosuch/reboot", `{"DBInstanceIdentifier": 3}`, 400, "DBInstanceIdentifier"},
		{"GET", "/v1/events?limit=0", ``, 400, "limit"},
		{"GET", "/v1/events?cluster=NO!", ``, 400, "cluster"},
		{"GET", "/v1/events?colour=red", ``, 400, "colour"},
		{"PUT", "/v1/clusters", `{}`, 404, ""},
	} {
		code, body := c.do(tc.method, tc.path, tc.body)
		var eb ErrorBody
		json.Unmarshal(body, &eb)
		if code != tc.status || eb.Error.Message == "" || eb.Error.Field != tc.field {
			t.Errorf("%s %s %.60s: got %d %s; want %d naming field %q", tc.method, tc.path, tc.body, code, body, tc.status, tc.field)
		}
	}
	if list := m.List(); len(list) != 0 {
		t.Fatalf("bad requests created clusters: %+v", list)
	}
}

// TestClusterLifecycle drives one small cluster through create, describe, list, modify, events,
// metrics and delete over HTTP.
func TestClusterLifecycle(t *testing.T) {
	pgtest.RequireInstalled(t)
	c, m := startAPI(t)
	code, body := c.do("POST", "/v1/clusters", `{"Name": "web", "Readers": 0, "MinCapacity": 1, "MaxCapacity": 4, "AutoPause": true, "DeletionProtection": true}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := c.do("POST", "/v1/clusters", `{"Name": "web"}`); code != 409 {
		t.Fatalf("duplicate create: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := m.WaitAvailable(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	var one ClusterBody
	_, body = c.do("GET", "/v1/clusters/web", "")
	if err := json.Unmarshal(body, &one); err != nil {
		t.Fatal(err)
	}
	d := one.DBCluster
	if d.Status != "available" || d.Endpoint == "" || d.ReaderEndpoint == "" || len(d.DBClusterMembers) != 1 ||
		!d.ScalingConfigurationInfo.AutoPause || d.ScalingConfigurationInfo.SecondsUntilAutoPause != 300 || d.Capacity != 1 {
		t.Fatalf("describe: %s", body)
	}
	code, body = c.do("PATCH", "/v1/clusters/web", `{"MaxCapacity": 16, "TimeoutAction": "ForceApplyCapacityChange"}`)
	json.Unmarshal(body, &one)
	if code != 200 || one.DBCluster.ScalingConfigurationInfo.MaxCapacity != 16 || one.DBCluster.ScalingConfigurationInfo.TimeoutAction != "ForceApplyCapacityChange" {
		t.Fatalf("modify: %d %s", code, body)
	}
	if code, body := c.do("PATCH", "/v1/clusters/web", `{"MinCapacity": 32}`); code != 400 || !bytes.Contains(body, []byte(`"MinCapacity"`)) {
		t.Fatalf("modify below min: %d %s", code, body)
	}
	var list ClustersBody
	_, body = c.do("GET", "/v1/clusters", "")
	json.Unmarshal(body, &list)
	if len(list.DBClusters) != 1 || list.DBClusters[0].ScalingConfigurationInfo.MaxCapacity != 16 {
		t.Fatalf("list: %s", body)
	}
	code, body = c.do("GET", "/metrics", "")
	if code != 200 || !bytes.Contains(body, []byte(`borealis_serverless_database_capacity{cluster="web"`)) {
		t.Fatalf("metrics: %d %.400s", code, body)
	}
	// No password given: it is managed, in a 0600 file describe names.
	if d.MasterUsername != "admin" || d.MasterUserSecret == nil || !d.DeletionProtection {
		t.Fatalf("describe lacks the master user, its secret or deletion protection: %s", body)
	}
	if fi, err := os.Stat(d.MasterUserSecret.SecretFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("managed password file %s: %v %v", d.MasterUserSecret.SecretFile, fi, err)
	}
	if code, body := c.do("DELETE", "/v1/clusters/web", ""); code != 400 || !bytes.Contains(body, []byte("SkipFinalSnapshot")) {
		t.Fatalf("delete without intent: %d %s", code, body)
	}
	if code, body := c.do("DELETE", "/v1/clusters/web?SkipFinalSnapshot=true", ""); code != 400 || !bytes.Contains(body, []byte("deletion protection")) {
		t.Fatalf("delete with deletion protection: %d %s", code, body)
	}
	if code, body := c.do("PATCH", "/v1/clusters/web", `{"DeletionProtection": false}`); code != 200 || !bytes.Contains(body, []byte(`"DeletionProtection": false`)) {
		t.Fatalf("turning deletion protection off: %d %s", code, body)
	}
	if code, body := c.do("DELETE", "/v1/clusters/web?SkipFinalSnapshot=true", ""); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := c.do("GET", "/v1/clusters/web", ""); code != 404 {
		t.Fatalf("describe after delete: %d", code)
	}
	var evs EventsBody
	_, body = c.do("GET", "/v1/events?cluster=web", "")
	json.Unmarshal(body, &evs)
	var types []string
	for _, e := range evs.Events {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); !strings.Contains(got, "cluster.creating") || !strings.Contains(got, "cluster.modified") || !strings.HasSuffix(got, "cluster.deleted") {
		t.Fatalf("events: %s", got)
	}
	_, body = c.do("GET", "/v1/events?cluster=web&limit=1", "")
	json.Unmarshal(body, &evs)
	if len(evs.Events) != 1 || evs.Events[0].Type != "cluster.deleted" {
		t.Fatalf("newest event: %s", body)
	}
}
