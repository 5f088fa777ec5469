package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/controlplane/store"
)

// The follow watch: every reader must stream the writer's current timeline. A reader whose WAL
// receiver cannot follow — it received WAL of the old timeline past the point where the new
// writer's timeline forked (possible in asynchronous mode when the promoted reader was not the
// one that had received the most, and the failover could not read that reader's position), or
// it needs WAL the writer no longer has, or its primary_conninfo leads nowhere — retries its
// WAL receiver every wal_retrieve_retry_interval forever. Its server runs and answers, so
// supervision found it "available" while its lag grew without bound (the asynchronous bench's
// run 2 gave up on one 189 s behind).
//
// The prober already asks every reader about its WAL receiver each round (failover_probe.go);
// it feeds a failover.FollowWatch per reader with what it saw, while the writer answers its own
// probes (a reader cannot stream from a writer that is down, and that is the writer's failure,
// not the reader's). A reader that has not streamed the writer's timeline for
// failover.FollowBound is repaired by the run goroutine: stopped, marked fenced, and brought
// back by supervision's rejoin — pg_rewind, else a fresh clone — with the events
// member.not-following (with the last replication error from its own log) and member.rejoined.

// watchFollowersLocked feeds the readers' follow watches with one prober round; the prober's
// mu is held.
func (c *Cluster) watchFollowersLocked(obs observation) {
	p := &c.fo.probe
	if p.follow == nil {
		p.follow = map[string]*failover.FollowWatch{}
		p.repairs = map[string]string{}
	}
	healthy := obs.Running && obs.DataIntact && obs.Probe == failover.ProbeOK && obs.tli > 0
	for id := range p.follow {
		if _, ok := obs.followers[id]; !ok {
			delete(p.follow, id) // no longer a reader to watch (fenced, promoted, deleted)
		}
	}
	kick := false
	for id, look := range obs.followers {
		w := p.follow[id]
		if w == nil {
			w = &failover.FollowWatch{Bound: c.m.opts.FollowBound}
			p.follow[id] = w
		}
		if !healthy || look == nil {
			w.Reset()
			continue
		}
		o := *look
		o.WriterTimeline = obs.tli
		if repair, why := w.Observe(o); repair {
			p.repairs[id] = why
			kick = true
		}
	}
	if kick {
		c.kick()
	}
}

// repairFollowers stops each reader the follow watch gave up on and marks it fenced, so that
// supervision's rejoin brings it back by pg_rewind, else a fresh clone. Run goroutine only.
func (c *Cluster) repairFollowers() {
	p := &c.fo.probe
	p.mu.Lock()
	repairs := p.repairs
	p.repairs = map[string]string{}
	p.mu.Unlock()
	ids := make([]string, 0, len(repairs))
	for id := range repairs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		mb := c.memberByID(id)
		if mb == nil || mb.node == nil || !mb.node.Running() {
			continue
		}
		rec := mb.record()
		if rec.Writer || rec.Fenced || !rec.Created {
			continue
		}
		cause := lastReplicationError(rec.DataDir)
		// A clean (fast) shutdown: a standby shut down in recovery can be rewound as it is,
		// while a killed one cannot (pg_rewind's crash recovery runs a single-user server,
		// which refuses a standby), and would be cloned.
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		_ = mb.node.Stop(ctx)
		cancel()
		if err := mb.node.Fence(); err != nil {
			mb.event("member.fence-failed", "stopping reader %s, which does not follow the writer: %v", id, err)
			continue
		}
		mb.pid.Store(0)
		mb.closePoll()
		mb.update(func(r *store.Member) { r.Fenced, r.Status = true, StatusRestarting })
		msg := fmt.Sprintf("reader %s is %s", id, repairs[id])
		if cause != "" {
			msg += "; its log says: " + cause
		}
		mb.event("member.not-following", "%s; it is stopped and rejoins by pg_rewind, else a fresh clone", msg)
	}
	if len(ids) > 0 {
		c.kick()
	}
}

// replicationErrorMarks pick, from a reader's log, the lines that say why its WAL receiver or
// recovery cannot go on.
var replicationErrorMarks = []string{
	"not in this server's history", "forked off current database system timeline", "is not a child of",
	"has already been removed", "could not receive data", "could not connect to the primary",
	"could not start WAL streaming", "could not send", "requested starting point", "replication slot",
	"highest timeline", "no recovery target", "invalid record length", "invalid magic number", "FATAL",
}

// lastReplicationError is the last line of the node's newest server log (the logging
// collector's log/*.log) that says why replication fails; "" if none is found.
func lastReplicationError(dataDir string) string {
	files, _ := filepath.Glob(filepath.Join(dataDir, "log", "*.log"))
	if len(files) == 0 {
		return ""
	}
	sort.Strings(files) // postgresql-%Y-%m-%d_%H%M%S.log: the newest last
	f, err := os.Open(files[len(files)-1])
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	data, _ := io.ReadAll(io.LimitReader(f, tail))
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		for _, mark := range replicationErrorMarks {
			if strings.Contains(lines[i], mark) {
				line := strings.TrimSpace(lines[i])
				if len(line) > 400 {
					line = line[:400]
				}
				return line
			}
		}
	}
	return ""
}

// freshPositions reads, right after the promotion and before the re-pointing, the position of
// every reader the choice could not read (frozen, busy, restarting) and of every one it did
// (WAL already in flight when the old writer died may have landed since): a reader that holds
// WAL of the timeline the new writer forked from, past the fork, can never follow it.
// Positions that cannot be read now are those of the choice. One goroutine per reader, each
// bounded by readPosition's timeout.
func (c *Cluster) freshPositions(ctx context.Context, cands []failover.Candidate, chosen string) []failover.Candidate {
	out := append([]failover.Candidate(nil), cands...)
	idx := map[string]int{}
	for i, cand := range out {
		idx[cand.ID] = i
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, r := range c.allRecs() {
		if r.ID == chosen || r.Writer || r.Fenced || !r.Created {
			continue
		}
		mb := c.memberByID(r.ID)
		if mb == nil || mb.node == nil || !mb.node.Running() {
			continue
		}
		node := mb.node
		wg.Add(1)
		go func() {
			defer wg.Done()
			pos, err := mb.readPosition(ctx, node)
			if err != nil || !pos.inRecovery {
				return
			}
			cand := failover.Candidate{ID: r.ID, Tier: r.PromotionTier, Capacity: r.Capacity, Reachable: true,
				Received: pos.received, Replayed: pos.replayed, Timeline: pos.timeline}
			mu.Lock()
			defer mu.Unlock()
			if i, ok := idx[r.ID]; ok {
				old := out[i]
				if old.Reachable && old.Timeline != 0 && cand.Timeline == 0 {
					cand.Timeline = old.Timeline
				}
				cand.Received, cand.Replayed = max(cand.Received, old.Received), max(cand.Replayed, old.Replayed)
				out[i] = cand
			} else {
				idx[r.ID] = len(out)
				out = append(out, cand)
			}
		}()
	}
	wg.Wait()
	return out
}
