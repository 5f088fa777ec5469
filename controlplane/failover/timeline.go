package failover

import (
	"fmt"
	"strconv"
	"strings"
)

// FormatLSN writes a byte position as PostgreSQL does ("16/B374D848").
func FormatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

// ParseLSN reads "16/B374D848" as a byte position.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("malformed LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed LSN %q", s)
	}
	return h<<32 | l, nil
}

// ParseHistory reads a timeline history file (pg_wal/<TLI>.history): one line per ancestor,
// "<parent timeline> <switch LSN> <reason>", comments and blank lines ignored. It returns each
// ancestor's switch point.
func ParseHistory(text string) (map[uint32]uint64, error) {
	out := map[uint32]uint64{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("timeline history line %d: %q has no switch point", i+1, line)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("timeline history line %d: bad timeline %q", i+1, f[0])
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline history line %d: %v", i+1, err)
		}
		out[uint32(tli)] = lsn
	}
	return out, nil
}

// TimelineAt says on which timeline a standby holds the WAL just before pos: the highest
// timeline among its WAL segment files (names as pg_ls_waldir lists them) that cover that byte.
// A standby writes what it receives into segments named after the timeline it streams, so this
// is the timeline of its received WAL even after its WAL receiver has gone (the writer died),
// when pg_stat_wal_receiver no longer shows it. It returns 0 when no file covers pos.
func TimelineAt(walFiles []string, pos, segSize uint64) uint32 {
	if pos == 0 || segSize == 0 || segSize > 1<<32 {
		return 0
	}
	seg := (pos - 1) / segSize
	perID := (uint64(1) << 32) / segSize
	want := fmt.Sprintf("%08X%08X", seg/perID, seg%perID)
	var best uint32
	for _, name := range walFiles {
		if len(name) != 24 || name[8:] != want {
			continue
		}
		if tli, err := strconv.ParseUint(name[:8], 16, 32); err == nil {
			best = max(best, uint32(tli))
		}
	}
	return best
}

// HistoryTimeline reads the timeline of a history file name ("00000003.history"), 0 if it is
// not one.
func HistoryTimeline(name string) uint32 {
	hex, ok := strings.CutSuffix(name, ".history")
	if !ok || len(hex) != 8 {
		return 0
	}
	tli, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return 0
	}
	return uint32(tli)
}
