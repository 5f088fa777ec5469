package borealis

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"

	"github.com/borealisdb/borealis/controlplane/api"
)

func request(t *testing.T, opts ...testcontainers.ContainerCustomizer) testcontainers.GenericContainerRequest {
	t.Helper()
	var req testcontainers.GenericContainerRequest
	for _, o := range opts {
		if err := o.Customize(&req); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

func TestOptionsSetTheImageEnvironment(t *testing.T) {
	req := request(t, WithDatabase("app"), WithUsername("alice"), WithPassword("pw-12345"), WithReaders(3),
		WithCapacity(0.5, 4), WithAutoPause(5))
	want := map[string]string{
		"BOREALIS_DATABASE": "app", "BOREALIS_MASTER_USER": "alice", "BOREALIS_MASTER_PASSWORD": "pw-12345",
		"BOREALIS_READERS": "3", "BOREALIS_MIN_CAPACITY": "0.5", "BOREALIS_MAX_CAPACITY": "4",
		"BOREALIS_SECONDS_UNTIL_AUTO_PAUSE": "5", "BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS": "5",
	}
	for k, v := range want {
		if req.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, req.Env[k], v)
		}
	}
	// Aurora's range needs no dev floor.
	if req := request(t, WithAutoPause(600)); req.Env["BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS"] != "" {
		t.Errorf("WithAutoPause(600) set the dev floor %q", req.Env["BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS"])
	}
}

func TestOptionsRefuseBadValues(t *testing.T) {
	for name, o := range map[string]testcontainers.ContainerCustomizer{
		"readers -1": WithReaders(-1), "readers 16": WithReaders(16),
		"capacity 4,1": WithCapacity(4, 1), "auto-pause 0": WithAutoPause(0), "auto-pause 1 day+1": WithAutoPause(86401),
	} {
		var req testcontainers.GenericContainerRequest
		if err := o.Customize(&req); err == nil || !strings.Contains(err.Error(), "borealis.With") {
			t.Errorf("%s: got %v, want an error naming the option", name, err)
		}
	}
}

func TestInitScriptsGoToTheInitDirectory(t *testing.T) {
	req := request(t, WithInitScripts("testdata/001-schema.sql", "/x/b.sh"), WithOrderedInitScripts("z.sql", "a.sql"))
	var got []string
	for _, f := range req.Files {
		got = append(got, f.ContainerFilePath)
	}
	want := "/docker-entrypoint-initdb.d/001-schema.sql /docker-entrypoint-initdb.d/b.sh /docker-entrypoint-initdb.d/000-z.sql /docker-entrypoint-initdb.d/001-a.sql"
	if strings.Join(got, " ") != want {
		t.Fatalf("files %v, want %s", got, want)
	}
}

func TestConnectionURIEscapesCredentials(t *testing.T) {
	got := buildURI("al ice", "p:w%d#?", "127.0.0.1:5433", "app", []string{"sslmode=disable", "application_name=t"})
	want := "postgres://al%20ice:p%3Aw%25d%23%3F@127.0.0.1:5433/app?sslmode=disable&application_name=t"
	if got != want {
		t.Fatalf("buildURI = %s\nwant       %s", got, want)
	}
}

func TestEnvDefaultsAreTheImages(t *testing.T) {
	m := envMap([]string{"BOREALIS_MASTER_PASSWORD=pw-12345", "BOREALIS_DATABASE=", "PATH=/bin"})
	if m[envUser] != "admin" || m[envDatabase] != "postgres" || m[envReaders] != "1" || m[envPassword] != "pw-12345" {
		t.Fatalf("envMap = %v", m)
	}
}

func TestSnapshotNameRules(t *testing.T) {
	c := &Container{dbName: "postgres", snapshotName: defaultSnapshotName}
	if _, err := c.snapshotConfig(nil); err == nil || !strings.Contains(err.Error(), "WithDatabase") {
		t.Errorf("snapshot of postgres: %v", err)
	}
	c.dbName = "app"
	if name, err := c.snapshotConfig(nil); err != nil || name != defaultSnapshotName {
		t.Errorf("default snapshot: %q, %v", name, err)
	}
	if _, err := c.snapshotConfig([]SnapshotOption{WithSnapshotName("app")}); err == nil {
		t.Error("a snapshot named like the database was accepted")
	}
	if quoteLiteral("it's") != "'it''s'" {
		t.Errorf("quoteLiteral = %s", quoteLiteral("it's"))
	}
}

// The client against the real API handler: an unknown route is ErrNotSupported, a wrong token a
// 401 APIError.
func TestClientErrors(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(api.Handler(api.Config{Token: token}))
	defer srv.Close()
	ctx := context.Background()
	cl := NewClient(srv.URL, token, ClusterName)
	call := func(ctx context.Context) error {
		return cl.do(ctx, "POST", cl.clusterPath("/no-such-call"), nil, nil, "no such call")
	}
	if err := call(ctx); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "make image") {
		t.Errorf("unknown route: %v, want ErrNotSupported with the fix", err)
	}
	bad := NewClient(srv.URL, strings.Repeat("x", 32), ClusterName)
	_, err := bad.Describe(ctx)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != "Unauthorized" {
		t.Errorf("wrong token: %v, want a 401 APIError", err)
	}
	dead := NewClient("http://127.0.0.1:1", token, ClusterName)
	if _, err := dead.Describe(ctx); err == nil || errors.As(err, &apiErr) {
		t.Errorf("no server: %v, want a transport error", err)
	}
}
