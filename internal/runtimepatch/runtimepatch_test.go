package runtimepatch

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func goroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// The installed toolchain is the one the engine is built with: its runtime must take the edits,
// or the engine silently loses them. A toolchain upgrade that breaks this must update Edits.
func TestEditsApplyToInstalledToolchain(t *testing.T) {
	src, err := os.ReadFile(ProcPath(goroot(t)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Apply(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Edits {
		if strings.Contains(string(out), e.Old) || !strings.Contains(string(out), e.New) {
			t.Fatalf("edit not made: %q", e.Old)
		}
	}
	if got, want := strings.Count(string(out), "borealis: "+Name), len(Edits); got != want {
		t.Fatalf("%d marked edits, want %d", got, want)
	}
}

func TestApplyRefusesAnUnknownRuntime(t *testing.T) {
	if _, err := Apply([]byte("package runtime\n")); err == nil || !strings.Contains(err.Error(), "update internal/runtimepatch") {
		t.Fatalf("Apply on a runtime without the text: err = %v", err)
	}
	twice := []byte(Edits[0].Old + Edits[0].Old + Edits[1].Old)
	if _, err := Apply(twice); err == nil || !strings.Contains(err.Error(), "2 times") {
		t.Fatalf("Apply with the text twice: err = %v", err)
	}
}

// WriteOverlay's output is what `go build -overlay` reads: a Replace map from the toolchain's
// file to the patched copy, and the copy compiles as the runtime (built for real by make).
func TestWriteOverlay(t *testing.T) {
	root := goroot(t)
	dir := t.TempDir()
	path, err := WriteOverlay(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Replace map[string]string }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("overlay.json: %v: %s", err, raw)
	}
	got, ok := doc.Replace[ProcPath(root)]
	if !ok || got != filepath.Join(dir, "proc.go") || len(doc.Replace) != 1 {
		t.Fatalf("overlay.json = %s", raw)
	}
	patched, err := os.ReadFile(got)
	if err != nil || !strings.Contains(string(patched), "borealis: "+Name) {
		t.Fatalf("patched proc.go: %v", err)
	}
	// A missing toolchain file is an error naming it, not an empty overlay.
	if _, err := WriteOverlay(filepath.Join(dir, "nope"), filepath.Join(dir, "o2")); err == nil || !strings.Contains(err.Error(), "proc.go") {
		t.Fatalf("WriteOverlay without a toolchain: err = %v", err)
	}
}
