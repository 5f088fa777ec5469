package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/cluster/clustertest"
	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// newHome makes a home the server user can enter (t.TempDir's parent is private to root).
func newHome(t *testing.T) string { return clustertest.NewHome(t, "borealis-cli-") }

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for len(ports) < n {
		p, err := pgproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		dup := false
		for _, q := range ports {
			dup = dup || q == p
		}
		if !dup {
			ports = append(ports, p)
		}
	}
	return ports
}

// TestUp runs `borealis up` as `make up` does: both printed endpoints work (a row written through
// the cluster endpoint is read on a standby through the reader endpoint), the CLI reaches the
// printed API with the printed token file, and Ctrl-C stops everything.
func TestUp(t *testing.T) {
	pgtest.RequireInstalled(t)
	home := newHome(t)
	ports := freePorts(t, 3)
	o := upOptions{cpOptions: cpOptions{home: home, apiAddr: fmt.Sprintf("127.0.0.1:%d", ports[2])}, name: "dev", port: ports[0], readerPort: ports[1], readers: 1,
		master:  cluster.MasterUserInput{MasterUsername: "dev", MasterUserPassword: "dev-password", DatabaseName: "devdb"},
		scaling: cluster.CreateInput{MinCapacity: 1, MaxCapacity: 4, SecondsBeforeTimeout: 120}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- up(ctx, o, pw)
		pw.Close()
	}()
	var writerURI, readerURI, tokenPath string
	var transcript strings.Builder
	lines := bufio.NewScanner(pr)
	for lines.Scan() && (writerURI == "" || readerURI == "" || tokenPath == "") {
		line := strings.TrimSpace(lines.Text())
		transcript.WriteString(line + "\n")
		if v, ok := strings.CutPrefix(line, "Cluster endpoint (writer): "); ok {
			writerURI = v
		}
		if v, ok := strings.CutPrefix(line, "Reader endpoint (readers): "); ok {
			readerURI = v
		}
		if _, v, ok := strings.Cut(line, "token file: "); ok {
			tokenPath = v
		}
	}
	if writerURI == "" || readerURI == "" || tokenPath == "" {
		t.Fatalf("up did not print both endpoints and the token file:\n%s\n(exit: %v)", transcript.String(), <-done)
	}
	var after bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&after, pr); close(copied) }()
	if fi, err := os.Stat(tokenPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v %v", tokenPath, fi, err)
	}

	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	defer ccancel()
	// The printed URIs carry no password; the server asks for one (SCRAM) and gets the given one.
	if !strings.Contains(writerURI, "dev@") || !strings.Contains(writerURI, "/devdb?sslmode=require") || strings.Contains(writerURI, "dev-password") {
		t.Fatalf("printed writer URI %s: want user dev, database devdb, sslmode=require and no password", writerURI)
	}
	if _, err := pgx.Connect(cctx, writerURI); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("connecting without a password: %v, want a password failure", err)
	}
	writerURI = strings.Replace(writerURI, "dev@", "dev:dev-password@", 1)
	readerURI = strings.Replace(readerURI, "dev@", "dev:dev-password@", 1)
	w, err := pgx.Connect(cctx, writerURI)
	if err != nil {
		t.Fatalf("printed cluster endpoint %s: %v", writerURI, err)
	}
	defer w.Close(cctx)
	if _, err := w.Exec(cctx, "CREATE TABLE seed (v text); INSERT INTO seed VALUES ('split')"); err != nil {
		t.Fatal(err)
	}
	r, err := pgx.Connect(cctx, readerURI)
	if err != nil {
		t.Fatalf("printed reader endpoint %s: %v", readerURI, err)
	}
	defer r.Close(cctx)
	var v string
	var recovery bool
	for r.QueryRow(cctx, "SELECT v, pg_is_in_recovery() FROM seed").Scan(&v, &recovery) != nil {
		if cctx.Err() != nil {
			t.Fatal("the row never reached the reader endpoint")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v != "split" || !recovery {
		t.Fatalf("reader endpoint: %q, in recovery %v", v, recovery)
	}

	var out, errb bytes.Buffer
	if code := run([]string{"cluster", "describe", "dev", "--home", home, "--output", "json"}, &out, &errb); code != 0 {
		t.Fatalf("cluster describe: exit %d: %s", code, errb.String())
	}
	var list api.ClustersBody
	if err := json.Unmarshal(out.Bytes(), &list); err != nil || len(list.DBClusters) != 1 || list.DBClusters[0].Status != "available" {
		t.Fatalf("describe JSON: %v %s", err, out.String())
	}
	// up's serverless flags (--max-capacity, --seconds-before-timeout) shaped the new cluster.
	if sc := list.DBClusters[0].ScalingConfigurationInfo; sc.MaxCapacity != 4 || sc.SecondsBeforeTimeout != 120 || sc.MinCapacity != 1 {
		t.Fatalf("the dev cluster's scaling configuration %+v, want 1-4 ACU and 120 s", sc)
	}
	out.Reset()
	if code := run([]string{"events", "--home", home, "--cluster", "dev"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "cluster.available") {
		t.Fatalf("events: exit %d: %s %s", code, out.String(), errb.String())
	}

	w.Close(cctx)
	r.Close(cctx)
	// Leave the cluster stopped: the next up must start it (below).
	if code := run([]string{"cluster", "stop", "dev", "--wait", "--home", home}, &out, &errb); code != 0 {
		t.Fatalf("cluster stop: exit %d: %s", code, errb.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up did not stop cleanly: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("up did not stop within 2 minutes of Ctrl-C")
	}
	<-copied
	if !strings.Contains(after.String(), "stopped cleanly") {
		t.Fatalf("no clean-stop message:\n%s", after.String())
	}
	for _, d := range []string{"dev-1", "dev-2"} {
		if _, _, err := pgproc.ReadPostmasterPID(filepath.Join(home, "clusters", "dev", d)); err == nil {
			t.Fatalf("node %s still has a postmaster.pid after up stopped", d)
		}
	}
	if _, err := os.Stat(filepath.Join(home, apiInfoFile)); err == nil {
		t.Fatal("api.json left behind after a clean stop")
	}

	// A cluster left stopped (or paused: it stays so across a restart of the control plane) is
	// started by the next up, which then prints its endpoints; up used to wait 5 minutes for it
	// to become available and give up, and a container restarted after an auto-pause died so.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	pr2, pw2 := io.Pipe()
	done2 := make(chan error, 1)
	go func() {
		done2 <- up(ctx2, o, pw2)
		pw2.Close()
	}()
	var again strings.Builder
	second := bufio.NewScanner(pr2)
	for second.Scan() && !strings.Contains(second.Text(), "Cluster endpoint (writer): ") {
		again.WriteString(second.Text() + "\n")
	}
	go io.Copy(io.Discard, pr2)
	if !strings.Contains(second.Text(), "Cluster endpoint (writer): ") || !strings.Contains(again.String(), "cluster dev was stopped; starting it") {
		cancel2()
		t.Fatalf("a second up of a stopped cluster did not start it and print its endpoints:\n%s\n(exit: %v)", again.String(), <-done2)
	}
	c, err := pgx.Connect(ctx2, writerURI)
	if err != nil {
		t.Fatalf("cluster endpoint after the second up: %v", err)
	}
	if err := c.QueryRow(ctx2, "SELECT v FROM seed").Scan(&v); err != nil || v != "split" {
		t.Fatalf("the row after the second up: %q, %v", v, err)
	}
	c.Close(ctx2)
	cancel2()
	select {
	case err := <-done2:
		if err != nil {
			t.Fatalf("the second up did not stop cleanly: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the second up did not stop within 2 minutes of Ctrl-C")
	}
}

// TestUpRefusesTakenPort: `make up PORT=N` with N taken fails at once, naming the port and how
// to pick another, before creating anything: it used to create the whole cluster, leave it
// incompatible-network and wait 5 minutes for it to become available.
func TestUpRefusesTakenPort(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	free := freePorts(t, 2)
	began := time.Now()
	code, _, errOut := cli(t, "up", "--port", strconv.Itoa(port), "--reader-port", strconv.Itoa(free[0]), "--api-address", fmt.Sprintf("127.0.0.1:%d", free[1]), "--home", home)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("cluster (writer) endpoint's port %d on 127.0.0.1 is in use", port)) || !strings.Contains(errOut, "make up PORT=N") {
		t.Fatalf("up with its port taken: exit %d, %s", code, errOut)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("the refusal took %s", took)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("up created %s before refusing: %v", home, err)
	}
}
