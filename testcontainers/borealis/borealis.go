package borealis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// startupDeadline bounds Run's wait for the cluster (measured: 40 s on a 2-core machine at load
// average 28).
const startupDeadline = 5 * time.Minute

// Container is a running Borealis dev cluster.
type Container struct {
	testcontainers.Container
	user, password, dbName string
	readers                int
	apiToken               string
	snapshotName           string
}

// Run starts the Borealis image img (for example "borealis:dev", built by `make image`) and waits
// until the cluster is available: control plane answering, writer and readers available, init
// scripts run, and both endpoints accepting an authenticated query. Options are the With*
// functions of this package and any testcontainers.ContainerCustomizer.
//
// As with testcontainers.Run, a non-nil Container may come back with an error: terminate it.
func Run(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	all := make([]testcontainers.ContainerCustomizer, 0, 4+len(opts))
	all = append(all,
		testcontainers.WithEnv(map[string]string{
			envPassword: defaultPassword,
			envReaders:  "1",
			envAPIToken: token,
		}),
		testcontainers.WithExposedPorts(ClusterPort, ReaderPort, APIPort),
		// Creating a writer and a reader takes tens of seconds on a busy machine.
		testcontainers.WithWaitStrategyAndDeadline(startupDeadline, ForCluster().WithStartupTimeout(startupDeadline)),
	)
	all = append(all, opts...)

	ctr, err := testcontainers.Run(ctx, img, all...)
	var c *Container
	if ctr != nil {
		c = &Container{Container: ctr, snapshotName: defaultSnapshotName}
		if ferr := c.readEnv(ctx); ferr != nil && err == nil {
			err = ferr
		}
	}
	if err != nil {
		return c, fmt.Errorf("run borealis: %w", err)
	}
	return c, nil
}

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// readEnv takes user, password, database, readers and token from the container as it was created,
// after every option had its say.
func (c *Container) readEnv(ctx context.Context) error {
	inspect, err := c.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect borealis: %w", err)
	}
	env := envMap(inspect.Config.Env)
	c.user, c.password, c.dbName, c.apiToken = env[envUser], env[envPassword], env[envDatabase], env[envAPIToken]
	fmt.Sscan(env[envReaders], &c.readers)
	return nil
}

// envMap is the container's environment with the image's defaults filled in.
func envMap(env []string) map[string]string {
	m := map[string]string{envUser: defaultUser, envDatabase: defaultDatabase, envReaders: "1"}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && v != "" {
			m[k] = v
		}
	}
	return m
}

// Username, Password and Database are the master user's credentials and the cluster's database.
func (c *Container) Username() string { return c.user }
func (c *Container) Password() string { return c.password }
func (c *Container) Database() string { return c.dbName }

// Readers is the number of readers the cluster was created with.
func (c *Container) Readers() int { return c.readers }

// ConnectionString is the URI of the cluster (writer) endpoint, like the postgres module's:
// args are extra parameters such as "sslmode=disable" or "application_name=x".
func (c *Container) ConnectionString(ctx context.Context, args ...string) (string, error) {
	return c.endpointURI(ctx, ClusterPort, c.dbName, args)
}

// ReaderConnectionString is the URI of the reader endpoint, which balances across the readers.
func (c *Container) ReaderConnectionString(ctx context.Context, args ...string) (string, error) {
	return c.endpointURI(ctx, ReaderPort, c.dbName, args)
}

// MustConnectionString is ConnectionString that panics on error.
func (c *Container) MustConnectionString(ctx context.Context, args ...string) string {
	s, err := c.ConnectionString(ctx, args...)
	if err != nil {
		panic(err)
	}
	return s
}

func (c *Container) endpointURI(ctx context.Context, port, db string, args []string) (string, error) {
	hostPort, err := c.PortEndpoint(ctx, port, "")
	if err != nil {
		return "", err
	}
	return buildURI(c.user, c.password, hostPort, db, args), nil
}

func buildURI(user, password, hostPort, db string, args []string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: hostPort, Path: "/" + db,
		RawQuery: strings.Join(args, "&")}
	return u.String()
}

// APIURL is the control plane's API base URL as the host sees it.
func (c *Container) APIURL(ctx context.Context) (string, error) {
	return c.PortEndpoint(ctx, APIPort, "http")
}

// APIToken is the API's bearer token (Run generates one per container).
func (c *Container) APIToken() string { return c.apiToken }
