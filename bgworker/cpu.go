package bgworker

import "time"

// cpuPoint is the cumulative CPU time of the server, in seconds, at one sampling time.
type cpuPoint struct {
	at      time.Time
	seconds float64
}

// CPUMeter turns samples of the server's cumulative CPU time into average utilisation over
// sliding windows (1 and 5 minutes), exactly: it keeps the samples of the longest window and
// divides the CPU time used between two of them by the wall time between them.
type CPUMeter struct {
	// CPUs is how many CPUs the server may use; utilisation is a share of them (0-100).
	CPUs float64
	// Keep is the longest window asked for; older samples are dropped.
	Keep   time.Duration
	points []cpuPoint
}

// Add records the cumulative CPU seconds measured at at. The total can dip for a moment (a
// child that exited but was not yet reaped is in neither its own nor the postmaster's stat),
// so it is kept monotonic: a dip is held at the last value and counted once it is made up.
func (m *CPUMeter) Add(at time.Time, seconds float64) {
	if n := len(m.points); n > 0 {
		last := m.points[n-1]
		if !at.After(last.at) {
			return
		}
		seconds = max(seconds, last.seconds)
	}
	m.points = append(m.points, cpuPoint{at, seconds})
	// Keep one sample at or before the start of the longest window, so it is fully covered.
	cut := at.Add(-m.Keep)
	drop := 0
	for drop+1 < len(m.points) && !m.points[drop+1].at.After(cut) {
		drop++
	}
	if drop > 0 {
		m.points = append(m.points[:0], m.points[drop:]...)
	}
}

// Percent is the average utilisation over the last window, as a share of CPUs (0-100). Until
// a full window has been sampled it averages over the time sampled so far; with fewer than two
// samples it is 0.
func (m *CPUMeter) Percent(window time.Duration) float64 {
	n := len(m.points)
	if n < 2 || m.CPUs <= 0 {
		return 0
	}
	last := m.points[n-1]
	cut := last.at.Add(-window)
	from := m.points[0]
	for _, p := range m.points[:n-1] {
		if p.at.After(cut) {
			break
		}
		from = p
	}
	wall := last.at.Sub(from.at).Seconds()
	if wall <= 0 {
		return 0
	}
	pct := (last.seconds - from.seconds) / wall / m.CPUs * 100
	return min(max(pct, 0), 100)
}
