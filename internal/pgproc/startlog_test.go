package pgproc

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartFailureShowsCollectorFatal starts a server whose TCP port another process's
// listener holds, with the logging collector on as the control plane runs its nodes: the
// start fails, and its error leads with PostgreSQL's FATAL, which went to the collector's file
// (the stderr log only says "redirecting log output to logging collector process"), and says
// the port was taken (ErrPortInUse). The same server then starts on a port that is free.
func TestStartFailureShowsCollectorFatal(t *testing.T) {
	root := testRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n, err := New(Config{DataDir: filepath.Join(root, "data"), Settings: map[string]string{
		"logging_collector": "on", "log_directory": "'log'", "log_destination": "'stderr,jsonlog'",
		"log_filename": "'postgresql-%Y-%m-%d_%H%M%S.log'"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	held, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for try := 1; try <= 2; try++ { // the second start's error shows only its own lines
		err = n.Start(ctx)
		if err == nil {
			n.Stop(context.Background())
			t.Fatal("the server started on a port another listener holds")
		}
		msg := err.Error()
		t.Logf("start %d: %v", try, msg)
		if !errors.Is(err, ErrPortInUse) {
			t.Errorf("start %d: the error does not say the port was taken (ErrPortInUse)", try)
		}
		head, _, _ := strings.Cut(msg, "\n")
		if !strings.Contains(head, "FATAL: could not create any TCP/IP sockets") {
			t.Errorf("start %d: the error's first line does not carry the FATAL: %q", try, head)
		}
		for _, want := range []string{"redirecting log output to logging collector process",
			"the logging collector's " + filepath.Join(n.DataDir, "log"), "Address already in use"} {
			if !strings.Contains(msg, want) {
				t.Errorf("start %d: the error does not contain %q", try, want)
			}
		}
		if c := strings.Count(msg, "redirecting log output"); c != 1 {
			t.Errorf("start %d: %d lines of 'redirecting log output' in the error, want this start's 1", try, c)
		}
		if c := strings.Count(msg, "starting PostgreSQL"); c != 1 {
			t.Errorf("start %d: %d lines of 'starting PostgreSQL' in the error, want this start's 1", try, c)
		}
		if t.Failed() {
			t.FailNow()
		}
		time.Sleep(1100 * time.Millisecond) // a new collector file name (seconds in log_filename)
	}
	if n.Port, err = FreePort(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start on a free port: %v", err)
	}
	n.Stop(context.Background())
}

// TestFreePort: ports are below the kernel's ephemeral range, bindable, never handed out twice
// (within portHold), and the reservation keeps another process's FreePort off them.
func TestFreePort(t *testing.T) {
	lo, _ := ephemeralRange()
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if lo-portSpan >= 1024 && (p >= lo || p < lo-portSpan) {
			t.Fatalf("port %d is not in [%d, %d), below the ephemeral range", p, lo-portSpan, lo)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	// Another process: its own memory is empty, only the files guard.
	for p := range seen {
		if reserve(p, time.Now()) {
			t.Fatalf("port %d, reserved by this process, was reserved again", p)
		}
	}
}
