// Package runtimepatch holds the change the Borealis engine makes to the Go runtime's monitor
// thread (sysmon), and applies it to a copy of the toolchain's runtime/proc.go so that the
// engine alone is built with it through `go build -overlay` (the Makefile does this; see
// docs/architecture.md, "The Go runtime in a backend"). It owns only that text transformation:
// it never edits the toolchain itself, and nothing but the engine's build uses its output.
//
// Why: inside a PostgreSQL backend the engine is called from C through cgo callbacks. The
// callback's goroutine never passes through the scheduler, so its P's schedtick never moves, and
// from 10 ms after sysmon first saw it, sysmon treats every call as a goroutine that has run too
// long: while the backend is in C it retakes the P (a "syscall" that just began), while it is in
// Go it asks for a preemption (a hand-off of the locked goroutine between threads), and each
// retake keeps sysmon polling every 20 µs. A P retaken from an idle backend also puts sysmon into
// deep sleep, and the next call wakes it into 50 more polls at 20 µs. Each poll is a context
// switch; on the 2-core VM these cost 130–530 µs of CPU per query (bench/results, scan profile).
//
// The edits: sysmon forces a preemption or retake for a stale schedtick only when no P is idle
// (there is no other work a P could do otherwise; golang/go#60693 proposes the same), and a
// wake from deep sleep by a returning syscall or cgo call does not restart the 20 µs polling.
// Ps blocked in real syscalls are still retaken after 10 ms, or at once when every P is busy.
package runtimepatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Name identifies this version of the edits; the engine reports it in borealis_engine_info()
// as runtime_patch. Change it whenever Edits change.
const Name = "sysmon-cgo-1"

// An Edit replaces Old, which must occur exactly once in runtime/proc.go, with New.
type Edit struct {
	Old, New string
}

// Edits are the changes to runtime/proc.go, written against Go 1.26.
var Edits = []Edit{
	{ // retake: a stale schedtick forces a preemption/retake only when no P is idle.
		Old: "\t\t} else if pd.schedwhen+forcePreemptNS <= now {\n",
		New: "\t\t} else if pd.schedwhen+forcePreemptNS <= now && sched.npidle.Load() == 0 { // borealis: " + Name + "\n",
	},
	{ // sysmon: a wake from a syscall or cgo call keeps the long sleep.
		Old: "\t\t\t\tif syscallWake {\n\t\t\t\t\tidle = 0\n\t\t\t\t\tdelay = 20\n\t\t\t\t}\n",
		New: "\t\t\t\tif syscallWake { // borealis: " + Name + "\n\t\t\t\t\tidle = 51\n\t\t\t\t\tdelay = 10 * 1000\n\t\t\t\t}\n",
	},
}

// Apply returns src with every edit made, or an error naming the first edit whose text is
// missing or ambiguous (a toolchain whose runtime differs from the one the edits were written
// against).
func Apply(src []byte) ([]byte, error) {
	out := src
	for i, e := range Edits {
		switch n := bytes.Count(out, []byte(e.Old)); n {
		case 1:
			out = bytes.Replace(out, []byte(e.Old), []byte(e.New), 1)
		case 0:
			return nil, fmt.Errorf("runtime patch %s: edit %d: text not found in runtime/proc.go (the Go toolchain differs from the one the edits were written for, Go 1.26; update internal/runtimepatch)", Name, i+1)
		default:
			return nil, fmt.Errorf("runtime patch %s: edit %d: text found %d times in runtime/proc.go, want once (update internal/runtimepatch)", Name, i+1, n)
		}
	}
	return out, nil
}

// ProcPath is runtime/proc.go under goroot.
func ProcPath(goroot string) string {
	return filepath.Join(goroot, "src", "runtime", "proc.go")
}

// WriteOverlay writes dir/proc.go (goroot's runtime/proc.go with the edits made) and
// dir/overlay.json for `go build -overlay`, and returns the overlay file's path.
func WriteOverlay(goroot, dir string) (string, error) {
	orig := ProcPath(goroot)
	src, err := os.ReadFile(orig)
	if err != nil {
		return "", fmt.Errorf("runtime patch %s: %w", Name, err)
	}
	patched, err := Apply(src)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	proc := filepath.Join(absDir, "proc.go")
	if err := writeIfChanged(proc, patched); err != nil {
		return "", err
	}
	doc, err := json.MarshalIndent(map[string]map[string]string{"Replace": {orig: proc}}, "", "  ")
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(absDir, "overlay.json")
	if err := writeIfChanged(overlay, append(doc, '\n')); err != nil {
		return "", err
	}
	return overlay, nil
}

// writeIfChanged leaves an identical file alone, so its time stamp does not invite rebuilds.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}
