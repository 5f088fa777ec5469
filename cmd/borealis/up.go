package main

import (
	"context"
	"errors"

	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/store"
)

// Defaults of `make up`: the cluster endpoint on 5433 (PORT= changes it), the reader endpoint on
// the next port, the API on 127.0.0.1:8433.
const (
	defaultUpCluster = "borealis"
	defaultUpPort    = 5433
)

func init() {
	commands["up"] = command{summary: "run the control plane with a dev cluster (1 writer, 1 reader) until Ctrl-C", run: runUp}
}

type upOptions struct {
	cpOptions
	master                    cluster.MasterUserInput
	name                      string
	port, readerPort, readers int
	// scaling is the serverless configuration the dev cluster is created with (validated
	// before anything starts; an existing cluster keeps its own).
	scaling cluster.CreateInput
}

func runUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	var o upOptions
	fs.IntVar(&o.port, "port", defaultUpPort, "cluster (writer) endpoint port on 127.0.0.1")
	fs.IntVar(&o.readerPort, "reader-port", 0, "reader endpoint port on 127.0.0.1 (default: --port + 1)")
	addListenFlags(fs, &o.cpOptions)
	fs.StringVar(&o.home, "home", envOr("BOREALIS_HOME", defaultHome), "state directory; BOREALIS_HOME")
	fs.StringVar(&o.name, "name", defaultUpCluster, "name of the dev cluster")
	fs.IntVar(&o.readers, "readers", 1, "readers of the dev cluster when it is first created")
	mf := addMasterUserFlags(fs, true)
	sf := addScalingFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o.master = mf.input()
	if o.readerPort == 0 {
		o.readerPort = o.port + 1
	}
	if err := sf.refuseZero(fs); err != nil {
		return err
	}
	o.scaling = cluster.CreateInput{MinCapacity: *sf.min, MaxCapacity: *sf.max, AutoPause: *sf.autoPause, SecondsUntilAutoPause: *sf.secondsUntilPause,
		SecondsBeforeTimeout: *sf.secondsBefore, TimeoutAction: *sf.timeoutAction}
	in := o.createInput()
	if err := in.Validate(); err != nil {
		return usageFromField(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return up(ctx, o, stdout)
}

// createInput is the dev cluster's creation: its name, ports, master user and serverless
// configuration (zero values take the defaults, as the API's create does).
func (o upOptions) createInput() cluster.CreateInput {
	in := o.scaling
	in.Name, in.Readers, in.Port, in.ReaderPort, in.MasterUserInput = o.name, o.readers, o.port, o.readerPort, o.master
	return in
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// up starts the control plane, creates the dev cluster unless the store has it (it then comes
// back as it was, its nodes adopted or restarted, on the requested ports), prints how to reach
// it, and stops everything cleanly when ctx ends.
func up(ctx context.Context, o upOptions, stdout io.Writer) error {
	// A taken endpoint port would leave the cluster incompatible-network after a minute of
	// creating it, and `up` waiting 5 minutes more for it to become available: say so now.
	if err := endpointPortsFree(o.listenAddr, o.port, o.readerPort); err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, "  %s\n", fmt.Sprintf(format, args...)) }
	existed := false
	cpo := o.cpOptions
	cpo.logf = logf
	cpo.beforeStartStores = func(st *store.Store) error {
		rec, err := st.Cluster(o.name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		existed = true
		if rec.Port != o.port || rec.ReaderPort != o.readerPort {
			rec.Port, rec.ReaderPort = o.port, o.readerPort
			return st.PutCluster(rec)
		}
		return nil
	}
	cp, err := startControlPlane(cpo)
	if err != nil {
		return err
	}
	stopAll := func() {
		fmt.Fprintln(stdout, "\nborealis: stopping the routers, the nodes and the control plane")
		cp.stop(true)
		fmt.Fprintln(stdout, "borealis: stopped cleanly")
	}
	if existed {
		fmt.Fprintf(stdout, "borealis: cluster %s found in %s, bringing it back\n", o.name, cp.home)
		// A cluster left paused or stopped stays so across a restart of the control plane, as on
		// Aurora; up was waiting for it to become available, for 5 minutes, and then gave up (a
		// container restarted after an auto-pause died so). up is asked for a running cluster:
		// start it, as `borealis cluster start` would; auto-pause applies again from there.
		if d, err := cp.manager.Describe(o.name); err == nil && (d.Status == cluster.StatusPaused || d.Status == cluster.StatusStopped) {
			fmt.Fprintf(stdout, "borealis: cluster %s was %s; starting it (as `borealis cluster start --name %s`)\n", o.name, d.Status, o.name)
			if _, err := cp.manager.Start(o.name); err != nil {
				stopAll()
				return fmt.Errorf("starting cluster %s: %w", o.name, err)
			}
		}
	} else {
		fmt.Fprintf(stdout, "borealis: creating cluster %s (1 writer, %d reader(s)) in %s\n", o.name, o.readers, cp.home)
		if _, err := cp.manager.Create(o.createInput()); err != nil {
			cp.stop(true)
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	d, err := cp.manager.WaitAvailable(wctx, o.name)
	cancel()
	if err != nil {
		stopAll()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w; see `borealis events --cluster %s` and the node logs under %s", err, o.name, cp.home)
	}
	user, db := d.MasterUsername, d.DatabaseName
	if user == "" {
		user = "postgres" // a cluster made before master users existed
	}
	if db == "" {
		db = "postgres"
	}
	sslmode := "disable"
	if cp.tls {
		sslmode = "require"
	}
	writerURI := fmt.Sprintf("postgres://%s@%s/%s?sslmode=%s", user, d.Endpoint, db, sslmode)
	readerURI := fmt.Sprintf("postgres://%s@%s/%s?sslmode=%s", user, d.ReaderEndpoint, db, sslmode)
	// The password is never printed: it is the one given, or in the file describe names.
	pw := "PGPASSWORD=<the --master-user-password> "
	if d.MasterUserSecret != nil {
		pw = fmt.Sprintf("PGPASSWORD=\"$(cat %s)\" ", d.MasterUserSecret.SecretFile)
	}
	fmt.Fprintf(stdout, "\nBorealis cluster %s is available: 1 writer, %d reader(s), master user %s\n", o.name, len(d.DBClusterMembers)-1, user)
	fmt.Fprintf(stdout, "  Cluster endpoint (writer): %s\n", writerURI)
	fmt.Fprintf(stdout, "      %spsql '%s'\n", pw, writerURI)
	fmt.Fprintf(stdout, "  Reader endpoint (readers): %s\n", readerURI)
	fmt.Fprintf(stdout, "      %spsql '%s'\n", pw, readerURI)
	if d.MasterUserSecret != nil {
		fmt.Fprintf(stdout, "  Master user password file: %s\n", d.MasterUserSecret.SecretFile)
	}
	if cp.tlsCertFile != "" {
		fmt.Fprintf(stdout, "  TLS certificate: %s (sslmode=verify-full sslrootcert=<it> to check it)\n", cp.tlsCertFile)
	}
	fmt.Fprintf(stdout, "  API: %s  token file: %s\n", cp.apiURL, cp.tokenFile)
	fmt.Fprintf(stdout, "  Metrics: %s/metrics\n", cp.apiURL)
	fmt.Fprintf(stdout, "  Try: %s cluster describe %s --home %s\n", os.Args[0], o.name, cp.home)
	fmt.Fprintf(stdout, "Press Ctrl-C to stop everything.\n\n")
	select {
	case <-ctx.Done():
		stopAll()
		return nil
	case err := <-cp.served:
		stopAll()
		return fmt.Errorf("API server stopped: %v", err)
	}
}

// endpointPortsFree checks that the cluster and reader endpoint ports can be bound, naming the
// one that cannot and how to pick others.
func endpointPortsFree(host string, port, readerPort int) error {
	if host == "" {
		host = "127.0.0.1"
	}
	for _, p := range []struct {
		what string
		port int
	}{{"cluster (writer)", port}, {"reader", readerPort}} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p.port)))
		if err != nil {
			return fmt.Errorf("the %s endpoint's port %d on %s is in use (%v): pick free ports with `make up PORT=N` (the reader endpoint takes N+1) or --port/--reader-port", p.what, p.port, host, err)
		}
		l.Close()
	}
	return nil
}
