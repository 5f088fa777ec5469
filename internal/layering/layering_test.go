package layering_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/borealisdb/borealis"

// rule says which project packages the packages matching pattern may depend on (directly or
// not). A nil allowed list means only the standard library and third-party modules.
type rule struct {
	pattern   string
	allowed   []string
	forbidden []string
}

var rules = []rule{
	{pattern: "./simd", allowed: []string{}},
	{pattern: "./hnsw", allowed: []string{"simd"}},
	{pattern: "./engine", allowed: []string{"simd", "hnsw"}},
	{pattern: "./controlplane/...", forbidden: []string{"simd", "hnsw", "engine"}},
	{pattern: "./bgworker/...", forbidden: []string{"simd", "hnsw", "engine"}},
}

func TestDependenciesPointOneWay(t *testing.T) {
	for _, r := range rules {
		pkgs := goList(t, "-f", "{{.ImportPath}}", r.pattern)
		for _, pkg := range pkgs {
			for _, dep := range goList(t, "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg) {
				rel, ok := strings.CutPrefix(dep, module+"/")
				if !ok || dep == pkg || strings.HasPrefix(rel, strings.TrimPrefix(pkg, module+"/")) {
					continue
				}
				rel = strings.Fields(rel)[0] // test variants print as "pkg [pkg.test]"
				if r.allowed != nil && !within(rel, r.allowed) {
					t.Errorf("%s depends on %s; it may only depend on %v", pkg, rel, r.allowed)
				}
				if within(rel, r.forbidden) {
					t.Errorf("%s depends on %s, which it must never import", pkg, rel)
				}
			}
		}
	}
}

func within(rel string, roots []string) bool {
	for _, root := range roots {
		if rel == root || strings.HasPrefix(rel, root+"/") {
			return true
		}
	}
	return false
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
