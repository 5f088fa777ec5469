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
