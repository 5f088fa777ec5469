// Package metrics exposes the control plane on Prometheus' /metrics through client_golang:
// capacity per node (like Aurora's ServerlessDatabaseCapacity), ACU and CPU utilisation,
// connections, engine uptime, replica lag in seconds and bytes, router connections and bytes,
// the router's warm backend pool (idle, in use, opened, reused, closed by reason, DDL drains,
// settings misses), and events by type.
//
// Every value is read from the cluster Manager at scrape time (the Manager samples the nodes
// once a second), so a scrape never touches a node. It owns metric names and labels only.
package metrics
