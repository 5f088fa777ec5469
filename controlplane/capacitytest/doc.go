// Package capacitytest holds the integration tests of capacity (enforcement, manual and
// automatic changes, the memory limit) against real nodes, through the cluster package's public
// API. They are a package of their own so that `go test ./controlplane/...` runs them beside the
// cluster package's tests rather than after them, keeping each test binary well inside go
// test's time limit on a loaded machine. It has no code of its own.
package capacitytest
