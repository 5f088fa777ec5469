package capacity

import (
	"fmt"
	"strconv"
	"strings"
)

// MarkdownTable renders Settings for the given capacities as the table docs/architecture.md
// shows (a test keeps the two equal).
func MarkdownTable(acus []float64) string {
	var b strings.Builder
	b.WriteString("| ACU | memory | CPUs |")
	for _, s := range Settings(1) {
		b.WriteString(" " + s.Name + " |")
	}
	b.WriteString("\n|---:|---:|---:|")
	for range Settings(1) {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, acu := range acus {
		fmt.Fprintf(&b, "| %g | %s | %g |", acu, human(MemoryBytes(acu)), CPUs(acu))
		for _, s := range Settings(acu) {
			v := s.Value
			if n, ok := strings.CutSuffix(v, "kB"); ok {
				k, _ := strconv.ParseInt(n, 10, 64)
				v = human(k * 1024)
			}
			b.WriteString(" " + v + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// human prints bytes in the largest unit that keeps one decimal at most.
func human(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GB", b>>30)
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d kB", b>>10)
}
