package cluster

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgproc"
)

// pg_rewind decides whether a target must be rewound by comparing the timeline in the
// source's control file with the target's. A reader promoted moments ago still has the old
// timeline there: PostgreSQL 15 promotes without an end-of-recovery checkpoint and only
// requests a spread one, which takes about 0.1 s per dirty buffer (minutes for a reader that
// replayed a busy writer's megabytes). A rewind in that window answers "source and target
// cluster are on the same timeline; no rewind required" and changes nothing, so the old
// writer came up as a standby still holding its own WAL past the fork ("new timeline N forked
// off current database system timeline N-1 before current recovery point"), never streamed,
// and was cloned afresh 20 s later (member.rewind-stuck: every rejoin of the failover bench).
// Patroni checkpoints the new leader before a rewind for the same reason.

// checkpointForRewind makes the writer's control file name its current timeline before
// pg_rewind reads it: a CHECKPOINT (immediate, and it finishes a spread one in progress) when
// the last checkpoint is still on an earlier timeline, nothing otherwise.
func checkpointForRewind(ctx context.Context, writer *pgproc.Node) error {
	conn, err := pgx.Connect(ctx, writer.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var checkpointTLI, currentTLI int64
	if err := conn.QueryRow(ctx, "SELECT (SELECT timeline_id FROM pg_control_checkpoint())::bigint, "+
		"('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint").Scan(&checkpointTLI, &currentTLI); err != nil {
		return fmt.Errorf("reading the writer's timelines: %w", err)
	}
	if checkpointTLI >= currentTLI {
		return nil
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpointing the writer (its control file is on timeline %d, it writes timeline %d): %w", checkpointTLI, currentTLI, err)
	}
	return nil
}
