// Package borealis is a testcontainers-go module for Borealis dev clusters, shaped like
// testcontainers-go's modules/postgres: Run starts the borealis image (`make image`) as one
// container holding a writer, N readers, their routers and the control plane, and returns a
// Container with connection strings for the cluster (writer) and reader endpoints, a client for
// the control plane's API, and Snapshot/Restore through template databases.
//
//	ctr, err := borealis.Run(ctx, "borealis:dev",
//		borealis.WithDatabase("app"), borealis.WithPassword("secret"), borealis.WithReaders(1))
//	defer testcontainers.TerminateContainer(ctr)
//	dsn, err := ctr.ConnectionString(ctx, "sslmode=disable")
//
// The package owns the container's configuration (environment, files, ports, wait strategy) and
// the HTTP client of the API. It never reaches inside the cluster: everything goes through the
// published endpoints and API, as a user's test would. It must never import the index code
// (simd, hnsw, engine).
//
// One container per cluster is the default and the only topology: the control plane starts its
// nodes as local processes and routes over loopback, so a container per node would need the
// control plane to manage remote nodes, which it does not do.
package borealis
