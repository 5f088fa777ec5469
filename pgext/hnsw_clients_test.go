package pgext_test

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// clientPool runs SQL clients in goroutines until its context ends, each on its own
// connection with sequential scans off (a scan that fell back to the heap would pass whatever
// the index did), and keeps the first error any client met. The concurrency tests drive
// inserters, scanners and samplers through it.
type clientPool struct {
	ctx context.Context
	dsn string
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func newClientPool(ctx context.Context, dsn string) *clientPool {
	return &clientPool{ctx: ctx, dsn: dsn}
}

// fail records err unless an earlier error was recorded.
func (p *clientPool) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// loop starts a client that calls body until the pool's context ends; an error that is not
// the context ending stops that client and is recorded.
func (p *clientPool) loop(body func(c *pgx.Conn) error) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c, err := pgx.Connect(context.Background(), p.dsn)
		if err != nil {
			p.fail(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(p.ctx, "SET enable_seqscan = off"); err != nil {
			p.fail(err)
			return
		}
		for p.ctx.Err() == nil {
			if err := body(c); err != nil && p.ctx.Err() == nil {
				p.fail(err)
				return
			}
		}
	}()
}

// wait waits for every client and returns the first error one of them met.
func (p *clientPool) wait() error {
	p.wg.Wait()
	return p.err
}
