package borealis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The entrypoint logs startLine when it starts and readyLine once the cluster is available and
// the init scripts ran; a restarted container's log holds both from every start.
const (
	startLine = "borealis-entrypoint: starting"
	readyLine = "borealis-entrypoint: container ready"
)

// ClusterStrategy waits until the cluster is available, not just a port: the entrypoint has
// logged that it is ready (init scripts done), the API describes the cluster as available, and
// the cluster endpoint (and the reader endpoint when there are readers) answers a query as the
// master user.
type ClusterStrategy struct {
	timeout time.Duration
	poll    time.Duration
}

var (
	_ wait.Strategy        = (*ClusterStrategy)(nil)
	_ wait.StrategyTimeout = (*ClusterStrategy)(nil)
)

// ForCluster returns the wait strategy Run uses (5 minutes by default there).
func ForCluster() *ClusterStrategy {
	return &ClusterStrategy{timeout: 2 * time.Minute, poll: 250 * time.Millisecond}
}

// WithStartupTimeout bounds the wait.
func (s *ClusterStrategy) WithStartupTimeout(d time.Duration) *ClusterStrategy {
	s.timeout = d
	return s
}

// Timeout implements wait.StrategyTimeout.
func (s *ClusterStrategy) Timeout() *time.Duration { return &s.timeout }

func (s *ClusterStrategy) String() string { return "borealis cluster available" }

// WaitUntilReady implements wait.Strategy.
func (s *ClusterStrategy) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	var last error
	for {
		err := s.check(ctx, target)
		if err == nil {
			return nil
		}
		var exited *exitedError
		if errors.As(err, &exited) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("borealis cluster not available after %s: %v%s", time.Since(start).Round(time.Second), last, logTail(target))
		case <-time.After(s.poll):
		}
	}
}

type exitedError struct{ msg string }

func (e *exitedError) Error() string { return e.msg }

func (s *ClusterStrategy) check(ctx context.Context, target wait.StrategyTarget) error {
	state, err := target.State(ctx)
	if err != nil {
		return err
	}
	if !state.Running {
		return &exitedError{fmt.Sprintf("borealis container is %s (exit code %d)%s", state.Status, state.ExitCode, logTail(target))}
	}
	logs, err := readLogs(ctx, target)
	if err != nil {
		return err
	}
	if strings.LastIndex(logs, readyLine) < strings.LastIndex(logs, startLine) || !strings.Contains(logs, readyLine) {
		return errors.New("the entrypoint has not reported ready yet")
	}
	inspect, err := target.Inspect(ctx)
	if err != nil {
		return err
	}
	env := envMap(inspect.Config.Env)
	host, err := target.Host(ctx)
	if err != nil {
		return err
	}
	endpoint := func(port string) (string, error) {
		p, err := target.MappedPort(ctx, port)
		if err != nil {
			return "", err
		}
		return net.JoinHostPort(host, p.Port()), nil
	}
	apiAddr, err := endpoint(APIPort)
	if err != nil {
		return err
	}
	d, err := NewClient("http://"+apiAddr, env[envAPIToken], ClusterName).Describe(ctx)
	if err != nil {
		return err
	}
	// A short auto-pause (WithAutoPause) can pause the cluster between the ready line and this
	// look, a restarted container's above all: a login resumes it, so log in, then look again.
	paused := d.Status == "paused"
	if d.Status != "available" && !paused {
		return fmt.Errorf("cluster status is %s", d.Status)
	}
	ports := []string{ClusterPort}
	if env[envReaders] != "0" {
		ports = append(ports, ReaderPort)
	}
	for _, port := range ports {
		hp, err := endpoint(port)
		if err != nil {
			return err
		}
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = ping(qctx, buildURI(env[envUser], env[envPassword], hp, env[envDatabase], []string{"sslmode=disable"}))
		cancel()
		if err != nil {
			return fmt.Errorf("endpoint %s: %w", port, err)
		}
	}
	if paused {
		return errors.New("cluster status was paused; the logins resumed it")
	}
	return nil
}

func ping(ctx context.Context, uri string) error {
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func readLogs(ctx context.Context, target wait.StrategyTarget) (string, error) {
	rc, err := target.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var b bytes.Buffer
	_, err = io.Copy(&b, rc)
	return b.String(), err
}

// logTail is the end of the container's log, for errors.
func logTail(target wait.StrategyTarget) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	logs, err := readLogs(ctx, target)
	if err != nil || logs == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(logs, "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "; container log ends with:\n" + strings.Join(lines, "\n")
}
