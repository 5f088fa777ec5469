package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/metrics"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
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
	home, apiAddr     string
	tlsCert, tlsKey   string
	logf              func(format string, args ...any)
	beforeStartStores func(*store.Store) error
}

// controlPlane is a running control plane: store, cluster manager and API server.
type controlPlane struct {
	home      string
	store     *store.Store
	manager   *cluster.Manager
	server    *http.Server
	apiURL    string
	tokenFile string
	served    chan error
}

// startControlPlane opens the home, the store and the token, adopts or restarts the stored
// clusters and serves the API.
func startControlPlane(o cpOptions) (*controlPlane, error) {
	if err := api.CheckLoopback(o.apiAddr); err != nil {
		return nil, usageError{"--api: " + err.Error()}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	home, err := filepath.Abs(o.home)
	if err != nil {
		return nil, err
	}
	// The server user must reach node data under the home.
	if err := pgproc.PrepareDir(home, 0o755); err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("loading the router's TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{home: home, store: st, tokenFile: filepath.Join(home, tokenFile), served: make(chan error, 1)}
	fail := func(err error) (*controlPlane, error) {
		if cp.manager != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cp.manager.Close(ctx, true)
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
	cp.manager, err = cluster.NewManager(cluster.Options{Home: home, Store: st, Logf: o.logf, TLS: tlsConfig})
	if err != nil {
		ln.Close()
		return fail(err)
	}
	cp.server = &http.Server{Handler: api.Handler(api.Config{Manager: cp.manager, Token: token, Registry: metrics.NewRegistry(cp.manager)}),
		ReadHeaderTimeout: 10 * time.Second}
	cp.apiURL = "http://" + ln.Addr().String()
	go func() { cp.served <- cp.server.Serve(ln) }()
	info, _ := json.Marshal(apiInfo{URL: cp.apiURL, TokenFile: cp.tokenFile, PID: os.Getpid()})
	if err := os.WriteFile(filepath.Join(home, apiInfoFile), info, 0o644); err != nil {
		cp.stop(true)
		return nil, err
	}
	return cp, nil
}

// stop ends the API and the manager; with stopNodes the nodes are stopped cleanly.
func (cp *controlPlane) stop(stopNodes bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = cp.server.Shutdown(ctx)
	cp.manager.Close(ctx, stopNodes)
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
	home := fs.String("home", envOr("BOREALIS_HOME", defaultHome), "state directory (store, token, node data); BOREALIS_HOME")
	apiAddr := fs.String("api", defaultAPIAddr, "API listen address (loopback only)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate for TLS termination in the routers")
	tlsKey := fs.String("tls-key", "", "PEM key for --tls-cert")
	leave := fs.Bool("leave-running", false, "on SIGINT/SIGTERM leave the nodes running for the next control plane to adopt")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cp, err := startControlPlane(cpOptions{home: *home, apiAddr: *apiAddr, tlsCert: *tlsCert, tlsKey: *tlsKey, logf: timestampedLogf(stderr)})
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
