package ann

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/borealisdb/borealis/bench/dataset"
)

// What a new user meets first: a query on a connection that has never touched the index,
// the server memory each such connection keeps, and how fast rows go into an indexed table.
// These are the measures a per-backend index cache pays for; a steady-state sweep on warm
// connections never shows them.

// Fresh is the first query on new connections and the memory they keep.
type Fresh struct {
	// Connections were opened one after another, each running one top-k query at the AM's
	// default ef, and kept open until the memory was read.
	Connections int `json:"connections"`
	// Connect+first query, from dialling to the last row, per connection.
	FirstP50ms float64 `json:"first_query_p50_ms"`
	FirstP99ms float64 `json:"first_query_p99_ms"`
	// The connect (startup and authentication) alone, for reference.
	ConnectP50ms float64 `json:"connect_p50_ms"`
	// PerConnection is the growth of the server's summed PSS divided by Connections: the
	// memory each additional connection that ran a query costs, measured from a server where
	// no client backend had touched the index. 0 when the server is not on this machine.
	// It charges a connection for shared pages nobody had mapped before it (for a graph file,
	// the folios the kernel's fault-around maps around each touched page): memory the node
	// already held in its page cache, counted at the first mapping. See Marginal for what one
	// more connection adds once others map the index.
	PerConnection int64 `json:"pss_per_connection_bytes"`
	// Marginal is the memory one MORE connection adds once the Connections above are open and
	// have run their query: the growth of the server's summed PSS (every server process, so a
	// shared page counts once) across connecting and running one query, the median over
	// MarginalConnections further connections, each measured alone with the earlier ones
	// still open. Private is the median USS (Private_Clean + Private_Dirty) of those
	// connections' backends: what closing one gives back.
	MarginalConnections int   `json:"marginal_connections,omitempty"`
	Marginal            int64 `json:"marginal_pss_per_connection_bytes,omitempty"`
	Private             int64 `json:"private_per_connection_bytes,omitempty"`
}

// marginalConnections is how many connections past the fresh ones measure Fresh.Marginal.
const marginalConnections = 3

// marginalSettle is the pause before the marginal measure: the fresh connections' backends
// and the prewarm worker (which maps every graph file once a second) reach a steady state.
const marginalSettle = 2 * time.Second

// Inserts is the rate of single-row INSERTs into the indexed table.
type Inserts struct {
	Seconds float64 `json:"seconds"`
	// Rows per second with one client, and with Clients concurrent ones. Every client is a
	// new connection, so a backend's first touch of the index is included, as it is for an
	// application that scales out.
	Rate1   float64 `json:"rows_per_s_1"`
	Clients int     `json:"clients"`
	RateN   float64 `json:"rows_per_s_n"`
}

// freshConfig is a pgx configuration for a connection of the measures above: planner settings
// travel in the startup packet, so the first query is the first round trip after connecting.
func freshConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["enable_seqscan"] = "off"
	cfg.RuntimeParams["jit"] = "off"
	return cfg, nil
}

// measureFresh opens n connections one at a time; each runs one k-NN query. The server's PSS
// is read before the first and after the last (all still open). Then, after a settling pause,
// marginalConnections more connections, one at a time, give Fresh.Marginal and Fresh.Private.
func measureFresh(ctx context.Context, t *target, d *dataset.Dataset, element string, k, n int) (*Fresh, error) {
	cfg, err := freshConfig(t.dsn)
	if err != nil {
		return nil, err
	}
	sql := knnSQL(element, d.Metric, d.Dim, k)
	var before int64
	if t.postmaster != 0 {
		before = settledMemory(t.postmaster)
	}
	conns := make([]*pgx.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	first := make([]time.Duration, 0, n)
	connect := make([]time.Duration, 0, n)
	// query runs conn i's one k-NN query and checks it returned k rows.
	query := func(c *pgx.Conn, i int) error {
		rows, err := c.Query(ctx, sql, queryValue(d, i%d.NQ()))
		if err != nil {
			return fmt.Errorf("first query on fresh connection %d: %w", i, err)
		}
		got := 0
		for rows.Next() {
			got++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("first query on fresh connection %d: %w", i, err)
		}
		if got != k {
			return fmt.Errorf("first query on fresh connection %d returned %d rows, want %d", i, got, k)
		}
		return nil
	}
	for i := range n {
		t0 := time.Now()
		c, err := pgx.ConnectConfig(ctx, cfg.Copy())
		if err != nil {
			return nil, fmt.Errorf("fresh connection %d: %w", i, err)
		}
		conns = append(conns, c)
		connect = append(connect, time.Since(t0))
		if err := query(c, i); err != nil {
			return nil, err
		}
		first = append(first, time.Since(t0))
	}
	f := &Fresh{Connections: n, FirstP50ms: ms(Percentile(first, 50)), FirstP99ms: ms(Percentile(first, 99)),
		ConnectP50ms: ms(Percentile(connect, 50))}
	if t.postmaster == 0 {
		return f, nil
	}
	f.PerConnection = max(0, ServerMemory(t.postmaster)-before) / int64(n)

	time.Sleep(marginalSettle)
	var marginal, private []int64
	for i := n; i < n+marginalConnections; i++ {
		before := ServerMemory(t.postmaster)
		c, err := pgx.ConnectConfig(ctx, cfg.Copy())
		if err != nil {
			return nil, fmt.Errorf("fresh connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if err := query(c, i); err != nil {
			return nil, err
		}
		grown := ServerMemory(t.postmaster) - before
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			return nil, err
		}
		marginal, private = append(marginal, grown), append(private, ProcessPrivate(pid))
	}
	f.MarginalConnections = marginalConnections
	f.Marginal, f.Private = max(0, median(marginal)), median(private)
	return f, nil
}

// settleQuiet and settleLimit bound settledMemory: the prewarm worker maps a new graph file
// on its next pass, once a second, and populates the file's cached pages.
const (
	settleQuiet = 1500 * time.Millisecond
	settleLimit = 15 * time.Second
)

// settledMemory is the server's summed PSS once it has stopped growing for settleQuiet (at most
// settleLimit). Read right after a build, before the prewarm worker's next pass mapped the new
// graph file, the sum lacked the file, and the fresh connections were charged for all of it
// (+77.8 MiB per connection at 50k x 1,536, 5 x 77.8 MiB = the 390 MiB file, against 3.4 MiB
// in a run where the worker had been first). The fresh measure is what connections add to a
// node that holds its graph, as every node does within a second of a build; with
// borealis.prewarm off nothing maps the file and the connections are still charged for it.
func settledMemory(postmaster int) int64 {
	last := ServerMemory(postmaster)
	quietSince := time.Now()
	for deadline := time.Now().Add(settleLimit); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		cur := ServerMemory(postmaster)
		if cur > last+1<<20 {
			quietSince = time.Now()
		}
		last = max(last, cur)
		if time.Since(quietSince) >= settleQuiet {
			return cur
		}
	}
	return last
}

// median of xs (which it sorts).
func median(xs []int64) int64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// insertID is where the rows measureInserts adds start; they are deleted after the index is
// dropped, so every index is built on the same table.
func insertID(d *dataset.Dataset) int { return d.N() + 1_000_000 }

// insertVector is row i of the insert workload: the midpoint of two base vectors, a new point
// among the existing ones (a copy would be an exact duplicate, which graphs treat specially).
func insertVector(d *dataset.Dataset, i int) any {
	if d.Sparse != nil {
		return sparseValue(d.Dim, dataset.Midpoint(d.Sparse.Base[i%d.N()], d.Sparse.Base[(i*7919+1)%d.N()]))
	}
	a, b := d.Row(i%d.N()), d.Row((i*7919+1)%d.N())
	v := make([]float32, len(a))
	for j := range v {
		v[j] = (a[j] + b[j]) / 2
	}
	return pgvector.NewVector(v)
}

// measureInserts runs single-row INSERTs for dur with one new connection, then with clients
// new connections at once.
func measureInserts(ctx context.Context, t *target, d *dataset.Dataset, clients int, dur time.Duration) (*Inserts, error) {
	cfg, err := freshConfig(t.dsn)
	if err != nil {
		return nil, err
	}
	var next atomic.Int64
	next.Store(int64(insertID(d)))
	run := func(n int) (float64, error) {
		conns := make([]*pgx.Conn, n)
		defer func() {
			for _, c := range conns {
				if c != nil {
					c.Close(context.Background())
				}
			}
		}()
		for i := range conns {
			c, err := pgx.ConnectConfig(ctx, cfg.Copy())
			if err != nil {
				return 0, fmt.Errorf("insert client %d: %w", i, err)
			}
			conns[i] = c
		}
		sql := fmt.Sprintf("INSERT INTO %s (id, embedding) VALUES ($1, $2::%s)", table, baseType(d))
		var rows atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := time.Now()
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < dur {
					id := next.Add(1) - 1
					if _, err := c.Exec(ctx, sql, int32(id), insertVector(d, int(id)-insertID(d))); err != nil {
						errs[i] = fmt.Errorf("insert client %d: %w", i, err)
						return
					}
					rows.Add(1)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		return float64(rows.Load()) / elapsed.Seconds(), nil
	}
	ins := &Inserts{Seconds: dur.Seconds(), Clients: clients}
	if ins.Rate1, err = run(1); err != nil {
		return nil, err
	}
	if ins.RateN, err = run(clients); err != nil {
		return nil, err
	}
	return ins, nil
}

// removeInserted deletes the rows measureInserts added (after the index is dropped, so the
// delete does not maintain it) and vacuums them away before the next build.
func removeInserted(ctx context.Context, conn *pgx.Conn, d *dataset.Dataset) error {
	if _, err := conn.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE id >= %d", table, insertID(d))); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, "VACUUM "+table)
	return err
}
