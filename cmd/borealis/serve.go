package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/logs"
	"github.com/borealisdb/borealis/controlplane/metrics"
	"github.com/borealisdb/borealis/controlplane/router"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/safefile"
)

// Defaults of the control plane; `borealis up` and `make up` use them too.
const (
	defaultAPIAddr = "127.0.0.1:8433"
	defaultHome    = ".borealis"
	// apiInfoFile, in the home, tells CLI commands where the running control plane listens.
	apiInfoFile = "api.json"
	tokenFile   = "api-token"
)

func init() {
	commands["serve"] = command{summary: "run the control plane (API, clusters, routers) in the foreground", run: runServe}
}

// apiInfo is written to <home>/api.json while a control plane runs.
type apiInfo struct {
	URL       string `json:"url"`
	TokenFile string `json:"token_file"`
	PID       int    `json:"pid"`
}

type cpOptions struct {
	home, apiAddr string
	// tlsMode is auto (the given certificate, else a generated one) or off.
	tlsMode string
	// listenAddr is the endpoints' bind address (default 127.0.0.1).
	listenAddr string
	// maxClients caps each endpoint's client connections (0: the router's default).
	maxClients int
	// metricsToken: /metrics requires the bearer token (always so off loopback).
	metricsToken    bool
	tlsCert, tlsKey string
	// otlpLogs is the OTLP/HTTP logs endpoint; empty: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, then
	// OTEL_EXPORTER_OTLP_ENDPOINT, else no export.
	otlpLogs string
	// otlpOriginal adds each record's jsonlog line to the export (log.record.original).
	otlpOriginal bool
	// noEnforce and noAutoscale turn capacity enforcement (cgroups) and autoscaling off.
	noEnforce, noAutoscale bool
	logf                   func(format string, args ...any)
	beforeStartStores      func(*store.Store) error
}

// controlPlane is a running control plane: store, cluster manager and API server.
type controlPlane struct {
	home      string
	store     *store.Store
	manager   *cluster.Manager
	logs      *logs.Service
	server    *http.Server
	apiURL    string
	tokenFile string
	served    chan error
	// tls is set when the endpoints terminate TLS; tlsCertFile is their certificate.
	tls         bool
	tlsCertFile string
}

// startControlPlane opens the home, the store and the token, adopts or restarts the stored
// clusters and serves the API.
func startControlPlane(o cpOptions) (*controlPlane, error) {
	apiLoopback, err := api.ParseAddress(o.apiAddr)
	if err != nil {
		return nil, usageError{"--api-address: " + err.Error()}
	}
	if o.maxClients < 0 {
		return nil, usagef("--max-client-connections must be 1 or more, got %d", o.maxClients)
	}
	if _, err := router.PoolIdleTimeoutFromEnv(); err != nil {
		return nil, usageError{err.Error()}
	}
	if o.listenAddr == "" {
		o.listenAddr = "127.0.0.1"
	}
	if net.ParseIP(o.listenAddr) == nil && o.listenAddr != "localhost" {
		return nil, usagef("--listen-address: %q is not an IP address (use 127.0.0.1, 0.0.0.0 or an address of this host)", o.listenAddr)
	}
	home, err := filepath.Abs(o.home)
	if err != nil {
		return nil, err
	}
	// The control plane's user owns the home; the nodes' user only passes through it.
	if err := cluster.PrepareHome(home); err != nil {
		return nil, err
	}
	tlsConfig, tlsCertFile, err := routerTLS(home, o.tlsMode, o.tlsCert, o.tlsKey, o.listenAddr)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{home: home, store: st, tokenFile: filepath.Join(home, tokenFile), served: make(chan error, 1),
		tls: tlsConfig != nil, tlsCertFile: tlsCertFile}
	fail := func(err error) (*controlPlane, error) {
		if cp.manager != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cp.manager.Close(ctx, true)
		}
		if cp.logs != nil {
			cp.logs.Close()
		}
		st.Close()
		return nil, err
	}
	if o.beforeStartStores != nil {
		if err := o.beforeStartStores(st); err != nil {
			return fail(err)
		}
	}
	token, err := api.LoadOrCreateToken(cp.tokenFile)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", o.apiAddr)
	if err != nil {
		return fail(fmt.Errorf("API on %s: %w (is another control plane running? pick another with --api)", o.apiAddr, err))
	}
	apiPort := 0
	if _, p, err := net.SplitHostPort(o.apiAddr); err == nil {
		apiPort, _ = strconv.Atoi(p)
	}
	otlp := o.otlpLogs
	if otlp == "" {
		otlp = os.Getenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
	}
	if otlp == "" {
		otlp = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if otlp != "" {
		if u, err := url.Parse(otlp); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ln.Close()
			return fail(usagef("--otlp-logs-endpoint %q: use an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/logs", otlp))
		}
	}
	cp.logs, err = logs.New(logs.Options{Home: home, Store: st, Logf: o.logf, Export: logs.ExportOptions{Endpoint: otlp, Original: o.otlpOriginal}})
	if err != nil {
		ln.Close()
		return fail(err)
	}
	cp.manager, err = cluster.NewManager(cluster.Options{Home: home, Store: st, Logf: o.logf, TLS: tlsConfig,
		ListenAddress: o.listenAddr, APIPort: apiPort, BeforeRemoveData: cp.logs.Flush, MaxClientConnections: o.maxClients,
		EnforceCapacity: !o.noEnforce, Autoscale: !o.noAutoscale})
	if err != nil {
		ln.Close()
		return fail(err)
	}
	cp.logs.Start()
	registry := metrics.NewRegistry(cp.manager)
	registry.MustRegister(cp.logs.Collector())
	cp.server = &http.Server{Handler: api.Handler(api.Config{Manager: cp.manager, Token: token, Registry: registry, Logs: cp.logs,
		MetricsToken: o.metricsToken || !apiLoopback}),
		ReadHeaderTimeout: 10 * time.Second}
	cp.apiURL = "http://" + clientAddr(ln.Addr().(*net.TCPAddr))
	go func() { cp.served <- cp.server.Serve(ln) }()
	info, _ := json.Marshal(apiInfo{URL: cp.apiURL, TokenFile: cp.tokenFile, PID: os.Getpid()})
	if err := safefile.WriteFile(filepath.Join(home, apiInfoFile), info, 0o644); err != nil {
		cp.stop(true)
		return nil, err
	}
	return cp, nil
}

// clientAddr is how a client on this host reaches a listener: loopback for a wildcard bind.
func clientAddr(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	}
	return a.String()
}

// addListenFlags registers the bind-address flags `serve` and `up` share.
func addListenFlags(fs *flag.FlagSet, o *cpOptions) {
	fs.StringVar(&o.apiAddr, "api-address", envOr("BOREALIS_API_ADDRESS", defaultAPIAddr),
		"API listen address host:port; off loopback (e.g. 0.0.0.0:8433 in a container) every route but /healthz needs the token; BOREALIS_API_ADDRESS")
	fs.StringVar(&o.apiAddr, "api", o.apiAddr, "same as --api-address")
	fs.StringVar(&o.listenAddr, "listen-address", envOr("BOREALIS_LISTEN_ADDRESS", "127.0.0.1"),
		"address the cluster endpoints listen on (0.0.0.0 in a container); BOREALIS_LISTEN_ADDRESS")
	fs.BoolVar(&o.metricsToken, "metrics-require-token", false, "/metrics needs the API token too (always so when the API is off loopback)")
	fs.IntVar(&o.maxClients, "max-client-connections", router.DefaultMaxClients, "client connections per endpoint; beyond it clients get SQLSTATE 53300")
	fs.StringVar(&o.tlsMode, "tls", "auto", "TLS on the endpoints: auto (--tls-cert/--tls-key, else a certificate generated into <home>/secrets) or off")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate for TLS termination in the routers")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM key for --tls-cert")
	fs.Func("enforce-capacity", "limit each node's memory and CPU to its capacity with a cgroup (needs root; default true)", boolNeg(&o.noEnforce))
	fs.Func("autoscale", "change capacity with the load between MinCapacity and MaxCapacity (default true)", boolNeg(&o.noAutoscale))
}

// boolNeg parses a boolean flag into its negation, so the zero value of the field means on.
func boolNeg(off *bool) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, not %q", s)
		}
		*off = !v
		return nil
	}
}

// stop ends the API and the manager; with stopNodes the nodes are stopped cleanly.
func (cp *controlPlane) stop(stopNodes bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = cp.server.Shutdown(ctx)
	cp.manager.Close(ctx, stopNodes)
	cp.logs.Close() // after the nodes stopped: their last lines are collected
	os.Remove(filepath.Join(cp.home, apiInfoFile))
	cp.store.Close()
}

func timestampedLogf(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var o cpOptions
	fs.StringVar(&o.home, "home", envOr("BOREALIS_HOME", defaultHome), "state directory (store, token, node data); BOREALIS_HOME")
	addListenFlags(fs, &o)
	fs.BoolVar(&o.otlpOriginal, "otlp-logs-original", false, "add each exported record's jsonlog line as the attribute log.record.original (doubles the bytes sent)")
	fs.StringVar(&o.otlpLogs, "otlp-logs-endpoint", "", "export log groups as OpenTelemetry logs to this OTLP/HTTP URL (default: $OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, $OTEL_EXPORTER_OTLP_ENDPOINT)")
	leave := fs.Bool("leave-running", false, "on SIGINT/SIGTERM leave the nodes running for the next control plane to adopt")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o.logf = timestampedLogf(stderr)
	cp, err := startControlPlane(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "borealis control plane: API %s, token file %s, home %s\n", cp.apiURL, cp.tokenFile, cp.home)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		fmt.Fprintf(stdout, "borealis control plane: %v, stopping (nodes %s)\n", s, map[bool]string{true: "left running", false: "stopped"}[*leave])
		cp.stop(!*leave)
		return nil
	case err := <-cp.served:
		cp.stop(true)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("API server: %w", err)
	}
}
