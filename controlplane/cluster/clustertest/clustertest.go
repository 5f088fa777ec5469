// Package clustertest sets up a control plane (a cluster.Manager over its own store, in a
// temporary home) for the tests of the packages that drive one from outside: api, metrics,
// capacitytest and cmd/borealis. It owns test set-up only and is imported by tests only;
// package cluster's own tests keep their helpers beside them (they cannot import a package
// that imports cluster).
package clustertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/store"
)

// NewHome makes a control-plane home the nodes' user can pass through (its name starts with
// prefix), removed after the test.
func NewHome(t testing.TB, prefix string) string {
	t.Helper()
	home, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := cluster.PrepareHome(home); err != nil {
		t.Fatal(err)
	}
	return home
}

// NewManager opens a store and a Manager in home with opts (its Home, Store and Logf are
// filled in); both are closed, nodes stopped, after the test.
func NewManager(t testing.TB, home string, opts cluster.Options) *cluster.Manager {
	t.Helper()
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Home, opts.Store, opts.Logf = home, st, t.Logf
	m, err := cluster.NewManager(opts)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.Close(ctx, true)
		st.Close()
	})
	return m
}
