package logs

import (
	"sort"
	"time"
)

// enforceRetention drops whole segments: those whose newest event is older than the group's
// retention, then the oldest ones while the group is over its size bound. A stream's active
// segment stays (it holds the stream's position in its source).
func (s *Service) enforceRetention() {
	s.mu.Lock()
	gs := make([]*Group, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	s.mu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		days := g.meta.RetentionInDays
		g.mu.Unlock()
		var segs []segInfo
		var total int64
		for _, st := range g.streamList() {
			n, ss := st.usage()
			total += n
			segs = append(segs, ss...)
		}
		sort.Slice(segs, func(i, j int) bool { return segs[i].mtime.Before(segs[j].mtime) })
		cutoff := time.Now().AddDate(0, 0, -days)
		for _, sg := range segs {
			if sg.active {
				continue
			}
			expired := days > 0 && sg.mtime.Before(cutoff)
			if !expired && total <= s.opts.MaxGroupBytes {
				continue
			}
			if err := sg.remove(); err != nil {
				s.opts.Logf("logs: dropping %s: %v", sg.s.dir, err)
				continue
			}
			total -= sg.size
			dropped := int64(0)
			if sg.end > sg.first {
				dropped = int64(sg.end - sg.first)
			}
			s.mu.Lock()
			s.stats.Expired += dropped
			s.mu.Unlock()
			if s.exporter != nil {
				s.exporter.segmentDropped(g.meta.Name, sg)
			}
		}
	}
}
