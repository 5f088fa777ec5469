package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestSeedClientCode is the "done when": the seed document's Python client (psycopg2,
// from Debian's python3-psycopg2) runs against a real `borealis up` process — started as
// `make up` starts it, the master user coming from BOREALIS_MASTER_* variables — as the master
// user, changed only in its connection settings and the access method word. psycopg2's default
// sslmode=prefer lands on the endpoint's generated certificate, so the session is TLS.
func TestSeedClientCode(t *testing.T) {
	pgtest.RequireInstalled(t)
	// Debian's interpreter, where python3-psycopg2 lives (a pyenv or venv python3 earlier on
	// PATH would not have it).
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatal("/usr/bin/python3 is missing: run scripts/deps.sh (it installs python3-psycopg2)")
	}
	if out, err := exec.Command(python, "-c", "import psycopg2").CombinedOutput(); err != nil {
		t.Fatalf("psycopg2 is missing (%v: %s): run scripts/deps.sh", err, out)
	}
	home := newHome(t)
	ports := freePorts(t, 3)
	up := exec.Command(os.Args[0], "up", "--home", home, "--port", strconv.Itoa(ports[0]), "--reader-port", strconv.Itoa(ports[1]),
		"--api-address", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--readers", "0")
	up.Env = append(os.Environ(), "BOREALIS_TEST_RUN_CLI=1", "BOREALIS_MASTER_USER=admin",
		"BOREALIS_MASTER_PASSWORD=password", "BOREALIS_DATABASE=vector_db")
	pr, pw := io.Pipe()
	up.Stdout, up.Stderr = pw, pw
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var transcript bytes.Buffer
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			transcript.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "Press Ctrl-C") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	log := func() string {
		mu.Lock()
		defer mu.Unlock()
		return transcript.String()
	}
	stopped := false
	defer func() {
		if !stopped {
			up.Process.Signal(syscall.SIGINT)
			up.Wait()
		}
		pw.Close()
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Minute):
		t.Fatalf("borealis up did not come up:\n%s", log())
	}
	if !strings.Contains(log(), "postgres://admin@127.0.0.1:"+strconv.Itoa(ports[0])+"/vector_db?sslmode=require") {
		t.Fatalf("up did not print the master user's URI:\n%s", log())
	}

	py := exec.Command(python, "testdata/seed_client.py")
	py.Env = append(os.Environ(), "SEED_HOST=127.0.0.1", "SEED_PORT="+strconv.Itoa(ports[0]), "SEED_DATABASE=vector_db",
		"SEED_USER=admin", "SEED_PASSWORD=password")
	var stderr bytes.Buffer
	py.Stderr = &stderr
	out, err := py.Output()
	if err != nil {
		t.Fatalf("seed client: %v\n%s\n%s\nborealis up:\n%s", err, out, stderr.String(), log())
	}
	var got struct {
		WrongPassword string `json:"wrong_password"`
		Hits          []struct {
			ID         int            `json:"id"`
			Content    string         `json:"content"`
			Metadata   map[string]any `json:"metadata"`
			Similarity float64        `json:"similarity"`
		} `json:"hits"`
		IndexAM   string `json:"index_am"`
		Superuser bool   `json:"superuser"`
		Plan      string `json:"plan"`
		SSL       bool   `json:"ssl"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("seed client output %q: %v", out, err)
	}
	t.Logf("seed client: %d hits, top %+v; index %s; ssl %v; wrong password: %s", len(got.Hits), got.Hits, got.IndexAM, got.SSL, got.WrongPassword)
	if !strings.Contains(got.WrongPassword, "password authentication failed") {
		t.Errorf("a wrong password gave %q, want a password authentication failure", got.WrongPassword)
	}
	// Random 1536-dimensional vectors are nearly orthogonal: above the 0.8 threshold only the
	// query's own document is similar.
	if len(got.Hits) != 1 || got.Hits[0].Content != "document 7" || got.Hits[0].Similarity < 0.999 || got.Hits[0].Metadata["source"] != "seed" {
		t.Errorf("cosine search with threshold 0.8: %+v, want document 7 alone with similarity 1", got.Hits)
	}
	if got.IndexAM != "borealis_hnsw" || !strings.Contains(got.Plan, "documents_embedding_idx") {
		t.Errorf("index access method %q, plan:\n%s", got.IndexAM, got.Plan)
	}
	if got.Superuser {
		t.Error("the master user is a superuser")
	}
	if !got.SSL {
		t.Error("psycopg2's default sslmode=prefer did not get TLS from the endpoint")
	}
	psycopg2AcrossReboot(t, python, home, ports[0], log)

	up.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- up.Wait() }()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("borealis up exited with %v:\n%s", err, log())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("borealis up did not stop on Ctrl-C:\n%s", log())
	}
}

// psycopg2AcrossReboot holds an idle psycopg2 session (TLS, application_name, search_path, a
// prepared statement) on the cluster endpoint of `borealis up` while `borealis cluster reboot`
// restarts the writer: the same connection then keeps working, with its state, on a new
// backend, and the client sees no error.
func psycopg2AcrossReboot(t *testing.T, python, home string, port int, log func() string) {
	py := exec.Command(python, "testdata/reboot_client.py")
	py.Env = append(os.Environ(), "SEED_HOST=127.0.0.1", "SEED_PORT="+strconv.Itoa(port), "SEED_DATABASE=vector_db",
		"SEED_USER=admin", "SEED_PASSWORD=password")
	stdin, err := py.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := py.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	py.Stderr = &stderr
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer py.Process.Kill()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready ") {
		t.Fatalf("psycopg2 client did not get ready: %q %s", lines.Text(), stderr.String())
	}
	before := describeJSON(t, home, defaultUpCluster).DBClusters[0].MovedSessions
	if code, out, errOut := cli(t, "cluster", "reboot", "--name", defaultUpCluster, "--home", home); code != 0 {
		t.Fatalf("cluster reboot: exit %d: %s%s", code, out, errOut)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d := describeJSON(t, home, defaultUpCluster).DBClusters[0]
		if d.Status == "available" && d.MovedSessions > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reboot did not move the session: status %s, moved %d\n%s", d.Status, d.MovedSessions, log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	io.WriteString(stdin, "go\n")
	if !lines.Scan() {
		t.Fatalf("psycopg2 client said nothing after the reboot: %s", stderr.String())
	}
	var got struct {
		Error           string `json:"error"`
		Answer          int    `json:"answer"`
		SearchPath      string `json:"search_path"`
		ApplicationName string `json:"application_name"`
		PIDBefore       int    `json:"pid_before"`
		PIDAfter        int    `json:"pid_after"`
		SSL             bool   `json:"ssl"`
	}
	if err := json.Unmarshal(lines.Bytes(), &got); err != nil {
		t.Fatalf("psycopg2 client output %q: %v", lines.Text(), err)
	}
	t.Logf("psycopg2 across the reboot: %+v", got)
	if got.Error != "" || got.Answer != 42 || got.SearchPath != "py_schema, public" || got.ApplicationName != "pymover" || !got.SSL {
		t.Fatalf("psycopg2 session after the reboot: %+v, want answer 42, its settings, TLS and no error\n%s", got, log())
	}
	if got.PIDAfter == got.PIDBefore {
		t.Fatalf("the psycopg2 session is still on backend %d: the reboot did not restart the writer", got.PIDBefore)
	}
	if err := py.Wait(); err != nil {
		t.Fatalf("psycopg2 client: %v\n%s", err, stderr.String())
	}
}
